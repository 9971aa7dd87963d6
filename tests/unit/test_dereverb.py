"""Room echo: WPE de-reverberation keeps timing, removes reverberation, and helps the alignment of
reverberant real speech (the option is off by default)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from lipsync_addon.core import pipeline
from lipsync_addon.core.enhance import enhance_array
from lipsync_addon.core.enhance.dereverb import wpe
from lipsync_addon.core.types import Audio, Cancelled, CancelToken, PipelineConfig

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
sys.path.insert(0, str(ROOT / "scripts"))

from eval_reverb import room_response  # noqa: E402
from test_enhance import xcorr_lag  # noqa: E402


def _similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two signals at lag 0."""
    return float(np.corrcoef(a, b)[0, 1])


@pytest.fixture(scope="module")
def dry() -> np.ndarray:
    x, rate = sf.read(DATA / "cmu_arctic_us_aew_a0001.wav", dtype="float64")
    assert rate == 16000
    return x


@pytest.mark.parametrize("rate", [16000, 48000])
def test_wpe_removes_room_echo_and_keeps_timing(dry: np.ndarray, rate: int) -> None:
    source = resample_poly(dry, rate, 16000) if rate != 16000 else dry
    room = np.convolve(source, room_response(0.6, 0.0, rate, seed=1))[: len(source)]
    out = wpe(room, rate)
    assert out.shape == room.shape and out.dtype == np.float32 and np.all(np.isfinite(out))
    assert xcorr_lag(out, source) == 0 and xcorr_lag(out, room) == 0
    # closer to the dry speech than the reverberant input was (measured: 0.730 -> 0.757 at 16 kHz, 0.742 -> 0.762
    # at 48 kHz; the early reflections are kept by design)
    assert _similarity(out, source) > _similarity(room, source) + 0.01
    # a dry recording stays nearly as it is
    assert _similarity(wpe(source, rate), source) > 0.97


def test_long_clips_go_in_pieces_with_the_same_result(dry: np.ndarray) -> None:
    room = np.convolve(np.tile(dry, 14), room_response(0.5, 6.0, 16000, seed=2))[: len(dry) * 14]  # ~46 s
    pieces = wpe(room, 16000)
    assert len(pieces) == len(room) and xcorr_lag(pieces, room) == 0
    from lipsync_addon.core.enhance import dereverb

    whole = dereverb._wpe_piece(room, 16000, taps=dereverb.TAPS, delay=dereverb.DELAY,
                                iterations=dereverb.ITERATIONS, cancel=None)
    assert _similarity(pieces, whole) > 0.995
    # any length: pieces are equal, so the last is never shorter than the cross-fades (was a crash at 60.001 s)
    from lipsync_addon.core.enhance import dereverb as module

    for seconds in (4.001, 6.5, 9.99):
        monkey = pytest.MonkeyPatch()
        monkey.setattr(module, "PIECE_S", 2.0)
        clip = room[: round(seconds * 16000)]
        out = wpe(clip, 16000)
        monkey.undo()
        assert len(out) == len(clip) and np.all(np.isfinite(out)) and _similarity(out, clip) > 0.9
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        wpe(room, 16000, cancel=token)
    assert not np.any(wpe(np.zeros(16000), 16000))  # silence stays silence


def test_enhance_chain_step_is_off_unless_asked(dry: np.ndarray) -> None:
    room = np.convolve(dry, room_response(0.6, 0.0, 16000, seed=3))[: len(dry)] * 0.3
    _, report = enhance_array(room, 16000, "standard")
    assert {"step": "dereverb", "applied": False} in report.steps
    out, report = enhance_array(room, 16000, "standard", options={"dereverb": True})
    assert {"step": "dereverb", "applied": True, "method": "wpe"} in report.steps
    assert xcorr_lag(out, dry) == 0


def test_reverberant_real_speech_aligns_better_with_dereverb() -> None:
    """A reference clip (real speech, MFA phone alignment) in a 0.5 s room heard from a distance (DRR 0 dB):
    the alignment with the transcript is closer to the reference with the option on (scripts/eval_reverb.py
    measures every clip and room)."""
    from eval_align import read_reference, read_transcript, score

    from lipsync_addon.core.audio import load_audio, to_analysis

    aligned = DATA / "aligned"
    audio = to_analysis(load_audio(aligned / "acoustic_corpus.wav"))
    room = np.convolve(audio.samples, room_response(0.5, 0.0, audio.rate, seed=0))[: len(audio.samples)]
    clip = Audio((room / np.max(np.abs(room)) * 0.5).astype(np.float32), audio.rate)
    ref = read_reference(aligned / "acoustic_corpus.TextGrid", "phones")
    names = ["viseme_" + v for v in "sil PP FF TH DD kk CH SS nn RR aa E I O U".split()]
    text = read_transcript(aligned, "acoustic_corpus.lab")
    results = {}
    for on in (False, True):
        result = pipeline.run(clip, PipelineConfig(transcript=text, channel_names=names, dereverb=on))
        results[on] = score(ref, result.transcript.phones, audio.duration)
    print(f"\nF1 / viseme: raw {results[False].f1:.3f} / {results[False].agreement:.3f}, "
          f"dereverb {results[True].f1:.3f} / {results[True].agreement:.3f}")
    assert results[True].f1 > results[False].f1 + 0.02
    assert results[True].agreement > results[False].agreement
    # the option changes the config's hash; left off, hashes are as before the option existed
    assert pipeline.config_hash(PipelineConfig(dereverb=True)) != pipeline.config_hash(PipelineConfig())
    # (the same pre-option hash as tests/unit/test_speakers.py checks)
    assert pipeline.config_hash(PipelineConfig(transcript="hi", viseme_set="arkit")) == "f7249c1bc0be"


def test_cli_options(tmp_path: Path, dry: np.ndarray) -> None:
    room = np.convolve(dry, room_response(0.6, 0.0, 16000, seed=4))[: len(dry)] * 0.3
    clip = tmp_path / "room.wav"
    sf.write(clip, room, 16000)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "lipsync_addon", *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=300, check=False)

    done = cli("enhance", str(clip), "-o", str(tmp_path / "clean.wav"), "--dereverb", "--report",
               str(tmp_path / "report.json"))
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert {"step": "dereverb", "applied": True, "method": "wpe"} in report["steps"]
    for extra in ((), ("--dereverb",)):
        done = cli("analyze", str(clip), "--transcript", "Author of the danger trail, Philip Steels, etc.",
                   *extra, "-o", str(tmp_path / f"cues{len(extra)}.json"))
        assert done.returncode == 0, done.stderr
    hashes = [json.loads((tmp_path / f"cues{k}.json").read_text(encoding="utf-8"))["metadata"]["provenance"]
              ["config_hash"] for k in (0, 1)]
    assert hashes[0] != hashes[1]
