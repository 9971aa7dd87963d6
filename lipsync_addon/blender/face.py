"""Head motion (procedural ``head_pitch/yaw/roll`` curves, radians) -> the head bone of a mesh's armature.

The armature is the mesh's parent (if an armature) or the object of its first Armature modifier.
The head bone is found by name (Rigify ``head``/``neck``, Mixamo ``mixamorig:Head``, CC4
``CC_Base_Head``, VRM ``J_Bip_C_Head``; core/animate/data/face_targets.json). Keys go into an
action on the armature object that the add-on owns (same tags as :mod:`.bake`); a user action is
never modified (:func:`check_head_bakeable` refuses). Re-running replaces only the channels listed
in ``action["lipsync_channels"]``; with the head layer off they are removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import bpy
import numpy as np

from ..core.animate import procedural
from ..core.types import Curves, RigError
from . import bake, compat

#: fcurve group of the head channels.
HEAD_GROUP = "Lip Sync Head"


@dataclass
class HeadBakeReport:
    """What :func:`bake_head` did: armature, bone, action ("" when nothing was written), keys written."""

    armature_name: str = ""
    bone_name: str = ""
    action_name: str = ""
    keys_written: int = 0
    removed: int = 0


def armature_of(obj: Any) -> Any:
    """The armature deforming ``obj`` (parent, else first Armature modifier's object), or None."""
    parent = getattr(obj, "parent", None)
    if parent is not None and parent.type == "ARMATURE":
        return parent
    for mod in getattr(obj, "modifiers", []):
        if mod.type == "ARMATURE" and mod.object is not None:
            return mod.object
    return None


def head_target(obj: Any) -> tuple[Any, str]:
    """(armature, head bone name) for ``obj``; (None, "") when it has no armature or no head/neck bone."""
    arm = armature_of(obj)
    if arm is None or arm.pose is None:
        return None, ""
    return arm, procedural.find_head_bone([b.name for b in arm.pose.bones])


def check_head_bakeable(arm: Any) -> None:
    """Raise :class:`RigError` if the armature plays a user action (nothing is changed then)."""
    anim = arm.animation_data
    if anim is None:
        return
    if anim.use_tweak_mode:
        raise RigError(f"The armature '{arm.name}' is in NLA tweak mode. Leave tweak mode, then generate again.")
    if anim.action is not None and not bake.is_owned(anim.action):
        raise RigError(
            f"The armature '{arm.name}' already uses the action '{anim.action.name}', which Lip Sync did not "
            "create. Lip Sync never modifies your actions, so nothing was changed. Unassign it (or push it down "
            "to an NLA strip) or turn Head Motion off, then generate again."
        )


def _rotation_path(pbone: Any) -> tuple[str, list[int]]:
    mode = pbone.rotation_mode
    esc = bpy.utils.escape_identifier(pbone.name)
    if mode == "QUATERNION":
        return f'pose.bones["{esc}"].rotation_quaternion', [0, 1, 2, 3]
    if mode == "AXIS_ANGLE":
        return f'pose.bones["{esc}"].rotation_axis_angle', [0, 1, 2, 3]
    return f'pose.bones["{esc}"].rotation_euler', [0, 1, 2]


def _quaternions(pitch: np.ndarray, yaw: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """(n, 4) w,x,y,z of the rotation Rz(roll) @ Ry(yaw) @ Rx(pitch) (bone local axes)."""
    cx, sx = np.cos(pitch / 2), np.sin(pitch / 2)
    cy, sy = np.cos(yaw / 2), np.sin(yaw / 2)
    cz, sz = np.cos(roll / 2), np.sin(roll / 2)
    w = cz * cy * cx + sz * sy * sx
    x = cz * cy * sx - sz * sy * cx
    y = cz * sy * cx + sz * cy * sx
    z = sz * cy * cx - cz * sy * sx
    return np.stack([w, x, y, z], axis=1)


def _remove_owned(arm: Any, action: Any) -> int:
    removed = 0
    for entry in list(action.get(bake.CHANNELS_TAG, [])):
        path, _, index = str(entry).rpartition("#")
        fcurve = compat.find_fcurve(action, arm, path, int(index or 0))
        if fcurve is not None:
            compat.remove_fcurve(action, arm, fcurve)
            removed += 1
    action[bake.CHANNELS_TAG] = []
    return removed


def bake_head(
    obj: Any, curves: Curves | None, *, start_frame: float, fps: float, clip: str = "clip"
) -> HeadBakeReport:
    """Key the head bone of ``obj``'s armature from ``head_pitch/yaw/roll`` (radians), or clear them.

    Args:
        obj: the animated mesh.
        curves: procedural face curves with the head channels; None (or no head channels)
            removes what a previous head bake wrote into the owned action.
        start_frame: scene frame of t = 0 s.
        fps: frames per second.
        clip: clip label for the action name.

    Returns:
        A :class:`HeadBakeReport` (empty when the mesh has no armature with a head/neck bone).
    """
    arm, bone = head_target(obj)
    report = HeadBakeReport(armature_name=arm.name if arm is not None else "", bone_name=bone)
    wanted = curves is not None and all(c in curves.channels for c in procedural.ROTATION_CHANNELS)
    if arm is None:
        return report
    anim = arm.animation_data
    current = anim.action if anim is not None else None
    if not wanted:
        if current is not None and bake.is_owned(current):
            report.removed = _remove_owned(arm, current)
            report.action_name = current.name
        return report
    if not bone:
        return report
    check_head_bakeable(arm)
    if current is not None and bake.is_owned(current):
        action = current
    else:
        action = bpy.data.actions.new(bake.action_name_for(arm.name, clip))
        action[bake.OWNER_TAG] = True
    compat.assign_action(arm, action)
    report.removed = _remove_owned(arm, action)

    assert curves is not None
    pbone = arm.pose.bones[bone]
    path, indices = _rotation_path(pbone)
    pitch, yaw, roll = (np.asarray(curves.channels[c], dtype=np.float64) for c in procedural.ROTATION_CHANNELS)
    if pbone.rotation_mode == "QUATERNION":
        values = _quaternions(pitch, yaw, roll)
    elif pbone.rotation_mode == "AXIS_ANGLE":
        q = _quaternions(pitch, yaw, roll)
        angle = 2 * np.arccos(np.clip(q[:, 0], -1, 1))
        s = np.sqrt(np.maximum(1 - q[:, 0] ** 2, 1e-12))
        axis = np.where(s[:, None] > 1e-6, q[:, 1:] / s[:, None], np.array([0.0, 1.0, 0.0]))
        values = np.column_stack([angle, axis])
    else:
        values = np.column_stack([pitch, yaw, roll])
    frames = float(start_frame) + np.asarray(curves.times, dtype=np.float64) * float(fps)
    written: list[str] = []
    for col, index in enumerate(indices):
        column = values[:, col]
        idx = bake.reduce_keys(column)
        co = np.empty(2 * len(idx), dtype=np.float32)
        co[0::2], co[1::2] = frames[idx], column[idx]
        fcurve = compat.new_fcurve(action, arm, path, index, HEAD_GROUP)
        fcurve.keyframe_points.add(len(idx))
        fcurve.keyframe_points.foreach_set("co", co)
        fcurve.keyframe_points.foreach_set("interpolation", np.full(len(idx), 1, dtype=np.int32))
        fcurve.update()
        written.append(f"{path}#{index}")
        report.keys_written += len(idx)
    action[bake.CHANNELS_TAG] = written
    action["lipsync_object"] = obj.name
    action["lipsync_clip"] = clip
    report.action_name = action.name
    return report
