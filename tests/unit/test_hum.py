"""The hum of "um": vowel -> /m/ boundary from the spectrum (core/recognize/hum.py), on synthetic voices."""

from __future__ import annotations

import numpy as np

from lipsync_addon.core.recognize.hum import hum_onset, refine_hums
from lipsync_addon.core.types import Phone, Word

RATE = 16000


def _voice(seconds: float, formants: list[tuple[float, float]], f0: float = 120.0, gain: float = 0.1) -> np.ndarray:
    """Harmonics of ``f0`` shaped by resonances (centre Hz, bandwidth Hz): a steady vowel or murmur."""
    t = np.arange(int(seconds * RATE)) / RATE
    out = np.zeros_like(t)
    for h in range(1, int(7000 / f0)):
        f = h * f0
        amp = sum(1.0 / (1.0 + ((f - c) / bw) ** 2) for c, bw in formants)
        out += amp * np.sin(2 * np.pi * f * t + h)
    return (gain * out / np.max(np.abs(out))).astype(np.float32)


VOWEL = [(130.0, 120.0), (650.0, 90.0), (1200.0, 110.0), (2500.0, 150.0)]  # /ʌ/, its lowest harmonics included
MURMUR = [(250.0, 60.0)]  # /m/: the nasal formant, nothing above ~800 Hz


def _um(vowel_s: float = 0.12, hum_s: float = 0.35) -> np.ndarray:
    lead = np.zeros(int(0.2 * RATE), dtype=np.float32)
    return np.concatenate([lead, _voice(vowel_s, VOWEL), _voice(hum_s, MURMUR), lead])


def test_hum_onset_found_to_the_frame() -> None:
    x = _um()
    onset = hum_onset(x, RATE, 0.2, 0.2 + 0.12 + 0.35)
    assert onset is not None and abs(onset - 0.32) <= 0.015


def test_a_vowel_that_only_fades_is_no_hum() -> None:
    fade = _voice(0.47, VOWEL) * np.linspace(1.0, 0.05, int(0.47 * RATE), dtype=np.float32)
    x = np.concatenate([np.zeros(int(0.2 * RATE), dtype=np.float32), fade])
    assert hum_onset(x, RATE, 0.2, 0.67) is None
    steady = np.concatenate([np.zeros(int(0.2 * RATE), dtype=np.float32), _voice(0.47, VOWEL)])
    assert hum_onset(steady, RATE, 0.2, 0.67) is None
    # dying away: the high band goes first, as into a hum, but the low band (voicing) goes too
    dying = np.concatenate([np.zeros(int(0.2 * RATE), dtype=np.float32), _voice(0.12, VOWEL),
                            _voice(0.35, MURMUR, gain=0.01)])
    assert hum_onset(dying, RATE, 0.2, 0.67) is None
    louder = np.concatenate([np.zeros(int(0.2 * RATE), dtype=np.float32), _voice(0.12, VOWEL),
                             _voice(0.35, MURMUR, gain=0.05)])
    assert hum_onset(louder, RATE, 0.2, 0.67) is not None  # a hum a little softer than its vowel


def test_refine_moves_only_the_boundary_inside_um() -> None:
    x = _um()
    end = len(x) / RATE
    words = [Word("um", 0.2, 0.67)]
    phones = [Phone("sil", 0.0, 0.2), Phone("ʌ", 0.2, 0.55, word_index=0, stress=1),
              Phone("m", 0.55, 0.67, word_index=0), Phone("sil", 0.67, end)]
    out = refine_hums(phones, words, x, RATE)
    assert [p.ipa for p in out] == ["sil", "ʌ", "m", "sil"]
    assert abs(out[1].end - 0.32) <= 0.015 and out[2].start == out[1].end
    assert out[1].stress == 1 and out[2].end == 0.67 and out[0] == phones[0] and out[3] == phones[3]
    # an /m/ aligned earlier than the spectrum's onset stays: a faint hum's onset is the less precise
    early = [phones[0], Phone("ʌ", 0.2, 0.3, word_index=0), Phone("m", 0.3, 0.67, word_index=0), phones[3]]
    assert refine_hums(early, words, x, RATE) == early
    # other spellings of the filler, as a transcript may write them, and its other vowels
    for text, vowel in (("Ummm,", "ʌ"), ("uhm", "ʌ"), ("erm", "ɝ"), ("ehm", "ɛ")):
        spelled = [phones[0], Phone(vowel, 0.2, 0.55, word_index=0), *phones[2:]]
        assert abs(refine_hums(spelled, [Word(text, 0.2, 0.67)], x, RATE)[1].end - 0.32) <= 0.015, text
    # the same sounds in an ordinary word ("come", "some"): left as aligned
    for text in ("some", "come"):
        assert refine_hums(phones, [Word(text, 0.2, 0.67)], x, RATE) == phones


def test_a_filler_vowel_without_an_m_is_never_split() -> None:
    # recognition's speech filler aligned as "uh": a hum-like ending may be the /n/ of "and"
    x = _um()
    end = len(x) / RATE
    phones = [Phone("sil", 0.0, 0.2), Phone("ə", 0.2, 0.67), Phone("sil", 0.67, end)]
    assert refine_hums(phones, [], x, RATE) == phones


def test_a_recognized_filler_um_gets_its_boundary_moved() -> None:
    # without a transcript the filler is outside any word (word_index -1) and already "ə m"
    x = _um()
    end = len(x) / RATE
    phones = [Phone("sil", 0.0, 0.2), Phone("ə", 0.2, 0.5), Phone("m", 0.5, 0.67), Phone("sil", 0.67, end)]
    out = refine_hums(phones, [], x, RATE)
    assert abs(out[1].end - 0.32) <= 0.015 and out[2].start == out[1].end
