"""Read a rig's shape-key names and resolve them to a viseme set (via the core).

The detection itself (naming presets, case/separator/prefix tolerance) lives in
``core.visemes``; this module only reads names from Blender data and turns
failures into messages that name the object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.types import RigError


@dataclass
class RigTargets:
    """The rig side of a lip-sync job, as plain data.

    Attributes:
        object_name: the object whose shape keys are animated.
        channel_names: its shape-key names, basis excluded, in key-block order.
        viseme_set: the resolved set name (never "auto").
        mapping: canonical viseme -> {shape-key name: weight}.
    """

    object_name: str
    channel_names: list[str] = field(default_factory=list)
    viseme_set: str = ""
    mapping: dict[str, dict[str, float]] = field(default_factory=dict)


def shape_key_names(obj: Any) -> list[str]:
    """Shape-key names of ``obj`` without the basis (reference) key; [] if it has none."""
    data = getattr(obj, "data", None)
    key = getattr(data, "shape_keys", None) if data is not None else None
    if key is None:
        return []
    basis = key.reference_key.name if key.reference_key is not None else None
    return [block.name for block in key.key_blocks if block.name != basis]


def check_object(obj: Any, object_name: str = "") -> list[str]:
    """Validate that ``obj`` can carry lip sync; return its shape-key names.

    Raises :class:`RigError` with a user-facing message for: no object, an
    armature (use :func:`is_bone_target` first: armatures get a bone mouth), no shape-key data,
    no shape keys.
    """
    if obj is None:
        raise RigError(
            f"There is no object named '{object_name}'. Select the character's mesh (the one with "
            "mouth shape keys) and try again."
            if object_name
            else "No object selected. Select the character's mesh (the one with mouth shape keys)."
        )
    if obj.type == "ARMATURE":
        raise RigError(f"'{obj.name}' is an armature: it has no shape keys. Use its bone mouth (docs/bones.md).")
    if obj.type not in {"MESH", "CURVE", "SURFACE", "LATTICE"}:
        raise RigError(f"'{obj.name}' is a {obj.type.lower()}, not a mesh. Select the face mesh.")
    names = shape_key_names(obj)
    if not names:
        raise RigError(
            f"'{obj.name}' has no shape keys. Lip Sync animates mouth shape keys (e.g. viseme_aa, "
            "viseme_PP... or ARKit jawOpen, mouthClose...). Add them, parent the mesh to an armature with a jaw "
            "bone or mouth poses (docs/bones.md), or pick another mesh."
        )
    return names


def is_bone_target(obj: Any) -> bool:
    """True when ``obj``'s mouth is animated with bones only: an armature, or a mesh without shape keys
    that has an armature (parent or Armature modifier)."""
    if obj is None:
        return False
    if obj.type == "ARMATURE":
        return True
    if obj.type not in {"MESH", "CURVE", "SURFACE", "LATTICE"} or shape_key_names(obj):
        return False
    from .face import armature_of

    return armature_of(obj) is not None


def resolve_targets(
    obj: Any,
    viseme_set: str = "auto",
    custom_mapping: dict[str, dict[str, float]] | None = None,
    *,
    object_name: str = "",
) -> RigTargets:
    """Detect (or check) the viseme set of ``obj``'s shape keys and build the target map.

    Args:
        obj: the ``bpy.types.Object`` (or None, which raises a clear error).
        viseme_set: "auto" or a preset name from ``core.visemes.list_viseme_sets()``.
        custom_mapping: canonical viseme -> {shape key: weight}, overriding the preset.
        object_name: name used in messages when ``obj`` is None.

    Raises:
        RigError: no object / no shape keys / no preset matches the names (the
        message lists what each preset expects).
    """
    names = check_object(obj, object_name)
    from ..core import visemes

    try:
        set_name, mapping = visemes.resolve_mapping(viseme_set, names, custom_mapping or None)
    except RigError as exc:
        raise RigError(f"'{obj.name}': {exc}") from exc
    if not any(channel in names for targets in mapping.values() for channel in targets):
        raise RigError(
            f"'{obj.name}': no shape key matches the '{set_name}' viseme set. "
            f"Its shape keys are: {', '.join(names[:12])}{'...' if len(names) > 12 else ''}."
        )
    return RigTargets(object_name=obj.name, channel_names=names, viseme_set=set_name, mapping=mapping)
