"""Timeline markers at the start of each line of dialogue (opt-in: the panel's Line Markers).

A marker per timed line (:attr:`lipsync_addon.core.types.LipSyncResult.lines`; with a Speaker, that
speaker's lines), named after its speaker and first words, shows where each line begins in the
timeline, dope sheet and sequencer. The markers
an object's lip sync placed are recorded in the scene (``scene.lipsync.line_markers_record``, JSON:
object name -> ``[name, frame]`` pairs; a registered property, so it stays out of the Custom Properties
panel); generating again for that object removes exactly those (a marker the user renamed or moved is
theirs from then on) and places the new ones. Other markers are never touched.
"""

from __future__ import annotations

import json
from typing import Any

from ..core.transcript_file import speaker_key
from ..core.types import LineTiming

#: scene custom property where earlier versions kept the record (read, then moved to the registered one)
LEGACY_RECORD = "lipsync_markers"
#: longest marker name Blender keeps (characters)
MAX_NAME = 63


def marker_name(line: LineTiming) -> str:
    """``SPEAKER: first words…`` (or the words alone), short enough for a marker."""
    text = f"{line.speaker}: {line.text}" if line.speaker else line.text
    return text if len(text) <= MAX_NAME else text[: MAX_NAME - 1].rstrip() + "\u2026"


def own_lines(lines: list[LineTiming], speaker: str) -> list[LineTiming]:
    """The lines a character with ``speaker`` says (every line without a speaker), so that two characters
    of one track each mark their own lines."""
    if not speaker.strip():
        return list(lines)
    key = speaker_key(speaker)
    return [line for line in lines if speaker_key(line.speaker) == key]


def _records(scene: Any) -> dict[str, list[list[Any]]]:
    records: dict[str, list[list[Any]]] = {}
    settings = getattr(scene, "lipsync", None)
    for text in (scene.get(LEGACY_RECORD), getattr(settings, "line_markers_record", None)):
        try:
            data = json.loads(str(text or "{}"))
        except ValueError:
            continue
        if isinstance(data, dict):
            records.update(data)
    return records


def remove_line_markers(scene: Any, object_name: str) -> int:
    """Remove the markers placed for ``object_name`` that are still as placed; returns how many."""
    records = _records(scene)
    placed = {(str(name), int(frame)) for name, frame in records.pop(object_name, [])}
    removed = 0
    for marker in list(scene.timeline_markers):
        key = (marker.name, int(marker.frame))
        if key in placed:
            placed.discard(key)  # (two identical markers: only as many as were placed go)
            scene.timeline_markers.remove(marker)
            removed += 1
    _store(scene, records)
    return removed


def place_line_markers(
    scene: Any, object_name: str, lines: list[LineTiming], *, start_frame: int, fps: float
) -> list[str]:
    """Replace ``object_name``'s line markers with one per line at its first word's frame; their names."""
    remove_line_markers(scene, object_name)
    placed = []
    for line in lines:
        frame = start_frame + round(line.start * fps)
        marker = scene.timeline_markers.new(marker_name(line), frame=frame)
        placed.append([marker.name, int(marker.frame)])
    records = _records(scene)
    if placed:
        records[object_name] = placed
    _store(scene, records)
    return [name for name, _ in placed]


def _store(scene: Any, records: dict[str, list[list[Any]]]) -> None:
    text = json.dumps(records, ensure_ascii=False) if records else ""
    settings = getattr(scene, "lipsync", None)
    if settings is None:  # the add-on's properties are not registered: keep the custom property
        if text:
            scene[LEGACY_RECORD] = text
        elif LEGACY_RECORD in scene:
            del scene[LEGACY_RECORD]
        return
    settings.line_markers_record = text
    if LEGACY_RECORD in scene:
        del scene[LEGACY_RECORD]  # our own record from an earlier version, now kept above
