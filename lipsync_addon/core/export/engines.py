"""Cue files for game engines and SDK-style consumers (bpy-free). Times are seconds unless named.

* :func:`rhubarb_tsv` - Rhubarb Lip Sync's TSV: ``start<TAB>shape`` per cue, A-H/X, then a closing
  ``end<TAB>X`` line (as Rhubarb writes it).
* :func:`oculus_events` - Meta/Oculus OVRLipSync viseme-ID events (0-14) when the dominant viseme
  changes, with the canonical weights at that moment.
* :func:`azure_events` - Azure Speech SDK-style ``VisemeReceived`` events: ``AudioOffset`` in ticks
  (100 ns) and ``VisemeId`` 0-21, one per phone change.
* :func:`frame_weights_csv` - per-frame weights of every channel (rig channels + ``mouth_open``) at
  a chosen fps, linearly resampled from the curves.
* :func:`write_cue_file` - any of these (or our versioned JSON / Rhubarb JSON from :mod:`.cues`) to
  a file, atomically, by format name (:data:`FORMATS`).

The ID tables are data: ``data/engine_visemes.json``. See docs/engines.md for consuming each format.
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ..types import Curves, LipSyncError, LipSyncResult
from .cues import rhubarb_cues, to_cue_dict, to_rhubarb_dict, write_json, write_text

_DATA = Path(__file__).with_name("data")

#: format name -> (file suffix, description)
FORMATS: dict[str, tuple[str, str]] = {
    "json": (".json", "versioned lip-sync cue JSON (words, phones, visemes, curves)"),
    "rhubarb": (".rhubarb.json", "Rhubarb Lip Sync JSON (mouthCues A-H, X)"),
    "rhubarb-tsv": (".tsv", "Rhubarb Lip Sync TSV (start<TAB>shape)"),
    "oculus": (".oculus.json", "Oculus/OVRLipSync viseme-ID events (0-14)"),
    "azure": (".azure.json", "Azure Speech-style viseme events (AudioOffset ticks, VisemeId 0-21)"),
    "csv": (".csv", "per-frame channel weights at --csv-fps"),
    "srt": (".srt", "SubRip subtitles: the transcript's lines timed by the alignment (needs a transcript)"),
    "vtt": (".vtt", "WebVTT subtitles, speakers as voice tags (needs a transcript)"),
}


@cache
def _tables() -> dict[str, Any]:
    return json.loads((_DATA / "engine_visemes.json").read_text(encoding="utf-8"))


def oculus_viseme_id(viseme: str) -> int:
    """OVRLipSync index (0-14) of a canonical viseme; raise KeyError for unknown names."""
    return int(_tables()["oculus"][viseme])


def _strip_marks(phone: str) -> str:
    kept = (ch for ch in unicodedata.normalize("NFD", phone) if unicodedata.category(ch) not in {"Mn", "Lm", "Sk"})
    return unicodedata.normalize("NFC", "".join(kept))


def azure_viseme_id(phone: str, canonical: str = "") -> int:
    """Azure viseme ID (0-21) of an IPA phone; diacritics/length marks dropped; else via ``canonical``."""
    table = _tables()["azure"]
    for key in (unicodedata.normalize("NFC", phone), _strip_marks(phone)):
        if key in table:
            return int(table[key])
    return int(_tables()["azure_from_canonical"].get(canonical, 0))


def rhubarb_tsv(result: LipSyncResult) -> str:
    """Rhubarb TSV: one ``start<TAB>shape`` line per cue (seconds, 2 decimals), then ``end<TAB>X``."""
    cues = rhubarb_cues(result.visemes, result.duration)
    lines = [f"{start:.2f}\t{shape}" for start, _end, shape in cues]
    if cues:  # Rhubarb's closing entry: the end of the animation, always X
        lines.append(f"{cues[-1][1]:.2f}\tX")
    return "\n".join(lines) + "\n"


def oculus_events(result: LipSyncResult, *, min_weight: float = 0.05) -> dict[str, Any]:
    """Oculus viseme-ID events from the canonical viseme curves.

    An event is emitted at every sample where the dominant canonical viseme changes (``sil`` when
    all weights are below ``min_weight``). Each event: ``time`` (s), ``frame`` (sample index at
    the curves' fps), ``visemeId`` (0-14), ``viseme`` (OVRLipSync name), ``weight`` and ``weights``
    (all 15, OVRLipSync order) at that moment.
    """
    vc = result.viseme_curves
    names = list(_tables()["oculus"])
    ovr_names = list(_tables()["oculus_names"])
    n = len(vc.times)
    matrix = np.zeros((len(names), n), dtype=np.float64)
    for i, name in enumerate(names):
        if name in vc.channels:
            matrix[i] = np.clip(np.nan_to_num(np.asarray(vc.channels[name], dtype=np.float64)), 0.0, 1.0)
    if n:
        dominant = np.argmax(matrix, axis=0)
        dominant[matrix.max(axis=0) < min_weight] = 0
        change = np.flatnonzero(np.r_[True, dominant[1:] != dominant[:-1]])
    else:
        dominant = np.zeros(0, dtype=int)
        change = np.zeros(0, dtype=int)
    events = [
        {
            "time": round(float(vc.times[k]), 4),
            "frame": int(k),
            "visemeId": int(dominant[k]),
            "viseme": ovr_names[int(dominant[k])],
            "weight": round(float(matrix[dominant[k], k]), 4),
            "weights": [round(float(w), 4) for w in matrix[:, k]],
        }
        for k in change
    ]
    return {
        "format": "oculus-viseme-events",
        "version": "1.0",
        "fps": float(vc.rate),
        "duration": round(float(result.duration), 4),
        "visemes": ovr_names,
        "events": events,
    }


def azure_events(result: LipSyncResult) -> list[dict[str, Any]]:
    """Azure Speech SDK-style viseme events: ``[{"AudioOffset": ticks, "VisemeId": 0-21}, ...]``.

    One event per phone (identical neighbours merged), at the phone's start; 1 tick = 100 ns.
    Ends with a silence event (0) at the end of the last phone. ``Phone`` (IPA) and ``OffsetMs``
    are added for readability.
    """
    ticks = int(_tables()["azure_ticks_per_second"])
    phones = sorted(result.transcript.phones, key=lambda p: p.start)
    canonical_at = {round(s.start, 4): s.viseme for s in result.visemes}
    events: list[dict[str, Any]] = []
    for p in phones:
        vid = 0 if p.is_silence else azure_viseme_id(p.ipa, canonical_at.get(round(p.start, 4), ""))
        if events and events[-1]["VisemeId"] == vid:
            continue
        events.append({"AudioOffset": round(p.start * ticks), "VisemeId": vid,
                       "OffsetMs": round(p.start * 1000.0, 1), "Phone": "" if p.is_silence else p.ipa})
    end = max((p.end for p in phones), default=0.0)
    if not events or events[-1]["VisemeId"] != 0:
        events.append({"AudioOffset": round(end * ticks), "VisemeId": 0, "OffsetMs": round(end * 1000.0, 1),
                       "Phone": ""})
    if events and events[0]["AudioOffset"] > 0:
        events.insert(0, {"AudioOffset": 0, "VisemeId": 0, "OffsetMs": 0.0, "Phone": ""})
    return events


def resample_curves(curves: Curves, fps: float, duration: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Curves linearly resampled to ``fps`` frames per second over [0, duration] s: (times, channels)."""
    if not (0.0 < fps <= 1000.0):
        raise LipSyncError(f"The CSV frame rate must be between 0 and 1000 fps, got {fps}.")
    count = int(np.floor(max(duration, 0.0) * fps + 1e-9)) + 1
    times = np.arange(count, dtype=np.float64) / fps
    src_t = np.asarray(curves.times, dtype=np.float64)
    out = {}
    for name, values in curves.channels.items():
        v = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float64)), 0.0, 1.0)
        out[name] = np.interp(times, src_t, v) if len(src_t) else np.zeros(count)
    return times, out


def frame_weights_csv(result: LipSyncResult, fps: float, *, decimals: int = 4) -> str:
    """CSV with header ``frame,time,<channel>...``: one row per frame at ``fps`` (time in s)."""
    times, channels = resample_curves(result.curves, fps, result.duration)
    names = list(channels)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["frame", "time", *names])
    for k, t in enumerate(times):
        writer.writerow([k, f"{t:.{decimals}f}", *(f"{channels[n][k]:.{decimals}f}" for n in names)])
    return buf.getvalue()


def write_cue_file(result: LipSyncResult, fmt: str, path: str, *, csv_fps: float = 30.0, language: str = "en") -> None:
    """Write ``result`` as ``fmt`` (a key of :data:`FORMATS`) to ``path`` atomically (UTF-8);
    ``language`` (ISO 639) is the transcript's, for cutting subtitle cues.

    Raises LipSyncError for an unknown format, an unwritable path, or subtitles without timed lines.
    """
    if fmt in ("srt", "vtt"):
        from .subtitles import cues, to_srt, to_vtt

        if not result.lines:
            raise LipSyncError(f"No subtitles for this line ({fmt}): they come from its transcript, and it has none.")
        timed = cues(result.lines, language)
        write_text(to_srt(timed) if fmt == "srt" else to_vtt(timed), path)
    elif fmt == "json":
        write_json(to_cue_dict(result), path)
    elif fmt == "rhubarb":
        write_json(to_rhubarb_dict(result), path)
    elif fmt == "oculus":
        write_json(oculus_events(result), path)
    elif fmt == "azure":
        write_json({"format": "azure-viseme-events", "version": "1.0", "events": azure_events(result)}, path)
    elif fmt == "rhubarb-tsv":
        write_text(rhubarb_tsv(result), path)
    elif fmt == "csv":
        write_text(frame_weights_csv(result, csv_fps), path)
    else:
        raise LipSyncError(f"Unknown cue format '{fmt}'; use one of {', '.join(FORMATS)}.")
