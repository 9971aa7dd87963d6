"""Cue files: the project's versioned JSON and Rhubarb Lip Sync-compatible JSON.

Versioned format (``format`` = "lipsync-cues", ``version`` = :data:`CUE_FORMAT_VERSION`):
metadata, words, phones (IPA), visemes, lines (the transcript's lines with their aligned times, added in
1.2), mapping, curves (times + every channel, mouth_open
and tongue_up included), canonical viseme curves, face_curves (when a face layer is on; head and
eye angles in signed radians) and warnings. Times are seconds; numbers are rounded to 4
decimals. See docs/cli.md and docs/visemes.md.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ..animate import pause_hold_seconds
from ..types import CUE_FORMAT_VERSION, Curves, LipSyncError, LipSyncResult, VisemeSegment
from ..visemes import load_viseme_set

_DATA = Path(__file__).with_name("data")

#: value of the ``format`` field of the versioned cue JSON
CUE_FORMAT_NAME = "lipsync-cues"


def _round(x: float, decimals: int) -> float:
    v = float(x)
    if not math.isfinite(v):
        return 0.0
    return round(v, decimals)


def _jsonable(obj: Any) -> Any:
    """Turn numpy scalars/arrays, paths, sets and dataclass-like objects into JSON types."""
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.ndarray):
        return [_jsonable(x) for x in obj.tolist()]
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [_jsonable(x) for x in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return str(obj)


def _curves_dict(curves: Curves, decimals: int, *, clip: bool = True) -> dict[str, Any]:
    """Curves as JSON: weights clipped to [0, 1] unless ``clip`` is False (signed head/eye rotations)."""

    def values(v: Any) -> list[float]:
        x = np.nan_to_num(np.asarray(v, dtype=np.float64))
        return np.round(np.clip(x, 0.0, 1.0) if clip else x, decimals).tolist()

    return {
        "fps": float(curves.rate),
        "times": np.round(np.asarray(curves.times, dtype=np.float64), decimals).tolist(),
        "channels": {name: values(v) for name, v in curves.channels.items()},
    }


def to_cue_dict(result: LipSyncResult, *, decimals: int = 4, include_viseme_curves: bool = True) -> dict:
    """Build the versioned cue JSON object for a pipeline result.

    Args:
        result: the pipeline's output.
        decimals: rounding of times (s) and weights.
        include_viseme_curves: also write the canonical viseme curves (before rig mapping).

    Returns:
        A dict of JSON types only: ``format``, ``version``, ``metadata`` (audio path, duration in
        s, viseme set, fps, method, provenance), ``words``, ``phones`` (IPA), ``visemes``, ``lines``,
        ``mapping``, ``curves`` (``fps``, ``times``, ``channels``), optionally ``viseme_curves``,
        and ``warnings``.
    """
    tr = result.transcript
    out: dict[str, Any] = {
        "format": CUE_FORMAT_NAME,
        "version": CUE_FORMAT_VERSION,
        "metadata": {
            "audio_path": str(result.audio_path),
            "duration": _round(result.duration, decimals),
            "viseme_set": result.viseme_set,
            "fps": float(result.curves.rate),
            "method": tr.method,
            "provenance": _jsonable(result.provenance),
        },
        "words": [
            {
                "text": w.text,
                "start": _round(w.start, decimals),
                "end": _round(w.end, decimals),
                "confidence": _round(w.confidence, decimals),
                "pronunciation_source": w.pronunciation_source,
            }
            for w in tr.words
        ],
        "phones": [
            {
                "ipa": p.ipa,
                "start": _round(p.start, decimals),
                "end": _round(p.end, decimals),
                "confidence": _round(p.confidence, decimals),
                "word_index": int(p.word_index),
                "stress": int(p.stress),
            }
            for p in tr.phones
        ],
        "visemes": [
            {
                "viseme": s.viseme,
                "start": _round(s.start, decimals),
                "end": _round(s.end, decimals),
                "phone": s.phone,
                "weight": _round(s.weight, decimals),
            }
            for s in result.visemes
        ],
        "lines": [
            {"speaker": line.speaker, "text": line.text, "start": _round(line.start, decimals),
             "end": _round(line.end, decimals)}
            for line in result.lines
        ],
        "mapping": {v: {c: _round(w, decimals) for c, w in m.items()} for v, m in result.mapping.items()},
        "curves": _curves_dict(result.curves, decimals),
    }
    if include_viseme_curves:
        out["viseme_curves"] = _curves_dict(result.viseme_curves, decimals)
    if result.face_curves is not None:
        # procedural face layers (docs/face.md): canonical channels; head and eye angles in signed radians
        out["face_curves"] = _curves_dict(result.face_curves, decimals, clip=False)
    out["warnings"] = [str(w) for w in result.warnings]
    return out


# ---------------------------------------------------------------- Rhubarb


@dataclass(frozen=True)
class _RhubarbRules:
    min_shape: float
    decimals: int
    keep_short: frozenset[str]
    rest: str
    phone_shapes: dict[str, str]
    viseme_shapes: dict[str, str]


@cache
def _rhubarb_rules() -> _RhubarbRules:
    raw = json.loads((_DATA / "rhubarb_cues.json").read_text(encoding="utf-8"))
    vset = load_viseme_set("rhubarb")
    # the dominant shape of each canonical viseme in the rhubarb preset
    shapes = {v: (max(m, key=m.__getitem__) if m else raw["rest_shape"]) for v, m in vset.mapping.items()}
    return _RhubarbRules(
        min_shape=float(raw["min_shape_s"]),
        decimals=int(raw["decimals"]),
        keep_short=frozenset(raw["keep_short"]),
        rest=str(raw["rest_shape"]),
        phone_shapes={unicodedata.normalize("NFC", k): v for k, v in raw["phone_shapes"].items()},
        viseme_shapes=shapes,
    )


def _shape_of(seg: VisemeSegment, rules: _RhubarbRules) -> str:
    if seg.viseme == "sil":
        return rules.rest
    phone = unicodedata.normalize("NFC", seg.phone or "")
    if seg.viseme not in {"PP", "FF"}:  # closures keep their shape whatever the phone
        hit = rules.phone_shapes.get(phone)
        if hit is None:
            bare = "".join(
                ch for ch in unicodedata.normalize("NFD", phone) if unicodedata.category(ch) not in {"Mn", "Lm", "Sk"}
            )
            hit = rules.phone_shapes.get(unicodedata.normalize("NFC", bare))
        if hit is not None:
            return hit
    return rules.viseme_shapes.get(seg.viseme, rules.rest)


@dataclass
class _Cue:
    start: float
    end: float
    value: str


def _merge_same(cues: list[_Cue]) -> list[_Cue]:
    out: list[_Cue] = []
    for c in cues:
        if c.end <= c.start + 1e-9 and out:
            continue
        if out and out[-1].value == c.value:
            out[-1].end = c.end
        else:
            out.append(_Cue(c.start, c.end, c.value))
    return out


def rhubarb_cues(visemes: list[VisemeSegment], duration: float) -> list[tuple[float, float, str]]:
    """Rhubarb mouth cues ``(start s, end s, shape)`` that tile [0, duration] without gaps.

    Shapes are A-H and X. Pauses shorter than the coarticulation hold time keep the previous
    shape, longer ones and the clip's ends are X; identical neighbours are merged; a shape shorter
    than ``min_shape_s`` (0.07 s) is absorbed by the longer neighbour, except closures (A) and
    lip-teeth contact (G), which are lengthened to it instead. Times are rounded to centiseconds.
    """
    rules = _rhubarb_rules()
    hold = pause_hold_seconds()
    duration = max(float(duration), 0.0)
    speech = sorted((s for s in visemes if s.viseme != "sil"), key=lambda s: (s.start, s.end))
    cues: list[_Cue] = []
    cursor = 0.0
    for seg in speech:
        start = min(max(float(seg.start), cursor), duration)
        end = min(max(float(seg.end), start), duration)
        gap = start - cursor
        if gap > 0:
            if cues and gap < hold:
                cues[-1].end = start
            else:
                cues.append(_Cue(cursor, start, rules.rest))
        cues.append(_Cue(start, end, _shape_of(seg, rules)))
        cursor = max(cursor, end)
    if cursor < duration or not cues:
        cues.append(_Cue(cursor, duration, rules.rest))
    cues = _merge_same(cues)

    # shortest shape: lengthen closures, absorb everything else into a neighbour
    for _ in range(3):
        out: list[_Cue] = []
        i = 0
        while i < len(cues):
            c = cues[i]
            length = c.end - c.start
            if length >= rules.min_shape - 1e-9 or len(cues) == 1:
                out.append(c)
            elif c.value in rules.keep_short:
                want = c.start + rules.min_shape
                if i + 1 < len(cues):
                    nxt = cues[i + 1]
                    c.end = min(want, nxt.end)
                    nxt.start = c.end
                out.append(c)
            else:
                prev = out[-1] if out else None
                nxt = cues[i + 1] if i + 1 < len(cues) else None
                prev_len = (prev.end - prev.start) if prev else -1.0
                next_len = (nxt.end - nxt.start) if nxt else -1.0
                if prev is not None and (prev_len >= next_len or (prev.value in rules.keep_short and nxt is None)):
                    prev.end = c.end
                elif nxt is not None:
                    nxt.start = c.start
                else:
                    out.append(c)
            i += 1
        cues = _merge_same(out)

    # round to centiseconds on shared boundaries so cues stay contiguous
    d = rules.decimals
    bounds = [0.0] + [round(c.end, d) for c in cues[:-1]] + [round(duration, d)]
    rounded: list[_Cue] = []
    for c, a, b in zip(cues, bounds[:-1], bounds[1:], strict=True):
        if b > a:
            rounded.append(_Cue(a, b, c.value))
    rounded = _merge_same(rounded)
    if not rounded:
        rounded = [_Cue(0.0, round(duration, d), rules.rest)]
    return [(round(c.start, d), round(c.end, d), c.value) for c in rounded]


def to_rhubarb_dict(result: LipSyncResult) -> dict:
    """Rhubarb Lip Sync-compatible JSON: ``{"metadata": {"soundFile", "duration"}, "mouthCues": [...]}``.

    Each cue is ``{"start": s, "end": s, "value": "A".."H" | "X"}``; cues are contiguous and cover
    the whole clip (see :func:`rhubarb_cues`).
    """
    cues = rhubarb_cues(result.visemes, result.duration)
    return {
        "metadata": {"soundFile": str(result.audio_path), "duration": round(float(result.duration), 2)},
        "mouthCues": [{"start": s, "end": e, "value": v} for s, e, v in cues],
    }


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: The process umask, read once at import (reading it means setting it, so not per call).
_UMASK = _read_umask()


def write_text(text: str, path: str) -> None:
    """Write ``text`` as UTF-8 (LF line ends) to ``path``, atomically (temp file + rename).

    Parent folders are created; a new file gets the permissions a plain open() would give, an
    existing one keeps its own. Raises :class:`LipSyncError` with a readable message when the file
    cannot be written.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=str(target.parent))
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(text)
            # mkstemp creates 0600; give the file the permissions a plain open() would
            os.chmod(tmp, target.stat().st_mode & 0o777 if target.exists() else 0o666 & ~_UMASK)
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise LipSyncError(f"Cannot write {path}: {exc.strerror or exc}") from None


def write_json(obj: dict, path: str) -> None:
    """Write ``obj`` as UTF-8 JSON (non-ASCII kept as is) to ``path``, atomically (:func:`write_text`)."""
    write_text(json.dumps(_jsonable(obj), ensure_ascii=False, separators=(",", ":")) + "\n", path)
