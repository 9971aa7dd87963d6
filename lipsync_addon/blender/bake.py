"""Curves (seconds, values in [0, 1]) -> keyframes on a mesh's shape keys.

Frames exist only here: sample ``k`` at ``times[k]`` seconds lands on frame
``start_frame + times[k] * fps`` where ``fps = scene.render.fps / fps_base``
(fractional rates such as 23.976 and 29.97 work).

Ownership rules (see docs/decisions/0003-blender-layer.md):

* Keys go into one action per shape-key datablock that the add-on owns: it is
  tagged ``action["lipsync_generated"] = True`` and named ``LipSync_<object>_<clip>``.
* A user action already assigned to the shape keys is never modified, replaced
  or deleted: :func:`check_bakeable` refuses with a message naming it.
* Re-running replaces only the fcurves the add-on wrote before (listed in
  ``action["lipsync_channels"]``) and those it writes now; any other fcurve the
  user added to the owned action stays.
* Fast path only: ``keyframe_points.add(n)`` + ``foreach_set`` + one ``update()``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import bpy
import numpy as np

from ..core.types import Curves, RigError
from . import compat

#: Custom property marking an action as written (and owned) by the add-on.
OWNER_TAG = "lipsync_generated"
#: Custom property listing the fcurve data paths the add-on wrote into its action.
CHANNELS_TAG = "lipsync_channels"
#: fcurve group (legacy) / channel group (slotted) of the generated channels.
GROUP_NAME = "Lip Sync"
#: Blender ID names are limited to 63 bytes.
MAX_ID_NAME = 63
#: Keyframe interpolation modes accepted by :func:`bake_curves`.
INTERPOLATIONS = ("CONSTANT", "LINEAR", "BEZIER")
#: Second differences below this are treated as a straight line when reducing keys.
REDUCE_EPSILON = 1e-6


@dataclass
class BakeReport:
    """What :func:`bake_curves` wrote.

    Attributes:
        action_name: name of the owned action holding the keys.
        object_name: the object whose shape keys were keyed.
        channels: shape-key names that received an fcurve.
        skipped: curve channels with no shape key of that name (e.g. ``mouth_open``).
        frame_start: first keyed frame (may be fractional with fractional fps).
        frame_end: last keyed frame.
        keys_written: total keyframes written over all channels.
        fps: frames per second used to convert seconds to frames.
    """

    action_name: str
    object_name: str
    channels: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    frame_start: float = 0.0
    frame_end: float = 0.0
    keys_written: int = 0
    fps: float = 24.0


def scene_fps(scene: Any) -> float:
    """The scene's real frame rate in frames per second (``fps / fps_base``)."""
    return float(scene.render.fps) / float(scene.render.fps_base)


def is_owned(action: Any) -> bool:
    """True if ``action`` was created by the add-on (tagged with :data:`OWNER_TAG`)."""
    return action is not None and bool(action.get(OWNER_TAG, False))


def clip_label(audio_path: str) -> str:
    """Short clip name for action names: the file name without extension."""
    return os.path.splitext(os.path.basename(audio_path))[0] or "clip"


def action_name_for(object_name: str, clip: str) -> str:
    """``LipSync_<object>_<clip>``, shortened to fit Blender's 63-byte ID names."""
    name = f"LipSync_{object_name}_{clip}"
    encoded = name.encode("utf-8")
    if len(encoded) <= MAX_ID_NAME:
        return name
    return encoded[:MAX_ID_NAME].decode("utf-8", errors="ignore")


def shape_key_data_path(name: str) -> str:
    """RNA path of a shape key's value on its Key datablock."""
    return f'key_blocks["{bpy.utils.escape_identifier(name)}"].value'


def shape_keys_of(obj: Any) -> Any:
    """The object's shape-key datablock (``bpy.types.Key``) or raise :class:`RigError`."""
    data = getattr(obj, "data", None)
    key = getattr(data, "shape_keys", None) if data is not None else None
    if key is None or len(key.key_blocks) < 2:
        raise RigError(
            f"Object '{obj.name}' has no mouth shape keys. Add shape keys named after a viseme set "
            "(e.g. viseme_aa, viseme_PP ... or jawOpen, mouthClose ...) or pick another mesh."
        )
    return key


def check_bakeable(obj: Any) -> None:
    """Raise :class:`RigError` if baking into ``obj`` would touch user animation.

    Called before analysis starts (so nothing runs for minutes only to be refused)
    and again right before baking.
    """
    key = shape_keys_of(obj)
    anim = key.animation_data
    if anim is None:
        return
    if anim.use_tweak_mode:
        raise RigError(
            f"The shape keys of '{obj.name}' are in NLA tweak mode. Leave tweak mode "
            "(NLA editor > Stop Tweaking Strip Actions), then generate again."
        )
    action = anim.action
    if action is not None and not is_owned(action):
        raise RigError(
            f"The shape keys of '{obj.name}' already use the action '{action.name}', which Lip Sync "
            "did not create. Lip Sync never modifies your actions, so nothing was changed. To proceed, "
            "unassign it in the Dope Sheet > Shape Key Editor (or push it down to an NLA strip), then "
            "generate again."
        )


def _owned_action_for(key: Any, name: str) -> Any:
    """The owned action to bake into: the assigned one, a free one of that name, or a new one."""
    anim = key.animation_data
    current = anim.action if anim is not None else None
    if current is not None and is_owned(current):
        # Shared with another datablock (e.g. a duplicated object): write into a private copy.
        if current.users > 1 + int(current.use_fake_user):
            copy = current.copy()
            copy.name = name
            return copy
        if current.name != name:
            current.name = name
        return current
    existing = bpy.data.actions.get(name)
    if existing is not None and is_owned(existing) and existing.users == int(existing.use_fake_user):
        return existing
    action = bpy.data.actions.new(name)
    action[OWNER_TAG] = True
    return action


def reduce_keys(values: np.ndarray, epsilon: float = REDUCE_EPSILON) -> np.ndarray:
    """Indices of samples to keep so that linear interpolation reproduces ``values``.

    Drops interior points of straight (including flat) runs; lossless up to
    ``epsilon``. Endpoints are always kept. Returns an int index array.
    """
    n = len(values)
    if n <= 2:
        return np.arange(n)
    second = values[:-2] - 2.0 * values[1:-1] + values[2:]
    keep = np.ones(n, dtype=bool)
    keep[1:-1] = np.abs(second) > epsilon
    return np.flatnonzero(keep)


def bake_curves(
    obj: Any,
    curves: Curves,
    *,
    start_frame: float,
    fps: float | None = None,
    clip: str = "clip",
    action_name: str | None = None,
    channels: Iterable[str] | None = None,
    interpolation: str = "LINEAR",
    reduce: bool = True,
    scene: Any = None,
) -> BakeReport:
    """Write ``curves`` as keyframes on ``obj``'s shape keys, in an action the add-on owns.

    Args:
        obj: a ``bpy.types.Object`` whose data has shape keys.
        curves: channels named after shape keys; sample times in seconds.
        start_frame: scene frame where ``t = 0`` s lands.
        fps: frames per second for seconds -> frames; default the scene's (``fps / fps_base``).
        clip: clip label used in the action name ``LipSync_<object>_<clip>``.
        action_name: explicit action name (overrides the ``clip``-based one).
        channels: restrict baking to these channel names (default: all curve channels).
        interpolation: "LINEAR" (default), "CONSTANT" or "BEZIER" for every key.
        reduce: drop keys lying on straight lines between their neighbours (lossless for LINEAR).
        scene: scene for the default fps (default ``bpy.context.scene``).

    Returns:
        A :class:`BakeReport`. Raises :class:`RigError` if the shape keys use a
        user action (nothing is changed then).
    """
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, not {interpolation!r}")
    check_bakeable(obj)
    key = shape_keys_of(obj)
    if fps is None:
        fps = scene_fps(scene if scene is not None else bpy.context.scene)
    times = np.asarray(curves.times, dtype=np.float64)
    frames = float(start_frame) + times * float(fps)
    wanted = list(curves.channels) if channels is None else [c for c in channels if c in curves.channels]
    basis = key.reference_key.name if key.reference_key is not None else ""
    names_present = {block.name for block in key.key_blocks}
    bake_names = [c for c in wanted if c in names_present and c != basis]
    report = BakeReport(
        action_name="",
        object_name=obj.name,
        skipped=[c for c in wanted if c not in bake_names],
        fps=float(fps),
    )
    if len(times) == 0 or not bake_names:
        raise RigError(
            f"Nothing to bake on '{obj.name}': none of the generated channels "
            f"({', '.join(wanted[:8])}) is a shape key of this mesh."
        )

    action = _owned_action_for(key, action_name or action_name_for(obj.name, clip))
    compat.assign_action(key, action)

    # Remove what we wrote before (and anything on the channels we write now).
    new_paths = [shape_key_data_path(n) for n in bake_names]
    old_paths = [str(p) for p in action.get(CHANNELS_TAG, [])]
    for path in dict.fromkeys(old_paths + new_paths):
        fcurve = compat.find_fcurve(action, key, path, 0)
        if fcurve is not None:
            compat.remove_fcurve(action, key, fcurve)

    interp_index = INTERPOLATIONS.index(interpolation)
    for name, path in zip(bake_names, new_paths, strict=True):
        values = np.clip(np.asarray(curves.channels[name], dtype=np.float64), 0.0, 1.0)
        idx = reduce_keys(values) if reduce and interpolation == "LINEAR" else np.arange(len(values))
        count = len(idx)
        co = np.empty(2 * count, dtype=np.float32)
        co[0::2] = frames[idx]
        co[1::2] = values[idx]
        fcurve = compat.new_fcurve(action, key, path, 0, GROUP_NAME)
        points = fcurve.keyframe_points
        points.add(count)
        points.foreach_set("co", co)
        points.foreach_set("interpolation", np.full(count, interp_index, dtype=np.int32))
        fcurve.update()
        report.keys_written += count

    action[OWNER_TAG] = True
    action[CHANNELS_TAG] = new_paths
    action["lipsync_object"] = obj.name
    action["lipsync_clip"] = clip
    report.action_name = action.name
    report.channels = bake_names
    report.frame_start = float(frames[0])
    report.frame_end = float(frames[-1])
    key.update_tag()
    return report


# --------------------------------------------------------------------------- layers on armatures

#: Custom property of an owned armature action: {layer: ["data_path#index", ...]}.
LAYERS_TAG = "lipsync_layers"
#: Layer that channels listed only in the older flat :data:`CHANNELS_TAG` list belong to.
LEGACY_LAYER = "head"
#: Keyframe interpolation of layer channels (index into :data:`INTERPOLATIONS`).
_LINEAR = INTERPOLATIONS.index("LINEAR")


@dataclass
class LayerReport:
    """What :func:`bake_layer` / :func:`remove_layer` did.

    Attributes:
        action_name: the owned action ("" when there was none to touch).
        channels: ``data_path#index`` keys written.
        keys_written: keyframes written after key reduction.
        removed: fcurves of this layer removed before writing (or by :func:`remove_layer`).
        conflicts: channels not written because a user fcurve or another layer holds them.
    """

    action_name: str = ""
    channels: list[str] = field(default_factory=list)
    keys_written: int = 0
    removed: int = 0
    conflicts: list[str] = field(default_factory=list)


def channel_key(data_path: str, index: int) -> str:
    """``data_path#index``: how layer channels are recorded on the action."""
    return f"{data_path}#{int(index)}"


def _split_key(key: str) -> tuple[str, int]:
    path, _, index = str(key).rpartition("#")
    return (path, int(index or 0)) if path else (str(key), 0)


def owned_layers(action: Any) -> dict[str, list[str]]:
    """Layer -> channel keys the add-on wrote into ``action``.

    Channels listed only in the flat :data:`CHANNELS_TAG` list (actions baked before layers
    existed) count as the :data:`LEGACY_LAYER` ("head") layer.
    """
    raw = action.get(LAYERS_TAG)
    layers: dict[str, list[str]] = {}
    if raw is not None:
        for name in raw.keys():  # noqa: SIM118 (IDPropertyGroup)
            layers[str(name)] = [str(k) for k in raw[name]]
    listed = {k for keys in layers.values() for k in keys}
    legacy = [str(k) for k in action.get(CHANNELS_TAG, []) if str(k) not in listed and "#" in str(k)]
    if legacy:
        layers.setdefault(LEGACY_LAYER, []).extend(legacy)
    return layers


def _store_layers(action: Any, layers: dict[str, list[str]]) -> None:
    action[LAYERS_TAG] = {name: keys for name, keys in layers.items() if keys}
    action[CHANNELS_TAG] = [k for keys in layers.values() for k in keys]  # the flat list stays complete


def _remove_keys(datablock: Any, action: Any, keys: list[str]) -> int:
    removed = 0
    for key in keys:
        fcurve = compat.find_fcurve(action, datablock, *_split_key(key))
        if fcurve is not None:
            compat.remove_fcurve(action, datablock, fcurve)
            removed += 1
    return removed


def check_action_free(datablock: Any, what: str, hint: str) -> None:
    """Raise :class:`RigError` if ``datablock`` plays an action the add-on did not create (or is in tweak mode).

    Args:
        datablock: an object (armature) or other animatable ID.
        what: how to name it in the message, e.g. "The armature 'Rig'".
        hint: the way out, appended to the message (e.g. "or turn Head Motion off").
    """
    anim = datablock.animation_data
    if anim is None:
        return
    if anim.use_tweak_mode:
        raise RigError(f"{what} is in NLA tweak mode. Leave tweak mode, then generate again.")
    if anim.action is not None and not is_owned(anim.action):
        raise RigError(
            f"{what} already uses the action '{anim.action.name}', which Lip Sync did not create. Lip Sync never "
            f"modifies your actions, so nothing was changed. Unassign it (or push it down to an NLA strip){hint}, "
            "then generate again."
        )


def remove_layer(datablock: Any, layer: str) -> LayerReport:
    """Delete the fcurves of ``layer`` from ``datablock``'s owned action (other layers and user fcurves stay)."""
    anim = datablock.animation_data
    action = anim.action if anim is not None else None
    report = LayerReport()
    if action is None or not is_owned(action):
        return report
    layers = owned_layers(action)
    report.removed = _remove_keys(datablock, action, layers.pop(layer, []))
    _store_layers(action, layers)
    report.action_name = action.name
    return report


def bake_layer(
    datablock: Any,
    layer: str,
    channels: dict[tuple[str, int], np.ndarray],
    frames: np.ndarray,
    *,
    action_name: str,
    group: str = GROUP_NAME,
    reduce: bool = True,
) -> LayerReport:
    """Write one layer's channels into ``datablock``'s owned action, replacing only that layer's previous keys.

    Ownership is recorded per layer (:data:`LAYERS_TAG`), so re-baking "mouth" never touches the "head"
    channels and vice versa. A channel already held by another layer or by a user fcurve in the owned
    action is not written (listed in ``conflicts``). The caller checks first that the datablock plays
    no user action (:func:`check_action_free`).

    Args:
        datablock: the animated ID (an armature object).
        layer: layer name ("head", "mouth", ...).
        channels: (data_path, array index) -> (n,) values, one per frame.
        frames: (n,) scene frames of the samples.
        action_name: name of a new owned action (an assigned owned action is reused and renamed).
        group: fcurve group of the written channels.
        reduce: drop keys on straight lines (lossless with linear interpolation).
    """
    action = _owned_action_for(datablock, action_name)
    compat.assign_action(datablock, action)
    layers = owned_layers(action)
    report = LayerReport(action_name=action.name)
    report.removed = _remove_keys(datablock, action, layers.pop(layer, []))
    others = {k for keys in layers.values() for k in keys}
    frames = np.asarray(frames, dtype=np.float64)
    written: list[str] = []
    for (path, index), raw in channels.items():
        key = channel_key(path, index)
        if key in others or compat.find_fcurve(action, datablock, path, index) is not None:
            report.conflicts.append(key)
            continue
        values = np.asarray(raw, dtype=np.float64)
        idx = reduce_keys(values) if reduce else np.arange(len(values))
        co = np.empty(2 * len(idx), dtype=np.float32)
        co[0::2], co[1::2] = frames[idx], values[idx]
        fcurve = compat.new_fcurve(action, datablock, path, index, group)
        points = fcurve.keyframe_points
        points.add(len(idx))
        points.foreach_set("co", co)
        points.foreach_set("interpolation", np.full(len(idx), _LINEAR, dtype=np.int32))
        fcurve.update()
        written.append(key)
        report.keys_written += len(idx)
    layers[layer] = written
    _store_layers(action, layers)
    action[OWNER_TAG] = True
    report.channels = written
    return report
