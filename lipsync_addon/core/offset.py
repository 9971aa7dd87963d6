"""Offset between two recordings of the same performance by GCC-PHAT (bpy-free).

Given a *reference* (a video file's own audio track, a camera's scratch audio, or another recording
of the same take) and a *clip* (the dialogue recording to place), :func:`estimate_offset` finds the
time in the reference at which the clip starts, in seconds, with a confidence, and refuses with a
clear message when the two do not contain the same sound.

How (see docs/sync.md):

1. both signals -> mono, resampled exactly (polyphase) to one analysis rate (16 kHz);
2. generalized cross-correlation with the phase transform (GCC-PHAT): the cross-spectrum is
   whitened (magnitude removed) and band-limited to the speech band, so the correlation is a sharp
   peak at the lag whatever the gains, the microphones' colouring or steady noise;
3. the integer peak is refined to a fraction of a sample: the band-limited correlation is evaluated
   at fractional lags around it (exact trigonometric interpolation) and a parabola through the best
   three points gives the final lag (plain 3-point parabolic interpolation on the raw peak is kept
   as ``method="parabolic"``; it is biased by up to ~0.1 sample on a PHAT peak, measured in
   docs/benchmarks.md);
4. confidence = the peak over the highest correlation value outside the main lobe (second-peak
   ratio); pairs are refused below a threshold measured on matching vs non-matching real pairs
   (data/offset.json, docs/benchmarks.md). The peak's height in standard deviations of the
   correlation (peak-to-sidelobe ratio, PSR) is reported too, but it does not separate the two
   groups (non-matching long clips reach PSR 25), so it does not decide.

Long inputs (more than a few minutes) are first matched on a decimated signal, then the best
excerpt of the clip is matched at full resolution around that coarse lag, so memory stays bounded
(a 1 h reference takes ~1 GB less than a direct FFT would).

Sign convention: ``offset`` = reference time (s) of the clip's first sample; ``clip[t]`` sounds like
``reference[t + offset]``. A positive offset places the clip's strip ``offset`` seconds after the
reference's start; a negative one means the clip starts before the reference.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from math import gcd

import numpy as np

from .audio import read_audio_file
from .settings import numeric_settings
from .types import LipSyncError


class OffsetError(LipSyncError):
    """The offset cannot be estimated (no match, silence, too short, unreadable input)."""


def settings() -> dict[str, float]:
    """Thresholds and analysis constants from ``core/data/offset.json`` (units in the key names)."""
    return numeric_settings("offset")


@dataclass
class OffsetResult:
    """Where the clip sits on the reference's timeline.

    Attributes:
        offset: reference time of the clip's first sample, seconds (clip[t] ~ reference[t + offset]).
        confidence: 0..1, how clearly the two match: 0.5 at the refusal threshold, 1 unambiguous.
        peak_ratio: correlation peak / highest value outside the main lobe (second peak); ~1 when
            the two do not match.
        psr: peak height in standard deviations of the correlation (peak-to-sidelobe ratio).
        overlap: seconds of the clip that overlap the reference at this offset.
        rate: analysis rate used, Hz.
        reference_rate, clip_rate: the inputs' own rates, Hz.
        method: sub-sample refinement ("bandlimited" or "parabolic").
        warnings: notes for the user (weak match, partial overlap, ...).
    """

    offset: float
    confidence: float
    peak_ratio: float
    psr: float
    overlap: float
    rate: int
    reference_rate: int = 0
    clip_rate: int = 0
    method: str = "bandlimited"
    warnings: list[str] = field(default_factory=list)

    def frame(self, fps: float, start_frame: float = 0.0) -> float:
        """Frame (fractional) at which to place the clip's strip, given the reference starts at
        ``start_frame`` on a timeline running at ``fps`` frames per second."""
        return start_frame + self.offset * fps

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict (seconds, Hz)."""
        out = asdict(self)
        out["offset_ms"] = round(self.offset * 1000.0, 4)
        return out


# --------------------------------------------------------------------------------------------- input


def read_any(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """Mono float32 samples and rate (Hz) of an audio file, or of a video's first audio track
    (:func:`~lipsync_addon.core.audio.read_audio_file`: libsndfile, then FFmpeg).

    Raises:
        AudioError: missing/empty file, or a file no reader can decode (clear message).
    """
    data, rate = read_audio_file(path, "file")
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    return np.nan_to_num(mono.astype(np.float32)), int(rate)


# ------------------------------------------------------------------------------------------ analysis


def _resample(x: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Exact rational polyphase resampling (timing preserved: sample 0 stays at t = 0)."""
    if rate == target:
        return x.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    g = gcd(int(rate), int(target))
    out = resample_poly(x.astype(np.float32), target // g, rate // g, window=("kaiser", 5.0))
    return out[: round(len(x) * target / rate)].astype(np.float32)


def _check_signal(x: np.ndarray, rate: int, name: str, min_dur: float) -> None:
    dur = len(x) / rate
    if dur < min_dur:
        raise OffsetError(
            f"The {name} is too short to match ({dur * 1000:.0f} ms; at least {min_dur * 1000:.0f} ms "
            "of sound is needed)."
        )
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    if rms < 10 ** (settings()["silence_rms_dbfs"] / 20.0):
        raise OffsetError(f"The {name} is silent (level {20 * np.log10(rms + 1e-20):.0f} dBFS): nothing to match.")


def _gcc_phat(ref: np.ndarray, clip: np.ndarray, rate: int, band: tuple[float, float],
              lags: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, int]:
    """Band-limited GCC-PHAT.

    Returns (cross-spectrum R (whitened, band-limited, rfft of size n), correlation over lags
    ``lags = (lag_min, lag_max)`` (inclusive), n). corr[k] is the correlation at lag ``lag_min + k`` where
    lag L means clip[t] ~ ref[t + L].
    """
    from scipy import fft as sfft

    lag_min, lag_max = lags
    n = sfft.next_fast_len(len(ref) + len(clip), real=True)
    spec_r = sfft.rfft(ref, n, workers=-1)
    spec_c = sfft.rfft(clip, n, workers=-1)
    cross = spec_r * np.conj(spec_c)
    del spec_r, spec_c
    mag = np.abs(cross)
    freqs = np.arange(len(cross)) * (rate / n)
    lo, hi = band
    # smooth band edges (raised cosine over 1/4 octave) so the peak has small ringing
    w = np.ones(len(cross), dtype=np.float32)
    edge_lo = np.clip((freqs - lo * 0.84) / (lo * 0.16), 0.0, 1.0)
    edge_hi = np.clip((hi - freqs) / (hi * 0.16), 0.0, 1.0)
    w *= (0.5 - 0.5 * np.cos(np.pi * edge_lo)) * (0.5 - 0.5 * np.cos(np.pi * edge_hi))
    # PHAT weighting; floor the magnitude so empty bins (digital silence, band edges) stay at 0
    floor = settings()["phat_floor"] * float(np.max(mag) + 1e-30)
    cross = cross * (w / np.maximum(mag, floor))
    del mag
    full = sfft.irfft(cross, n, workers=-1)
    lags = np.arange(lag_min, lag_max + 1)
    corr = full[np.mod(lags, n)].astype(np.float64)
    return cross, corr, n


def _bandlimited_at(cross: np.ndarray, n: int, lags: np.ndarray) -> np.ndarray:
    """Exact band-limited correlation at fractional ``lags`` (samples) from the cross-spectrum."""
    k = np.arange(len(cross))
    nz = np.nonzero(np.abs(cross) > 0)[0]
    k, c = k[nz], cross[nz]
    scale = np.where((k == 0) | (k == n // 2) if n % 2 == 0 else (k == 0), 1.0, 2.0)
    out = np.empty(len(lags))
    for i, lag in enumerate(lags):
        out[i] = float(np.sum(scale * (c * np.exp(2j * np.pi * k * lag / n)).real)) / n
    return out


def _parabola(y0: float, y1: float, y2: float) -> float:
    den = y0 - 2.0 * y1 + y2
    if den >= 0 or not np.isfinite(den):
        return 0.0
    return float(np.clip(0.5 * (y0 - y2) / den, -0.5, 0.5))


def _peak_stats(corr: np.ndarray, peak: int, exclude: int) -> tuple[float, float]:
    """(second-peak ratio, PSR) of ``corr`` at index ``peak`` with a main lobe of +-``exclude``."""
    top = float(corr[peak])
    mask = np.ones(len(corr), dtype=bool)
    mask[max(0, peak - exclude) : peak + exclude + 1] = False
    side = corr[mask]
    if side.size < 8:
        return float("inf"), float("inf")
    second = float(np.max(side))
    ratio = top / second if second > 0 else float("inf")
    psr = (top - float(np.mean(side))) / (float(np.std(side)) + 1e-30)
    return ratio, psr


def _confidence(ratio: float) -> float:
    """0..1 from the second-peak ratio: 0.5 at the refusal threshold, 1 at twice its margin over 1."""
    if not np.isfinite(ratio):
        return 1.0
    return round(float(np.clip((ratio - 1.0) / (settings()["min_peak_ratio"] - 1.0) * 0.5, 0.0, 1.0)), 4)


def estimate_offset_arrays(
    reference: np.ndarray,
    reference_rate: int,
    clip: np.ndarray,
    clip_rate: int,
    *,
    max_offset: float | None = None,
    method: str = "bandlimited",
    refuse: bool = True,
    band_high_hz: float | None = None,
) -> OffsetResult:
    """Offset (s) of ``clip`` on the timeline of ``reference`` by band-limited GCC-PHAT.

    Args:
        reference: mono (or (frames, channels), averaged) samples of the reference.
        reference_rate: its rate, Hz.
        clip: mono (or multichannel) samples of the clip to place.
        clip_rate: its rate, Hz.
        max_offset: search only |offset| <= this many seconds (None: any offset with overlap).
        method: "bandlimited" (default, exact band-limited interpolation + parabola) or
            "parabolic" (3-point parabola on the integer-lag peak only).
        refuse: raise :class:`OffsetError` when the match is weak (default); False returns the best
            guess with ``confidence`` < 0.5 and a warning.
        band_high_hz: upper edge of the matched band, Hz (default ``band_high_hz`` in data/offset.json).

    Returns:
        :class:`OffsetResult` (offset in seconds, confidence, ratios).

    Raises:
        OffsetError: too short, silent, no overlap allowed, or the two do not match.
    """
    s = settings()
    if method not in ("bandlimited", "parabolic"):
        raise OffsetError(f"Unknown peak interpolation '{method}': use 'bandlimited' or 'parabolic'.")
    ref = np.asarray(reference, dtype=np.float32)
    clp = np.asarray(clip, dtype=np.float32)
    if ref.ndim == 2:
        ref = ref.mean(axis=1)
    if clp.ndim == 2:
        clp = clp.mean(axis=1)
    for r in (reference_rate, clip_rate):
        if r <= 0:
            raise OffsetError(f"Invalid sample rate {r} Hz.")
    ref = np.nan_to_num(ref)
    clp = np.nan_to_num(clp)
    _check_signal(ref, reference_rate, "reference", s["min_duration_s"])
    _check_signal(clp, clip_rate, "clip", s["min_duration_s"])
    rate = int(s["analysis_rate_hz"])
    hi_band = min(band_high_hz or s["band_high_hz"], 0.45 * min(reference_rate, clip_rate, rate))
    band = (s["band_low_hz"], hi_band)
    warnings: list[str] = []
    if min(reference_rate, clip_rate) < 16000:
        warnings.append(f"Low sample rate ({min(reference_rate, clip_rate)} Hz): matched on 0-{hi_band:.0f} Hz only.")

    ref_a = _resample(ref, reference_rate, rate)
    clp_a = _resample(clp, clip_rate, rate)
    min_overlap = min(len(clp_a), len(ref_a), round(s["min_overlap_s"] * rate))
    lag_min, lag_max = -(len(clp_a) - min_overlap), len(ref_a) - min_overlap
    if max_offset is not None:
        lag_min = max(lag_min, -round(max_offset * rate))
        lag_max = min(lag_max, round(max_offset * rate))
        if lag_min > lag_max:
            raise OffsetError("No offset within --max-offset lets the two overlap.")

    coarse_ratio = coarse_psr = None
    if len(ref_a) + len(clp_a) > s["direct_max_s"] * rate:
        # two-stage: coarse lag on a decimated signal, then full resolution on an excerpt
        dec = int(s["coarse_rate_hz"])
        ref_c = _resample(ref_a, rate, dec)
        clp_c = _resample(clp_a, rate, dec)
        f = rate // dec
        _, corr_c, _ = _gcc_phat(ref_c, clp_c, dec, (s["band_low_hz"], 0.45 * dec),
                                 (lag_min // f, -(-lag_max // f)))
        pk = int(np.argmax(corr_c))
        coarse_ratio, coarse_psr = _peak_stats(corr_c, pk, max(2, round(s["main_lobe_ms"] * dec / 1000)))
        coarse_lag = (lag_min // f + pk) * f
        # the loudest excerpt of the clip that lies inside the reference at the coarse lag
        ex = round(s["excerpt_s"] * rate)
        lo_c = max(0, -coarse_lag)
        hi_c = min(len(clp_a), len(ref_a) - coarse_lag)
        start = _loudest_window(clp_a, rate, lo_c, hi_c, ex)
        piece = clp_a[start : start + ex]
        margin = round(s["coarse_margin_s"] * rate)
        r0 = max(0, coarse_lag + start - margin)
        r1 = min(len(ref_a), coarse_lag + start + len(piece) + margin)
        sub_ref = ref_a[r0:r1]
        cross, corr, n = _gcc_phat(sub_ref, piece, rate, band,
                                   (coarse_lag + start - r0 - margin, coarse_lag + start - r0 + margin))
        base = coarse_lag + start - r0 - margin
        shift = r0 - start  # lag on the excerpt -> lag of the whole clip
    else:
        cross, corr, n = _gcc_phat(ref_a, clp_a, rate, band, (lag_min, lag_max))
        base, shift = lag_min, 0

    peak = int(np.argmax(corr))
    exclude = max(3, round(s["main_lobe_ms"] * rate / 1000))
    ratio, psr = _peak_stats(corr, peak, exclude)
    if coarse_ratio is not None:
        ratio, psr = min(ratio, coarse_ratio), min(psr, coarse_psr)  # global uniqueness is what counts
    lag_int = base + peak
    frac = _parabola(corr[peak - 1], corr[peak], corr[peak + 1]) if 0 < peak < len(corr) - 1 else 0.0
    if method == "bandlimited":
        step = 1.0 / 8.0
        grid = lag_int + frac + step * np.arange(-4, 5)
        vals = _bandlimited_at(cross, n, grid)
        j = int(np.clip(np.argmax(vals), 1, len(vals) - 2))
        lag = float(grid[j] + step * _parabola(vals[j - 1], vals[j], vals[j + 1]))
    else:
        lag = float(lag_int + frac)
    lag += shift
    offset = lag / rate
    clip_dur = len(clp) / clip_rate
    ref_dur = len(ref) / reference_rate
    overlap = max(0.0, min(ref_dur, offset + clip_dur) - max(0.0, offset))
    conf = _confidence(ratio)
    matched = ratio >= s["min_peak_ratio"]
    result = OffsetResult(
        offset=offset, confidence=conf, peak_ratio=round(ratio, 4), psr=round(psr, 3),
        overlap=round(overlap, 4), rate=rate, reference_rate=int(reference_rate), clip_rate=int(clip_rate),
        method=method, warnings=warnings,
    )
    if clip_dur >= 2.5 * s["anchor_s"] and band_high_hz is None:
        # a long clip: check its start alone; drift smears the whole-clip peak (a weak match, or a
        # peak anywhere in the smear), so where they disagree the start wins
        anchored = _anchored_offset(ref_a, clp_a, rate, method=method, max_offset=max_offset)
        disagree = anchored is not None and abs(anchored.offset - offset) * 1000.0 > s["anchor_tolerance_ms"]
        if anchored is not None and (not matched or disagree):
            anchored.reference_rate, anchored.clip_rate = int(reference_rate), int(clip_rate)
            anchored.overlap = round(max(0.0, min(ref_dur, anchored.offset + clip_dur) - max(0.0, anchored.offset)), 4)
            anchored.warnings[:0] = warnings
            return anchored
    if not matched:
        msg = (f"The clip does not match the reference: no clear correlation peak (peak/second peak "
               f"{ratio:.2f}, needs >= {s['min_peak_ratio']:.2f}). Check that both are recordings of the "
               f"same take; the best guess would be {offset:+.4f} s.")
        if clip_dur >= 2.5 * s["anchor_s"]:
            msg += (" A long take recorded on another device can also drift too far (beyond ~200 ppm) to match: "
                    "try a shorter excerpt of the clip.")
        if refuse:
            raise OffsetError(msg)
        result.warnings.append(msg)
    if overlap < clip_dur - 1e-3:
        result.warnings.append(f"Only {overlap:.2f} s of the {clip_dur:.2f} s clip overlaps the reference.")
    return result


def _anchored_offset(
    ref_a: np.ndarray, clp_a: np.ndarray, rate: int, *, method: str, max_offset: float | None
) -> OffsetResult | None:
    """Offset of a long clip from its loudest ``anchor_s`` window alone (None when that does not match either).

    A long clip recorded on another device drifts against the reference (tens to hundreds of ppm:
    milliseconds over a minute), which smears the whole-clip correlation peak until it looks like no
    match. A short window matched on the low band only (a wider peak: a millisecond of smear within
    the window does not break it) still finds it. The clip's start offset is the window's offset minus
    the window's start (error: the drift over the window's distance from the start, e.g. 200 ppm x 6 s
    = 1.2 ms); the result says so in its warnings (measure the drift: core/drift.py).
    """
    s = settings()
    win = round(s["anchor_s"] * rate)
    # near the clip's start: the drift adds up from there, so an early window is the nearest to t = 0
    start = _loudest_window(clp_a, rate, 0, min(len(clp_a), 3 * win), win)
    try:
        found = estimate_offset_arrays(ref_a, rate, clp_a[start:start + win], rate, method=method,
                                       band_high_hz=s["anchor_band_high_hz"])
    except OffsetError:
        return None
    offset = found.offset - start / rate
    if max_offset is not None and abs(offset) > max_offset:
        return None
    found.offset = offset
    found.warnings.append(
        f"The whole clip does not line up sharply with the reference (clock drift between the two recorders, or "
        f"an edit): its offset comes from {s['anchor_s']:.0f} s at {start / rate:.1f} s. Measure the "
        "drift with: python -m lipsync_addon offset REFERENCE CLIP --drift"
    )
    return found


def _loudest_window(x: np.ndarray, rate: int, lo: int, hi: int, length: int) -> int:
    """Start index of the ``length``-sample window in x[lo:hi] with the most energy."""
    if hi - lo <= length:
        return max(0, lo)
    hop = rate // 10
    e = np.square(x[lo:hi], dtype=np.float64)
    c = np.concatenate([[0.0], np.cumsum(e)])
    starts = np.arange(0, hi - lo - length + 1, hop)
    energy = c[starts + length] - c[starts]
    return lo + int(starts[int(np.argmax(energy))])


def estimate_offset(reference: str | os.PathLike[str], clip: str | os.PathLike[str], *,
                    max_offset: float | None = None, method: str = "bandlimited",
                    refuse: bool = True) -> OffsetResult:
    """Offset (s) of the ``clip`` file on the timeline of the ``reference`` file (audio or video).

    See :func:`estimate_offset_arrays`; files that libsndfile cannot read (video containers, AAC)
    are decoded with FFmpeg (:func:`~lipsync_addon.core.audio.read_audio_file`).
    """
    ref, ref_rate = read_any(reference)
    clp, clp_rate = read_any(clip)
    return estimate_offset_arrays(ref, ref_rate, clp, clp_rate, max_offset=max_offset, method=method,
                                  refuse=refuse)
