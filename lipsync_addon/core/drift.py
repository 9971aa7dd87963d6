"""Clock drift between two recordings of the same performance, and its correction (bpy-free).

Two devices never run at exactly the same rate: a field recorder and a camera that both say
48 kHz typically differ by 10-100 ppm, so a clip placed in sync at its start (:mod:`.offset`) slides
out of sync along the take (50 ppm = 3 ms per minute; a frame at 24 fps after ~14 minutes, and lips
look late well before that). :func:`estimate_drift_arrays` measures it: the clip is cut into windows,
each window is located in the reference by GCC-PHAT (around where the global offset puts it), and a
robust line (Theil-Sen) through the (clip time, offset) points gives the drift. :func:`correct_drift`
resamples the clip by the measured ratio, so it plays in sync with the reference end to end.

Convention: the clip's sample at clip time ``t`` (s) sounds like the reference at
``offset + t * (1 + drift_ppm * 1e-6)``. A negative drift means the clip runs long (its recorder's
clock is fast relative to the reference's).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from fractions import Fraction

import numpy as np

from .offset import OffsetError, _resample, estimate_offset_arrays, read_any, settings


@dataclass
class DriftResult:
    """Measured drift of a clip against a reference.

    Attributes:
        drift_ppm: clock drift in parts per million (see the module's convention); 0 when not measurable.
        offset: reference time (s) of the clip's first sample, from the fitted line.
        residual_ms: RMS distance (ms) of the window offsets from the line (how well a line explains them).
        windows: (clip time s of the window's middle, reference minus clip time s, confidence) per matched window.
        duration: clip length, seconds.
        measurable: False when the clip is too short or too few windows matched (drift_ppm is 0 then).
        warnings: notes for the user.
    """

    drift_ppm: float
    offset: float
    residual_ms: float
    windows: list[tuple[float, float, float]] = field(default_factory=list)
    duration: float = 0.0
    measurable: bool = True
    warnings: list[str] = field(default_factory=list)

    @property
    def slip_ms(self) -> float:
        """How far the end of the clip slips against the reference, milliseconds (drift x duration)."""
        return self.drift_ppm * 1e-6 * self.duration * 1000.0

    def offset_at(self, t: float) -> float:
        """Reference time (s) of the clip's time ``t`` (s)."""
        return self.offset + t * (1.0 + self.drift_ppm * 1e-6)

    def to_dict(self) -> dict[str, object]:
        """JSON-able dict (``slip_ms`` included)."""
        out = asdict(self)
        out["slip_ms"] = self.slip_ms
        return out


def _theil_sen(t: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Robust line y = a + b t: b = median of pairwise slopes, a = median of y - b t."""
    i, j = np.triu_indices(len(t), k=1)
    dt = t[j] - t[i]
    keep = dt > 0
    b = float(np.median((y[j] - y[i])[keep] / dt[keep]))
    return float(np.median(y - b * t)), b


def estimate_drift_arrays(
    reference: np.ndarray,
    reference_rate: int,
    clip: np.ndarray,
    clip_rate: int,
    *,
    window_s: float = 3.0,
    n_windows: int = 15,
    min_duration_s: float = 30.0,
) -> DriftResult:
    """Drift of ``clip`` against ``reference`` (mono or multichannel float arrays at their own rates).

    Args:
        reference, reference_rate: the reference recording and its rate (Hz).
        clip, clip_rate: the clip and its rate (Hz).
        window_s: length of each matched clip window, seconds.
        n_windows: windows spread evenly over the clip.
        min_duration_s: shorter clips are not measured (drift is far below a frame there).

    Returns:
        :class:`DriftResult`. Raises :class:`OffsetError` when the two do not match at all.
    """
    s = settings()
    rate = int(s["analysis_rate_hz"])
    ref = np.asarray(reference, dtype=np.float32)
    clp = np.asarray(clip, dtype=np.float32)
    ref = ref.mean(axis=1) if ref.ndim == 2 else ref
    clp = clp.mean(axis=1) if clp.ndim == 2 else clp
    duration = len(clp) / clip_rate
    whole = estimate_offset_arrays(ref, reference_rate, clp, clip_rate)  # drift-robust (anchored) on long clips
    if duration < min_duration_s:
        note = f"Drift is not measured on clips under {min_duration_s:.0f} s (it stays far below a frame)."
        return DriftResult(0.0, whole.offset, 0.0, [], duration, False, [note])
    ref16, clp16 = _resample(ref, reference_rate, rate), _resample(clp, clip_rate, rate)
    win = round(window_s * rate)
    margin = 0.25 + 1e-3 * duration  # search ±(0.25 s + 1000 ppm of the clip) around the expected place
    points: list[tuple[float, float, float]] = []
    for start in np.linspace(0, len(clp16) - win, n_windows).astype(int):
        t = start / rate
        expected = whole.offset + t
        lo = max(0, round((expected - margin) * rate))
        hi = min(len(ref16), round((expected + window_s + margin) * rate))
        segment = clp16[start:start + win]
        if hi - lo < win // 2 or float(np.sqrt(np.mean(np.square(segment, dtype=np.float64)))) < 1e-4:
            continue
        try:
            found = estimate_offset_arrays(ref16[lo:hi], rate, segment, rate, refuse=False)
        except OffsetError:
            continue
        if found.confidence >= 0.5:
            # the correlation peak is the window's mean lag: it belongs to the window's middle
            points.append((t + window_s / 2, lo / rate + found.offset - t, found.confidence))
    if len(points) < 3:
        return DriftResult(0.0, whole.offset, 0.0, points, duration, False,
                           [f"Drift could not be measured: only {len(points)} of {n_windows} windows matched."])
    t = np.array([p[0] for p in points])
    lag = np.array([p[1] for p in points])  # reference time minus clip time, seconds
    a, b = _theil_sen(t, lag)
    residual = float(np.sqrt(np.mean((lag - (a + b * t)) ** 2))) * 1000.0
    result = DriftResult(b * 1e6, a, residual, points, duration)
    if residual > 2.0:
        result.warnings.append(
            f"The window offsets scatter {residual:.1f} ms around a straight line: the clip may be edited "
            "(cuts, different takes); use retake alignment for a non-linear warp."
        )
    return result


def estimate_drift(reference: str | os.PathLike[str], clip: str | os.PathLike[str], **kwargs: float) -> DriftResult:
    """:func:`estimate_drift_arrays` on two files (audio, or video through FFmpeg)."""
    ref, ref_rate = read_any(reference)
    clp, clp_rate = read_any(clip)
    return estimate_drift_arrays(ref, ref_rate, clp, clp_rate, **kwargs)


def drift_warning(result: DriftResult, fps: float) -> str:
    """A user message when the drift slips the clip's end by more than a quarter frame; else ""."""
    if not result.measurable or abs(result.slip_ms) * fps / 1000.0 < 0.25:
        return ""
    direction = "long" if result.drift_ppm < 0 else "short"
    frames = abs(result.slip_ms) * fps / 1000.0
    return (
        f"The clip's clock drifts {result.drift_ppm:+.1f} ppm against the reference: it runs "
        f"{abs(result.slip_ms):.1f} ms {direction} over {result.duration:.0f} s, so its end slips {frames:.2f} "
        "frames. Correct it with: python -m lipsync_addon offset REFERENCE CLIP --fix-drift fixed.wav"
    )


def correct_drift(samples: np.ndarray, drift_ppm: float, *, max_denominator: int = 20000) -> np.ndarray:
    """Resample ``samples`` (mono or (frames, channels), any rate) so the clip plays in sync with the reference.

    The clip is stretched by ``1 + drift_ppm * 1e-6`` (exact polyphase resampling by a rational
    approximation of the ratio, error below 1 / max_denominator**2) and keeps its rate and channels;
    sample 0 stays at t = 0, so the offset at the start is unchanged.
    """
    from scipy.signal import resample_poly

    ratio = Fraction(1.0 + drift_ppm * 1e-6).limit_denominator(max_denominator)
    if ratio == 1:
        return np.asarray(samples, dtype=np.float32)
    x = np.asarray(samples, dtype=np.float32)
    out = resample_poly(x, ratio.numerator, ratio.denominator, axis=0, window=("kaiser", 8.0))
    return out[: round(len(x) * float(ratio))].astype(np.float32)
