"""Place the clip in the sequencer so timeline playback is in sync with the keys.

Rules: a strip playing the same file (absolute paths compared) at the start
frame is reused; otherwise a new sound strip is added on the lowest channel
that is free over the clip's span. User strips are never moved or deleted.
``scene.frame_end`` grows to cover the clip and never shrinks.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import bpy

from . import compat

#: Custom property marking strips the add-on created.
OWNER_TAG = "lipsync_generated"
#: Blender's sequencer has channels 1..128.
MAX_CHANNEL = 128


@dataclass
class StripReport:
    """Outcome of :func:`place_sound_strip`.

    Attributes:
        strip_name: the strip now playing the clip ("" if none).
        created: True if a new strip was added, False if an existing one was reused.
        channel: sequencer channel of the strip (0 if none).
        frame_end: the scene's end frame after the call.
        warnings: messages for the user (no audio support, strip elsewhere, ...).
    """

    strip_name: str = ""
    created: bool = False
    channel: int = 0
    frame_end: int = 0
    warnings: list[str] = field(default_factory=list)


def normalize_path(path: str) -> str:
    """Absolute, normalized file path (Blender ``//`` paths resolved against the .blend)."""
    return os.path.normcase(os.path.realpath(bpy.path.abspath(path)))


def sound_strips(scene: Any) -> list[Any]:
    """All sound strips of ``scene`` (empty list without a sequence editor)."""
    editor = scene.sequence_editor
    if editor is None:
        return []
    return [s for s in compat.all_strips(editor) if s.type == "SOUND" and s.sound is not None]


def find_strips_for_file(scene: Any, audio_path: str) -> list[Any]:
    """Sound strips of ``scene`` whose sound is ``audio_path``."""
    target = normalize_path(audio_path)
    return [s for s in sound_strips(scene) if normalize_path(s.sound.filepath) == target]


def free_channel(scene: Any, frame_start: int, frame_end: int) -> int:
    """Lowest channel with no strip overlapping ``[frame_start, frame_end)``."""
    editor = scene.sequence_editor
    strips = compat.all_strips(editor) if editor is not None else []
    for channel in range(1, MAX_CHANNEL + 1):
        busy = any(
            s.channel == channel and compat.strip_span(s)[0] < frame_end and compat.strip_span(s)[1] > frame_start
            for s in strips
        )
        if not busy:
            return channel
    return 0


def clip_end_frame(start_frame: int, duration: float, fps: float) -> int:
    """Last frame covered by a clip of ``duration`` seconds at ``fps`` starting at ``start_frame``."""
    return int(start_frame + max(0, math.ceil(duration * fps) - 1))


def extend_frame_end(scene: Any, frame_end: int) -> int:
    """Grow ``scene.frame_end`` to at least ``frame_end`` (never shrinks); return the new end."""
    if scene.frame_end < frame_end:  # noqa: PLR1730 (no write when unchanged)
        scene.frame_end = frame_end
    return scene.frame_end


def place_sound_strip(
    scene: Any,
    audio_path: str,
    *,
    start_frame: int,
    duration: float,
    fps: float,
    name: str = "",
) -> StripReport:
    """Make sure the clip plays from ``start_frame`` in ``scene``'s sequencer.

    Args:
        scene: the ``bpy.types.Scene``.
        audio_path: the clip file (already validated as audio by the pipeline).
        start_frame: frame where the clip's first sample plays.
        duration: clip length in seconds (to find a free channel and grow the end frame).
        fps: scene frames per second (``fps / fps_base``).
        name: strip name (default: the file name).

    Returns:
        A :class:`StripReport`; problems are warnings, never exceptions.
    """
    report = StripReport()
    end_frame = clip_end_frame(start_frame, duration, fps)
    report.frame_end = extend_frame_end(scene, end_frame)
    if not compat.has_audio():
        report.warnings.append(
            "This Blender build has no audio support, so no sound strip was added; "
            "the keys are baked, add the clip to the sequencer yourself in a full Blender."
        )
        return report

    existing = find_strips_for_file(scene, audio_path)
    for strip in existing:
        if round(compat.strip_start(strip)) == int(start_frame):
            report.strip_name, report.channel = strip.name, strip.channel
            report.frame_end = extend_frame_end(scene, max(end_frame, compat.strip_span(strip)[1] - 1))
            return report
    for strip in existing:
        if strip.get(OWNER_TAG):
            # Our own strip from an earlier run at another start frame: move it (it is ours).
            compat.set_strip_start(strip, start_frame)
            if compat.strip_span(strip)[0] != start_frame or _overlaps(scene, strip):
                strip.channel = free_channel_excluding(scene, strip, start_frame, end_frame + 1)
            report.strip_name, report.channel = strip.name, strip.channel
            report.frame_end = extend_frame_end(scene, max(end_frame, compat.strip_span(strip)[1] - 1))
            return report
    if existing:
        user = existing[0]
        report.warnings.append(
            f"The clip is already in the sequencer (strip '{user.name}' from frame "
            f"{int(compat.strip_start(user))}), but the lip sync starts at frame {start_frame}. Your strip was "
            f"not moved; move it to frame {start_frame} or generate again with start frame "
            f"{int(compat.strip_start(user))} to keep them in sync."
        )
        report.strip_name, report.channel = user.name, user.channel
        return report

    editor = scene.sequence_editor or scene.sequence_editor_create()
    channel = free_channel(scene, start_frame, end_frame + 1)
    if channel == 0:
        report.warnings.append("Every sequencer channel is busy over the clip's frames; no sound strip added.")
        return report
    strip_name = name or os.path.basename(audio_path)
    try:
        strip = compat.top_level_strips(editor).new_sound(
            strip_name, bpy.path.abspath(audio_path), channel=channel, frame_start=int(start_frame)
        )
    except (RuntimeError, TypeError) as exc:
        report.warnings.append(f"Could not add a sound strip for '{audio_path}': {exc}")
        return report
    first, after = compat.strip_span(strip)
    if after - first <= 1 and duration > 2.0 / fps:
        # Blender could not decode the file: do not leave a silent 1-frame strip behind.
        compat.top_level_strips(editor).remove(strip)
        report.warnings.append(f"Blender could not play '{audio_path}'; no sound strip added.")
        return report
    strip[OWNER_TAG] = True
    strip.select = False  # leave the user's sequencer selection as it was
    report.strip_name, report.channel, report.created = strip.name, strip.channel, True
    report.frame_end = extend_frame_end(scene, max(end_frame, compat.strip_span(strip)[1] - 1))
    return report


def _overlaps(scene: Any, strip: Any) -> bool:
    """True if another strip on ``strip``'s channel overlaps it."""
    editor = scene.sequence_editor
    return any(
        other != strip
        and other.channel == strip.channel
        and compat.strip_span(other)[0] < compat.strip_span(strip)[1]
        and compat.strip_span(other)[1] > compat.strip_span(strip)[0]
        for other in compat.all_strips(editor)
    )


def free_channel_excluding(scene: Any, strip: Any, frame_start: int, frame_end: int) -> int:
    """Lowest channel free over ``[frame_start, frame_end)`` ignoring ``strip`` itself."""
    editor = scene.sequence_editor
    others = [s for s in compat.all_strips(editor) if s != strip]
    for channel in range(1, MAX_CHANNEL + 1):
        if not any(
            s.channel == channel and compat.strip_span(s)[0] < frame_end and compat.strip_span(s)[1] > frame_start
            for s in others
        ):
            return channel
    return strip.channel
