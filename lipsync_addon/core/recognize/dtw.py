"""MFCC-type features and dynamic time warping between two renditions of the same text (numpy only).

:func:`mfcc` turns mono audio into normalised cepstral frames; :func:`dtw_path` finds the cheapest
monotonic alignment between two feature sequences. The DTW runs row by row with a banded window:
each row is one vectorised min-plus prefix scan, so a 30 s clip aligns in a fraction of a second
and memory stays ``O(frames x band)``. Long inputs are first aligned at a coarse resolution and the
fine pass is restricted to a band around that path (FastDTW-style).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

#: weight of the local cost on a diagonal step (1 favours diagonal moves, 2 is the symmetric form)
DIAG_WEIGHT = 1.5


@dataclass(frozen=True)
class FeatureParams:
    """Analysis settings (seconds / Hz / counts)."""

    hop: float = 0.005
    win: float = 0.025
    n_mels: int = 40
    n_ceps: int = 13
    fmin: float = 60.0
    fmax: float = 7600.0
    delta: int = 2  # frames each side for the delta features (0 = none)
    energy_weight: float = 1.0
    delta2: bool = False  # also delta-deltas (same scale as the deltas)


@cache
def _mel_filterbank(rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def mel_to_hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    fmax = min(fmax, rate / 2.0)
    mels = np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2)
    hz = mel_to_hz(mels)
    bins = np.fft.rfftfreq(n_fft, 1.0 / rate)
    fb = np.zeros((n_mels, len(bins)))
    for m in range(n_mels):
        lo, ce, hi = hz[m], hz[m + 1], hz[m + 2]
        up = (bins - lo) / max(ce - lo, 1e-9)
        down = (hi - bins) / max(hi - ce, 1e-9)
        fb[m] = np.maximum(0.0, np.minimum(up, down))
    return fb


@cache
def _dct_matrix(n_mels: int, n_ceps: int) -> np.ndarray:
    k = np.arange(n_ceps)[:, None]
    n = np.arange(n_mels)[None, :]
    mat = np.cos(np.pi * k * (2 * n + 1) / (2 * n_mels)) * np.sqrt(2.0 / n_mels)
    mat[0] /= np.sqrt(2.0)
    return mat


def frame_count(n_samples: int, rate: int, params: FeatureParams) -> int:
    """Number of feature frames for ``n_samples`` (frame i is centred at ``i * hop`` seconds)."""
    hop = round(params.hop * rate)
    return max(1, int(np.ceil(n_samples / hop)))


def log_mel(samples: np.ndarray, rate: int, params: FeatureParams = FeatureParams()) -> np.ndarray:
    """Log mel energies, shape (frames, n_mels); frame i is centred at ``i * params.hop`` seconds."""
    hop = round(params.hop * rate)
    win = round(params.win * rate)
    n_fft = 1 << int(np.ceil(np.log2(win)))
    n = frame_count(len(samples), rate, params)
    x = samples.astype(np.float64)
    x = np.append(x[:1], x[1:] - 0.97 * x[:-1])  # pre-emphasis
    padded = np.pad(x, (win // 2, win + n * hop))
    # tiny deterministic dither so that digital silence has a defined spectrum
    padded = padded + 1e-5 * np.sin(np.arange(len(padded)) * 1.2345)
    idx = np.arange(win)[None, :] + hop * np.arange(n)[:, None]
    frames = padded[idx] * np.hamming(win)[None, :]
    spec = np.abs(np.fft.rfft(frames, n_fft, axis=1)) ** 2
    fb = _mel_filterbank(rate, n_fft, params.n_mels, params.fmin, params.fmax)
    return np.log(spec @ fb.T + 1e-10)


def mfcc(samples: np.ndarray, rate: int, params: FeatureParams = FeatureParams()) -> np.ndarray:
    """Cepstral features for DTW, shape (frames, dims), mean/variance normalised over the clip.

    c1..c(n_ceps-1) plus a clip-normalised log energy (weighted by ``params.energy_weight``), and
    their deltas when ``params.delta`` > 0 (and delta-deltas with ``params.delta2``), each delta
    dimension scaled to standard deviation 0.5. Normalising per clip removes most of the speaker and
    channel difference between a synthetic voice and a real one.
    """
    lm = log_mel(samples, rate, params)
    ceps = lm @ _dct_matrix(params.n_mels, params.n_ceps).T
    energy = np.log(np.exp(lm).sum(axis=1) + 1e-10)
    feats = np.column_stack([ceps[:, 1:], energy])
    feats = (feats - feats.mean(axis=0)) / (feats.std(axis=0) + 1e-8)
    feats[:, -1] *= params.energy_weight
    if params.delta > 0:
        deltas = _deltas(feats, params.delta)
        parts = [feats, deltas / (deltas.std(axis=0) + 1e-8) * 0.5]
        if params.delta2:
            dd = _deltas(deltas, params.delta)
            parts.append(dd / (dd.std(axis=0) + 1e-8) * 0.5)
        feats = np.column_stack(parts)
    return feats.astype(np.float32)


def _deltas(feats: np.ndarray, d: int) -> np.ndarray:
    """Regression deltas over ``d`` frames each side (edges repeated)."""
    pad = np.pad(feats, ((d, d), (0, 0)), mode="edge")
    num = sum(k * (pad[d + k : d + k + len(feats)] - pad[d - k : d - k + len(feats)]) for k in range(1, d + 1))
    return num / (2 * sum(k * k for k in range(1, d + 1)))


def _cost_rows(a: np.ndarray, b: np.ndarray, i: int, lo: int, hi: int) -> np.ndarray:
    diff = b[lo:hi] - a[i][None, :]
    return np.sqrt(np.einsum("ij,ij->i", diff, diff))


def _banded_dtw(a: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """DTW of ``a`` (rows) against ``b`` (columns) where row i may use columns [lo[i], hi[i]).

    Steps (i-1, j-1), (i-1, j), (i, j-1), each adding the local Euclidean cost. Returns the path
    as an int array of shape (len, 2) with (row, column) pairs from (0, 0) to (n-1, m-1).
    """
    n, m = len(a), len(b)
    inf = np.inf
    width = int((hi - lo).max())
    acc = np.full((n, width), inf)
    prev_lo = 0
    prev: np.ndarray | None = None
    for i in range(n):
        l0, h0 = int(lo[i]), int(hi[i])
        cost = _cost_rows(a, b, i, l0, h0)
        cols = np.arange(l0, h0)
        if prev is None:
            entry = np.full(h0 - l0, inf)
            entry[0] = cost[0] if l0 == 0 else inf
        else:
            up = np.full(h0 - l0, inf)
            diag = np.full(h0 - l0, inf)
            k = cols - prev_lo
            ok = (k >= 0) & (k < len(prev))
            up[ok] = prev[k[ok]]
            kd = k - 1
            okd = (kd >= 0) & (kd < len(prev))
            diag[okd] = prev[kd[okd]]
            entry = np.minimum(up + cost, diag + DIAG_WEIGHT * cost)
        # horizontal steps: D[j] = min_k<=j (entry[k] + sum_{k<l<=j} cost[l]) as a prefix min-scan
        s = np.cumsum(cost)
        row = s + np.minimum.accumulate(entry - s)
        acc[i, : h0 - l0] = row
        prev, prev_lo = row, l0
    # backtrack
    path = []
    i, j = n - 1, m - 1
    if not np.isfinite(acc[i, j - lo[i]]) if lo[i] <= j < hi[i] else True:
        raise ValueError("DTW band does not reach the end: widen the band")

    def val(ii: int, jj: int) -> float:
        if ii < 0 or jj < 0 or not (lo[ii] <= jj < hi[ii]):
            return inf
        return float(acc[ii, jj - lo[ii]])

    while i > 0 or j > 0:
        path.append((i, j))
        extra = (DIAG_WEIGHT - 1.0) * float(np.linalg.norm(a[i] - b[j]))
        cands = ((val(i - 1, j - 1) + extra, i - 1, j - 1), (val(i - 1, j), i - 1, j), (val(i, j - 1), i, j - 1))
        _, i, j = min(cands, key=lambda c: c[0])
    path.append((0, 0))
    return np.array(path[::-1], dtype=np.int64)


def _band_from_path(path: np.ndarray, n: int, m: int, radius: int) -> tuple[np.ndarray, np.ndarray]:
    lo = np.full(n, m, dtype=np.int64)
    hi = np.zeros(n, dtype=np.int64)
    np.minimum.at(lo, path[:, 0], path[:, 1])
    np.maximum.at(hi, path[:, 0], path[:, 1] + 1)
    # widen by radius in both directions (rows and columns)
    lo_w = lo.copy()
    hi_w = hi.copy()
    for d in range(1, radius + 1):
        lo_w[d:] = np.minimum(lo_w[d:], lo[:-d])
        lo_w[:-d] = np.minimum(lo_w[:-d], lo[d:])
        hi_w[d:] = np.maximum(hi_w[d:], hi[:-d])
        hi_w[:-d] = np.maximum(hi_w[:-d], hi[d:])
    lo_w = np.clip(lo_w - radius, 0, m - 1)
    hi_w = np.clip(hi_w + radius, 1, m)
    # monotone, connected rows
    lo_w = np.minimum.accumulate(lo_w[::-1])[::-1]
    hi_w = np.maximum.accumulate(hi_w)
    lo_w[0] = 0
    hi_w[-1] = m
    return lo_w, hi_w


def dtw_path(a: np.ndarray, b: np.ndarray, *, max_cells: int = 6_000_000, radius: int = 40) -> np.ndarray:
    """Cheapest monotonic alignment of feature sequences ``a`` (n, d) and ``b`` (m, d).

    Full DTW when ``n * m <= max_cells``; otherwise a coarse alignment on frames averaged in
    groups (recursively), then a fine pass within ``radius`` frames of it. Returns (row, column)
    index pairs from (0, 0) to (n - 1, m - 1).
    """
    n, m = len(a), len(b)
    if n == 0 or m == 0:
        raise ValueError("DTW needs two non-empty sequences")
    if n * m <= max_cells:
        lo = np.zeros(n, dtype=np.int64)
        hi = np.full(n, m, dtype=np.int64)
        return _banded_dtw(a, b, lo, hi)
    f = 4
    na, nb = (n + f - 1) // f, (m + f - 1) // f
    ca = np.array([a[k * f : (k + 1) * f].mean(axis=0) for k in range(na)])
    cb = np.array([b[k * f : (k + 1) * f].mean(axis=0) for k in range(nb)])
    coarse = dtw_path(ca, cb, max_cells=max_cells, radius=radius)
    fine = np.column_stack([coarse[:, 0] * f, coarse[:, 1] * f])
    extra = [fine + np.array([di, dj]) for di in range(f) for dj in range(f)]
    fine = np.concatenate(extra)
    fine = fine[(fine[:, 0] < n) & (fine[:, 1] < m)]
    lo, hi = _band_from_path(fine, n, m, radius)
    return _banded_dtw(a, b, lo, hi)


def map_times(path: np.ndarray, times_b: np.ndarray, hop: float) -> np.ndarray:
    """Carry times on sequence ``b`` (seconds) across the path onto sequence ``a`` (seconds).

    A time t on ``b`` maps to the first ``a`` frame whose path column reaches frame ``t / hop``,
    interpolated linearly between path points so boundaries are not quantised to whole frames.
    """
    rows = path[:, 0].astype(np.float64)
    cols = path[:, 1].astype(np.float64)
    uniq, inv = np.unique(cols, return_inverse=True)
    first = np.full(len(uniq), np.inf)
    np.minimum.at(first, inv, rows)
    # the start of b-frame c is where a first reaches it; interp spreads horizontal runs
    starts = first
    frames_b = np.asarray(times_b, dtype=np.float64) / hop
    return np.interp(frames_b, uniq, starts) * hop
