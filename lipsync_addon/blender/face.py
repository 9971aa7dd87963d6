"""Head motion (procedural ``head_pitch/yaw/roll`` curves, radians) -> the head bone of a mesh's armature.

The armature is the mesh's parent (if an armature) or the object of its first Armature modifier.
The head bone is found by name (Rigify ``head``/``neck``, Mixamo ``mixamorig:Head``, CC4
``CC_Base_Head``, VRM ``J_Bip_C_Head``; core/animate/data/face_targets.json). Keys go into an
action on the armature object that the add-on owns (same tags as :mod:`.bake`); a user action is
never modified (:func:`check_head_bakeable` refuses). The channels are the "head" layer of that
action (:func:`.bake.bake_layer`): re-running replaces only them, the bone mouth ("mouth" layer) and
user fcurves stay; with the head layer off they are removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import bpy
import numpy as np

from ..core.animate import procedural
from ..core.types import Curves
from . import bake

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


#: Layer name of the head channels in the armature's owned action.
HEAD_LAYER = "head"


def armature_of(obj: Any) -> Any:
    """The armature of ``obj``: itself if an armature, else its parent armature, else its first
    Armature modifier's object; None if it has none."""
    if getattr(obj, "type", "") == "ARMATURE":
        return obj
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
    bake.check_action_free(arm, f"The armature '{arm.name}'", " or turn Head Motion off")


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
    if not wanted:
        removed = bake.remove_layer(arm, HEAD_LAYER)
        report.removed, report.action_name = removed.removed, removed.action_name
        return report
    if not bone:
        return report
    check_head_bakeable(arm)

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
    layer = bake.bake_layer(
        arm,
        HEAD_LAYER,
        {(path, index): values[:, col] for col, index in enumerate(indices)},
        frames,
        action_name=bake.action_name_for(arm.name, clip),
        group=HEAD_GROUP,
    )
    action = bpy.data.actions[layer.action_name]
    action["lipsync_object"] = obj.name
    action["lipsync_clip"] = clip
    report.removed, report.keys_written, report.action_name = layer.removed, layer.keys_written, layer.action_name
    return report


# --------------------------------------------------------------------------- gaze (eye bones)

#: Layer name and fcurve group of the eye-bone gaze channels in the armature's owned action.
GAZE_LAYER = "gaze"
GAZE_GROUP = "Lip Sync Gaze"


@dataclass
class GazeBakeReport:
    """What :func:`bake_gaze` did: armature, (left, right) eye bones, action, keys written, keys removed."""

    armature_name: str = ""
    bones: tuple[str, str] = ("", "")
    action_name: str = ""
    keys_written: int = 0
    removed: int = 0


def eye_targets(obj: Any) -> tuple[Any, tuple[str, str]]:
    """(armature, (left eye bone, right eye bone)) for ``obj``; (None, ("", "")) without both eye bones."""
    arm = armature_of(obj)
    if arm is None or arm.pose is None:
        return None, ("", "")
    return arm, procedural.find_eye_bones([b.name for b in arm.pose.bones])


def _facing(arm: Any, bones: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """(forward, up) unit vectors of the character in armature space.

    Up is +Z. Forward is the eye bones' own direction when they point level (front or back),
    else -Y (Blender's front view: characters face -Y, so their left is +X).
    """
    up = np.array([0.0, 0.0, 1.0])
    ys = [np.array(arm.data.bones[b].matrix_local.to_3x3().col[1]) for b in bones]
    direction = np.mean(ys, axis=0)
    level = direction - up * float(direction @ up)
    norm = float(np.linalg.norm(level))
    return (level / norm if norm > 0.7 else np.array([0.0, -1.0, 0.0])), up


def _axis_quaternions(axis: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """(n, 4) w,x,y,z quaternions of rotations by ``angles`` (radians) about the unit ``axis``."""
    half = np.asarray(angles, dtype=np.float64) / 2.0
    return np.column_stack([np.cos(half), np.outer(np.sin(half), axis)])


def _multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Hamilton product of (n, 4) quaternions ``a * b`` (w, x, y, z)."""
    aw, ax, ay, az = a.T
    bw, bx, by, bz = b.T
    return np.column_stack([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ])


def gaze_local_quaternions(
    rest: np.ndarray, forward: np.ndarray, up: np.ndarray, yaw: np.ndarray, pitch: np.ndarray
) -> np.ndarray:
    """Pose-space quaternions of an eye bone looking ``yaw`` left and ``pitch`` up (radians).

    The turn is about the character's up axis (towards its left), the raise about the horizontal
    axis forward x up, both in armature space; ``rest`` is the bone's rest orientation (3x3, armature
    space), so the pose rotation is rest^T R rest (relative to the parent bone, i.e. the head).
    """
    yaw_axis = rest.T @ up  # rotating forward towards the left (up x forward): axis forward x left = up
    pitch_axis = rest.T @ np.cross(forward, up)  # rotating forward towards up
    return _multiply(_axis_quaternions(yaw_axis, yaw), _axis_quaternions(pitch_axis, pitch))


def _in_rotation_mode(pbone: Any, q: np.ndarray) -> np.ndarray:
    """(n, k) values of the bone's rotation channel for quaternions ``q`` (quaternion, axis-angle or Euler)."""
    mode = pbone.rotation_mode
    if mode == "QUATERNION":
        return q
    if mode == "AXIS_ANGLE":
        angle = 2 * np.arccos(np.clip(q[:, 0], -1, 1))
        s = np.sqrt(np.maximum(1 - q[:, 0] ** 2, 1e-12))
        axis = np.where(s[:, None] > 1e-6, q[:, 1:] / s[:, None], np.array([0.0, 1.0, 0.0]))
        return np.column_stack([angle, axis])
    from mathutils import Quaternion

    out = np.empty((len(q), 3))
    previous = None
    for k, row in enumerate(q):
        euler = Quaternion(row).to_euler(mode, previous) if previous is not None else Quaternion(row).to_euler(mode)
        out[k] = euler
        previous = euler
    return out


def bake_gaze(
    obj: Any, curves: Curves | None, *, start_frame: float, fps: float, clip: str = "clip"
) -> GazeBakeReport:
    """Key both eye bones of ``obj``'s armature from ``eye_yaw`` / ``eye_pitch`` (radians), or clear them.

    Args:
        obj: the animated mesh (or the armature itself).
        curves: procedural face curves with the gaze channels; None (or no gaze channels) removes
            what a previous gaze bake wrote (the "gaze" layer of the owned action only).
        start_frame: scene frame of t = 0 s.
        fps: frames per second.
        clip: clip label for the action name.

    Returns:
        A :class:`GazeBakeReport` (empty when there is no armature with a pair of eye bones).
    """
    arm, bones = eye_targets(obj)
    report = GazeBakeReport(armature_name=arm.name if arm is not None else "", bones=bones)
    if arm is None:
        return report
    if curves is None or not all(c in curves.channels for c in procedural.GAZE_CHANNELS):
        removed = bake.remove_layer(arm, GAZE_LAYER)
        report.removed, report.action_name = removed.removed, removed.action_name
        return report
    if not all(bones):
        return report
    bake.check_action_free(arm, f"The armature '{arm.name}'", " or turn Gaze off")
    yaw, pitch = (np.asarray(curves.channels[c], dtype=np.float64) for c in procedural.GAZE_CHANNELS)
    forward, up = _facing(arm, bones)
    channels: dict[tuple[str, int], np.ndarray] = {}
    for bone in bones:
        pbone = arm.pose.bones[bone]
        rest = np.array(arm.data.bones[bone].matrix_local.to_3x3())
        values = _in_rotation_mode(pbone, gaze_local_quaternions(rest, forward, up, yaw, pitch))
        path, indices = _rotation_path(pbone)
        channels.update({(path, index): values[:, col] for col, index in enumerate(indices)})
    frames = float(start_frame) + np.asarray(curves.times, dtype=np.float64) * float(fps)
    layer = bake.bake_layer(
        arm, GAZE_LAYER, channels, frames, action_name=bake.action_name_for(arm.name, clip), group=GAZE_GROUP
    )
    report.removed, report.keys_written, report.action_name = layer.removed, layer.keys_written, layer.action_name
    return report
