"""pocketsphinx backend on real speech: alignment, recognition, fallbacks, long clips, accuracy floors."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

from lipsync_addon.core.audio import load_audio, to_analysis
from lipsync_addon.core.recognize.pocketsphinx_backend import PocketSphinxRecognizer
from lipsync_addon.core.types import ANALYSIS_RATE, Audio, Cancelled, CancelToken

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "aligned"
sys.path.insert(0, str(ROOT / "scripts"))


@pytest.fixture(scope="module")
def bobby() -> Audio:
    return to_analysis(load_audio(DATA / "bobby.wav"))  # 48 kHz file: resampling is exercised


def _assert_tiles(phones, duration: float) -> None:
    assert phones[0].start == 0.0
    assert abs(phones[-1].end - duration) < 1e-6
    for a, b in itertools.pairwise(phones):
        assert abs(a.end - b.start) < 1e-9 and b.end > b.start


def test_align_with_transcript_gives_words_and_phones(bobby: Audio) -> None:
    tr = PocketSphinxRecognizer(jobs=1).transcribe(bobby, "Bobby ripped the ledger.")
    assert tr.method == "align"
    assert [w.text for w in tr.words] == ["bobby", "ripped", "the", "ledger"]
    _assert_tiles(tr.phones, bobby.duration)
    ipa = [p.ipa for p in tr.phones if not p.is_silence]
    assert ipa[0] == "b" and "p" in ipa
    # phones of a word lie inside it
    for p in tr.phones:
        if p.word_index >= 0:
            w = tr.words[p.word_index]
            assert w.start - 1e-6 <= p.start and p.end <= w.end + 1e-6


def test_unknown_word_is_pronounced_and_warned(bobby: Audio) -> None:
    tr = PocketSphinxRecognizer(jobs=1).transcribe(bobby, "Bobby rippedzor the ledger")
    assert "rippedzor" in [w.text for w in tr.words]
    assert any("rippedzor" in w for w in tr.warnings)


def test_recognition_without_transcript(bobby: Audio) -> None:
    tr = PocketSphinxRecognizer(jobs=1).transcribe(bobby)
    assert tr.method.startswith("recognize")
    assert len([p for p in tr.phones if not p.is_silence]) >= 8
    _assert_tiles(tr.phones, bobby.duration)


def test_silence_and_noise_give_rest_not_a_crash() -> None:
    silent = Audio(np.zeros(ANALYSIS_RATE * 2, dtype=np.float32), ANALYSIS_RATE)
    tr = PocketSphinxRecognizer(jobs=1).transcribe(silent, "hello there")
    assert tr.method == "silence" and tr.warnings and all(p.is_silence for p in tr.phones)


def test_mismatched_transcript_still_gives_a_result(bobby: Audio) -> None:
    tr = PocketSphinxRecognizer(jobs=1).transcribe(bobby, "completely unrelated words spoken elsewhere today")
    _assert_tiles(tr.phones, bobby.duration)
    assert tr.phones


def test_long_clip_is_split_and_processed_in_pieces(bobby: Audio) -> None:
    gap = np.zeros(int(0.5 * ANALYSIS_RATE), dtype=np.float32)
    samples = np.concatenate([bobby.samples, gap] * 6)
    audio = Audio(samples, ANALYSIS_RATE)
    text = " ".join(["bobby ripped the ledger"] * 6)
    tr = PocketSphinxRecognizer(jobs=2, max_chunk=4.0).transcribe(audio, text)
    assert len(tr.words) == 24
    starts = [w.start for w in tr.words]
    assert starts == sorted(starts)
    # each repetition's "bobby" is found in its own repetition
    period = len(bobby.samples) / ANALYSIS_RATE + 0.5
    bobbies = [w.start for w in tr.words if w.text == "bobby"]
    assert all(abs(b - (k * period + 0.07)) < 0.25 for k, b in enumerate(bobbies))
    _assert_tiles(tr.phones, audio.duration)


def test_cancel_stops_the_job(bobby: Audio) -> None:
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        PocketSphinxRecognizer(jobs=1).transcribe(bobby, "bobby", cancel=token)


@pytest.mark.slow
def test_accuracy_floors_on_real_speech_with_reference_alignments() -> None:
    """Floors measured with scripts/eval_align.py (see docs/benchmarks.md); they guard regressions."""
    from eval_align import evaluate, total

    with_text = total(evaluate(DATA, with_transcript=True))
    print(f"\nwith transcript: boundaries within 20 ms (recall) {with_text.recall:.3f}, "
          f"F1 {with_text.f1:.3f}, viseme agreement {with_text.agreement:.3f}")
    assert with_text.recall >= 0.74
    assert with_text.f1 >= 0.75
    assert with_text.agreement >= 0.78
    without = total(evaluate(DATA, with_transcript=False))
    print(f"without transcript: F1 {without.f1:.3f}, viseme agreement {without.agreement:.3f}")
    assert without.agreement >= 0.67
