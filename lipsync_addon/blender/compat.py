"""Every Blender version difference the add-on cares about, in one place.

Supported: Blender 4.2 (legacy ``Action.fcurves``, ``SequenceEditor.sequences``)
through 5.0 (slotted actions only, ``SequenceEditor.strips``). Nothing else in
``lipsync_addon.blender`` reads ``bpy.app.version``.
"""

from __future__ import annotations

from typing import Any

import bpy

#: Blender 4.4 introduced slotted actions (layers -> strips -> channelbags).
SLOTTED_ACTIONS_VERSION = (4, 4, 0)
#: Blender 5.0 removed the legacy ``Action.fcurves`` proxy.
LEGACY_FCURVES_REMOVED_VERSION = (5, 0, 0)
#: ``Action.fcurve_ensure_for_datablock`` takes ``group_name`` from 5.0 on (4.4-4.5 do not).
FCURVE_GROUP_ARG_VERSION = (5, 0, 0)
#: ``SequenceEditor.strips`` replaced ``.sequences`` (4.4 added it, 5.0 removed the old name).
STRIPS_RENAMED_VERSION = (4, 4, 0)


def blender_version() -> tuple[int, int, int]:
    """The running Blender version as (major, minor, patch)."""
    return tuple(bpy.app.version[:3])  # type: ignore[return-value]


def uses_slotted_actions() -> bool:
    """True on Blender 4.4+ where actions have slots / layers / channelbags."""
    return blender_version() >= SLOTTED_ACTIONS_VERSION


# --------------------------------------------------------------------------- actions


def assign_action(datablock: Any, action: Any) -> None:
    """Make ``action`` the active action of ``datablock`` (creating animation data).

    On 4.4+ this also makes sure a slot for the datablock exists and is assigned,
    so that channels land in that slot's channelbag.
    """
    anim = datablock.animation_data or datablock.animation_data_create()
    if anim.action != action:
        anim.action = action
    if not uses_slotted_actions():
        return
    if anim.action_slot is None:
        slot = None
        for candidate in anim.action_suitable_slots:
            slot = candidate
            break
        if slot is None:
            slot = action.slots.new(id_type=datablock.id_type, name=datablock.name)
        anim.action_slot = slot


def _channelbag(action: Any, datablock: Any) -> Any:
    """The channelbag of ``datablock``'s slot in ``action`` (4.4+), or None."""
    from bpy_extras import anim_utils

    anim = datablock.animation_data
    slot = anim.action_slot if anim is not None and anim.action == action else None
    if slot is None:
        return None
    return anim_utils.action_get_channelbag_for_slot(action, slot)


def action_fcurves(action: Any, datablock: Any) -> list[Any]:
    """All fcurves of ``action`` that animate ``datablock`` (its slot on 4.4+)."""
    if uses_slotted_actions():
        bag = _channelbag(action, datablock)
        return list(bag.fcurves) if bag is not None else []
    return list(action.fcurves)


def find_fcurve(action: Any, datablock: Any, data_path: str, index: int = 0) -> Any:
    """The fcurve for ``data_path[index]`` in ``action`` for ``datablock``, or None."""
    if uses_slotted_actions():
        bag = _channelbag(action, datablock)
        return bag.fcurves.find(data_path, index=index) if bag is not None else None
    return action.fcurves.find(data_path, index=index)


def remove_fcurve(action: Any, datablock: Any, fcurve: Any) -> None:
    """Delete ``fcurve`` (which must belong to ``action``'s channels for ``datablock``)."""
    if uses_slotted_actions():
        bag = _channelbag(action, datablock)
        if bag is not None:
            bag.fcurves.remove(fcurve)
        return
    action.fcurves.remove(fcurve)


def new_fcurve(action: Any, datablock: Any, data_path: str, index: int = 0, group: str = "") -> Any:
    """Create (or return the existing) fcurve for ``data_path[index]``.

    ``datablock`` must already have ``action`` assigned (see :func:`assign_action`).
    """
    if uses_slotted_actions():
        if blender_version() >= FCURVE_GROUP_ARG_VERSION:
            return action.fcurve_ensure_for_datablock(datablock, data_path, index=index, group_name=group)
        # 4.4-4.5: no group_name argument; put the fcurve in the group by hand
        fcurve = action.fcurve_ensure_for_datablock(datablock, data_path, index=index)
        bag = _channelbag(action, datablock)
        if group and fcurve.group is None and bag is not None:
            found = next((g for g in bag.groups if g.name == group), None)
            fcurve.group = found if found is not None else bag.groups.new(group)
        return fcurve
    existing = action.fcurves.find(data_path, index=index)
    if existing is not None:
        return existing
    return action.fcurves.new(data_path, index=index, action_group=group)


def every_fcurve(action: Any) -> list[Any]:
    """Every fcurve of ``action`` whoever it animates (all slots on 4.4+); for reading an unassigned action."""
    if not uses_slotted_actions():
        return list(action.fcurves)
    out: list[Any] = []
    for layer in action.layers:
        for strip in layer.strips:
            for bag in getattr(strip, "channelbags", ()):
                out.extend(bag.fcurves)
    return out


# --------------------------------------------------------------------------- sequencer


def has_audio() -> bool:
    """True if this Blender build can load sounds (bpy 4.2-4.4 wheels have no Audaspace)."""
    options = bpy.app.build_options
    return bool(getattr(options, "audaspace", False))


#: Name of Blender's own decoder in :func:`lipsync_addon.core.audio.add_decoder`'s list.
BLENDER_DECODER = "Blender's FFmpeg"


def decode_with_blender(path: str) -> tuple[Any, int]:
    """Samples (frames, channels) float32 and rate (Hz) of any file Blender can play (Audaspace with
    Blender's FFmpeg: AAC/M4A, a video's sound track, ...): the same samples the sequencer plays.

    Raises:
        aud.error (or ImportError without Audaspace): Blender cannot read the file.
    """
    import aud

    sound = aud.Sound(path)
    # reading the specs raises aud.error on an unreadable file; data() would abort Blender instead
    rate = round(float(sound.specs[0]))
    return sound.data(), rate


def top_level_strips(sequence_editor: Any) -> Any:
    """The editor's top-level strip collection (has ``new_sound``)."""
    if blender_version() >= STRIPS_RENAMED_VERSION and hasattr(sequence_editor, "strips"):
        return sequence_editor.strips
    return sequence_editor.sequences


def all_strips(sequence_editor: Any) -> list[Any]:
    """Every strip of the editor, including those inside meta strips."""
    if blender_version() >= STRIPS_RENAMED_VERSION and hasattr(sequence_editor, "strips_all"):
        return list(sequence_editor.strips_all)
    return list(sequence_editor.sequences_all)


# Blender 5.2 renamed a strip's timing (the old names warn and go in 6.0): frame_start -> content_start,
# frame_final_start/frame_final_end -> left_handle/right_handle, frame_final_duration -> duration.


def strip_start(strip: Any) -> float:
    """Timeline frame where the strip's content starts (``frame_start`` before Blender 5.2)."""
    return float(strip.content_start if hasattr(strip, "content_start") else strip.frame_start)


def set_strip_start(strip: Any, frame: float) -> None:
    """Move the strip so that its content starts at ``frame``."""
    if hasattr(strip, "content_start"):
        strip.content_start = frame
    else:
        strip.frame_start = frame


def strip_span(strip: Any) -> tuple[int, int]:
    """(first frame, first frame after) the strip plays: its handles (``frame_final_start/end`` before 5.2)."""
    if hasattr(strip, "left_handle"):
        return int(strip.left_handle), int(strip.right_handle)
    return int(strip.frame_final_start), int(strip.frame_final_end)


def strip_duration(strip: Any) -> int:
    """Frames the strip plays (``frame_final_duration`` before Blender 5.2)."""
    first, after = strip_span(strip)
    return after - first
