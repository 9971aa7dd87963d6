"""Dialogue enhancement (bpy-free): high-pass, hum notch, noise reduction, speech EQ, loudness, true-peak limit.

Contract: ``enhance(audio, preset) -> Audio`` returns audio of the same rate and length, **sample-aligned
with the input** (every step is zero-phase or delay-compensated; a test checks it by cross-correlation),
so the lip-sync timing found on either signal is valid for both. ``enhance_array`` does the work on
mono or multichannel arrays and returns an :class:`EnhanceReport` (SNR before/after, loudness, peak,
steps applied). Presets and constants: ``presets.json``.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..types import Audio, CancelToken, ProgressFn, no_progress
from . import filters, spectral
from .rnnoise import EnhanceError, rnnoise_denoise

__all__ = ["DENOISERS", "NEURAL_DENOISERS", "PRESETS", "EnhanceError", "EnhanceReport", "analysis_options",
           "enhance", "enhance_array", "estimate_snr", "load_presets", "resolve_options"]

_DATA = Path(__file__).with_name("presets.json")
#: Noise reduction methods: "auto" picks per clip by measured SNR (see :func:`choose_denoiser`).
DENOISERS = ("auto", "none", "spectral", "wiener", "rnnoise", "hybrid", "deepfilter")
#: What "auto" uses on a noisy clip (preset key ``neural_denoiser``): RNNoise with a dry mix, or DeepFilterNet3.
NEURAL_DENOISERS = ("hybrid", "deepfilter")


def load_presets() -> dict[str, Any]:
    """The presets file as a dict (``presets``, ``defaults``, ``eq_bands``)."""
    return json.loads(_DATA.read_text(encoding="utf-8"))


PRESETS: tuple[str, ...] = tuple(load_presets()["presets"])


@dataclass
class EnhanceReport:
    """What the chain measured and did. Levels in dB / LUFS / dBTP; ``steps`` in order of application."""

    preset: str
    rate: int
    channels: int
    duration: float
    snr_before_db: float = 0.0
    snr_after_db: float = 0.0
    loudness_before_lufs: float = float("-inf")
    loudness_after_lufs: float = float("-inf")
    peak_before_dbtp: float = float("-inf")
    peak_after_dbtp: float = float("-inf")
    hum_hz: float = 0.0
    denoiser: str = "none"
    steps: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: wall seconds per stage ("analysis", "highpass", "hum", "denoise", "eq", "loudness", "limiter", "report")
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (infinite levels become None)."""
        out = asdict(self)
        for k, v in out.items():
            if isinstance(v, float):
                out[k] = None if not np.isfinite(v) else round(v, 3)
        out["timings"] = {k: round(v, 4) for k, v in self.timings.items()}
        return out


def resolve_options(preset: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Preset settings merged with ``overrides`` (same keys as in presets.json); validates names."""
    data = load_presets()
    if preset not in data["presets"]:
        raise EnhanceError(f"Unknown enhancement preset '{preset}'. Choose one of: {', '.join(data['presets'])}.")
    opts: dict[str, Any] = dict(data["defaults"])
    opts.update(data["presets"]["standard"])
    opts.update(data["presets"][preset])
    opts["eq_bands"] = data["eq_bands"]
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in opts:
            raise EnhanceError(f"Unknown enhancement option '{key}'. Known: {', '.join(sorted(opts))}.")
        opts[key] = value
    if opts["denoise"] is False:
        opts["denoise"] = "none"
    if opts["denoise"] not in DENOISERS:
        raise EnhanceError(f"Unknown denoiser '{opts['denoise']}'. Choose one of: {', '.join(DENOISERS)}.")
    if not 0.0 <= float(opts["deepfilter_blend"]) <= 1.0:
        raise EnhanceError(f"deepfilter_blend must be between 0 and 1, got {opts['deepfilter_blend']}.")
    if opts["neural_denoiser"] not in NEURAL_DENOISERS:
        raise EnhanceError(f"Unknown neural denoiser '{opts['neural_denoiser']}' for denoise=auto. Choose one of: "
                           f"{', '.join(NEURAL_DENOISERS)}.")
    return opts


def estimate_snr(samples: np.ndarray, rate: int) -> float:
    """Estimated SNR of a mono clip in dB: speech-frame power over noise from non-speech frames."""
    return _snr_and_speech(samples, rate)[0]


def _snr_and_speech(samples: np.ndarray, rate: int) -> tuple[float, bool]:
    """(estimated SNR in dB, whether any frame is speech) of a mono clip, from one STFT."""
    st = spectral.stft(np.asarray(samples, dtype=np.float64), rate)
    power = np.abs(st.spec) ** 2
    speech = spectral.frame_speech_mask(power)
    noise = spectral.estimate_noise(power, speech, st.hop / rate)
    return spectral.snr_db(power, noise, speech), bool(speech.any())


def _levels(samples: np.ndarray, rate: int) -> tuple[float, float]:
    """(true peak dBTP, integrated loudness LUFS) of ``samples``."""
    return filters.true_peak(samples, rate), filters.integrated_loudness(samples, rate)


def choose_denoiser(snr_db: float, clean_snr_db: float, neural: str = "hybrid") -> str:
    """Per-clip choice for ``denoise="auto"``: none above ``clean_snr_db`` (good recording), else the
    preset's ``neural`` denoiser ("hybrid" = RNNoise, or "deepfilter" = DeepFilterNet3)."""
    if snr_db >= clean_snr_db:
        return "none"
    return neural


def installed_denoiser(method: str) -> tuple[str, str]:
    """(``method``, "") when its library or weights can be loaded here, else (stand-in, note for the user).

    RNNoise ("hybrid", "rnnoise") needs the ``pyrnnoise`` wheel, which the macOS extension zips and
    some pip installs lack; DeepFilterNet3 needs the weights in ``models/deepfilternet3``. A missing
    RNNoise is replaced by DeepFilterNet3 (it sounds as clean or cleaner, docs/enhance.md), a missing
    DeepFilterNet3 by RNNoise, and the Wiener denoiser (numpy/scipy only) is the last resort. Only
    the presets' automatic choice falls back: a denoiser the user names explicitly is used or refused.
    """
    from . import deepfilter, rnnoise

    wants_rnnoise = method in ("hybrid", "rnnoise")
    if method != "deepfilter" and not wants_rnnoise:
        return method, ""  # numpy/scipy only: always there
    if rnnoise.available() if wants_rnnoise else deepfilter.available():
        return method, ""
    missing = "RNNoise" if wants_rnnoise else "DeepFilterNet3"
    if wants_rnnoise and deepfilter.available():
        return "deepfilter", (f"The {missing} denoiser is not available in this installation; DeepFilterNet3 "
                              "was used instead (it sounds as clean or cleaner, and takes about twice as long).")
    if not wants_rnnoise and rnnoise.available():
        return "hybrid", (f"The {missing} denoiser's weights are not available in this installation; RNNoise "
                          "was used instead (faster, a little less effective on loud noise).")
    return "wiener", ("The neural denoisers (RNNoise, DeepFilterNet3) are not available in this installation; "
                      "the Wiener denoiser was used instead (numpy/scipy only, somewhat less effective on loud "
                      "noise).")


def analysis_options(preset: str) -> dict[str, Any]:
    """Overrides for the copy of a clip that is *analysed* when ``preset`` enhances the sound.

    Measured with ``scripts/eval_noisy_align.py`` (docs/enhance.md): DeepFilterNet3 (the strong
    preset) sounds cleaner but its output aligns worse than RNNoise's (pooled F1@20 ms on the
    reference clips in exercise-bike noise 0.509 vs 0.608 at 10 dB, 0.403 vs 0.476 at 5 dB, equal at
    20 dB and clean), so the analysis keeps RNNoise where it can be loaded and the strip plays the
    DeepFilterNet3 output. Where RNNoise is missing (the macOS zips) the chain itself lets
    DeepFilterNet3 stand in (:func:`installed_denoiser`): it also aligns better than the Wiener filter
    (as the automatic denoised copy, 20 dB 0.752 vs 0.676, 10 dB 0.476 vs 0.431, 5 dB 0.377 vs
    0.327). Every output is sample-aligned with the input, so
    the timing holds for whichever signal plays.
    """
    from . import rnnoise

    if resolve_options(preset)["neural_denoiser"] == "deepfilter" and rnnoise.available():
        return {"neural_denoiser": "hybrid"}
    return {}  # where RNNoise is missing, the chain's own fallback (installed_denoiser) picks DeepFilterNet3


def _deepfilter_blend(method: str, blend: float) -> float:
    """Share of RNNoise's output mixed into DeepFilterNet3's (``deepfilter_blend``); 0 for other denoisers
    or where RNNoise is not installed (DeepFilterNet3 alone is then used, as before the blend)."""
    from . import rnnoise

    return blend if method == "deepfilter" and blend > 0.0 and rnnoise.available() else 0.0


def denoise(samples: np.ndarray, rate: int, method: str, *, floor_db: float = -15.0,
            cancel: CancelToken | None = None) -> np.ndarray:
    """Noise reduction of a mono clip with ``method`` (see :data:`DENOISERS`, not "auto"); same length, aligned.

    "hybrid" is RNNoise (which :func:`enhance_array` follows with a small dry mix, see
    ``denoise_dry_db``); "wiener" and "spectral" are the classical STFT methods with noise
    estimated on non-speech frames and a gain floor of ``floor_db`` dB.
    """
    x = np.asarray(samples, dtype=np.float64)
    if method == "none":
        return x.astype(np.float32)
    if method in ("rnnoise", "hybrid"):
        return rnnoise_denoise(x, rate, cancel=cancel)[0]
    if method == "deepfilter":
        from .deepfilter import deepfilter_denoise

        return deepfilter_denoise(x, rate, cancel=cancel)
    st = spectral.stft(x, rate)
    power = np.abs(st.spec) ** 2
    speech = spectral.frame_speech_mask(power)
    noise = spectral.estimate_noise(power, speech, st.hop / rate)
    if method == "spectral":
        gain = spectral.subtraction_gain(power, noise, floor_db=floor_db)
    else:
        gain = spectral.wiener_gain(power, noise, floor_db=floor_db, cancel=cancel)
    return spectral.istft(st, st.spec * gain)


def _as_2d(samples: np.ndarray) -> np.ndarray:
    x = np.asarray(samples)
    if x.ndim == 1:
        return x[:, None]
    if x.ndim != 2:
        raise EnhanceError(f"Expected mono or (samples, channels) audio, got an array of shape {x.shape}.")
    return x


def enhance_array(
    samples: np.ndarray,
    rate: int,
    preset: str = "standard",
    *,
    options: dict[str, Any] | None = None,
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
) -> tuple[np.ndarray, EnhanceReport]:
    """Run the enhancement chain on ``samples`` (float, mono (n,) or (n, channels), ``rate`` Hz).

    Args:
        samples: audio in [-1, 1]; any rate; NaN/inf are replaced by 0.
        rate: sample rate in Hz.
        preset: "off", "light", "standard" or "strong".
        options: per-step overrides, e.g. {"denoise": "wiener", "eq": False, "loudness_lufs": -23}.
        progress: progress(fraction, stage).
        cancel: checked between steps and inside the denoisers.

    Returns:
        (enhanced float32 array of the same shape, :class:`EnhanceReport`). Never shifts timing.
    """
    t0 = time.perf_counter()
    token = cancel or CancelToken()
    opts = resolve_options(preset, options)
    if rate <= 0:
        raise EnhanceError(f"Invalid sample rate {rate} Hz.")
    x2 = np.nan_to_num(_as_2d(samples).astype(np.float64), nan=0.0, posinf=1.0, neginf=-1.0)
    n, channels = x2.shape
    report = EnhanceReport(preset=preset, rate=int(rate), channels=channels, duration=n / rate)
    if n == 0:
        raise EnhanceError("The clip has no samples: nothing to enhance.")
    if not np.any(x2):
        report.warnings.append("The clip is digital silence: nothing to enhance, output = input.")
        report.steps.append({"step": "all", "applied": False, "reason": "digital silence"})
        report.seconds = time.perf_counter() - t0
        return x2.astype(np.float32).reshape(np.shape(samples)), report
    # Measurements that only go into the report run on a second thread, beside the chain (numpy,
    # scipy and the RNNoise library release the GIL, so they share the cores).
    side = ThreadPoolExecutor(max_workers=1, thread_name_prefix="enhance-measure")
    try:
        out = _chain(x2, rate, opts, report, side=side, progress=progress, token=token, t0=t0)
        return out.reshape(np.shape(samples)), report
    finally:
        side.shutdown(wait=True, cancel_futures=True)


def _chain(x2: np.ndarray, rate: int, opts: dict[str, Any], report: EnhanceReport, *, side: ThreadPoolExecutor,
           progress: ProgressFn, token: CancelToken, t0: float) -> np.ndarray:
    """The steps of :func:`enhance_array` on a non-silent (n, channels) float64 clip; fills ``report``."""
    n, channels = x2.shape
    mark = [t0]

    def lap(stage: str) -> None:
        now = time.perf_counter()
        report.timings[stage] = report.timings.get(stage, 0.0) + now - mark[0]
        mark[0] = now

    levels_before = side.submit(_levels, x2, rate)
    mono = x2.mean(axis=1)
    clipped = float(np.mean(np.abs(x2) >= opts["clip_level"]))
    if clipped > 1e-4:
        report.warnings.append(f"The clip is clipped ({clipped * 100:.2f} % of samples at full scale); "
                               "clipping is not repaired, re-record or lower the input gain if possible.")
    short = n / rate < 0.5
    if short:
        report.warnings.append(f"Very short clip ({n / rate * 1000:.0f} ms): noise is estimated from very "
                               "little audio and hum detection is skipped.")
    report.snr_before_db, has_speech = _snr_and_speech(mono, rate)
    speechless = not has_speech
    y = x2.copy()
    total_steps = 6.0
    lap("analysis")

    def step_done(k: int, name: str) -> None:
        token.check()
        progress(k / total_steps, name)

    # A good recording is left (nearly) alone: no denoising or EQ, high-pass only for DC / deep rumble.
    good = report.snr_before_db >= float(opts["clean_snr_db"])
    # 1. DC + rumble
    dc = float(np.abs(x2.mean(axis=0)).max())
    if opts["highpass"]:
        cutoff = min(float(opts["highpass_hz"]), float(opts["clean_highpass_hz"])) if good else opts["highpass_hz"]
        y = np.stack([filters.highpass(y[:, c], rate, float(cutoff)) for c in range(channels)], 1)
        report.steps.append({"step": "highpass", "applied": True, "cutoff_hz": cutoff, "dc_removed": round(dc, 5)})
    else:
        report.steps.append({"step": "highpass", "applied": False})
    step_done(1, "high-pass")
    lap("highpass")
    # 2. hum
    if opts["hum"] and not short:
        base, freqs = filters.detect_hum(y.mean(axis=1), rate)
        report.hum_hz = base
        if freqs:
            y = np.stack([filters.notch(y[:, c], rate, freqs) for c in range(channels)], 1)
        report.steps.append({"step": "hum", "applied": bool(freqs), "fundamental_hz": base,
                             "notches_hz": freqs})
    else:
        report.steps.append({"step": "hum", "applied": False})
    step_done(2, "hum")
    lap("hum")
    # 2b. room echo (opt-in): WPE removes the late reverberation; the direct sound keeps its timing
    if opts["dereverb"] and not speechless and not short:
        from .dereverb import wpe

        y = np.stack([wpe(y[:, c], rate, cancel=token) for c in range(channels)], 1).astype(np.float64)
        report.steps.append({"step": "dereverb", "applied": True, "method": "wpe"})
    else:
        report.steps.append({"step": "dereverb", "applied": False})
    lap("dereverb")
    # 3. noise reduction
    method = str(opts["denoise"])
    if speechless:
        report.warnings.append("No speech was detected (silence, steady noise or tone only).")
    if method == "auto":
        method = choose_denoiser(report.snr_before_db, float(opts["clean_snr_db"]), str(opts["neural_denoiser"]))
        reason = (f"estimated SNR {report.snr_before_db:.1f} dB >= {opts['clean_snr_db']} dB: good recording, "
                  "left alone" if method == "none" else f"estimated SNR {report.snr_before_db:.1f} dB")
        method, note = installed_denoiser(method)
        if note:
            report.warnings.append(note)
            reason += f"; {method} stands in for the preset's denoiser, which is not installed"
    else:
        reason = "chosen by the user"
    dry_db = opts["denoise_dry_db"] if method in ("hybrid", "deepfilter") else None
    blend = _deepfilter_blend(method, float(opts["deepfilter_blend"]))
    if method != "none":
        den = np.stack([denoise(y[:, c], rate, method, floor_db=float(opts["denoise_floor_db"]), cancel=token)
                        for c in range(channels)], 1).astype(np.float64)
        if blend > 0.0:  # two denoisers' different errors partly cancel (measured: STOI +0.006, PESQ same)
            rnn = np.stack([rnnoise_denoise(y[:, c], rate, cancel=token)[0] for c in range(channels)], 1)
            den = (1.0 - blend) * den + blend * rnn.astype(np.float64)
        # a little of the unprocessed signal masks denoiser artefacts (measured: +0.13 PESQ-WB)
        y = den + (10.0 ** (float(dry_db) / 20.0) * y if dry_db is not None else 0.0)
    report.denoiser = method
    report.steps.append({"step": "denoise", "applied": method != "none", "method": method, "reason": reason,
                         "floor_db": opts["denoise_floor_db"], "dry_db": dry_db,
                         **({"rnnoise_blend": blend} if blend > 0.0 else {})})
    step_done(3, "noise reduction")
    lap("denoise")
    # 4. speech EQ
    use_eq = bool(opts["eq"]) and not (good and opts["denoise"] == "auto")
    if use_eq:
        y = np.stack([filters.speech_eq(y[:, c], rate, opts["eq_bands"]) for c in range(channels)], 1)
    report.steps.append({"step": "eq", "applied": use_eq, "bands": opts["eq_bands"] if use_eq else [],
                         **({"reason": "good recording, left alone"} if opts["eq"] and not use_eq else {})})
    step_done(4, "EQ")
    lap("eq")
    # 5. loudness
    if opts["loudness"]:
        measured = filters.integrated_loudness(y, rate)
        target = float(opts["loudness_lufs"])
        if not np.isfinite(measured):
            report.steps.append({"step": "loudness", "applied": False, "reason": "too quiet to measure"})
        elif speechless:
            report.steps.append({"step": "loudness", "applied": False,
                                 "reason": "no speech detected: not raising noise to dialogue level"})
        else:
            gain_db = target - measured
            cap = float(opts["loudness_max_gain_db"])
            if gain_db > cap:
                report.warnings.append(f"Very quiet clip: gain limited to +{cap:.0f} dB "
                                       f"(would need +{gain_db:.1f} dB for {target} LUFS).")
                gain_db = cap
            y = y * 10.0 ** (gain_db / 20.0)
            report.steps.append({"step": "loudness", "applied": True, "target_lufs": target,
                                 "measured_lufs": round(measured, 2), "gain_db": round(gain_db, 2)})
    else:
        report.steps.append({"step": "loudness", "applied": False})
    step_done(5, "loudness")
    lap("loudness")
    # 6. true-peak limiter (always keeps the output inside full scale)
    ceiling = float(opts["limiter_dbtp"]) if opts["limiter"] else 0.0
    y, limited = filters.limit_true_peak(y, rate, ceiling)
    report.steps.append({"step": "limiter", "applied": bool(opts["limiter"]) or limited > 0,
                         "ceiling_dbtp": ceiling, "samples_limited": limited})
    step_done(6, "limiter")
    lap("limiter")

    out = np.clip(y, -1.0, 1.0).astype(np.float32)
    levels_after = side.submit(_levels, out, rate)
    report.snr_after_db = estimate_snr(out.mean(axis=1).astype(np.float64), rate)
    report.peak_before_dbtp, report.loudness_before_lufs = levels_before.result()
    report.peak_after_dbtp, report.loudness_after_lufs = levels_after.result()
    lap("report")
    report.seconds = time.perf_counter() - t0
    return out


def enhance(audio: Audio, preset: str = "standard", *, options: dict[str, Any] | None = None,
            progress: ProgressFn = no_progress, cancel: CancelToken | None = None) -> Audio:
    """Enhanced copy of ``audio`` (same rate, same length, sample-aligned). See :func:`enhance_array`."""
    out, _ = enhance_array(audio.samples, audio.rate, preset, options=options, progress=progress, cancel=cancel)
    return Audio(samples=out, rate=audio.rate, source_path=audio.source_path,
                 source_rate=audio.source_rate, source_channels=audio.source_channels)
