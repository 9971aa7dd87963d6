"""Does the given transcript describe what is heard? Checks after an espeak-ng + DTW alignment.

A forced alignment always produces timings, even for a clip with no speech or for a transcript
with words missing. These checks run after the alignment, on what it already has (the clip, the
transcript's phones, the DTW cost per frame), and return warnings that name the time span and say
what to check. They never change the timings. Measured with scripts/eval_mismatch_lang.py
(docs/languages.md, "Transcript checks"); the thresholds live in data/transcript_check.json.

- **No speech**: what the energy VAD calls speech has (almost) nothing in the speech band: either
  it is very quiet there (``max_silent_band_db``) or its loudest sound lies mostly below 300 Hz
  (rumble, breath, handling noise: ``min_band_share_db``). It needs only the audio, so the
  pocketsphinx backend runs it too (:func:`no_speech_warnings`).
- **Words missing**: the transcript has too few phones for the speech heard
  (``min_phone_rate`` phones per second of speech, on at least ``min_speech_for_rate`` s).
- **Other words or another language**: the HMM refinement (English phone models, see
  ``espeak_align.hmm_refine``) fits the words poorly (``hmm_min_fit``) or cannot align most of them
  (``hmm_min_aligned``); the same sign also fires on very noisy recordings, and the message says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ..audio import SpeechRegion, detect_speech


@cache
def _params() -> dict[str, Any]:
    return json.loads((Path(__file__).with_name("data") / "transcript_check.json").read_text(encoding="utf-8"))


@dataclass
class TranscriptFit:
    """Measures of how well a transcript fits its clip (see :func:`measure`).

    Attributes:
        speech_s: seconds of speech found by the energy VAD (no margin, pauses >= 0.15 s excluded).
        speech_span: (start, end) s from the first to the last VAD speech region (the whole clip
            when there is none).
        band_db: loud speech-band level, dBFS (see :func:`band_levels`).
        band_share_db: speech-band level minus full-band level of the loud frames, dB.
        phone_rate: the transcript's phones per second of VAD speech.
        cost: mean DTW cost per frame and feature dimension over the speech frames (shown in the
            evaluation; it does not separate right from wrong text, so no warning uses it).
    """

    speech_s: float
    speech_span: tuple[float, float]
    band_db: float
    band_share_db: float
    phone_rate: float
    cost: float


def _frame_db(samples: np.ndarray, rate: int, hop: float = 0.01, win: float = 0.025) -> np.ndarray:
    """Level in dBFS of each ``win`` s frame every ``hop`` s, mean removed per frame (as
    :func:`~lipsync_addon.core.audio.frame_energy_db`, from running sums instead of a frame matrix)."""
    hop_n, win_n = max(1, round(hop * rate)), max(1, round(win * rate))
    x = samples.astype(np.float64)
    if len(x) < win_n:
        x = np.pad(x, (0, win_n - len(x)))
    s1 = np.concatenate([[0.0], np.cumsum(x)])
    s2 = np.concatenate([[0.0], np.cumsum(x * x)])
    starts = np.arange(0, len(x) - win_n + 1, hop_n)
    mean = (s1[starts + win_n] - s1[starts]) / win_n
    power = (s2[starts + win_n] - s2[starts]) / win_n - mean**2
    return 10.0 * np.log10(np.maximum(power, 0.0) + 1e-12)


def band_levels(samples: np.ndarray, rate: int, regions: list[SpeechRegion] | None = None) -> tuple[float, float]:
    """(speech-band level, speech-band share) of the loud part of a clip's speech, in dB.

    Computed over the 10 ms frames inside ``regions`` (the energy VAD's speech, where the words
    are placed; the whole clip when None or empty), so a short line in a long clip counts fully.
    Speech-band level: the 95th percentile of the level in 300-3400 Hz, dBFS (RMS of the
    band-passed frame re full scale); a spoken line reaches -35 dBFS or more there. Share: that
    level minus the 95th percentile of the full-band level: near 0 dB when the loudest sound is
    speech, strongly negative when it is low-frequency rumble, handling or breath noise. The share
    does not change with the clip's gain (enhancement, normalisation).
    """
    from scipy.signal import butter, sosfilt

    lo, hi = _params()["speech_band_hz"]
    if len(samples) < int(0.025 * rate):
        return -120.0, 0.0
    sos = butter(4, [lo, min(hi, 0.45 * rate)], btype="band", fs=rate, output="sos")
    band = _frame_db(sosfilt(sos, samples.astype(np.float64)), rate)
    full = _frame_db(samples, rate)
    if regions:
        centre = np.arange(len(full)) * 0.01 + 0.0125
        inside = np.zeros(len(full), bool)
        for r in regions:
            inside |= (centre >= r.start) & (centre < r.end)
        if inside.any():
            band, full = band[inside], full[inside]
    level = float(np.percentile(band, 95))
    return level, level - float(np.percentile(full, 95))


def measure(samples: np.ndarray, rate: int, n_phones: int, frame_cost: np.ndarray, hop: float) -> TranscriptFit:
    """Measure how well a transcript fits a clip.

    Args:
        samples: the clip (mono, ``rate`` Hz) as aligned.
        n_phones: phones of the transcript (pauses excluded).
        frame_cost: DTW cost per real frame (every ``hop`` s) divided by sqrt(feature dims); NaN
            where the path does not pass.
    """
    duration = len(samples) / rate
    regions = detect_speech(samples, rate, min_pause=0.15, margin=0.0)
    speech_s = float(sum(r.end - r.start for r in regions))
    span = (regions[0].start, regions[-1].end) if regions else (0.0, duration)
    band_db, share_db = band_levels(samples, rate, regions)
    t = np.arange(len(frame_cost)) * hop
    in_speech = np.zeros(len(frame_cost), bool)
    for r in regions:
        in_speech |= (t >= r.start) & (t < r.end)
    valid = np.isfinite(frame_cost) & in_speech
    return TranscriptFit(
        speech_s=speech_s,
        speech_span=span,
        band_db=band_db,
        band_share_db=share_db,
        phone_rate=n_phones / speech_s if speech_s > 0 else float("inf"),
        cost=float(frame_cost[valid].mean()) if valid.any() else float("nan"),
    )


def _no_speech(band_db: float, share_db: float, span: tuple[float, float]) -> list[str]:
    """The no-speech warning when the speech-band measures say the "speech" is not speech."""
    cfg = _params()
    # quiet alone is not enough: a line recorded at low gain (peaks near -32 dBFS) is quiet too, but its
    # loudest sound is still in the speech band
    quiet = band_db < float(cfg["max_silent_band_db"]) and share_db < float(cfg["quiet_max_share_db"])
    rumble = share_db < float(cfg["min_band_share_db"])
    if not (quiet or rumble):
        return []
    what = (
        f"nothing there reaches speech level ({band_db:.0f} dBFS in the speech band, {-share_db:.0f} dB below the "
        "loudest sound; speech is loudest in that band)"
        if quiet
        else f"the loudest sound there is low-frequency rumble, breath or handling noise (the speech band is "
        f"{-share_db:.0f} dB below it)"
    )
    return [
        f"No speech found at {span[0]:.1f}-{span[1]:.1f} s, but a transcript was given: {what}. The mouth still "
        "moves there. Check that the audio file is the right take and that this transcript belongs to it."
    ]


def no_speech_warnings(samples: np.ndarray, rate: int) -> list[str]:
    """The no-speech check alone, for any backend given a transcript (mono ``samples`` at ``rate`` Hz).

    Empty when the energy VAD finds no speech at all: the backends then return their own
    "no speech found" result and the mouth stays at rest.
    """
    regions = detect_speech(samples, rate, min_pause=0.15, margin=0.0)
    if not regions:
        return []
    band_db, share_db = band_levels(samples, rate, regions)
    return _no_speech(band_db, share_db, (regions[0].start, regions[-1].end))


def warnings_for(fit: TranscriptFit, language: str) -> list[str]:
    """User-facing warnings for a measured :class:`TranscriptFit` (empty when the text fits)."""
    cfg = _params()
    absent = _no_speech(fit.band_db, fit.band_share_db, fit.speech_span)
    if absent:
        return absent
    if fit.speech_s >= float(cfg["min_speech_for_rate"]) and fit.phone_rate < float(cfg["min_phone_rate"]):
        span = f"{fit.speech_span[0]:.1f}-{fit.speech_span[1]:.1f} s"
        return [
            f"The transcript may be missing words at {span}: it has {fit.phone_rate:.1f} sounds per second of "
            f"speech (about {fit.speech_s:.1f} s), where speech has 6 to 17, so its words are stretched over sound "
            f"they do not belong to. Check that the text is complete and that the language ('{language}') is the "
            "one spoken."
        ]
    return []


def hmm_warnings(words: int, aligned: int, fit: float | None, span: tuple[float, float], language: str) -> list[str]:
    """Warning when the HMM refinement says the words are not the ones spoken (or the clip is very noisy).

    Args:
        words: transcript words the refinement tried; aligned: those it aligned.
        fit: median acoustic score per frame of the aligned words, relative to the best senone.
        span: (start, end) s of the speech, for the message.
    """
    cfg = _params()
    if words < int(cfg["hmm_min_words"]):
        return []
    share = aligned / words
    poor_fit = fit is not None and fit < float(cfg["hmm_min_fit"])
    if share >= float(cfg["hmm_min_aligned"]) and not poor_fit:
        return []
    what = (
        f"only {aligned} of its {words} words could be aligned to the sound"
        if share < float(cfg["hmm_min_aligned"])
        else f"its words fit the sound poorly (score {fit:.0f}; matching text scores above {cfg['hmm_min_fit']:.0f})"
    )
    return [
        f"The transcript may not match the audio at {span[0]:.1f}-{span[1]:.1f} s: {what}. Check that the text is the "
        f"line spoken and that the language ('{language}') is right; if both are, the recording may be too noisy "
        "for exact timing (try Enhance Audio)."
    ]


def check(
    audio_samples: np.ndarray, rate: int, syn: Any, frame_cost: np.ndarray, hop: float, *, language: str
) -> tuple[TranscriptFit, list[str]]:
    """Measure and judge one alignment: returns the measures and the warnings for the user.

    ``syn`` is the :class:`~lipsync_addon.core.recognize.espeak.Synthesis` that was aligned;
    ``frame_cost`` the DTW cost per real frame divided by sqrt(feature dims) (NaN off the path).
    """
    n_phones = sum(1 for p in syn.phones if p.ipa)
    fit = measure(audio_samples, rate, n_phones, frame_cost, hop)
    return fit, warnings_for(fit, language)
