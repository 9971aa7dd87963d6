"""The fast paths of the enhancement chain give the figures of the plain computations they replace.

True peak and the limiter oversample only where a peak can reach the level (checked against the full
4x ``resample_poly`` signal), loudness gates in one vectorised pass (checked against pyloudnorm),
RNNoise pieces resample their own stretch (checked against whole-clip resampling), on real speech
and noise and on synthetic inter-sample peaks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from lipsync_addon.core.audio import resample, resample_span
from lipsync_addon.core.enhance import enhance_array, filters

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def noisy() -> np.ndarray:
    clean, rate = sf.read(DATA / "cmu_arctic_us_aew_a0001.wav", dtype="float64")
    noise, nrate = sf.read(DATA / "noise_exercise_bike_12s.flac", dtype="float64")
    assert rate == nrate == 16000
    nz = noise[: len(clean)]
    return clean + nz * np.sqrt(np.mean(clean**2) / np.mean(nz**2) / 10 ** 0.5)  # 5 dB SNR


def reference_true_peak(x: np.ndarray, rate: int) -> float:
    peak = float(np.max(np.abs(filters.oversampled(x, rate))))
    return 20.0 * np.log10(peak) if peak > 0 else float("-inf")


def reference_limiter(samples: np.ndarray, rate: int, ceiling_dbtp: float) -> tuple[np.ndarray, int]:
    """The limiter computed on the whole 4x oversampled signal (the algorithm before the fast path)."""
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    ceiling = 10.0 ** (ceiling_dbtp / 20.0)
    x = samples.astype(np.float64)
    up = filters.oversampled(x, rate)
    factor = len(up) // len(x)
    env = np.abs(x) if x.ndim == 1 else np.abs(x).max(axis=1)
    up_env = np.abs(up) if up.ndim == 1 else np.abs(up).max(axis=1)
    peaks = np.maximum(up_env[: factor * len(x)].reshape(len(x), factor).max(axis=1), env)
    need = np.minimum(1.0, ceiling / np.maximum(peaks, 1e-12))
    if need.min() >= 1.0:
        return x.astype(np.float32), 0
    half = max(1, int(0.005 * rate))
    gain = np.minimum(uniform_filter1d(minimum_filter1d(need, 2 * half + 1, mode="nearest"), half | 1,
                                       mode="nearest"), need)
    y = x * (gain if x.ndim == 1 else gain[:, None])
    tp = float(np.max(np.abs(filters.oversampled(y, rate))))
    if tp > ceiling:
        y *= ceiling / tp
    return y.astype(np.float32), int(np.count_nonzero(gain < 0.9999))


def intersample_signals(rate: int) -> list[np.ndarray]:
    """Signals whose true peak lies between samples (up to +3 dB over the sample peak)."""
    t = np.arange(rate) / rate
    quarter = 0.5 * np.sin(2 * np.pi * rate / 4 * t + np.pi / 4)  # samples at 0.354, peak 0.5
    burst = np.zeros(rate)
    burst[rate // 2: rate // 2 + 6] = 0.6 * np.array([1, -1, 1, -1, 1, -1])  # Nyquist burst overshoots
    pair = np.zeros(rate)
    pair[1000:1002] = 0.7  # two equal samples: the peak sits half-way between them
    return [quarter, burst, pair, quarter + burst * 0.3]


@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000, 192000])
def test_true_peak_matches_full_oversampling(rate: int, noisy: np.ndarray) -> None:
    speech = resample(noisy, 16000, rate).astype(np.float64) if rate != 16000 else noisy
    signals = [speech, speech * 3.0, np.stack([speech, -0.5 * speech[::-1]], 1), *intersample_signals(rate)]
    for x in signals:
        fast, ref = filters.true_peak(x, rate), reference_true_peak(x, rate)
        assert abs(fast - ref) < 1e-6, (rate, fast, ref)  # the issue asks for 0.05 dB
    # the synthetic peaks really are between samples
    quarter = intersample_signals(rate)[0]
    if rate < 176400:
        assert filters.true_peak(quarter, rate) - 20 * np.log10(np.abs(quarter).max()) > 2.5
    assert filters.true_peak(np.zeros(100), rate) == float("-inf")


@pytest.mark.parametrize("ceiling", [-1.0, -3.0, 0.0])
def test_limiter_matches_full_oversampling(ceiling: float, noisy: np.ndarray) -> None:
    cases = [noisy * g for g in (0.5, 2.0, 4.0, 12.0)]  # none, some, most samples limited
    cases += [np.stack([noisy * 2.0, noisy[::-1] * 3.0], 1), *(s * 2.5 for s in intersample_signals(16000))]
    for x in cases:
        fast, n_fast = filters.limit_true_peak(x, 16000, ceiling)
        ref, n_ref = reference_limiter(x, 16000, ceiling)
        assert n_fast == n_ref
        assert np.max(np.abs(fast.astype(np.float64) - ref)) < 1e-6
        assert reference_true_peak(fast, 16000) <= ceiling + 1e-4


def test_loudness_matches_pyloudnorm(noisy: np.ndarray) -> None:
    cases = [(noisy, 16000), (noisy * 0.01, 16000), (np.stack([noisy, noisy[::-1] * 0.3], 1), 16000),
             (np.stack([noisy] * 5, 1) * 0.2, 16000), (resample(noisy, 16000, 44100).astype(np.float64), 44100),
             (np.r_[noisy, np.zeros(16000 * 3)], 16000), (noisy[: int(16000 * 1.23)], 16000)]
    for x, rate in cases:
        ours = filters.integrated_loudness(x, rate)
        with np.errstate(divide="ignore"):
            ref = pyloudnorm.Meter(rate).integrated_loudness(x)
        assert abs(ours - ref) < 1e-9, (ours, ref)
    assert filters.integrated_loudness(noisy * 1e-6, 16000) == float("-inf")  # below the -70 LUFS gate


@pytest.mark.parametrize(("rate", "target"), [(16000, 48000), (48000, 16000), (44100, 48000), (48000, 44100),
                                              (8000, 48000), (96000, 48000)])
def test_resample_span_is_whole_clip_resampling(rate: int, target: int) -> None:
    x = np.random.default_rng(rate + target).standard_normal(rate * 2 + 13).astype(np.float32)
    whole = resample(x, rate, target)
    n = len(whole)
    for a, b in [(0, n), (0, 7), (n - 5, n), (n // 3, n // 3 * 2), (1, n - 1), (123, 124)]:
        assert np.array_equal(resample_span(x, rate, target, a, b), whole[a:b])


def test_report_has_stage_timings(noisy: np.ndarray) -> None:
    _, report = enhance_array(noisy, 16000, "standard")
    stages = ["analysis", "highpass", "hum", "dereverb", "denoise", "eq", "loudness", "limiter", "report"]
    assert list(report.timings) == stages
    assert 0.0 < sum(report.timings.values()) <= report.seconds + 1e-6
    assert set(report.to_dict()["timings"]) == set(stages)

