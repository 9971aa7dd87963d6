"""Run a frame-based denoiser over a long clip in pieces on several threads (RNNoise, DeepFilterNet3).

Equal pieces, as many as threads or a multiple of that, each resampled by its own thread from the
clip (exactly the samples a whole-clip resampling gives), processed after a warm-up stretch of the
audio before it, then joined with short linear cross-fades and resampled back in as many stretches
as threads. RNNoise's ctypes calls release the GIL; DeepFilterNet3's numpy products do in part
(its recurrent layers step in Python, so two threads give it ~1.6x, not 2x).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..audio import resample_span


def run_in_pieces(
    x_in: np.ndarray,
    rate: int,
    work_rate: int,
    process: Callable[[np.ndarray], tuple[np.ndarray, Any]],
    *,
    workers: int,
    piece_s: float,
    warmup_s: float,
    xfade_s: float,
    frame: int,
) -> tuple[np.ndarray, list[tuple[int, int, int, Any]]]:
    """Denoise ``x_in`` (``rate`` Hz) with ``process`` at ``work_rate`` Hz in pieces on ``workers`` threads.

    Args:
        process: takes a stretch at ``work_rate`` (the piece with its warm-up before it and the
            cross-fade after it) and returns (output of the same length, anything per piece).
        piece_s, warmup_s, xfade_s: longest piece, warm-up before each piece, cross-fade, seconds.
        frame: pieces start on multiples of this many samples (the denoiser's frame, at ``work_rate``).

    Returns:
        (output at ``rate``, its length as a whole-clip resampling gives; per piece (start, end, lead,
        extra): its span in samples at ``work_rate``, the warm-up samples before it in the stretch
        ``process`` got, and what ``process`` returned besides the audio).
    """
    n = round(len(x_in) * work_rate / rate)
    piece, warm, xf = int(piece_s * work_rate), int(warmup_s * work_rate), int(xfade_s * work_rate)
    n_pieces = workers * max(1, int(np.ceil(n / (workers * piece))))
    size = int(np.ceil(n / n_pieces / frame)) * frame
    starts = list(range(0, n, size))
    bounds = [(s, starts[i + 1] if i + 1 < len(starts) else n) for i, s in enumerate(starts)]

    def job(se: tuple[int, int]) -> tuple[np.ndarray, Any, int]:
        s, e = se
        a, b = max(0, s - warm), min(n, e + xf)
        y, extra = process(resample_span(x_in, rate, work_rate, a, b))
        return y[s - a:], extra, s - a

    n_threads = min(workers, len(bounds))
    with ThreadPoolExecutor(max_workers=n_threads) as pool:
        results = list(pool.map(job, bounds))
        joined = np.zeros(n, dtype=np.float32)
        ramp = np.linspace(0.0, 1.0, xf, dtype=np.float32)
        for (s, _e), (y, _extra, _lead) in zip(bounds, results, strict=True):
            if s == 0:
                joined[: len(y)] = y
            else:
                k = min(xf, len(y))
                joined[s:s + k] = joined[s:s + k] * (1.0 - ramp[:k]) + y[:k] * ramp[:k]
                joined[s + k:s + len(y)] = y[k:]
        m = round(n * rate / work_rate)
        cuts = np.linspace(0, m, n_threads + 1).astype(int)
        out = np.concatenate(list(pool.map(lambda ab: resample_span(joined, work_rate, rate, *ab),
                                           itertools.pairwise(cuts))))
    return out, [(s, e, lead, extra) for (s, e), (_y, extra, lead) in zip(bounds, results, strict=True)]


def fit_length(y: np.ndarray, length: int) -> np.ndarray:
    """``y`` as float32, cut or zero-padded to ``length`` samples."""
    out = np.zeros(length, dtype=np.float32)
    m = min(length, len(y))
    out[:m] = y[:m]
    return out
