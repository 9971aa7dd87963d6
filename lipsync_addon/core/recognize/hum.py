"""Where the hum of "um" starts: the vowel -> /m/ boundary of hesitation fillers, from the spectrum.

In spontaneous English the filler "um" is a short vowel and a long hummed /m/ (0.2-0.5 s, lips
closed). pocketsphinx's /m/ model is trained on short /m/s between vowels, so its alignment lets
the vowel run on through most of the hum, and recognition, which only knows the filler as speech
noise, often gives it no /m/ at all: the mouth hangs open where the speaker's lips are shut.

A nasal murmur is easy to see in the spectrum: the closed lips and the nasal tract's antiresonances
take the energy above ~800 Hz away, while voicing keeps the band under 400 Hz as strong as in the
vowel. :func:`refine_hums` looks, inside each filler only, for the instant after which the low band
stays and the high band drops, and starts the /m/ there if that is earlier than aligned. Words of
the transcript or of recognition are never touched unless they are a filler ("um", "uhm", "erm"...);
phones outside any word (recognition's speech fillers, the phone loop's phones where an alignment
failed) count as fillers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from ..types import Phone, Word

#: filler words whose vowel + /m/ boundary is refined, as written in a transcript (lower case) with
#: repeated letters written once ("ummm" -> "um", "uhmm" -> "uhm")
HUM_WORDS = frozenset({"um", "uhm", "ehm", "erm", "hum", "hm", "mhm"})
#: the filler vowels (IPA): AH stressed or not ("um", "uhm"), EH ("ehm"), ER ("erm")
FILLER_VOWELS = frozenset({"ʌ", "ə", "ɛ", "ɝ", "ɚ"})
#: analysis frame hop and window, seconds
HOP = 0.010
WINDOW = 0.025
#: the bands compared, Hz: voicing (low) and what the closed lips take away (high)
LOW_BAND = (80.0, 400.0)
HIGH_BAND = (800.0, 4000.0)
#: shortest vowel and shortest hum kept on either side of the boundary, seconds
MIN_VOWEL = 0.03
MIN_HUM = 0.06
#: the hum's low-minus-high band level must exceed the vowel's by this much, dB
MIN_CONTRAST_DB = 6.0
#: ... while its low band stays within this much of the vowel's (a fading vowel loses it too), dB
MAX_LOW_DROP_DB = 3.0


def _band_levels(samples: np.ndarray, rate: int, start: float, end: float) -> tuple[np.ndarray, np.ndarray]:
    """Low and high band levels (dB) of the 10 ms frames centred at ``start + 5 ms``, ``+ 15 ms``, ... < ``end``."""
    n_win = round(WINDOW * rate)
    hop = round(HOP * rate)
    n_frames = int((end - start) / HOP + 1e-9)
    centres = round(start * rate) + hop // 2 + hop * np.arange(n_frames)
    idx = centres[:, None] - n_win // 2 + np.arange(n_win)[None, :]
    frames = samples[np.clip(idx, 0, len(samples) - 1)] * np.hanning(n_win)[None, :]
    n_fft = 1 << (n_win - 1).bit_length()
    power = np.abs(np.fft.rfft(frames, n_fft, axis=1)) ** 2
    freqs = np.fft.rfftfreq(n_fft, 1.0 / rate)

    def level(band: tuple[float, float]) -> np.ndarray:
        sel = (freqs >= band[0]) & (freqs < band[1])
        return 10.0 * np.log10(power[:, sel].sum(axis=1) + 1e-12)

    return level(LOW_BAND), level(HIGH_BAND)


def hum_onset(samples: np.ndarray, rate: int, start: float, end: float) -> float | None:
    """Start of a nasal hum that ends the filler spanning ``start``-``end`` (seconds), or None.

    The boundary is the frame edge that best splits the span into a vowel part and a hum part by
    their low-minus-high band level; it is kept only if the hum part's contrast exceeds the vowel
    part's by :data:`MIN_CONTRAST_DB` and its low band (voicing) holds up.
    """
    low, high = _band_levels(samples, rate, start, end)
    n = len(low)
    k_min, k_max = int(np.ceil(MIN_VOWEL / HOP - 1e-9)), n - int(np.ceil(MIN_HUM / HOP - 1e-9))
    if k_max < k_min:
        return None
    tilt = low - high
    best_k, best_gain = None, -np.inf
    for k in range(k_min, k_max + 1):
        gain = tilt[k:].mean() - tilt[:k].mean()
        if gain > best_gain:
            best_k, best_gain = k, gain
    if best_k is None or best_gain < MIN_CONTRAST_DB:
        return None
    if low[best_k:].mean() < low[:best_k].mean() - MAX_LOW_DROP_DB:
        return None
    return start + best_k * HOP


def _is_filler(phone: Phone, words: Sequence[Word]) -> bool:
    """True for a phone of a filler word, or outside any word (a speech filler, or the phone loop's)."""
    if phone.word_index < 0:
        return True
    if phone.word_index < len(words):
        text = words[phone.word_index].text.lower().strip(".,!?;:'\"")
        return re.sub(r"(.)\1+", r"\1", text) in HUM_WORDS
    return False


def refine_hums(phones: list[Phone], words: Sequence[Word], samples: np.ndarray, rate: int) -> list[Phone]:
    """Move the vowel -> /m/ boundary of each "um" to where its hum starts (see the module text).

    ``phones`` tile the clip (seconds); ``samples`` is the clip at ``rate`` Hz. Only a filler vowel
    directly followed by the same filler's /m/ is changed: the alignment (or, without a transcript,
    the choice between "uh", "um" and "mm") has already said there is a hum, this only finds where
    it begins. The boundary only moves earlier, against the alignment's known error (the vowel
    running on into the hum); where a hum is faint, barely above the room's noise, the spectrum's
    onset is less precise than the alignment's (measured: 30-50 ms late on two such "um"s). A filler
    vowel without an /m/ is never split: an "uh" that fades out, or one that runs into the /n/ of
    "and", looks like a hum in these bands too. Returns a new list.
    """
    out = list(phones)
    for i in range(len(out) - 1):
        vowel, nasal = out[i], out[i + 1]
        if (vowel.ipa not in FILLER_VOWELS or nasal.ipa != "m" or nasal.word_index != vowel.word_index
                or not _is_filler(vowel, words)):
            continue
        onset = hum_onset(samples, rate, vowel.start, nasal.end)
        if onset is not None and onset < nasal.start:
            out[i] = Phone(vowel.ipa, vowel.start, onset, vowel.confidence, vowel.word_index, vowel.stress)
            out[i + 1] = Phone("m", onset, nasal.end, nasal.confidence, nasal.word_index, nasal.stress)
    return out
