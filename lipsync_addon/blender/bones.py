"""Bone-based mouths: viseme poses, jaw and tongue bones -> the armature's owned action ("mouth" layer).

Poses come from the user's own data, read once on the main thread (:func:`plan_mouth`), never modified:

* one action with **pose markers** named after viseme channels (classic pose library): the pose of
  a marker is the action's fcurves evaluated at the marker's frame; or
* **pose-asset actions** named ``<prefix><channel>`` (Blender 4.x pose assets are actions): the pose
  is the action evaluated at its first frame.

The pose names are matched against the viseme sets like shape-key names (Preston Blair ``MBP``,
``AI`` ..., Rhubarb ``A``-``H``/``X``, Oculus ``viseme_PP`` ..., a custom mapping). Only the
rotation channel of each bone's current rotation mode is read (the others have no effect in
Blender either). Blending is in :mod:`lipsync_addon.core.animate.poses`.

A jaw bone (names in core/animate/data/bones.json) rotates about its local X axis by
``mouth_open * jaw_angle``, signed so that its tail moves down in armature space; a tongue bone
by ``tongue_up * tongue_angle`` (tail up) when the result has a ``tongue_up`` channel. When the
poses key the jaw (or tongue) bone, the poses win.

Keys go into the add-on's owned action on the armature as the "mouth" layer
(:func:`.bake.bake_layer`): re-running replaces only that layer; the "head" layer, user fcurves
and user actions are never touched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import bpy
import numpy as np

from ..core.animate import map_to_channels
from ..core.animate import poses as core_poses
from ..core.types import LipSyncResult, RigError
from . import bake

#: Layer name of the bone mouth in the armature's owned action.
MOUTH_LAYER = "mouth"
#: fcurve group of the bone-mouth channels.
MOUTH_GROUP = "Lip Sync Mouth"
#: Pose-bone channels read from pose actions, with their identity values.
READ_CHANNELS: dict[str, tuple[float, ...]] = {
    **core_poses.CHANNELS,
    "rotation_axis_angle": (0.0, 0.0, 1.0, 0.0),
}
_PATH = re.compile(r'^pose\.bones\["((?:[^"\\]|\\.)*)"\]\.(' + "|".join(READ_CHANNELS) + r")$")


@dataclass
class BoneOptions:
    """Bone-mouth settings (plain data, from the panel, the batch script or a script).

    Attributes:
        enabled: also drive bones on a mesh that has mouth shape keys (an armature, or a mesh with an
            armature and no shape keys, always uses the bone mouth).
        pose_action: name of an action whose pose markers are named after viseme channels ("" = none).
        pose_prefix: or: actions named ``<prefix><channel>`` are the poses ("" = none).
        jaw: rotate the jaw bone from ``mouth_open`` (unless the poses key it).
        jaw_angle: jaw rotation at ``mouth_open == 1``, radians (default from data/bones.json).
        jaw_direction: 0 = automatic (tail moves down when opening), +1 / -1 = force the sign of the
            rotation about the bone's local X axis.
        tongue: raise the tongue bone from ``tongue_up`` when the result has that channel.
        tongue_angle: tongue rotation at ``tongue_up == 1``, radians.
        normalize: scale the pose weights so that they never sum above 1 (default: deltas add).
    """

    enabled: bool = False
    pose_action: str = ""
    pose_prefix: str = ""
    jaw: bool = True
    jaw_angle: float = field(default_factory=core_poses.default_jaw_angle)
    jaw_direction: int = 0
    tongue: bool = True
    tongue_angle: float = field(default_factory=core_poses.default_tongue_angle)
    normalize: bool = False


@dataclass
class MouthPlan:
    """What the mouth layer will key, snapshot on the main thread (plain data, safe for a worker).

    Attributes:
        armature_name: the armature object (re-resolved by name when baking).
        options: the settings used.
        poses: pose name -> bone -> channel -> values (bones of the armature only; axis-angle
            rotations as quaternions).
        pose_source: where the poses came from, for messages ("" without poses).
        viseme_set: the viseme set detected from the pose names ("" without poses).
        mapping: canonical viseme -> {pose name: weight}.
        rest_pose: the neutral pose the others are relative to (None: the rest position).
        jaw_bone: the jaw bone keyed from ``mouth_open`` ("" when none or the poses drive it).
        jaw_sign: sign of the jaw rotation about local X.
        tongue_bone: the tongue bone keyed from ``tongue_up`` ("" when none).
        tongue_sign: sign of the tongue rotation about local X.
        warnings: things the user should know (bones missing from the armature, ...).
    """

    armature_name: str
    options: BoneOptions
    poses: dict[str, core_poses.Pose] = field(default_factory=dict)
    pose_source: str = ""
    viseme_set: str = ""
    mapping: dict[str, dict[str, float]] = field(default_factory=dict)
    rest_pose: str | None = None
    jaw_bone: str = ""
    jaw_sign: float = 1.0
    tongue_bone: str = ""
    tongue_sign: float = 1.0
    warnings: list[str] = field(default_factory=list)

    @property
    def drives_anything(self) -> bool:
        """True when there are poses or a jaw bone to key (the tongue alone needs ``tongue_up``)."""
        return bool(self.poses) or bool(self.jaw_bone)


@dataclass
class MouthBakeReport:
    """What :func:`bake_mouth` / :func:`remove_mouth` did.

    Attributes:
        armature_name: the armature.
        action_name: its owned action ("" when nothing was written).
        channels: ``pose.bones["..."].channel#index`` keys written.
        bones: bones that received keys.
        keys_written: keyframes written (after key reduction).
        removed: fcurves of the previous mouth layer removed.
        warnings: conflicts with user fcurves or other layers, skipped bones.
    """

    armature_name: str = ""
    action_name: str = ""
    channels: list[str] = field(default_factory=list)
    bones: list[str] = field(default_factory=list)
    keys_written: int = 0
    removed: int = 0
    warnings: list[str] = field(default_factory=list)


def _unescape(name: str) -> str:
    return re.sub(r"\\(.)", r"\1", name)


def bone_path(bone: str, channel: str) -> str:
    """RNA path of a pose bone's channel on the armature object."""
    return f'pose.bones["{bpy.utils.escape_identifier(bone)}"].{channel}'


def read_pose(action: Any, frame: float) -> dict[str, dict[str, list[float]]]:
    """Bone -> channel -> values of ``action``'s pose-bone fcurves at ``frame`` (missing indices: identity)."""
    from . import compat

    out: dict[str, dict[str, list[float]]] = {}
    for fcurve in compat.every_fcurve(action):
        match = _PATH.match(fcurve.data_path)
        if match is None:
            continue
        bone, channel = _unescape(match[1]), match[2]
        values = out.setdefault(bone, {}).setdefault(channel, list(READ_CHANNELS[channel]))
        if 0 <= fcurve.array_index < len(values):
            values[fcurve.array_index] = float(fcurve.evaluate(frame))
    return out


def _pose_sources(options: BoneOptions) -> tuple[dict[str, dict[str, dict[str, list[float]]]], str]:
    """Raw poses (pose name -> bone -> channel -> values) and a description of their source."""
    if options.pose_action:
        action = bpy.data.actions.get(options.pose_action)
        if action is None:
            raise RigError(f"Bone Mouth: there is no action named '{options.pose_action}' to read the mouth poses.")
        markers = sorted(action.pose_markers, key=lambda m: m.frame)
        if not markers:
            raise RigError(
                f"Bone Mouth: the action '{action.name}' has no pose markers. In the Action Editor turn on "
                "View > Show Pose Markers, then add one marker per mouth pose on the frame that shows it and name "
                "it after a viseme (e.g. MBP, AI, O, rest ... or viseme_PP, viseme_aa ...; docs/bones.md)."
            )
        raw: dict[str, dict[str, dict[str, list[float]]]] = {}
        for marker in markers:
            if marker.name and marker.name not in raw:
                raw[marker.name] = read_pose(action, float(marker.frame))
        return raw, f"pose markers of the action '{action.name}'"
    if options.pose_prefix:
        prefix = options.pose_prefix
        raw = {}
        for action in bpy.data.actions:
            if action.name.startswith(prefix) and len(action.name) > len(prefix) and not bake.is_owned(action):
                raw[action.name[len(prefix) :]] = read_pose(action, float(action.frame_range[0]))
        if not raw:
            raise RigError(
                f"Bone Mouth: no action is named '{prefix}<viseme>' (e.g. '{prefix}MBP', '{prefix}viseme_aa'). "
                "Name your pose actions or pose assets with that prefix, or change the prefix."
            )
        return raw, f"the actions named '{prefix}*'"
    return {}, ""


def _in_bone_mode(raw: dict[str, dict[str, list[float]]], pbone: Any) -> dict[str, tuple[float, ...]]:
    """The pose channels of one bone that take effect in its rotation mode (axis-angle as a quaternion)."""
    from mathutils import Quaternion, Vector

    mode = pbone.rotation_mode
    out: dict[str, tuple[float, ...]] = {}
    for channel in ("location", "scale"):
        if channel in raw:
            out[channel] = tuple(raw[channel])
    if mode == "QUATERNION" and "rotation_quaternion" in raw:
        out["rotation_quaternion"] = tuple(raw["rotation_quaternion"])
    elif mode == "AXIS_ANGLE" and "rotation_axis_angle" in raw:
        angle, *axis = raw["rotation_axis_angle"]
        out["rotation_quaternion"] = tuple(Quaternion(Vector(axis).normalized(), angle))
    elif mode in core_poses.EULER_MODES and "rotation_euler" in raw:
        out["rotation_euler"] = tuple(raw["rotation_euler"])
    return out


def _hinge_sign(arm: Any, bone: str, *, tail_down: bool, forced: int = 0) -> float:
    if forced:
        return 1.0 if forced > 0 else -1.0
    z_axis = arm.data.bones[bone].matrix_local.col[2]
    return core_poses.hinge_sign(float(z_axis[2]), tail_down=tail_down)


def plan_mouth(
    arm: Any,
    options: BoneOptions,
    *,
    viseme_set: str = "auto",
    custom_mapping: dict[str, dict[str, float]] | None = None,
) -> MouthPlan:
    """Read the poses and find the jaw/tongue bones of ``arm`` (main thread; nothing is changed).

    Args:
        arm: the armature object.
        options: the bone-mouth settings.
        viseme_set: "auto" (detect from the pose names) or a preset name.
        custom_mapping: canonical viseme -> {pose name: weight}, overriding the preset.

    Raises:
        RigError: the pose action / prefix names nothing usable, or the pose names fit no viseme set.
    """
    from ..core import visemes

    plan = MouthPlan(armature_name=arm.name, options=options)
    raw, source = _pose_sources(options)
    bones = arm.pose.bones
    missing: set[str] = set()
    for name, pose in raw.items():
        converted: core_poses.Pose = {}
        for bone, channels in pose.items():
            pbone = bones.get(bone)
            if pbone is None:
                missing.add(bone)
                continue
            values = _in_bone_mode(channels, pbone)
            if values:
                converted[bone] = values
        plan.poses[name] = converted
    if missing:
        plan.warnings.append(
            f"Bone Mouth: the poses key bones that the armature '{arm.name}' does not have: "
            f"{', '.join(sorted(missing)[:12])}; skipped."
        )
    if raw and not any(plan.poses.values()):
        raise RigError(
            f"Bone Mouth: the poses in {source} key no bone of the armature '{arm.name}' (in each bone's own "
            "rotation mode). Pose the mouth bones of this armature and key them on the marked frames."
        )
    if raw:
        names = list(plan.poses)
        try:
            plan.viseme_set, plan.mapping = visemes.resolve_mapping(viseme_set or "auto", names, custom_mapping or None)
        except RigError as exc:
            raise RigError(f"Bone Mouth ({source}): {exc}") from exc
        if not any(p in plan.poses for mix in plan.mapping.values() for p in mix):
            raise RigError(f"Bone Mouth: no pose in {source} matches the '{plan.viseme_set}' viseme set.")
        plan.rest_pose = core_poses.find_rest_pose(names)
        plan.pose_source = source
    posed = {bone for pose in plan.poses.values() for bone in pose}
    names = [b.name for b in bones]
    if options.jaw:
        jaw = core_poses.find_jaw_bone(names)
        if jaw and jaw not in posed:
            plan.jaw_bone = jaw
            plan.jaw_sign = _hinge_sign(arm, jaw, tail_down=True, forced=options.jaw_direction)
    if options.tongue:
        tongue = core_poses.find_tongue_bone(names)
        if tongue and tongue not in posed:
            plan.tongue_bone = tongue
            plan.tongue_sign = _hinge_sign(arm, tongue, tail_down=False)
    return plan


def nothing_to_drive_message(obj: Any, arm: Any, options: BoneOptions) -> str:
    """The message for a bone-only target with neither poses nor a jaw bone: says what was looked for."""
    jaw_names = ", ".join(core_poses.settings()["jaw_bones"])
    where = f"the armature '{arm.name}'" if arm is not None else f"'{obj.name}'"
    jaw = f"a jaw bone ({jaw_names})" if options.jaw else "a jaw bone (off: Bone Mouth > Jaw is unchecked)"
    return (
        f"Nothing to animate on {where}: it has no mouth shape keys, no mouth poses (Bone Mouth > Pose Action: "
        "an action with pose markers named after visemes, or Pose Prefix: actions named '<prefix><viseme>') and "
        f"no {jaw.removeprefix('a ')}. Add one of them (docs/bones.md), or select the face mesh with shape keys."
    )


def check_mouth_bakeable(arm: Any) -> None:
    """Raise :class:`RigError` if the armature plays a user action (nothing is changed then)."""
    bake.check_action_free(arm, f"The armature '{arm.name}'", " or turn Bone Mouth off")


def _curve(result: LipSyncResult, name: str, times: np.ndarray) -> np.ndarray | None:
    """A channel of the result's curves (or face curves) resampled on ``times``; None if absent."""
    for curves in (result.curves, result.face_curves):
        if curves is not None and name in curves.channels:
            values = np.asarray(curves.channels[name], dtype=np.float64)
            if len(curves.times) == len(times) and np.allclose(curves.times, times):
                return values
            return np.interp(times, curves.times, values)
    return None


def mouth_channels(arm: Any, plan: MouthPlan, result: LipSyncResult) -> dict[tuple[str, int], np.ndarray]:
    """(data path, index) -> per-frame values of the blended poses and the jaw/tongue hinges."""
    times = np.asarray(result.viseme_curves.times, dtype=np.float64)
    out: dict[tuple[str, int], np.ndarray] = {}
    bones = arm.pose.bones
    if plan.poses:
        weights = map_to_channels(result.viseme_curves, plan.mapping).channels
        blended = core_poses.blend_poses(plan.poses, weights, rest=plan.rest_pose, normalize=plan.options.normalize)
        for bone, channels in blended.items():
            pbone = bones.get(bone)
            if pbone is None:
                continue
            for channel, values in channels.items():
                if channel == "rotation_quaternion" and pbone.rotation_mode == "AXIS_ANGLE":
                    channel, values = "rotation_axis_angle", core_poses.quat_to_axis_angle(values)  # noqa: PLW2901
                path = bone_path(bone, channel)
                for index in range(values.shape[1]):
                    out[(path, index)] = values[:, index]
    for bone, source, angle, sign in (
        (plan.jaw_bone, "mouth_open", plan.options.jaw_angle, plan.jaw_sign),
        (plan.tongue_bone, "tongue_up", plan.options.tongue_angle, plan.tongue_sign),
    ):
        pbone = bones.get(bone) if bone else None
        amount = _curve(result, source, times) if pbone is not None else None
        if amount is None:
            continue
        channel, values = core_poses.x_rotation(np.clip(amount, 0.0, 1.0) * float(angle) * sign, pbone.rotation_mode)
        path = bone_path(bone, channel)
        for index in range(values.shape[1]):
            out[(path, index)] = values[:, index]
    return out


def bake_mouth(
    arm: Any, plan: MouthPlan, result: LipSyncResult, *, start_frame: float, fps: float, clip: str = "clip"
) -> MouthBakeReport:
    """Key the bone mouth of ``plan`` into ``arm``'s owned action ("mouth" layer).

    Args:
        arm: the armature object named in the plan.
        plan: from :func:`plan_mouth`.
        result: the pipeline result (viseme curves, ``mouth_open``, optional ``tongue_up``).
        start_frame: scene frame of t = 0 s.
        fps: frames per second.
        clip: clip label for the action name.

    Raises:
        RigError: the armature plays a user action (nothing is changed).
    """
    check_mouth_bakeable(arm)
    report = MouthBakeReport(armature_name=arm.name)
    channels = mouth_channels(arm, plan, result)
    if not channels:
        removed = remove_mouth(arm)
        report.removed, report.action_name = removed.removed, removed.action_name
        return report
    frames = float(start_frame) + np.asarray(result.viseme_curves.times, dtype=np.float64) * float(fps)
    layer = bake.bake_layer(
        arm, MOUTH_LAYER, channels, frames, action_name=bake.action_name_for(arm.name, clip), group=MOUTH_GROUP
    )
    report.action_name, report.channels = layer.action_name, layer.channels
    report.keys_written, report.removed = layer.keys_written, layer.removed
    report.bones = sorted({_unescape(k.split('"')[1]) for k in layer.channels})
    if layer.conflicts:
        report.warnings.append(
            f"Bone Mouth: {len(layer.conflicts)} channel(s) of '{arm.name}' already carry your own keys or "
            f"another Lip Sync layer in the action '{layer.action_name}' and were left alone: "
            f"{', '.join(layer.conflicts[:6])}{' ...' if len(layer.conflicts) > 6 else ''}."
        )
    action = bpy.data.actions[layer.action_name]
    action["lipsync_clip"] = clip
    return report


def remove_mouth(arm: Any) -> bake.LayerReport:
    """Delete the mouth layer from ``arm``'s owned action (head layer and user fcurves stay)."""
    return bake.remove_layer(arm, MOUTH_LAYER)
