"""Procedural face layers (blink, brows, head, gaze, expression) driven by prosody; bpy-free.

Prosody (:func:`analyze_prosody`) comes from the analysis signal and the aligned
:class:`~lipsync_addon.core.types.Transcript`: frame energy, pitch (normalized
autocorrelation, no librosa), pauses, phrase ends, stressed syllables
(``Phone.stress == 1``), emphasis and question final rises.

:func:`face_curves` turns it into seeded channels sampled at the frame rate:

* ``eye_blink_L`` / ``eye_blink_R`` in [0, 1] (1 = closed),
* ``brow_up`` / ``brow_down`` in [0, 1],
* ``head_pitch`` / ``head_yaw`` / ``head_roll`` in signed radians (bone local X / Y / Z),
* ``eye_yaw`` / ``eye_pitch`` in signed radians, both eyes (positive yaw = the character looks to
  its own left, positive pitch = up): fixations and saccades (:func:`gaze_saccades`),
* ``smile`` or ``serious`` in [0, 1]: the chosen held expression with slow variation.

Same input + same seed = same output. Every constant lives in data/procedural.json;
rig names in data/face_targets.json (:func:`map_face_to_shape_keys`, :func:`find_head_bone`,
:func:`find_eye_bones`).
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
    "gaze": ("eye_yaw", "eye_pitch"),
    "expression": ("smile", "serious"),
}
#: The head rotation channels (signed radians, bone local X / Y / Z).
ROTATION_CHANNELS = LAYER_CHANNELS["head"]
#: The eye rotation channels (signed radians; yaw + = to the character's left, pitch + = up).
GAZE_CHANNELS = LAYER_CHANNELS["gaze"]
#: Channels whose values are signed radians (not [0, 1] weights).
SIGNED_CHANNELS = ROTATION_CHANNELS + GAZE_CHANNELS
LEVELS = ("subtle", "natural", "expressive")
EXPRESSIONS = ("neutral", "smile", "serious")


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
        phrase_starts: times (s) where a phrase starts (first word, or a word after a phrase pause).
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
    phrase_starts: list[float] = field(default_factory=list)

    def speaking_at(self, t: float) -> bool:
        """True if a word is being spoken at time ``t`` (s)."""
        if not len(self.speaking):
            return False
        return bool(self.speaking[min(max(int(t / self.hop), 0), len(self.speaking) - 1)])


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
    phrase_starts = [
        w.start for i, w in enumerate(words)
        if i == 0 or w.start - words[i - 1].end >= c["phrase_pause_s"]
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

    questions = _final_rises(t, _without_octave_jumps(pitch_st), phrase_ends, c)
    return Prosody(
        hop, energy_db, pitch_st, speaking, pauses, phrase_ends, stresses, questions, duration, phrase_starts
    )


def _without_octave_jumps(pitch_st: np.ndarray, *, max_jump: float = 7.0, min_frames: int = 8) -> np.ndarray:
    """Pitch (semitones) with short stretches an octave-ish away from their neighbours dropped.

    Autocorrelation pitch trackers halve or double the pitch on creak and weak frames: the contour
    jumps by ~12 st between two frames and back. Real intonation moves continuously (a few st per
    10 ms at most). The voiced contour is cut where consecutive voiced frames jump more than
    ``max_jump`` st; a piece shorter than ``min_frames`` whose level is more than ``max_jump`` from
    the longer pieces around it is set to NaN (unvoiced), so it cannot fake a rise or a fall.
    """
    out = pitch_st.copy()
    voiced = np.flatnonzero(np.isfinite(pitch_st))
    if len(voiced) < 3:
        return out
    values = pitch_st[voiced]
    cuts = np.flatnonzero((np.abs(np.diff(values)) > max_jump) | (np.diff(voiced) > 3)) + 1
    pieces = np.split(np.arange(len(values)), cuts)
    levels = [float(np.median(values[p])) for p in pieces]
    for k, piece in enumerate(pieces):
        if len(piece) >= min_frames:
            continue
        around = [levels[j] for j in (k - 1, k + 1) if 0 <= j < len(pieces) and len(pieces[j]) >= min_frames]
        if around and min(abs(levels[k] - m) for m in around) > max_jump:
            out[voiced[piece]] = np.nan
    return out


def _final_rises(t: np.ndarray, pitch_st: np.ndarray, phrase_ends: list[float], c: dict[str, Any]) -> list[float]:
    """Phrase ends whose last voiced stretch rises at least ``question_rise_semitones`` above the valley before it.

    A yes/no question ends on a rise from a low point: the median pitch of the last ``question_final_s``
    of voicing is compared with the lowest (median-smoothed) pitch in the ``question_window_s`` before
    it. A statement ends at its valley (no rise); a line fit over the whole window (the earlier method)
    mixed the fall before the rise into the slope and missed most rises.
    """
    out: list[float] = []
    final_s, window_s = float(c["question_final_s"]), float(c["question_window_s"])
    for end in phrase_ends:
        voiced = np.flatnonzero((t < end) & (t >= end - window_s - final_s) & np.isfinite(pitch_st))
        if len(voiced) < 8:
            continue
        last_t = t[voiced[-1]]
        final = voiced[t[voiced] > last_t - final_s]
        body = voiced[t[voiced] <= last_t - final_s]
        if len(final) < 3 or len(body) < 5:
            continue
        smooth = np.convolve(pitch_st[body], np.ones(5) / 5.0, mode="valid")
        if float(np.median(pitch_st[final])) - float(np.min(smooth)) >= c["question_rise_semitones"]:
            out.append(end)
    return out


# --------------------------------------------------------------------------- layers


def _level(face: FaceConfig) -> dict[str, float]:
    levels = constants()["levels"]
    if face.level not in levels:
        raise LipSyncError(f"Unknown face motion level '{face.level}'. Choose one of: {', '.join(levels)}.")
    if face.expression not in EXPRESSIONS:
        raise LipSyncError(f"Unknown expression '{face.expression}'. Choose one of: {', '.join(EXPRESSIONS)}.")
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


#: Layers in the order their random streams are spawned from the seed. Append only: a new layer
#: gets a new child stream, so a seed keeps giving the same output for the layers before it.
STREAM_ORDER = ("blink", "brows", "head", "gaze", "expression")


def layer_rngs(seed: int) -> dict[str, np.random.Generator]:
    """One independent random stream per layer (:data:`STREAM_ORDER`) from ``seed``."""
    children = np.random.SeedSequence(int(seed)).spawn(len(STREAM_ORDER))
    return {layer: np.random.default_rng(child) for layer, child in zip(STREAM_ORDER, children, strict=True)}


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
        (:data:`LAYER_CHANNELS`; of the expression layer only the chosen one, ``smile`` or
        ``serious``): weights in [0, 1], head and eye angles in radians (:data:`SIGNED_CHANNELS`).
    """
    level = _level(face)
    times = sample_times(prosody.duration, fps)
    curves = Curves(times=times, rate=float(fps))
    streams = layer_rngs(int(face.seed if seed is None else seed))
    rng_blink, rng_brow, rng_head = streams["blink"], streams["brows"], streams["head"]
    rng_gaze, rng_expression = streams["gaze"], streams["expression"]
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
    if face.gaze:
        curves.channels.update(gaze_curves(prosody, times, level["gaze"] * face.gaze_strength, rng_gaze))
    if face.expression != "neutral":
        curves.channels[face.expression] = _expression(
            prosody, times, fps, face.expression, strength=float(face.expression_strength),
            scale=level["expression"], rng=rng_expression,
        )
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


# --------------------------------------------------------------------------- gaze


@dataclass(frozen=True)
class Saccade:
    """One saccade of both eyes.

    Attributes:
        start: onset time in seconds.
        duration: seconds (main sequence: intercept + slope * amplitude).
        origin / target: (yaw, pitch) in degrees before / after; yaw + = to the character's left, pitch + = up.
        kind: "free" (during a fixation sequence), "avert" (looking away at a phrase start) or
            "return" (back to the listener near a phrase end).
    """

    start: float
    duration: float
    origin: tuple[float, float]
    target: tuple[float, float]
    kind: str

    @property
    def amplitude(self) -> float:
        """Angular distance of the saccade in degrees."""
        return float(np.hypot(self.target[0] - self.origin[0], self.target[1] - self.origin[1]))


def gaze_saccades(prosody: Prosody, scale: float, rng: np.random.Generator) -> list[Saccade]:
    """Saccades over the clip from a fixation model (constants: ``gaze`` in data/procedural.json).

    Fixations last Gamma-distributed times, longer when no word is being spoken (listening, pauses)
    than while speaking. Each phrase may start with a look away (aversion) and end with a return
    to the centre (the listener), after Kendon (1967); between them small free saccades in random
    directions from a point pulled back toward the centre. Eccentricity is capped.

    Args:
        prosody: words (speaking mask), phrase starts/ends and the clip duration.
        scale: amplitude multiplier (level x strength); 0 keeps the eyes on the centre.
        rng: the gaze layer's random stream.

    Returns:
        Saccades in time order; the eyes start on the centre at t = 0.
    """
    c = constants()["gaze"]
    duration = prosody.duration
    min_fix = float(c["min_fixation_s"])
    forced: list[tuple[float, str]] = []
    for start, end in zip(prosody.phrase_starts, prosody.phrase_ends, strict=False):
        averted = rng.uniform() < c["aversion_probability"]
        if averted:
            forced.append((max(start - c["aversion_lead_s"], 0.0), "avert"))
        if rng.uniform() < c["return_probability"]:
            forced.append((max(end - c["return_lead_s"], start if averted else 0.0), "return"))
    forced.sort()
    shape, pull = float(c["fixation_gamma_shape"]), float(c["centre_pull"])
    a_shape, a_mean = float(c["saccade_amplitude_gamma_shape"]), float(c["saccade_amplitude_mean_deg"])
    max_ecc = float(c["max_eccentricity_deg"]) * scale
    pos = np.zeros(2)
    out: list[Saccade] = []
    t, k = 0.0, 0
    while t < duration:
        mean = c["fixation_mean_speaking_s"] if prosody.speaking_at(t) else c["fixation_mean_listening_s"]
        at, kind = t + max(min_fix, float(rng.gamma(shape, mean / shape))), "free"
        if k < len(forced) and max(forced[k][0], t + min_fix) <= at:
            at, kind = max(forced[k][0], t + min_fix), forced[k][1]
            k += 1
        if at >= duration:
            break
        if kind == "avert":
            side = float(rng.choice([-1.0, 1.0]))
            direction = np.array([side, float(rng.uniform(*c["aversion_vertical"]))])
            target = float(rng.uniform(*c["aversion_deg"])) * scale * direction / np.hypot(*direction)
        elif kind == "return":
            target = rng.normal(0.0, c["return_spread_deg"] * scale, size=2)
        else:
            amp = min(float(rng.gamma(a_shape, a_mean / a_shape)), c["saccade_amplitude_max_deg"]) * scale
            angle = float(rng.uniform(0.0, 2.0 * np.pi))
            target = (1.0 - pull) * pos + amp * np.array([np.cos(angle), c["vertical_ratio"] * np.sin(angle)])
        ecc = float(np.hypot(*target))
        if ecc > max_ecc:
            target = target * (max_ecc / ecc)
        amplitude = float(np.hypot(*(target - pos)))
        dur = c["main_sequence_intercept_s"] + c["main_sequence_slope_s_per_deg"] * amplitude
        out.append(Saccade(at, dur, (float(pos[0]), float(pos[1])), (float(target[0]), float(target[1])), kind))
        pos = target
        t = at + dur
    return out


def gaze_angles(saccades: list[Saccade], times: np.ndarray) -> np.ndarray:
    """(yaw, pitch) in degrees at ``times`` (s), shape (2, n): fixations joined by minimum-jerk saccades."""
    out = np.zeros((2, len(times)))
    if not saccades or not len(times):
        return out
    start = np.array([s.start for s in saccades])
    dur = np.array([s.duration for s in saccades])
    origin = np.array([s.origin for s in saccades])
    target = np.array([s.target for s in saccades])
    i = np.searchsorted(start, times, side="right") - 1
    has = i >= 0
    j = i[has]
    u = np.clip((times[has] - start[j]) / dur[j], 0.0, 1.0)
    ease = u**3 * (10.0 - 15.0 * u + 6.0 * u * u)
    out[:, has] = (origin[j] + (target[j] - origin[j]) * ease[:, None]).T
    return out


def gaze_curves(prosody: Prosody, times: np.ndarray, scale: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``eye_yaw`` / ``eye_pitch`` (radians) at ``times``: :func:`gaze_saccades` plus a tiny fixation drift."""
    c = constants()["gaze"]
    angles = gaze_angles(gaze_saccades(prosody, scale, rng), times)
    freqs = c["drift_frequencies_hz"]
    for axis in range(2):
        phase = rng.uniform(0.0, 2.0 * np.pi, size=len(freqs))
        drift = sum(np.sin(2 * np.pi * f * times + p) for f, p in zip(freqs, phase, strict=True)) / len(freqs)
        angles[axis] += c["drift_amplitude_deg"] * scale * drift
    yaw, pitch = np.radians(angles)
    return {"eye_yaw": yaw, "eye_pitch": pitch}


# --------------------------------------------------------------------------- expression


def _expression(
    prosody: Prosody, times: np.ndarray, fps: float, name: str, *, strength: float, scale: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """The held ``name`` expression (smile / serious) in [0, 1]: base x strength with slow, prosody-aware
    variation (wander, swells on emphasis and at phrase ends, relaxing in long pauses), rate-limited."""
    c, z0 = constants()["expression"], constants()["prosody"]["emphasis_z"]
    n = len(times)
    base = float(c["base"][name]) * strength
    vary = scale * strength
    target = np.full(n, base)
    for a, b in prosody.pauses:
        if b - a >= c["long_pause_s"]:
            target[(times >= a) & (times < b)] -= c["pause_relax"] * base
    freqs = c["wander_frequencies_hz"]
    phase = rng.uniform(0.0, 2.0 * np.pi, size=len(freqs))
    wander = sum(np.sin(2 * np.pi * f * times + p) for f, p in zip(freqs, phase, strict=True)) / len(freqs)
    target += vary * c["wander_amplitude"] * wander
    swell = np.zeros(n)
    attack, decay = float(c["swell_attack_s"]), float(c["swell_decay_s"])
    last = -1e9
    for at, emphasis, _pitch_z in prosody.stresses:
        if emphasis < z0 or at - last < c["swell_min_gap_s"]:
            continue
        last = at
        w = float(np.clip(emphasis - z0 + 0.5, 0.2, 1.0)) * float(rng.uniform(0.7, 1.0))
        swell = np.maximum(swell, c["emphasis_swell"][name] * w * _pulse(times, at, attack, decay))
    for end in prosody.phrase_ends:
        swell = np.maximum(swell, c["phrase_end_swell"][name] * _pulse(times, end, attack, decay))
    target += vary * swell
    if not n:
        return target
    out = limit_motion(np.clip(target, 0.0, 1.0), 1.0 / fps, c["max_velocity_per_s"], c["max_acceleration_per_s2"])
    return np.clip(out, 0.0, 1.0)


# --------------------------------------------------------------------------- rig targets


def eye_look_weights(curves: Curves) -> dict[str, np.ndarray]:
    """Eye-look shape-key sources in [0, 1] from ``eye_yaw`` / ``eye_pitch`` (radians).

    weight = |angle| / full scale (``gaze_full_scale_rad`` in data/face_targets.json), clipped.
    Looking to the character's left (yaw > 0) turns its LEFT eye out and its RIGHT eye in.

    Returns:
        ``eye_look_up``, ``eye_look_down``, ``eye_look_left``, ``eye_look_right`` (both eyes) and
        ``eye_look_in_L``, ``eye_look_out_L``, ``eye_look_in_R``, ``eye_look_out_R``; {} without gaze.
    """
    if not all(ch in curves.channels for ch in GAZE_CHANNELS):
        return {}
    full = targets()["gaze_full_scale_rad"]
    yaw = np.asarray(curves.channels["eye_yaw"], dtype=np.float64) / float(full["yaw"])
    pitch = np.asarray(curves.channels["eye_pitch"], dtype=np.float64) / float(full["pitch"])
    left, right = np.clip(yaw, 0.0, 1.0), np.clip(-yaw, 0.0, 1.0)
    return {
        "eye_look_up": np.clip(pitch, 0.0, 1.0),
        "eye_look_down": np.clip(-pitch, 0.0, 1.0),
        "eye_look_left": left,
        "eye_look_right": right,
        "eye_look_out_L": left,
        "eye_look_in_R": left,
        "eye_look_in_L": right,
        "eye_look_out_R": right,
    }


def map_face_to_shape_keys(curves: Curves, shape_keys: list[str]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Canonical face channels -> the rig's shape keys (data/face_targets.json).

    For each layer the first name group with at least one shape key on the rig wins; only
    names the rig has are returned. A both-eyes blink key gets the mean of the two eyes; gaze
    keys get :func:`eye_look_weights`; of the expression groups only the channel produced
    (``smile`` or ``serious``) is mapped. A key two layers drive (``browDown_L`` by brows and a
    serious expression) gets the larger value and belongs to the first layer (blink, brows, gaze,
    expression order).

    Returns:
        (shape key -> values in [0, 1], shape key -> owning layer name).
    """
    have = set(shape_keys)
    out: dict[str, np.ndarray] = {}
    owner: dict[str, str] = {}
    sources: dict[str, np.ndarray] = dict(curves.channels) | eye_look_weights(curves)
    if "eye_blink_L" in curves.channels and "eye_blink_R" in curves.channels:
        sources["eye_blink"] = 0.5 * (curves.channels["eye_blink_L"] + curves.channels["eye_blink_R"])
    for layer, groups in targets()["shape_keys"].items():
        if not any(ch in curves.channels for ch in LAYER_CHANNELS[layer]):
            continue
        for group in groups:
            if not any(name in have for canonical, spec in group.items() if canonical in sources for name in spec):
                continue
            for canonical, spec in group.items():
                if canonical not in sources:
                    continue
                for name, weight in spec.items():
                    if name in have:
                        values = np.clip(sources[canonical] * float(weight), 0.0, 1.0)
                        out[name] = np.maximum(out[name], values) if name in out else values
                        owner.setdefault(name, layer)
            break
    return out, owner


def find_head_bone(bone_names: list[str]) -> str:
    """The head (else neck) bone among ``bone_names`` by Rigify/Mixamo/CC4/VRM naming, or ""."""
    have = set(bone_names)
    return next((b for b in targets()["head_bones"] if b in have), "")


def find_eye_bones(bone_names: list[str]) -> tuple[str, str]:
    """The (left, right) eye bones among ``bone_names`` by Rigify/Mixamo/CC4/VRM naming, or ("", "").

    Only a pair the rig has in full counts (data/face_targets.json ``eye_bones``, first pair wins).
    """
    have = set(bone_names)
    return next(((a, b) for a, b in targets()["eye_bones"] if a in have and b in have), ("", ""))
