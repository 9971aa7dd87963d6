"""Coarticulation: canonical viseme segments -> continuous weight curves (dominance blending).

Model (Cohen & Massaro 1993, with a plateau per segment): every segment s has a dominance function
``D_s(t) = alpha_s * exp(-(d_s(t) / tau_s) ** c)`` where ``d_s(t)`` is the distance (s) from t to
the segment's core interval, ``tau_s`` its anticipation time before the core and its carry-over time
after it. The weight of viseme v at time t is ``sum_{s in v} D_s(t) * w_s / sum_s D_s(t)``, a convex
mix (the rest of a segment with weight ``w_s < 1`` goes to ``sil``). Rules applied on top, at the
output sample rate: bilabial closure and labiodental contact, pause hold/relax, no flutter.
``mouth_open`` and ``tongue_up`` are blended the same way with the jaw's / the tongue's own dominance.
All constants are in ``data/coarticulation.json``; see docs/animation.md.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from ..types import DEFAULT_BREATH, DEFAULT_SMOOTHING, DEFAULT_STRENGTH, Curves, VisemeSegment
from ..visemes.tables import canonical_name, canonical_visemes

_DATA = Path(__file__).with_name("data")

MOUTH_OPEN = "mouth_open"
#: Tongue tip raised/forward (0..1): TH/DH, T/D/N, L. For tongue bones or shape keys; always produced.
TONGUE_UP = "tongue_up"
#: Rig-independent channels every result carries next to the visemes (carried over by map_to_channels).
ARTICULATOR_CHANNELS = (MOUTH_OPEN, TONGUE_UP)


@dataclass(frozen=True)
class _Params:
    visemes: tuple[str, ...]
    dominance: np.ndarray
    deformability: np.ndarray
    openness: np.ndarray
    tongue: np.ndarray
    tongue_dominance: np.ndarray
    jaw_dominance: np.ndarray
    anticipation: np.ndarray
    carryover: np.ndarray
    exponent: float
    anticipation_s: float
    carryover_s: float
    smooth_at_0: float
    smooth_at_1: float
    support_cutoff: float
    min_core_s: float
    min_core_frames: float
    pause_hold_s: float
    closure_visemes: frozenset[str]
    closure_min_weight: float
    closure_neighbour: float
    closure_release: dict[str, float]
    closure_max_release: float
    flutter_prominence: float
    flutter_width: int
    flutter_passes: int
    breath: dict[str, float | str]


@cache
def _params() -> _Params:
    raw = json.loads((_DATA / "coarticulation.json").read_text(encoding="utf-8"))
    names = canonical_visemes()
    per = raw["visemes"]
    missing = set(names) - set(per)
    if missing:
        raise ValueError(f"coarticulation.json lacks visemes {sorted(missing)}")
    if names[0] != "sil":  # _set_share relies on column 0 being the rest pose
        raise ValueError("canonical.json must list 'sil' first")

    def col(key: str) -> np.ndarray:
        return np.array([float(per[v][key]) for v in names], dtype=np.float64)

    return _Params(
        visemes=names,
        dominance=col("dominance"),
        deformability=np.clip(col("deformability"), 0.0, 1.0),
        openness=np.clip(col("openness"), 0.0, 1.0),
        tongue=np.clip(col("tongue_up"), 0.0, 1.0),
        tongue_dominance=col("tongue_dominance"),
        jaw_dominance=col("jaw_dominance"),
        anticipation=col("anticipation"),
        carryover=col("carryover"),
        exponent=float(raw["exponent"]),
        anticipation_s=float(raw["anticipation_s"]),
        carryover_s=float(raw["carryover_s"]),
        smooth_at_0=float(raw["smoothing_factor"]["at_0"]),
        smooth_at_1=float(raw["smoothing_factor"]["at_1"]),
        support_cutoff=float(raw["support_cutoff"]),
        min_core_s=float(raw["min_core_s"]),
        min_core_frames=float(raw["min_core_frames"]),
        pause_hold_s=float(raw["pause_hold_s"]),
        closure_visemes=frozenset(raw["closure"]["visemes"]),
        closure_min_weight=float(raw["closure"]["min_segment_weight"]),
        closure_neighbour=float(raw["closure"]["neighbour_weight"]),
        closure_release={k: float(v) for k, v in raw["closure"].get("release_s", {}).items()},
        closure_max_release=float(raw["closure"].get("max_release_fraction", 0.5)),
        flutter_prominence=float(raw["flutter"]["min_prominence"]),
        flutter_width=int(raw["flutter"]["min_width_frames"]),
        flutter_passes=int(raw["flutter"]["max_passes"]),
        breath={k: v for k, v in raw["breath"].items() if not k.startswith("_")},
    )


def viseme_openness() -> dict[str, float]:
    """Jaw/lip opening of each canonical viseme in [0, 1] (aa high, PP and sil 0), from the data file."""
    p = _params()
    return {v: float(o) for v, o in zip(p.visemes, p.openness, strict=True)}


def viseme_tongue_up() -> dict[str, float]:
    """Tongue-tip raise of each canonical viseme in [0, 1] (TH, DD, nn 1; PP, vowels 0), from the data file."""
    p = _params()
    return {v: float(o) for v, o in zip(p.visemes, p.tongue, strict=True)}


def pause_hold_seconds() -> float:
    """Pauses shorter than this (s) hold the mouth; longer ones relax to rest."""
    return _params().pause_hold_s


def sample_times(duration: float, fps: float) -> np.ndarray:
    """Sample times ``k / fps`` (s) covering [0, duration]: the last sample is at or after ``duration``."""
    n = max(1, math.ceil(duration * fps - 1e-9) + 1)
    return np.arange(n, dtype=np.float64) / fps


# ---------------------------------------------------------------- segment preparation


@dataclass
class _Seg:
    vis: int
    start: float
    end: float
    weight: float
    closure: bool  # must reach full closure / contact
    aligned_end: float | None = None  # a released stop: its aligned end (``end`` is where the lips part)


def _prepare(visemes: list[VisemeSegment], duration: float, p: _Params) -> tuple[list[_Seg], list[_Seg]]:
    """Sort, clip and fill the timeline; return (all segments incl. rest, closure segments)."""
    index = {v: i for i, v in enumerate(p.visemes)}
    sil = index["sil"]
    speech: list[_Seg] = []
    for seg in sorted(visemes, key=lambda s: (s.start, s.end)):
        name = canonical_name(seg.viseme)
        if name is None:
            raise ValueError(f"unknown viseme {seg.viseme!r}; expected one of {', '.join(p.visemes)}")
        if name == "sil":
            continue  # pauses are rebuilt from the gaps between speech segments below
        start = min(max(float(seg.start), 0.0), duration)
        end = min(max(float(seg.end), start), duration)
        weight = min(max(float(seg.weight), 0.0), 1.0)
        if weight <= 0.0:
            continue
        closure = name in p.closure_visemes and weight >= p.closure_min_weight
        closed_end = _closed_end(start, end, seg.phone, p) if closure else end
        speech.append(_Seg(index[name], start, closed_end, weight, closure, end if closed_end < end else None))
    closures = [_Seg(s.vis, s.start, s.end, s.weight, True, s.aligned_end) for s in speech if s.closure]
    out: list[_Seg] = []
    cursor = 0.0
    for i, seg in enumerate(speech):
        start = seg.start
        gap = start - cursor
        if i == 0:
            if gap > 0:
                out.append(_Seg(sil, 0.0, seg.start, 1.0, False))
        elif gap >= p.pause_hold_s:
            out.append(_Seg(sil, cursor, seg.start, 1.0, False))
        elif gap > 0 and out[-1].aligned_end is not None:
            # after the release of a stop (burst, aspiration) the lips already move to the next sound
            start = cursor
        elif gap > 0:
            # short pause: hold the previous shape until the next sound (no relaxing mid-phrase)
            prev = out[-1]
            prev.end = max(prev.end, seg.start)
        out.append(_Seg(seg.vis, start, seg.end, seg.weight, seg.closure, seg.aligned_end))
        cursor = max(cursor, seg.end)
    if cursor < duration or not out:
        out.append(_Seg(sil, cursor, max(duration, cursor), 1.0, False))
    return out, closures


def _closed_end(start: float, end: float, phone: str, p: _Params) -> float:
    """Where the lips part in a closure segment [start, end] (s) of ``phone`` (IPA).

    The aligner ends a stop at voicing onset, so its burst and aspiration (English /p/: about 50 ms)
    are inside the segment with the lips already open. ``release_s`` per phone, at most
    ``max_release_fraction`` of the segment; other phones (m, f, v, ...) stay closed to the end.
    The sample nearest the aligned centre stays closed all the same (:func:`_closure_rows`).
    """
    release = p.closure_release.get(phone.strip(), 0.0)
    if release <= 0.0 or end <= start:
        return end
    return end - min(release, p.closure_max_release * (end - start))


# ---------------------------------------------------------------- dominance blending


def _blend(
    segs: list[_Seg],
    times: np.ndarray,
    fps: float,
    smoothing: float,
    p: _Params,
    *,
    dominance: np.ndarray | None = None,
) -> np.ndarray:
    """Convex viseme weights, shape (n_samples, n_visemes), by windowed dominance functions.

    ``dominance`` (per canonical viseme) replaces the lips/jaw one, e.g. the tongue's own.
    """
    n, nv = len(times), len(p.visemes)
    vis = np.array([s.vis for s in segs], dtype=np.int64)
    start = np.array([s.start for s in segs])
    end = np.array([s.end for s in segs])
    weight = np.array([s.weight for s in segs])
    factor = p.smooth_at_0 + (p.smooth_at_1 - p.smooth_at_0) * smoothing
    alpha = (p.dominance if dominance is None else dominance)[vis]
    tau_a = np.maximum(p.anticipation_s * p.anticipation[vis] * factor, 1e-4)
    tau_c = np.maximum(p.carryover_s * p.carryover[vis] * factor, 1e-4)
    # core = span shrunk by deformability, widened to the minimum visible length
    centre = 0.5 * (start + end)
    min_core = max(p.min_core_s, p.min_core_frames / fps)
    half = 0.5 * np.maximum((end - start) * (1.0 - p.deformability[vis]), min_core)
    core_lo, core_hi = centre - half, centre + half
    reach = (-math.log(p.support_cutoff)) ** (1.0 / p.exponent)
    lo = np.clip(np.ceil((core_lo - reach * tau_a) * fps), 0, n).astype(np.int64)
    hi = np.clip(np.floor((core_hi + reach * tau_c) * fps) + 1, 0, n).astype(np.int64)
    counts = np.maximum(hi - lo, 0)
    total = int(counts.sum())
    seg_of = np.repeat(np.arange(len(segs)), counts)
    offsets = np.cumsum(counts) - counts
    k = lo[seg_of] + (np.arange(total) - offsets[seg_of])
    t = times[k]
    before = np.maximum(core_lo[seg_of] - t, 0.0) / tau_a[seg_of]
    after = np.maximum(t - core_hi[seg_of], 0.0) / tau_c[seg_of]
    dom = alpha[seg_of] * np.exp(-((before + after) ** p.exponent))
    den = np.bincount(k, weights=dom, minlength=n)
    w = weight[seg_of]
    num = np.bincount(k * nv + vis[seg_of], weights=dom * w, minlength=n * nv).reshape(n, nv)
    sil = p.visemes.index("sil")
    num[:, sil] += np.bincount(k, weights=dom * (1.0 - w), minlength=n)
    out = np.zeros((n, nv))
    ok = den > 1e-12
    out[ok] = num[ok] / den[ok, None]
    out[~ok, sil] = 1.0
    return out


# ---------------------------------------------------------------- rules


def _closure_rows(closures: list[_Seg], times: np.ndarray, fps: float) -> dict[int, int]:
    """Sample index -> viseme column that must be fully reached there (closure / contact).

    Every closure segment gets one sample (nearest its aligned centre, moved by up to 2 frames when a
    closure of another kind sits next to it, so both stay visible for 2 frames); long closures also
    hold every sample inside their span, except next to another kind's sample.
    """
    n = len(times)
    rows: dict[int, int] = {}

    def clash(i: int, vis: int) -> bool:
        return any(rows.get(j, vis) != vis for j in (i - 1, i, i + 1))

    for seg in sorted(closures, key=lambda s: s.start):
        aligned_end = seg.end if seg.aligned_end is None else seg.aligned_end
        nearest = min(max(round(0.5 * (seg.start + aligned_end) * fps), 0), n - 1)
        for step in (0, 1, -1, 2, -2):
            i = nearest + step
            if 0 <= i < n and not clash(i, seg.vis):
                rows[i] = seg.vis
                break
    for seg in closures:
        lo = max(math.ceil(seg.start * fps - 1e-9), 0)
        hi = min(math.floor(seg.end * fps + 1e-9), n - 1)
        for i in range(lo, hi + 1):
            if i not in rows and not clash(i, seg.vis):
                rows[i] = seg.vis
    return rows


def _set_share(w: np.ndarray, row: int, col: int, value: float, rest: int = 0) -> None:
    """Set ``w[row, col] = value`` keeping the row's sum: others shrink, or column ``rest`` takes a deficit."""
    total = w[row].sum()
    others = total - w[row, col]
    w[row, col] = value
    room = max(1.0 - value, 0.0)
    if others > room + 1e-12:
        mask = np.ones(w.shape[1], dtype=bool)
        mask[col] = False
        w[row, mask] *= room / others
    else:
        deficit = max(min(total, 1.0) - value - others, 0.0)
        if col != rest:
            w[row, rest] += deficit
        elif others > 1e-12:
            mask = np.ones(w.shape[1], dtype=bool)
            mask[col] = False
            w[row, mask] *= (others + deficit) / others


def _apply_closures(w: np.ndarray, rows: dict[int, int], p: _Params, *, single_only: bool = False) -> None:
    """One-hot rows at closures; free rows next to them keep at least ``neighbour_weight`` of the
    closure (shared 50/50 between two different closures on either side).

    ``single_only``: widen only closures that own a single sample (a longer one already shows for
    two frames or more).
    """
    n = w.shape[0]
    for k, col in rows.items():
        w[k] = 0.0
        w[k, col] = 1.0
    widen = rows
    if single_only:
        widen = {k: c for k, c in rows.items() if rows.get(k - 1) != c and rows.get(k + 1) != c}
    free = sorted({j for k in widen for j in (k - 1, k + 1) if 0 <= j < n and j not in rows})
    for j in free:
        kinds = {rows[i] for i in (j - 1, j + 1) if i in rows}
        if len(kinds) == 1:
            col = kinds.pop()
            if w[j, col] < p.closure_neighbour:
                _set_share(w, j, col, p.closure_neighbour)
        else:
            w[j] = 0.0
            for col in kinds:
                w[j, col] = 1.0 / len(kinds)


def find_flutter(values: np.ndarray, *, min_prominence: float | None = None, min_width: int | None = None) -> list[int]:
    """Sample indices of peaks that rise and fall back in under ``min_width`` samples.

    A peak counts when its prominence is at least ``min_prominence`` (default from the data file);
    it flutters when fewer than ``min_width`` consecutive samples (default 2, i.e. 2 frames) stay
    at or above half its prominence below the top.
    """
    p = _params()
    prom = p.flutter_prominence if min_prominence is None else min_prominence
    width = p.flutter_width if min_width is None else min_width
    x = np.asarray(values, dtype=np.float64)
    if len(x) < 3:
        return []
    from scipy.signal import find_peaks  # here, not at the top: Blender imports this module at start-up

    peaks, props = find_peaks(x, prominence=prom, plateau_size=1)
    bad: list[int] = []
    for k, pr, left, right in zip(
        peaks, props["prominences"], props["left_edges"], props["right_edges"], strict=True
    ):
        level = x[k] - 0.5 * pr - 1e-9
        a, b = int(left), int(right)
        while a > 0 and x[a - 1] >= level:
            a -= 1
        while b < len(x) - 1 and x[b + 1] >= level:
            b += 1
        if b - a + 1 < width:
            bad.append(int(k))
    return bad


def _remove_flutter(
    w: np.ndarray, protected: set[int], p: _Params, *, renormalize: bool, columns: list[int] | None = None
) -> None:
    """Widen too-narrow peaks by raising their higher neighbour to half height (in place)."""
    n = w.shape[0]
    cols = range(w.shape[1]) if columns is None else columns
    for _ in range(p.flutter_passes):
        changed = False
        for c in cols:
            x = w[:, c]
            for k in find_flutter(x):
                left = x[k - 1] if k > 0 else -1.0
                right = x[k + 1] if k < n - 1 else -1.0
                order = [k - 1, k + 1] if left >= right else [k + 1, k - 1]
                target = None
                for j in order:
                    if 0 <= j < n and j not in protected:
                        target = j
                        break
                if target is None:
                    if k in protected:
                        continue
                    x_new = max(left, right)  # both neighbours locked: flatten the spike instead
                    if renormalize:
                        _set_share(w, k, c, x_new)
                    else:
                        w[k, c] = x_new
                    changed = True
                    continue
                prominence = _prominence(x, k)
                value = min(x[k], x[k] - 0.5 * prominence + 1e-3)
                if value <= x[target]:
                    continue
                if renormalize:
                    _set_share(w, target, c, value)
                else:
                    w[target, c] = value
                changed = True
        if not changed:
            return


def _prominence(x: np.ndarray, k: int) -> float:
    from scipy.signal import peak_prominences

    return float(peak_prominences(x, [k])[0][0])


def _mouth_open(
    segs: list[_Seg], rows: dict[int, int], times: np.ndarray, p: _Params, *, fps: float, smoothing: float,
    strength: float,
) -> np.ndarray:
    """Lip/jaw aperture in [0, 1]: the viseme openness blended with the jaw's own dominance.

    Same dominance functions as the visemes but with ``jaw_dominance`` (vowels lead the jaw), the same
    closure/contact rows, then ``strength`` on the speech share as for the visemes.
    """
    w = _blend(segs, times, fps, smoothing, p, dominance=p.jaw_dominance)
    _apply_closures(w, rows, p, single_only=True)
    if strength != 1.0:
        sil = p.visemes.index("sil")
        speech_cols = [i for i in range(len(p.visemes)) if i != sil]
        w[:, speech_cols] = np.clip(w[:, speech_cols] * strength, 0.0, 1.0)
        _apply_closures(w, rows, p, single_only=True)
    return w @ p.openness


# ---------------------------------------------------------------- public API


def _breath(segs: list[_Seg], times: np.ndarray, p: _Params) -> np.ndarray:
    """Target height in [0, 1] of the pre-phrase breath opening at each sample (before the ``breath`` scale).

    After a pause (``sil``) of at least ``min_pause_s``, the lips part to inhale before the first sound:
    a raised-cosine rise over ``rise_s`` to ``opening``, reached ``open_by_s`` before the phrase onset,
    held until the onset and faded over ``fade_s`` after it (data/coarticulation.json, "breath"). After
    a phrase the mouth relaxes for ``pause_hold_s`` first (the rise is shortened to fit, and left out
    when under ``min_rise_s``). The caller takes the opening from the rest pose only.
    """
    b = p.breath
    out = np.zeros(len(times))
    sil = p.visemes.index("sil")
    rise, open_by, fade = float(b["rise_s"]), float(b["open_by_s"]), float(b["fade_s"])
    for k in range(1, len(segs)):
        pause, onset = segs[k - 1], segs[k]
        if pause.vis != sil or onset.vis == sil or pause.end - pause.start < float(b["min_pause_s"]):
            continue
        # after a phrase the mouth first relaxes (pause_hold_s); a clip starting in silence is at rest already
        earliest = pause.start + (p.pause_hold_s if k > 1 else 0.0)
        top = onset.start - open_by
        begin = max(top - rise, earliest)
        if top - begin < float(b["min_rise_s"]):
            continue
        up = np.clip((times - begin) / (top - begin), 0.0, 1.0)
        down = np.clip((times - onset.start) / fade, 0.0, 1.0)
        shape = 0.5 * (1.0 - np.cos(np.pi * up)) * 0.5 * (1.0 + np.cos(np.pi * down))
        np.maximum(out, shape * float(b["opening"]), out=out)
    return out


def coarticulate(
    visemes: list[VisemeSegment], duration: float, *, fps: float, strength: float = DEFAULT_STRENGTH,
    smoothing: float = DEFAULT_SMOOTHING, breath: float = DEFAULT_BREATH,
) -> Curves:
    """Turn canonical viseme segments (seconds) into continuous curves sampled at ``fps``.

    Args:
        visemes: canonical viseme segments (any order; ``sil`` segments are rebuilt from gaps).
        duration: clip length in seconds; samples cover [0, duration].
        fps: output sample rate in frames per second (may be fractional, e.g. 23.976).
        strength: amplitude multiplier in [0, 2] (clipped); closures stay complete at any value > 0.
        smoothing: 0 = crisp (short anticipation / carry-over) .. 1 = very smooth.
        breath: 0..1 (clipped), how far the lips part to inhale before a phrase that follows a pause
            (0 = off; 1 = the data file's opening, a slight 0.2 of the open viseme and ``mouth_open``).

    Returns:
        Curves with the 15 canonical viseme channels plus ``mouth_open`` and ``tongue_up`` (the
        per-viseme openness / tongue-tip raise blended with the jaw's / tongue's own dominance),
        all in [0, 1]. At strength 1 the viseme weights at every sample form a convex mix (sum 1).

    Raises:
        ValueError: ``fps`` not positive, ``duration`` negative or not finite, or an unknown viseme.
    """
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be positive, got {fps}")
    if not (math.isfinite(duration) and duration >= 0):
        raise ValueError(f"duration must be a finite number of seconds >= 0, got {duration}")
    p = _params()
    strength = min(max(float(strength), 0.0), 2.0)
    smoothing = min(max(float(smoothing), 0.0), 1.0)
    times = sample_times(duration, fps)
    segs, closures = _prepare(visemes, duration, p)
    w = _blend(segs, times, fps, smoothing, p)
    rows = _closure_rows(closures, times, fps) if strength > 0 else {}
    _apply_closures(w, rows, p)
    _remove_flutter(w, set(rows), p, renormalize=True)

    sil = p.visemes.index("sil")
    speech_cols = [i for i in range(len(p.visemes)) if i != sil]
    if strength != 1.0:
        w[:, speech_cols] = np.clip(w[:, speech_cols] * strength, 0.0, 1.0)
        w[:, sil] = np.clip(1.0 - w[:, speech_cols].sum(axis=1), 0.0, 1.0)
        _apply_closures(w, rows, p)
        # above 1 rows may sum past 1 (exaggeration); renormalizing there would cascade
        _remove_flutter(w, set(rows), p, renormalize=strength <= 1.0)
    np.clip(w, 0.0, 1.0, out=w)
    inhale = _breath(segs, times, p) * min(max(float(breath), 0.0), 1.0) * min(strength, 1.0)
    breath_col = p.visemes.index(str(p.breath["viseme"]))
    lift = np.zeros(len(times))
    if inhale.any():
        # only the rest pose gives way to the opening: closures and the first sounds keep their weights,
        # and the mix stays convex
        lift = np.clip(inhale - w[:, breath_col], 0.0, w[:, sil])
        w[:, breath_col] += lift
        w[:, sil] -= lift
    # the tongue follows its own dominance (alveolars lead it, lips barely do), then the same strength
    tongue = _blend(segs, times, fps, smoothing, p, dominance=p.tongue_dominance) @ p.tongue
    articulators = np.clip(np.stack([_mouth_open(segs, rows, times, p, fps=fps, smoothing=smoothing,
                                                 strength=strength),
                                     tongue * strength], axis=1), 0.0, 1.0)
    articulators[:, 0] = np.clip(articulators[:, 0] + lift * p.openness[breath_col], 0.0, 1.0)
    _remove_flutter(articulators, set(rows), p, renormalize=False)
    channels = {v: np.ascontiguousarray(w[:, i]) for i, v in enumerate(p.visemes)}
    channels[MOUTH_OPEN] = np.ascontiguousarray(articulators[:, 0])
    channels[TONGUE_UP] = np.ascontiguousarray(articulators[:, 1])
    return Curves(times=times, rate=float(fps), channels=channels)


def map_to_channels(viseme_curves: Curves, mapping: dict[str, dict[str, float]]) -> Curves:
    """Mix canonical viseme curves into rig channel curves.

    ``out[channel](t) = sum_v viseme_curves[v](t) * mapping[v][channel]``, clipped to [0, 1];
    ``mouth_open`` and ``tongue_up`` are carried over unchanged (zeros if the input lacks them).
    A rig channel mapped with exactly the openness table (the ``simple`` set's one open shape) is the
    ``mouth_open`` curve under the rig's name, so it gets that curve (jaw dominance included).
    Visemes missing from the curves or the mapping contribute nothing. Same times and rate as the input.
    """
    n = len(viseme_curves.times)
    order: list[str] = []
    for mix in mapping.values():
        for ch in mix:
            if ch not in order and ch not in ARTICULATOR_CHANNELS:
                order.append(ch)
    col = {ch: i for i, ch in enumerate(order)}
    vis_names = [v for v in mapping if v in viseme_curves.channels and v not in ARTICULATOR_CHANNELS]
    mat = np.zeros((len(vis_names), len(order)))
    for r, v in enumerate(vis_names):
        for ch, wgt in mapping[v].items():
            if ch in col:
                mat[r, col[ch]] += float(wgt)
    if vis_names:
        weights = np.stack([np.asarray(viseme_curves.channels[v], dtype=np.float64) for v in vis_names], axis=1)
        out = np.clip(weights @ mat, 0.0, 1.0)
    else:
        out = np.zeros((n, len(order)))
    if order and n >= 3:
        p = _params()
        locked = np.zeros(n, dtype=bool)
        for v in p.closure_visemes:
            if v in viseme_curves.channels:
                locked |= np.asarray(viseme_curves.channels[v]) >= 1.0 - 1e-9
        _remove_flutter(out, {int(i) for i in np.nonzero(locked)[0]}, p, renormalize=False)
    channels = {ch: np.ascontiguousarray(out[:, i]) for ch, i in col.items()}
    source = viseme_curves.channels.get(MOUTH_OPEN)
    if source is not None:
        openness = viseme_openness()
        for ch in _openness_channels(mapping, openness):
            channels[ch] = np.clip(np.asarray(source, dtype=np.float64), 0.0, 1.0)
    for name in ARTICULATOR_CHANNELS:
        src = viseme_curves.channels.get(name)
        channels[name] = np.clip(np.asarray(src, dtype=np.float64), 0.0, 1.0) if src is not None else np.zeros(n)
    return Curves(times=viseme_curves.times.copy(), rate=viseme_curves.rate, channels=channels)


def _openness_channels(mapping: dict[str, dict[str, float]], openness: dict[str, float]) -> list[str]:
    """Rig channels whose weights over the canonical visemes are exactly ``openness`` (missing = 0)."""
    names = {ch for mix in mapping.values() for ch in mix if ch not in ARTICULATOR_CHANNELS}
    found = []
    for ch in sorted(names):
        weights = {v: float(mapping.get(v, {}).get(ch, 0.0)) for v in openness}
        if any(v not in openness for v, mix in mapping.items() if ch in mix):
            continue
        if all(abs(weights[v] - o) <= 1e-9 for v, o in openness.items()):
            found.append(ch)
    return found
