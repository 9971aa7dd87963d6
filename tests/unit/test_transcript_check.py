"""Transcript checks after an espeak-ng + DTW alignment: no speech, words missing (real clips)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lipsync_addon.core.audio import detect_speech, load_audio, to_analysis
from lipsync_addon.core.recognize import espeak
from lipsync_addon.core.recognize.espeak_align import EspeakAligner
from lipsync_addon.core.recognize.pocketsphinx_backend import PocketSphinxRecognizer
from lipsync_addon.core.recognize.transcript_check import band_levels, no_speech_warnings
from lipsync_addon.core.types import Audio

DATA = Path(__file__).resolve().parents[1] / "data" / "lang"
SILENT = "se10x016-08071999-1334_u0016001"  # NST prompt "tyst under denna inspelning": the speaker says nothing
SV = "se10x016-08071999-1334_u0016002"
ES = "13697_11991_000000"

needs_espeak = pytest.mark.skipif(not espeak.available(), reason="espeak-ng (espeakng-loader) is not installed")


def _clip(stem: str) -> tuple[Audio, str]:
    audio_path = next(p for p in DATA.glob(f"{stem}.*") if p.suffix != ".lab")
    return to_analysis(load_audio(audio_path)), (DATA / f"{stem}.lab").read_text(encoding="utf-8").strip()


def _check_warnings(warnings: list[str]) -> list[str]:
    return [w for w in warnings if w.startswith(
        ("No speech found at", "The transcript may be missing words", "The transcript may not match"))]


@needs_espeak
def test_silent_prompt_with_its_transcript_warns_and_keeps_timings() -> None:
    audio, text = _clip(SILENT)
    aligner = EspeakAligner("sv")
    res = aligner.transcribe(audio, text)
    found = _check_warnings(res.warnings)
    assert len(found) == 1 and found[0].startswith("No speech found at 0.")
    assert "transcript" in found[0] and "audio file" in found[0]
    assert res.method == "align" and len(res.words) == 4  # the timings are still given
    fit = aligner.last_fit
    assert fit is not None
    assert fit.band_db < -50.0  # measured -54 dBFS; spoken lines -34 dBFS or more
    assert fit.band_share_db < -12.0  # measured -15 dB; speech -6 to 0 dB


@needs_espeak
def test_silent_prompt_still_warns_after_loudness_gain() -> None:
    """Enhance Audio raises this clip by 24 dB: the band share does not depend on the gain."""
    audio, text = _clip(SILENT)
    louder = Audio((audio.samples * 10 ** (24 / 20)).astype(np.float32), audio.rate)
    res = EspeakAligner("sv").transcribe(louder, text)
    found = _check_warnings(res.warnings)
    assert len(found) == 1 and "low-frequency rumble" in found[0]


@needs_espeak
@pytest.mark.parametrize(("stem", "lang"), [(SV, "sv"), (ES, "es")])
def test_right_text_gives_no_check_warning(stem: str, lang: str) -> None:
    audio, text = _clip(stem)
    aligner = EspeakAligner(lang)
    res = aligner.transcribe(audio, text)
    assert _check_warnings(res.warnings) == []
    assert aligner.last_fit is not None
    assert aligner.last_fit.phone_rate >= 6.0  # measured 6.2 (sv, counting with pauses), 15.2 (es)


@needs_espeak
@pytest.mark.parametrize(("stem", "lang"), [(SV, "sv"), (ES, "es")])
def test_first_quarter_of_the_text_warns_missing_words(stem: str, lang: str) -> None:
    audio, text = _clip(stem)
    words = text.split()
    res = EspeakAligner(lang).transcribe(audio, " ".join(words[: len(words) // 4]))
    found = _check_warnings(res.warnings)
    assert len(found) == 1 and found[0].startswith("The transcript may be missing words at ")
    assert f"'{lang}'" in found[0]


@needs_espeak
def test_another_lines_shorter_text_warns() -> None:
    """The Swedish counting line given the silent prompt's four words (another line's text)."""
    audio, _ = _clip(SV)
    _, other = _clip(SILENT)
    res = EspeakAligner("sv").transcribe(audio, other)
    assert any(w.startswith("The transcript may be missing words") for w in res.warnings)


@needs_espeak
@pytest.mark.parametrize(("stem", "lang"), [(SV, "sv"), (ES, "es")])
def test_wrong_language_or_another_line_of_the_same_length_warns(stem: str, lang: str) -> None:
    """The HMM refinement's fit tells them from the right text (eval_mismatch_lang: right texts -18 to
    -38, these -52 to -70; docs/languages.md). (The same words in another order, e.g. the numbers
    counted backwards, are not caught: the sounds are the same.)"""
    audio, text = _clip(stem)
    n = len(text.split())
    english = ("he began a confused complaint against the wizard who had vanished behind the curtain on the left "
               "author of the danger trail philip steels etc for the twentieth time that evening").split()[:n]
    other = {"es": "el viejo pescador volvió a la playa cuando el sol ya se escondía detrás de las montañas y nadie "
                   "lo esperaba aquella tarde de invierno tan fría y tan larga que parecía no terminar nunca jamás "
                   "en aquel pueblo pequeño junto al mar donde todos se conocían desde siempre",
             # NST u0016003's prompt (another line of the same speaker)
             "sv": "Har du sett våra rara barnbarn som leker och busar ute i grannträdgården"}[lang].split()[:n]
    for words in (english, other):
        aligner = EspeakAligner(lang)
        res = aligner.transcribe(audio, " ".join(words))
        found = _check_warnings(res.warnings)
        assert found and found[0].startswith("The transcript may not match the audio at "), (words, res.warnings)
        assert f"'{lang}'" in found[0] and "Enhance Audio" in found[0]
        assert aligner.last_hmm is not None and aligner.last_hmm.words >= 3


@needs_espeak
def test_checks_can_be_switched_off_for_a_recognizers_words() -> None:
    """Vosk aligns its own recognized words with check_transcript=False: no "check the transcript"
    warnings then (the silent prompt warns with the checks on), the same timings either way."""
    audio, text = _clip(SILENT)
    on = EspeakAligner("sv").transcribe(audio, text)
    off = EspeakAligner("sv", check_transcript=False).transcribe(audio, text)
    assert _check_warnings(on.warnings) and not _check_warnings(off.warnings)
    assert not [w for w in off.warnings if "transcript" in w.lower()]
    assert [w.text for w in on.words] == [w.text for w in off.words] and len(off.words) == 4


def test_a_line_recorded_at_low_gain_is_speech() -> None:
    """Quiet is not silent: two clean lines 25 and 35 dB down (peaks near -32 and -42 dBFS) keep their
    loudest sound in the speech band, so no no-speech warning (both were flagged by level alone)."""
    for name in ("acoustic_corpus.wav", "mary.wav"):
        x = to_analysis(load_audio(DATA.parent / "aligned" / name)).samples
        for gain_db in (-25.0, -35.0):
            assert no_speech_warnings((x * 10 ** (gain_db / 20)).astype(np.float32), 16000) == [], (name, gain_db)


def test_band_levels_tell_rumble_from_speech() -> None:
    rate = 16000
    t = np.arange(2 * rate) / rate
    rumble = 0.1 * np.sin(2 * np.pi * 80 * t) * (t < 1.0)
    _, share = band_levels(rumble.astype(np.float32), rate)
    assert share < -20.0
    speech, _ = _clip(SV)
    level, share = band_levels(speech.samples, rate, detect_speech(speech.samples, rate, margin=0.0))
    assert level > -25.0 and share > -3.0  # measured -17 dBFS, -1 dB
    level, _ = band_levels(np.zeros(rate, np.float32), rate)
    assert level < -100.0


def test_a_short_line_in_a_long_quiet_clip_is_speech() -> None:
    """Levels are taken where the VAD finds speech, not over the whole clip (a 1 s word in 60 s)."""
    speech, _ = _clip(SV)
    word = speech.samples[int(2.0 * 16000) : int(3.0 * 16000)]  # "Testar" and the start of "en"
    quiet = np.random.default_rng(0).standard_normal(60 * 16000).astype(np.float32) * 10 ** (-70 / 20)
    clip = np.concatenate([quiet[: 30 * 16000], word, quiet[30 * 16000 :]])
    assert no_speech_warnings(clip, 16000) == []
    level, _ = band_levels(clip, 16000)  # over the whole clip the quiet dominates
    assert level < -45.0


def test_pocketsphinx_also_warns_when_there_is_no_speech() -> None:
    audio, _ = _clip(SILENT)
    res = PocketSphinxRecognizer(jobs=1).transcribe(audio, "he began a confused complaint against the wizard")
    assert any(w.startswith("No speech found at 0.") for w in res.warnings)
    right = to_analysis(load_audio(DATA.parent / "cmu_arctic_us_aew_a0001.wav"))
    res = PocketSphinxRecognizer(jobs=1).transcribe(right, "Author of the danger trail, Philip Steels, etc.")
    assert not any(w.startswith("No speech found") for w in res.warnings)
