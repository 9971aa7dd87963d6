"""Procedural face layers (blink, brows, head) driven by prosody; bpy-free.

Prosody (:func:`analyze_prosody`) comes from the analysis signal and the aligned
:class:`~lipsync_addon.core.types.Transcript`: frame energy, pitch (normalized
autocorrelation, no librosa), pauses, phrase ends, stressed syllables
(``Phone.stress == 1``), emphasis and question final rises.

:func:`face_curves` turns it into seeded channels sampled at the frame rate:

* ``eye_blink_L`` / ``eye_blink_R`` in [0, 1] (1 = closed),
* ``brow_up`` / ``brow_down`` in [0, 1],
* ``head_pitch`` / ``head_yaw`` / ``head_roll`` in signed radians (bone local X / Y / Z).

Same input + same seed = same output. Every constant lives in data/procedural.json;
rig names in data/face_targets.json (:func:`map_face_to_shape_keys`, :func:`find_head_bone`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ..types import Curves, FaceConfig, LipSyncError, Transcript
from .coarticulation import sample_times

_DATA = Path(__file__).with_name("data")

#: Layer name -> the canonical channels it owns.
LAYER_CHANNELS: dict[str, tuple[str, ...]] = {
    "blink": ("eye_blink_L", "eye_blink_R"),
    "brows": ("brow_up", "brow_down"),
    "head": ("head_pitch", "head_yaw", "head_roll"),
}
#: Channels whose values are signed radians (not [0, 1] weights).
ROTATION_CHANNELS = LAYER_CHANNELS["head"]
LEVELS = ("subtle", "natural", "expressive")


@cache
def constants() -> dict[str, Any]:
    """The procedural constants and level presets (data/procedural.json)."""
    return json.loads((_DATA / "procedural.json").read_text(encoding="utf-8"))


@cache
def targets() -> dict[str, Any]:
    """Shape-key groups and head bone names (data/face_targets.json)."""
    return json.loads((_DATA / "face_targets.json").read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- prosody


@dataclass
class Prosody:
    """Prosodic analysis of one clip on a regular frame grid.

    Attributes:
        hop: frame step in seconds.
        energy_db: frame RMS level in dB (full scale), shape (n,).
        pitch_st: pitch in semitones re 100 Hz, NaN where unvoiced, shape (n,).
        speaking: True where a word is being spoken, shape (n,).
        pauses: (start, end) seconds of silences at least ``pause_min_s`` long (edges included).
        phrase_ends: times (s) where a phrase ends (word end followed by a phrase pause, or last word).
        stresses: (time s, emphasis z-score, pitch z-score) per primary-stressed vowel.
        questions: end times (s) of phrases ending in a pitch rise.
        duration: clip length in seconds.
    """

    hop: float
    energy_db: np.ndarray
    pitch_st: np.ndarray
    speaking: np.ndarray
    pauses: list[tuple[float, float]] = field(default_factory=list)
    phrase_ends: list[float] = field(default_factory=list)
    stresses: list[tuple[float, float, float]] = field(default_factory=list)
    questions: list[float] = field(default_factory=list)
    duration: float = 0.0


def _frames(samples: np.ndarray, win: int, hop: int) -> np.ndarray:
    n = max(0, 1 + (len(samples) - win) // hop)
    if n == 0:
        return np.zeros((0, win), dtype=np.float32)
    return np.lib.stride_tricks.sliding_window_view(samples, win)[::hop][:n]


def estimate_pitch(
    samples: np.ndarray, rate: int, *, hop_s: float, window_s: float, f0_min: float, f0_max: float, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Frame pitch by normalized autocorrelation (FFT), with parabolic peak refinement.

    Args:
        samples: mono float samples.
        rate: sample rate in Hz.
        hop_s / window_s: frame step and length in seconds.
        f0_min / f0_max: search range in Hz.
        threshold: minimum normalized autocorrelation peak for a voiced frame (0..1).

    Returns:
        (f0 in Hz with NaN where unvoiced, frame RMS), one value per frame centred at ``k * hop_s``.
    """
    hop, win = max(1, round(hop_s * rate)), max(8, round(window_s * rate))
    padded = np.pad(np.asarray(samples, dtype=np.float32), (win // 2, win // 2))
    frames = _frames(padded, win, hop).astype(np.float64)
    if len(frames) == 0:
        return np.zeros(0), np.zeros(0)
    frames = frames - frames.mean(axis=1, keepdims=True)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    nfft = 1 << int(np.ceil(np.log2(2 * win)))
    spec = np.fft.rfft(frames * np.hanning(win), nfft, axis=1)
    ac = np.fft.irfft(np.abs(spec) ** 2, nfft, axis=1)[:, :win]
    ac /= np.maximum(ac[:, :1], 1e-12)
    # correct the window's own autocorrelation taper
    wac = np.fft.irfft(np.abs(np.fft.rfft(np.hanning(win), nfft)) ** 2, nfft)[:win]
    ac /= np.maximum(wac / wac[0], 1e-3)
    lo, hi = int(rate / f0_max), min(win - 2, int(rate / f0_min))
    seg = ac[:, lo:hi]
    k = np.argmax(seg, axis=1)
    peak = seg[np.arange(len(seg)), k]
    lag = (k + lo).astype(np.float64)
    a, b, c = ac[np.arange(len(ac)), lag.astype(int) - 1], peak, ac[np.arange(len(ac)), lag.astype(int) + 1]
    denom = a - 2 * b + c
    shift = np.where(np.abs(denom) > 1e-12, 0.5 * (a - c) / np.where(denom == 0, 1, denom), 0.0)
    lag = lag + np.clip(shift, -0.5, 0.5)
    f0 = rate / lag
    f0[peak < threshold] = np.nan
    return f0, rms


def _zscore(values: np.ndarray) -> np.ndarray:
    finite = values[np.isfinite(values)]
    if len(finite) < 2:
        return np.zeros_like(values)
    sd = float(np.std(finite)) or 1.0
    return (values - float(np.median(finite))) / sd


def analyze_prosody(samples: np.ndarray, rate: int, transcript: Transcript) -> Prosody:
    """Energy, pitch, pauses, phrase ends, stressed syllables and questions of one clip.

    Args:
        samples: mono float samples of the analysis signal.
        rate: their sample rate in Hz.
        transcript: the aligned words and phones (seconds).

    Returns:
        A :class:`Prosody` on a ``hop_s`` grid (data/procedural.json).
    """
    c = constants()["prosody"]
    duration = float(len(samples)) / float(rate) if rate else 0.0
    duration = max(duration, float(transcript.duration or 0.0))
    f0, rms = estimate_pitch(
        samples, rate, hop_s=c["hop_s"], window_s=c["window_s"], f0_min=c["f0_min_hz"], f0_max=c["f0_max_hz"],
        threshold=c["voicing_threshold"],
    )
    hop = float(c["hop_s"])
    energy_db = 20.0 * np.log10(np.maximum(rms, 1e-6))
    peak_db = float(np.percentile(energy_db, 99)) if len(energy_db) else 0.0
    f0[energy_db < peak_db + c["energy_floor_db"]] = np.nan
    pitch_st = 12.0 * np.log2(f0 / 100.0)
    n = len(energy_db)
    t = np.arange(n) * hop
    speaking = np.zeros(n, dtype=bool)
    words = sorted(transcript.words, key=lambda w: w.start)
    for w in words:
        speaking[(t >= w.start) & (t < w.end)] = True

    # pauses: gaps between words (and the clip edges) of at least pause_min_s
    pauses: list[tuple[float, float]] = []
    edges = [0.0] + [x for w in words for x in (w.start, w.end)] + [duration]
    for a, b in zip(edges[0::2], edges[1::2], strict=False):
        if b - a >= c["pause_min_s"]:
            pauses.append((a, b))
    phrase_ends = [
        w.end for i, w in enumerate(words)
        if i == len(words) - 1 or words[i + 1].start - w.end >= c["phrase_pause_s"]
    ]

    pz, ez = _zscore(pitch_st), _zscore(energy_db)
    stresses: list[tuple[float, float, float]] = []
    for p in transcript.phones:
        if p.stress != 1 or p.is_silence:
            continue
        sel = (t >= p.start) & (t < max(p.end, p.start + hop))
        if not sel.any():
            continue
        e = float(np.nanmax(ez[sel]))
        pv = pz[sel]
        pitch_z = float(np.nanmean(pv)) if np.isfinite(pv).any() else 0.0
        emphasis = 0.6 * e + 0.4 * abs(pitch_z)
        stresses.append((0.5 * (p.start + p.end), emphasis, pitch_z))

    questions: list[float] = []
    for end in phrase_ends:
        sel = (t >= end - c["question_window_s"]) & (t < end) & np.isfinite(pitch_st)
        if sel.sum() < 8:
            continue
        slope = np.polyfit(t[sel], pitch_st[sel], 1)[0] * c["question_window_s"]
        if slope >= c["question_rise_semitones"]:
            questions.append(end)
    return Prosody(hop, energy_db, pitch_st, speaking, pauses, phrase_ends, stresses, questions, duration)


# --------------------------------------------------------------------------- layers


def _level(face: FaceConfig) -> dict[str, float]:
    levels = constants()["levels"]
    if face.level not in levels:
        raise LipSyncError(f"Unknown face motion level '{face.level}'. Choose one of: {', '.join(levels)}.")
    return levels[face.level]


def blink_events(prosody: Prosody, rate_per_min: float, rng: np.random.Generator) -> list[tuple[float, float]]:
    """Blink (start s, duration s) events at about ``rate_per_min`` with natural spacing.

    Intervals are gamma-distributed; time is warped by a likelihood that is boosted in pauses and
    at phrase ends and lowered mid-word (normalized to mean 1 over the clip, so the rate holds for
    any clip); blinks closer than ``min_interval_s`` are dropped.
    """
    c = constants()["blink"]
    step, duration = float(c["step_s"]), prosody.duration
    n = int(duration / step)
    if n <= 0:
        return []
    t = np.arange(n) * step
    mod = np.ones(n)
    idx = np.minimum((t / prosody.hop).astype(int), len(prosody.speaking) - 1) if len(prosody.speaking) else None
    if idx is not None:
        mod[prosody.speaking[idx]] = c["mid_word_factor"]
    for a, b in prosody.pauses:
        mod[(t >= a) & (t < b)] = c["pause_boost"]
    for end in prosody.phrase_ends:
        mod[(t >= end) & (t < end + c["phrase_end_window_s"])] = c["phrase_end_boost"]
    mod /= mod.mean()
    # Gamma-distributed intervals (natural spacing) in "hazard time" Lambda(t) = cumsum(mod) dt,
    # mapped back to clock time: the mean rate holds (Lambda(T) = T) and blinks gather where mod is high.
    warped = np.concatenate([[0.0], np.cumsum(mod) * step])
    shape = float(c["interval_gamma_shape"])
    mean_gap = 60.0 / (rate_per_min * float(c["rate_compensation"]))
    count = int(duration / mean_gap * 3) + 4
    marks = np.cumsum(rng.gamma(shape, mean_gap / shape, size=count)) - float(rng.uniform(0.0, mean_gap))
    marks = marks[(marks >= 0.0) & (marks < warped[-1])]
    starts = np.interp(marks, warped, np.arange(n + 1) * step)
    durations = rng.uniform(c["duration_s"][0], c["duration_s"][1], size=len(starts))
    events: list[tuple[float, float]] = []
    free_at = 0.0
    for start, dur in zip(starts, durations, strict=True):
        if start < free_at or start + dur > duration:
            continue
        events.append((float(start), float(dur)))
        free_at = start + dur + float(c["min_interval_s"])
    return events


def _blink_shape(times: np.ndarray, start: float, dur: float, close_f: float, hold_f: float) -> np.ndarray:
    """Eyelid closure (0 open .. 1 closed) of one blink: fast smooth close, hold, slower ease-out open."""
    u = (times - start) / dur
    close_end, hold_end = close_f, close_f + hold_f
    out = np.zeros_like(times)
    a = (u >= 0) & (u < close_end)
    x = u[a] / close_end
    out[a] = x * x * (3 - 2 * x)
    out[(u >= close_end) & (u < hold_end)] = 1.0
    b = (u >= hold_end) & (u < 1)
    y = (u[b] - hold_end) / (1 - hold_end)
    out[b] = (1 - y) ** 2
    return out


def _pulse(times: np.ndarray, at: float, attack: float, decay: float) -> np.ndarray:
    """Smooth rise over ``attack`` s to 1 at ``at``, exponential-ish fall over ``decay`` s."""
    out = np.zeros_like(times)
    r = (times >= at - attack) & (times < at)
    x = (times[r] - (at - attack)) / attack
    out[r] = x * x * (3 - 2 * x)
    f = times >= at
    out[f] = np.exp(-((times[f] - at) / decay) ** 2)
    return out


def limit_motion(target: np.ndarray, dt: float, v_max: float, a_max: float) -> np.ndarray:
    """Follow ``target`` with |velocity| <= v_max and |acceleration| <= a_max (per step dt).

    Time-optimal tracking: the wanted velocity is the one that can still stop on the target
    (``sqrt(2 a |e|)``), clamped to ``v_max`` and changed by at most ``a_max * dt`` per step.
    """
    out = np.empty_like(target)
    x, v = float(target[0]) if len(target) else 0.0, 0.0
    dv_max = a_max * dt
    for k, goal in enumerate(target):
        e = float(goal) - x
        stop = np.sqrt(2.0 * a_max * abs(e)) * 0.9
        want = np.sign(e) * min(v_max, stop, abs(e) / dt)
        v += float(np.clip(want - v, -dv_max, dv_max))
        x += v * dt
        out[k] = x
    return out


def face_curves(
    prosody: Prosody, face: FaceConfig, *, fps: float, seed: int | None = None
) -> Curves:
    """The enabled procedural layers sampled at ``fps`` (frames per second).

    Args:
        prosody: from :func:`analyze_prosody`.
        face: layers on/off, per-layer strength (0..2), level preset, seed.
        fps: output sample rate (frames per second).
        seed: overrides ``face.seed``.

    Returns:
        Curves whose channels are the canonical names of the enabled layers
        (:data:`LAYER_CHANNELS`): weights in [0, 1], head angles in radians.
    """
    level = _level(face)
    times = sample_times(prosody.duration, fps)
    curves = Curves(times=times, rate=float(fps))
    root = np.random.SeedSequence(int(face.seed if seed is None else seed))
    rng_blink, rng_brow, rng_head = (np.random.default_rng(s) for s in root.spawn(3))
    if face.blink:
        c = constants()["blink"]
        left, right = np.zeros_like(times), np.zeros_like(times)
        for start, dur in blink_events(prosody, level["blink_rate_per_min"], rng_blink):
            delay = float(rng_blink.uniform(-c["asymmetry_delay_s"], c["asymmetry_delay_s"]))
            amp = 1.0 - float(rng_blink.uniform(0, c["asymmetry_amplitude"]))
            left = np.maximum(left, _blink_shape(times, start, dur, c["close_fraction"], c["hold_fraction"]))
            right = np.maximum(
                right, amp * _blink_shape(times, start + delay, dur, c["close_fraction"], c["hold_fraction"])
            )
        s = float(face.blink_strength)
        curves.channels["eye_blink_L"] = np.clip(left * s, 0.0, 1.0)
        curves.channels["eye_blink_R"] = np.clip(right * s, 0.0, 1.0)
    if face.brows:
        curves.channels.update(_brows(prosody, times, level["brows"] * face.brows_strength, rng_brow))
    if face.head:
        curves.channels.update(_head(prosody, times, fps, level["head"] * face.head_strength, rng_head))
    return curves


def _brows(prosody: Prosody, times: np.ndarray, scale: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    c = constants()["brows"]
    z0 = float(c["emphasis_z"])
    up, down = np.zeros_like(times), np.zeros_like(times)
    last = -1e9
    for at, emphasis, pitch_z in prosody.stresses:
        if emphasis < z0 or at - last < c["min_gap_s"]:
            continue
        last = at
        amount = min(1.0, (emphasis - z0 + 0.5)) * float(rng.uniform(0.8, 1.0))
        shape = _pulse(times, at, c["attack_s"], c["decay_s"])
        if pitch_z <= c["low_pitch_z"]:
            down = np.maximum(down, c["furrow_amplitude"] * amount * shape)
        else:
            up = np.maximum(up, c["raise_amplitude"] * amount * shape)
    for end in prosody.questions:
        up = np.maximum(up, c["question_raise"] * _pulse(times, end - 0.1, 0.3, 0.6))
    return {"brow_up": np.clip(up * scale, 0.0, 1.0), "brow_down": np.clip(down * scale, 0.0, 1.0)}


def _head(
    prosody: Prosody, times: np.ndarray, fps: float, scale: float, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    c, z0 = constants()["head"], constants()["prosody"]["emphasis_z"]
    n = len(times)
    target = np.zeros((3, n))
    # activity envelope: 1 while speaking, settling to 0 over settle_time_s in silence
    if len(prosody.speaking):
        idx = np.minimum((times / prosody.hop).astype(int), len(prosody.speaking) - 1)
        active = prosody.speaking[idx].astype(np.float64)
    else:
        active = np.zeros(n)
    alpha = 1.0 - np.exp(-1.0 / (max(fps, 1e-3) * c["settle_time_s"]))
    env = np.empty(n)
    level = 0.0
    for k in range(n):
        level += alpha * (active[k] - level)
        env[k] = level
    # slow drift: sum of low-frequency sinusoids with seeded phases, scaled by activity
    for axis in range(3):
        phase = rng.uniform(0, 2 * np.pi, size=len(c["drift_frequencies_hz"]))
        drift = sum(
            np.sin(2 * np.pi * f * times + p) for f, p in zip(c["drift_frequencies_hz"], phase, strict=True)
        ) / len(c["drift_frequencies_hz"])
        target[axis] += c["drift_amplitude_rad"][axis] * drift * (0.3 + 0.7 * env)
    # nods (pitch) and tilts (roll) on stressed syllables
    last = -1e9
    for at, emphasis, _pitch_z in prosody.stresses:
        if at - last < c["min_gap_s"]:
            continue
        last = at
        w = float(np.clip(0.4 + 0.6 * (emphasis - z0 + 0.5), 0.2, 1.0)) * float(rng.uniform(0.7, 1.0))
        shape = _pulse(times, at, c["nod_attack_s"], c["nod_release_s"])
        target[0] += c["nod_amplitude_rad"] * w * shape
        target[2] += c["tilt_amplitude_rad"] * w * float(rng.choice([-1.0, 1.0])) * shape
        target[1] += c["turn_amplitude_rad"] * w * float(rng.uniform(-1, 1)) * shape
    target *= scale
    dt = 1.0 / fps
    out = {}
    for axis, name in enumerate(ROTATION_CHANNELS):
        out[name] = limit_motion(
            target[axis], dt, c["max_velocity_rad_s"] * max(scale, 1.0), c["max_acceleration_rad_s2"] * max(scale, 1.0)
        ) if n else target[axis]
    return out


# --------------------------------------------------------------------------- rig targets


def map_face_to_shape_keys(curves: Curves, shape_keys: list[str]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Canonical face channels -> the rig's shape keys (data/face_targets.json).

    For each layer the first name group with at least one shape key on the rig wins; only
    names the rig has are returned. A both-eyes blink key gets the mean of the two eyes.

    Returns:
        (shape key -> values in [0, 1], shape key -> owning layer name).
    """
    have = set(shape_keys)
    out: dict[str, np.ndarray] = {}
    owner: dict[str, str] = {}
    for layer, groups in targets()["shape_keys"].items():
        if not any(ch in curves.channels for ch in LAYER_CHANNELS[layer]):
            continue
        for group in groups:
            if not any(name in have for spec in group.values() for name in spec):
                continue
            for canonical, spec in group.items():
                if canonical == "eye_blink":
                    src = 0.5 * (curves.channels["eye_blink_L"] + curves.channels["eye_blink_R"])
                else:
                    src = curves.channels[canonical]
                for name, weight in spec.items():
                    if name in have:
                        values = np.clip(src * float(weight), 0.0, 1.0)
                        out[name] = np.maximum(out[name], values) if name in out else values
                        owner[name] = layer
            break
    return out, owner


def find_head_bone(bone_names: list[str]) -> str:
    """The head (else neck) bone among ``bone_names`` by Rigify/Mixamo/CC4/VRM naming, or ""."""
    have = set(bone_names)
    return next((b for b in targets()["head_bones"] if b in have), "")
