"""Zero-phase filters and level processing: high-pass, hum notches, speech EQ, loudness, true-peak limiter.

Every filter here runs forwards and backwards (``sosfiltfilt``) or is a symmetric gain curve, so
nothing shifts in time: output sample n is input sample n, processed.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

#: Loudness measurement needs at least one 400 ms gating block (ITU-R BS.1770).
MIN_LOUDNESS_S = 0.4


def highpass(samples: np.ndarray, rate: int, cutoff_hz: float) -> np.ndarray:
    """Remove DC and rumble: zero-phase 2nd-order Butterworth high-pass at ``cutoff_hz`` (applied twice = 4th order)."""
    from scipy.signal import butter, sosfiltfilt

    x = samples.astype(np.float64) - float(np.mean(samples))
    if cutoff_hz <= 0 or cutoff_hz >= rate / 2 * 0.9 or len(x) < 32:
        return x.astype(np.float32)
    sos = butter(2, cutoff_hz, btype="highpass", fs=rate, output="sos")
    return sosfiltfilt(sos, x, padlen=min(len(x) - 1, 3 * rate // 10)).astype(np.float32)


def detect_hum(samples: np.ndarray, rate: int, *, min_prominence_db: float = 10.0,
               max_harmonics: int = 8) -> tuple[float, list[float]]:
    """Find mains hum: returns (fundamental Hz: 50, 60 or 0 for none, harmonic frequencies to notch in Hz).

    Uses a 1-Hz-resolution average spectrum; a harmonic counts when its peak stands
    ``min_prominence_db`` above the median of its ±15 Hz neighbourhood. The fundamental with the
    larger total prominence wins; it needs at least two prominent harmonics (or a very strong one).
    """
    from scipy.signal import welch

    if len(samples) < rate:  # need ~1 s for 1 Hz resolution
        return 0.0, []
    nper = int(rate)
    _f, p = welch(samples.astype(np.float64), fs=rate, nperseg=nper, noverlap=nper // 2)
    db = 10.0 * np.log10(p + 1e-20)
    best: tuple[float, float, list[float]] = (0.0, 0.0, [])
    for base in (50.0, 60.0):
        proms: list[tuple[float, float]] = []
        for k in range(1, max_harmonics + 1):
            fk = base * k
            if fk > rate / 2 - 20:
                break
            i = round(fk)
            peak = db[max(0, i - 1): i + 2].max()
            ring = np.r_[db[max(0, i - 15): max(0, i - 3)], db[i + 4: i + 16]]
            if ring.size:
                proms.append((fk, peak - float(np.median(ring))))
        strong = [p for _, p in proms if p >= min_prominence_db]
        score = float(sum(strong))
        if (len(strong) >= 2 or score >= 2 * min_prominence_db) and score > best[1]:
            # hum confirmed: notch every harmonic up to the highest one that stands out (speech may mask some)
            top = max(fk for fk, p in proms if p >= min_prominence_db / 3.0)
            best = (base, score, [fk for fk, _ in proms if fk <= top])
    return best[0], best[2]


def notch(samples: np.ndarray, rate: int, freqs: list[float], *, q: float = 30.0) -> np.ndarray:
    """Zero-phase IIR notches at ``freqs`` (Hz) with quality ``q``."""
    from scipy.signal import iirnotch, sosfiltfilt, tf2sos

    x = samples.astype(np.float64)
    for f0 in freqs:
        if 0 < f0 < rate / 2 * 0.95:
            b, a = iirnotch(f0, q, fs=rate)
            x = sosfiltfilt(tf2sos(b, a), x, padlen=min(len(x) - 1, rate // 5))
    return x.astype(np.float32)


def speech_eq(samples: np.ndarray, rate: int, bands: list[dict[str, float]]) -> np.ndarray:
    """Zero-phase speech EQ: a list of {"freq": Hz, "gain_db": dB, "width_oct": octaves} bell bands.

    Done as a linear-phase FIR (symmetric gain curve, exact delay removed), so it has no phase and
    no delay; the convolution runs as overlap-add FFT blocks.
    """
    if not bands or len(samples) < 64:
        return samples.astype(np.float32)
    from scipy.signal import oaconvolve

    # linear-phase FIR designed from the gain curve, then compensated by its exact delay
    taps = int(rate * 0.016) | 1
    n_fft = 1 << int(np.ceil(np.log2(taps * 4)))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / rate)
    gain_db = np.zeros_like(freqs)
    lf = np.log2(np.maximum(freqs, 1.0))
    for band in bands:
        centre, g, width = float(band["freq"]), float(band["gain_db"]), float(band.get("width_oct", 1.0))
        if centre >= rate / 2:
            continue
        gain_db += g * np.exp(-0.5 * ((lf - np.log2(centre)) / (width / 2.355)) ** 2)
    h = np.fft.irfft(10.0 ** (gain_db / 20.0), n=n_fft)
    h = np.roll(h, taps // 2)[:taps] * np.hanning(taps)
    y = oaconvolve(samples.astype(np.float64), h, mode="full")  # overlap-add: short FIR, long clip
    d = taps // 2
    return y[d: d + len(samples)].astype(np.float32)


def integrated_loudness(samples: np.ndarray, rate: int) -> float:
    """Integrated loudness in LUFS (ITU-R BS.1770-4, pyloudnorm's K-weighting and gating); -inf for silence.

    Clips shorter than one gating block are measured as K-weighted mean power (ungated).
    Same figures as ``pyloudnorm.Meter(rate).integrated_loudness`` (to float rounding), with the
    400 ms blocks summed in one vectorised pass instead of a Python loop per block.
    """
    x = samples.astype(np.float64)
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    elif x.ndim == 2 and x.shape[1] > 5:  # BS.1770 weights cover up to 5 channels: measure the mix
        x = x.mean(axis=1)
    if not np.any(x):
        return float("-inf")
    if len(x) < MIN_LOUDNESS_S * rate:  # repeat the clip to fill one gating block
        reps = int(np.ceil(MIN_LOUDNESS_S * rate / len(x))) + 1
        x = np.tile(x, reps) if x.ndim == 1 else np.tile(x, (reps, 1))
    return _gated_loudness(x if x.ndim == 2 else x[:, None], rate)


def _gated_loudness(x: np.ndarray, rate: int) -> float:
    """BS.1770-4 gated loudness of ``x`` (n, channels <= 5), as pyloudnorm 0.2 computes it (LUFS)."""
    import pyloudnorm
    from scipy.signal import lfilter

    meter = pyloudnorm.Meter(rate)
    stages = getattr(meter, "_filters", None)
    if not stages:  # another pyloudnorm layout: its own (slower) meter
        with np.errstate(divide="ignore"):
            return float(meter.integrated_loudness(x[:, 0] if x.shape[1] == 1 else x))
    for stage in stages.values():  # K-weighting: high shelf, then high pass
        x = stage.passband_gain * lfilter(stage.b, stage.a, x, axis=0)
    n, channels = x.shape
    block, overlap = meter.block_size, meter.overlap
    step = 1.0 - overlap
    n_blocks = int(np.round((n / rate - block) / (block * step))) + 1
    j = np.arange(n_blocks, dtype=np.float64)
    lo = (block * (j * step) * rate).astype(np.int64)  # the same float expressions as pyloudnorm
    hi = np.minimum((block * (j * step + 1) * rate).astype(np.int64), n)
    # mean square per block from sums over the stretches between block edges
    starts = np.unique(np.concatenate([lo, hi]))
    starts = starts[starts < n]
    seg = np.add.reduceat(np.square(x), starts, axis=0)
    cum = np.vstack([np.zeros((1, channels)), np.cumsum(seg, axis=0)])
    ends = np.searchsorted(starts, hi)
    ends[hi >= n] = len(starts)
    z = (cum[ends] - cum[np.searchsorted(starts, lo)]).T * (1.0 / (block * rate))  # (channels, blocks)
    weights = np.array([1.0, 1.0, 1.0, 1.41, 1.41])[:channels, None]
    with np.errstate(divide="ignore"):
        levels = -0.691 + 10.0 * np.log10((weights * z).sum(axis=0))
        gated = levels >= -70.0
        if not gated.any():
            return float("-inf")
        relative = -0.691 + 10.0 * np.log10(float((weights[:, 0] * z[:, gated].mean(axis=1)).sum())) - 10.0
        keep = (levels > relative) & (levels > -70.0)
        if not keep.any():
            return float("-inf")
        return float(-0.691 + 10.0 * np.log10(float((weights[:, 0] * z[:, keep].mean(axis=1)).sum())))


def true_peak(samples: np.ndarray, rate: int) -> float:
    """True peak in dBTP: 4x oversampled absolute peak (BS.1770 annex 2 style); -inf for silence.

    Equal (to float rounding) to the peak of :func:`oversampled`, but only the samples that can reach
    the peak are oversampled (see :func:`oversampled_peaks`).
    """
    x = _as_2d_float(samples)
    if not len(x) or not np.any(x):
        return float("-inf")
    taps, bound = _polyphase(rate)
    # a lower bound: the exact oversampled peak around the largest sample
    top = int(np.argmax(np.abs(x).max(axis=1)))
    floor = float(oversampled_peaks(x, np.array([top]), taps)[0])
    idx = _candidates(x, taps, bound, floor)
    peak = max(floor, float(_peaks_at(x, rate, idx).max(initial=0.0)))
    return 20.0 * np.log10(peak) if peak > 0 else float("-inf")


def oversampled(samples: np.ndarray, rate: int, factor: int = 4) -> np.ndarray:
    """``samples`` (n,) or (n, channels) upsampled ``factor`` times along time (zero-phase polyphase)."""
    from scipy.signal import resample_poly

    if rate >= 176400:
        return samples.astype(np.float64)
    return resample_poly(samples.astype(np.float64), factor, 1, axis=0)


def _as_2d_float(samples: np.ndarray) -> np.ndarray:
    x = np.asarray(samples, dtype=np.float64)
    return x[:, None] if x.ndim == 1 else x


def _polyphase(rate: int, factor: int = 4) -> tuple[np.ndarray, float]:
    """The polyphase form of :func:`oversampled`'s filter at ``rate``: (taps (2K+1, factor), bound).

    Output phase p at input sample n is ``x[n-K : n+K+1] @ taps[:, p]`` (zeros outside the clip),
    the same filter ``scipy.signal.resample_poly`` designs (Kaiser window, beta 5, half length
    10 * factor). ``bound`` = max over phases of the sum of absolute taps (>= 1): no oversampled value
    near n exceeds ``bound`` times the largest ``|x|`` within ±K samples of n.
    """
    return _polyphase_design(1 if rate >= 176400 else factor)  # no oversampling at 176.4 kHz and up


@lru_cache(maxsize=4)
def _polyphase_design(factor: int) -> tuple[np.ndarray, float]:
    from scipy.signal import firwin

    if factor == 1:
        return np.ones((1, 1)), 1.0
    half = 10 * factor
    h = firwin(2 * half + 1, 1.0 / factor, window=("kaiser", 5.0)) * factor
    k = half // factor
    taps = np.zeros((2 * k + 1, factor))
    for j in range(2 * k + 1):
        for p in range(factor):
            i = 2 * half - factor * j + p
            if 0 <= i <= 2 * half:
                taps[j, p] = h[i]
    bound = max(1.0, float(np.abs(taps).sum(axis=0).max()))
    taps.setflags(write=False)
    return taps, bound


def _candidates(x: np.ndarray, taps: np.ndarray, bound: float, level: float, *, block: int = 16) -> np.ndarray:
    """Indices of the samples of ``x`` (n, channels) whose oversampled values may reach ``level``.

    A superset, cheap to find: every sample of a ``block`` whose own largest ``|x|`` or its
    neighbour blocks' (``block`` >= K, so they cover the ±K reach of the filter) times ``bound``
    reaches ``level``.
    """
    k = (taps.shape[0] - 1) // 2
    n = len(x)
    env = np.abs(x[:, 0]) if x.shape[1] == 1 else np.abs(x).max(axis=1)
    n_blocks = -(-n // block)
    top = np.zeros(n_blocks + 2)
    full = n // block
    blocks = env[: full * block].reshape(full, block)
    top[1:full + 1] = blocks[:, 0]
    for j in range(1, block):  # column by column: numpy reduces a short last axis slowly
        np.maximum(top[1:full + 1], blocks[:, j], out=top[1:full + 1])
    if full < n_blocks:
        top[full + 1] = env[full * block:].max()
    near = np.maximum(top[1:-1], np.maximum(top[:-2], top[2:])) if k else top[1:-1]
    # 1e-9: margin for the float rounding of the bound itself
    hot = np.flatnonzero(near >= level / (bound * (1.0 + 1e-9)))
    idx = (hot[:, None] * block + np.arange(block)[None, :]).ravel()
    return idx[idx < n] if len(hot) and hot[-1] == n_blocks - 1 else idx


def _peaks_at(x: np.ndarray, rate: int, idx: np.ndarray) -> np.ndarray:
    """:func:`oversampled_peaks` at ``idx``; one full polyphase pass when most samples are asked for."""
    if len(idx) <= len(x) // 4:
        return oversampled_peaks(x, idx, _polyphase(rate)[0])
    up = np.abs(oversampled(x, rate)).max(axis=1)
    return up[: len(up) // len(x) * len(x)].reshape(len(x), -1).max(axis=1)[idx]


def oversampled_peaks(x: np.ndarray, idx: np.ndarray, taps: np.ndarray, *, chunk: int = 32768) -> np.ndarray:
    """Largest absolute oversampled value (over phases and channels) at samples ``idx`` of ``x`` (n, channels).

    Same values (to float rounding) as the 4x :func:`oversampled` signal, computed only where asked.
    """
    from numpy.lib.stride_tricks import sliding_window_view

    k = (taps.shape[0] - 1) // 2
    out = np.zeros(len(idx))
    for c in range(x.shape[1]):
        windows = sliding_window_view(np.pad(x[:, c], k), 2 * k + 1)  # row n: x[n-K : n+K+1]
        for s in range(0, len(idx), chunk):
            win = windows[idx[s: s + chunk]]  # (m, 2K+1) copy
            vals = np.abs(win @ taps)
            part = out[s: s + chunk]
            for p in range(vals.shape[1]):  # column by column: numpy reduces a short last axis slowly
                np.maximum(part, vals[:, p], out=part)
    return out


def limit_true_peak(samples: np.ndarray, rate: int, ceiling_dbtp: float, *,
                    window_s: float = 0.005) -> tuple[np.ndarray, int]:
    """Look-ahead true-peak limiter, mono or (n, channels) linked, zero latency (symmetric gain curve).

    The gain needed at each sample (from the 4x oversampled signal) is spread by a min-filter of
    ±``window_s`` and smoothed by a moving average of half that width, which never exceeds the
    needed gain. Returns (limited samples, number of samples whose gain was reduced).
    """
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    ceiling = 10.0 ** (ceiling_dbtp / 20.0)
    x = samples.astype(np.float64)
    x2 = x[:, None] if x.ndim == 1 else x
    taps, bound = _polyphase(rate)
    # only samples whose neighbourhood can reach the ceiling need a gain below 1 (exactly as with
    # the full 4x oversampled signal: elsewhere every oversampled value is below the ceiling)
    idx = _candidates(x2, taps, bound, ceiling)
    need = np.ones(len(x))
    if len(idx):
        peaks = np.maximum(_peaks_at(x2, rate, idx), np.abs(x2[idx]).max(axis=1))
        need[idx] = np.minimum(1.0, ceiling / np.maximum(peaks, 1e-12))
    if need.min() >= 1.0:
        return x.astype(np.float32), 0
    half = max(1, int(window_s * rate))
    gain = minimum_filter1d(need, size=2 * half + 1, mode="nearest")
    gain = uniform_filter1d(gain, size=half | 1, mode="nearest")
    gain = np.minimum(gain, need)
    y = x * (gain if x.ndim == 1 else gain[:, None])
    # inter-sample overshoot that survives the smoothing: one exact correction pass
    y2 = y[:, None] if y.ndim == 1 else y
    over = _candidates(y2, taps, bound, ceiling)
    tp = float(_peaks_at(y2, rate, over).max(initial=0.0))
    if tp > ceiling:
        y *= ceiling / tp
    return y.astype(np.float32), int(np.count_nonzero(gain < 0.9999))
