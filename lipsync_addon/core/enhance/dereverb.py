"""Room echo: weighted-prediction-error (WPE) de-reverberation.

Reverberation smears every phone into the next one, and the alignment suffers (docs/enhance.md,
"Room echo"). :func:`wpe` removes the late reverberation: per STFT bin, the late part of each frame is
predicted from the frames 3 to 12 before it (24-96 ms earlier) by a linear filter estimated on the clip
(variance-normalised least squares, iterated), and subtracted. The direct sound and early reflections
stay, so nothing moves in time: the output is sample-aligned with the input. Long clips are processed
in 30 s pieces (the room may change; memory stays bounded) joined by short cross-fades.

Nothing here needs a model: numpy only.
"""

from __future__ import annotations

import numpy as np

from ..types import CancelToken

#: STFT frame and hop of the de-reverberation (seconds): 32 ms frames, 75 % overlap.
FRAME_S = 0.032
HOP_S = 0.008
#: Prediction delay (frames: the direct sound and early reflections are kept) and filter length (frames).
DELAY = 3
TAPS = 10
#: Iterations of the variance / filter estimate.
ITERATIONS = 3
#: Frequency bins solved at once (bounds the memory: bins x frames x taps complex values).
_BLOCK = 16
#: Pieces of a long clip (s), the context each is processed with on both sides (s), and the cross-fade (s).
PIECE_S = 30.0
CONTEXT_S = 0.5
FADE_S = 0.05


def _frames(samples: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(STFT frames x bins, analysis window, hop, frame length) with the signal padded by a frame each side."""
    win = max(32, round(FRAME_S * rate / 2) * 2)
    hop = max(1, round(HOP_S * rate))
    window = np.hanning(win + 1)[:win]
    x = np.concatenate([np.zeros(win), samples.astype(np.float64), np.zeros(win + hop)])
    n_frames = (len(x) - win) // hop + 1
    idx = np.arange(win)[None, :] + hop * np.arange(n_frames)[:, None]
    return np.fft.rfft(x[idx] * window, axis=1), window, hop, win


def _overlap_add(spec: np.ndarray, window: np.ndarray, hop: int, win: int, length: int) -> np.ndarray:
    """Weighted overlap-add inverse of :func:`_frames` (exact where the frames are unchanged)."""
    frames = np.fft.irfft(spec, n=win, axis=1) * window
    total = (len(frames) - 1) * hop + win
    out = np.zeros(total)
    norm = np.zeros(total)
    square = window ** 2
    for t, frame in enumerate(frames):
        out[t * hop:t * hop + win] += frame
        norm[t * hop:t * hop + win] += square
    return (out / np.maximum(norm, 1e-12))[win:win + length]


def wpe(
    samples: np.ndarray,
    rate: int,
    *,
    taps: int = TAPS,
    delay: int = DELAY,
    iterations: int = ITERATIONS,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """``samples`` (mono) with the late reverberation removed; same length, sample-aligned, float32.

    Args:
        samples: mono signal, any scale.
        rate: its sample rate in Hz.
        taps: prediction filter length in STFT frames (8 ms hop).
        delay: frames between a frame and the first one its reverberation is predicted from.
        iterations: re-estimates of the speech variance and the filter.
        cancel: checked between frequency blocks (raises Cancelled).
    """
    x = np.asarray(samples, dtype=np.float64)
    n = len(x)
    longest, context, fade = round(PIECE_S * rate), round(CONTEXT_S * rate), round(FADE_S * rate)
    if n <= longest + context:
        return _wpe_piece(x, rate, taps=taps, delay=delay, iterations=iterations, cancel=cancel).astype(np.float32)
    piece = -(-n // -(-n // longest))  # equal pieces of at most PIECE_S (each far longer than the fades)
    out = np.zeros(n)
    weight = np.zeros(n)
    for start in range(0, n, piece):
        lo, hi = max(0, start - context), min(n, start + piece + context)
        y = _wpe_piece(x[lo:hi], rate, taps=taps, delay=delay, iterations=iterations, cancel=cancel)
        # keep [start - fade, start + piece + fade) with linear ramps at inner joins
        a, b = max(0, start - fade), min(n, start + piece + fade)
        ramp = np.ones(b - a)
        if start > 0:
            ramp[: 2 * fade] = np.linspace(0.0, 1.0, 2 * fade, endpoint=False) + 0.5 / (2 * fade)
        if b < n:
            ramp[-2 * fade:] = np.minimum(ramp[-2 * fade:], 1.0 - (np.linspace(0.0, 1.0, 2 * fade, endpoint=False)
                                                                   + 0.5 / (2 * fade)))
        out[a:b] += y[a - lo:b - lo] * ramp
        weight[a:b] += ramp
    return (out / np.maximum(weight, 1e-12)).astype(np.float32)


def _wpe_piece(
    x: np.ndarray, rate: int, *, taps: int, delay: int, iterations: int, cancel: CancelToken | None
) -> np.ndarray:
    """WPE of one piece (float64 in, float64 out, same length)."""
    if len(x) < round(FRAME_S * rate) * 4 or not np.any(x):
        return x.copy()
    spec, window, hop, win = _frames(x, rate)
    n_frames, n_bins = spec.shape
    out = spec.copy()
    eye = np.eye(taps)[None]
    for lo in range(0, n_bins, _BLOCK):
        if cancel is not None:
            cancel.check()
        y = np.ascontiguousarray(spec[:, lo:lo + _BLOCK].T).astype(np.complex64)  # bins x frames
        # delayed frames stacked: tilde[b, k, t] = y[b, t - delay - k] (zero before the start)
        tilde = np.zeros((y.shape[0], taps, n_frames), dtype=np.complex64)
        for k in range(taps):
            shift = delay + k
            if shift < n_frames:
                tilde[:, k, shift:] = y[:, : n_frames - shift]
        z = y
        for _ in range(iterations):
            power = (z.real ** 2 + z.imag ** 2).astype(np.float32)
            power = np.maximum(power, np.float32(1e-10) * max(float(power.max()), 1e-30))
            weighted = tilde / power[:, None, :]
            r = (weighted @ tilde.conj().transpose(0, 2, 1)).astype(np.complex128)  # bins x taps x taps
            p = (weighted @ y.conj()[:, :, None]).astype(np.complex128)  # bins x taps x 1
            r += eye * (1e-6 * np.trace(r, axis1=1, axis2=2).real[:, None, None] / taps + 1e-30)
            g = np.linalg.solve(r, p).astype(np.complex64)  # bins x taps x 1
            z = y - (g.conj().transpose(0, 2, 1) @ tilde)[:, 0, :]
        out[:, lo:lo + _BLOCK] = z.T
    return _overlap_add(out, window, hop, win, len(x))
