"""Classical noise reduction in the STFT domain: noise estimate, spectral subtraction, Wiener filter.

Zero-phase by construction: real gains on a square-root-Hann STFT with 50 % overlap and exact
overlap-add, so the output is sample-aligned with the input. Frame length scales with the rate
(32 ms), so every rate works the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..types import CancelToken

#: STFT frame length, seconds (hop = half of it).
FRAME_S = 0.032


@dataclass
class Stft:
    """A square-root-Hann STFT of a mono signal: ``spec`` (frames, bins), hop and window in samples."""

    spec: np.ndarray
    hop: int
    win: int
    length: int


def stft(samples: np.ndarray, rate: int) -> Stft:
    """STFT with frame :data:`FRAME_S` and 50 % overlap (perfect reconstruction with :func:`istft`)."""
    win = max(16, round(FRAME_S * rate / 2) * 2)
    hop = win // 2
    n = len(samples)
    n_frames = int(np.ceil((n + hop) / hop)) + 1
    padded = np.zeros((n_frames + 1) * hop, dtype=np.float64)
    padded[hop:hop + n] = samples
    window = np.sqrt(np.hanning(win + 1)[:win])
    idx = np.arange(win)[None, :] + hop * np.arange(n_frames)[:, None]
    frames = padded[idx] * window
    return Stft(np.fft.rfft(frames, axis=1), hop, win, n)


def istft(st: Stft, spec: np.ndarray) -> np.ndarray:
    """Inverse of :func:`stft` for a (modified) spectrum of the same shape; returns float32 samples."""
    window = np.sqrt(np.hanning(st.win + 1)[:st.win])
    frames = np.fft.irfft(spec, n=st.win, axis=1) * window
    n_frames = frames.shape[0]
    out = np.zeros((n_frames + 1) * st.hop, dtype=np.float64)
    # 50 % overlap: even and odd frames do not overlap among themselves
    out_even = frames[0::2].reshape(-1)
    out[: len(out_even)] += out_even
    out_odd = frames[1::2].reshape(-1)
    out[st.hop: st.hop + len(out_odd)] += out_odd
    return out[st.hop: st.hop + st.length].astype(np.float32)


def frame_speech_mask(power: np.ndarray, *, margin_db: float = 3.0) -> np.ndarray:
    """Energy VAD per STFT frame: True where a frame is probably speech.

    The noise level is the 10th percentile of frame energy; frames more than ``margin_db`` dB plus a
    third of the (95th - 10th percentile) range above it count as speech, and speech is widened by
    3 frames each side (onsets and decays).
    """
    energy = 10.0 * np.log10(power.sum(axis=1) + 1e-20)
    lo, hi = np.percentile(energy, 10), np.percentile(energy, 95)
    if hi - lo < 6.0:  # flat: steady noise (or steady tone) only
        return np.zeros(len(energy), dtype=bool)
    speech = energy > lo + margin_db + (hi - lo) / 3.0
    if speech.any():
        from scipy.ndimage import binary_dilation

        speech = binary_dilation(speech, iterations=3)
    return speech


def estimate_noise(power: np.ndarray, speech: np.ndarray, hop_s: float, *, window_s: float = 6.0) -> np.ndarray:
    """Noise power per frame and bin (frames, bins), from non-speech frames near each frame.

    Each frame gets the mean power of non-speech frames within ±``window_s`` seconds (follows slow
    changes in long clips); where there are too few, the clip-wide estimate. A clip with no
    non-speech frames uses, per bin, the 10th percentile over time (minimum-statistics style).
    """
    n_frames = power.shape[0]
    quiet = ~speech
    if quiet.sum() < 4:
        floor = np.percentile(power, 10, axis=0)
        return np.broadcast_to(floor, power.shape)
    global_est = power[quiet].mean(axis=0)
    half = round(window_s / hop_s)
    if n_frames <= 2 * half + 1:
        return np.broadcast_to(global_est, power.shape)
    q = quiet.astype(np.float64)
    csum = np.cumsum(np.vstack([np.zeros((1, power.shape[1])), power * q[:, None]]), axis=0)
    ccount = np.concatenate([[0.0], np.cumsum(q)])
    lo = np.clip(np.arange(n_frames) - half, 0, n_frames)
    hi = np.clip(np.arange(n_frames) + half + 1, 0, n_frames)
    count = ccount[hi] - ccount[lo]
    local = (csum[hi] - csum[lo]) / np.maximum(count, 1.0)[:, None]
    enough = count >= 8
    return np.where(enough[:, None], local, global_est[None, :])


def snr_db(power: np.ndarray, noise: np.ndarray, speech: np.ndarray) -> float:
    """Segmental-style SNR estimate in dB: speech-frame power over the noise estimate (capped at 80 dB)."""
    if not speech.any():
        return 0.0 if power.sum() > 0 else 80.0
    p = power[speech].sum(axis=1).mean()
    nz = noise[speech].sum(axis=1).mean() if noise.ndim == 2 else noise.sum()
    if nz <= 1e-20:
        return 80.0
    return float(np.clip(10.0 * np.log10(max(p - nz, 1e-20) / nz), -20.0, 80.0))


def _smooth_freq(gain: np.ndarray) -> np.ndarray:
    """3-bin moving average over frequency: fewer isolated spectral peaks (musical noise)."""
    out = gain.copy()
    out[:, 1:-1] = (gain[:, :-2] + gain[:, 1:-1] + gain[:, 2:]) / 3.0
    return out


def wiener_gain(
    power: np.ndarray,
    noise: np.ndarray,
    *,
    alpha: float = 0.98,
    floor_db: float = -15.0,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """Decision-directed Wiener gain (Ephraim–Malah a-priori SNR), one gain per frame and bin.

    ``alpha`` is the decision-directed smoothing (closer to 1: less musical noise, more smearing);
    ``floor_db`` the lowest gain (limits over-suppression and musical noise).
    """
    gmin = 10.0 ** (floor_db / 20.0)
    noise = np.maximum(noise, 1e-20)
    gamma = power / noise  # a-posteriori SNR
    gains = np.empty_like(power)
    prev = np.ones(power.shape[1])
    prev_gamma = np.ones(power.shape[1])
    ml = np.maximum(gamma - 1.0, 0.0)
    for t in range(power.shape[0]):
        if cancel is not None and t % 20000 == 0:
            cancel.check()
        xi = alpha * prev * prev * prev_gamma + (1.0 - alpha) * ml[t]
        g = xi / (1.0 + xi)
        gains[t] = g
        prev = g
        prev_gamma = gamma[t]
    return np.maximum(_smooth_freq(gains), gmin)


def subtraction_gain(
    power: np.ndarray, noise: np.ndarray, *, oversubtract: float = 2.0, floor_db: float = -15.0
) -> np.ndarray:
    """Power spectral subtraction gain with over-subtraction and a spectral floor (Berouti)."""
    gmin = 10.0 ** (floor_db / 20.0)
    clean = np.maximum(power - oversubtract * noise, (gmin**2) * power)
    gain = np.sqrt(clean / np.maximum(power, 1e-20))
    # smooth over time (3 frames) against musical noise
    sm = gain.copy()
    sm[1:-1] = (gain[:-2] + gain[1:-1] + gain[2:]) / 3.0
    return np.maximum(_smooth_freq(sm), gmin)
