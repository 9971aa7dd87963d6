"""Every panel's draw() runs against the real registered properties and operators.

The bpy wheel has no window, so panels are never drawn by Blender here; each draw() is called with a
layout that records what it asks for, and every property and operator it names must exist (a typo in a
property name would otherwise only show up as a console error in a user's sidebar).
"""

from __future__ import annotations

import bpy
import pytest
from blender_helpers import PRESET_SHAPE_KEYS, make_mesh

from lipsync_addon.blender import panels

CONTAINERS = {"row", "column", "box", "split", "column_flow", "grid_flow"}


class _OperatorProperties:
    """What layout.operator() returns: operator properties can be set on it."""


class RecordingLayout:
    """Stands in for bpy.types.UILayout: records calls, returns sub-layouts for containers."""

    def __init__(self, calls: list[tuple[str, tuple, dict]]) -> None:
        self.__dict__["calls"] = calls

    def __setattr__(self, name: str, value: object) -> None:  # active, enabled, alert, scale_y ...
        self.__dict__[name] = value

    def __getattr__(self, name: str):
        def call(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            if name in CONTAINERS:
                return RecordingLayout(self.calls)
            if name == "operator":
                return _OperatorProperties()
            return None

        return call


def _has_property(data: object, name: str) -> bool:
    rna = getattr(data, "bl_rna", None)
    return rna is not None and name in rna.properties


def _operator_exists(idname: str) -> bool:
    category, _, name = idname.partition(".")
    try:
        getattr(getattr(bpy.ops, category), name).get_rna_type()  # raises for an unknown operator
    except (AttributeError, KeyError, RuntimeError):
        return False
    return True


def _draw_all(context) -> list[tuple[str, tuple, dict]]:
    calls: list[tuple[str, tuple, dict]] = []
    for cls in panels.CLASSES:
        if not issubclass(cls, bpy.types.Panel):
            continue
        if hasattr(cls, "poll") and not cls.poll(context):
            continue
        fake = type("FakePanel", (), {"layout": RecordingLayout(calls)})()
        if hasattr(cls, "draw_header"):
            cls.draw_header(fake, context)
        cls.draw(fake, context)
    return calls


def _check(calls: list[tuple[str, tuple, dict]]) -> tuple[int, int]:
    props = ops = 0
    for name, args, _kwargs in calls:
        if name in ("prop", "prop_search", "prop_enum", "props_enum") and args:
            assert _has_property(args[0], args[1]), f"{name}: no property '{args[1]}' on {args[0]!r}"
            props += 1
            if name == "prop_search":
                assert _has_property(args[2], args[3]), f"prop_search: no collection '{args[3]}' on {args[2]!r}"
        elif name == "operator":
            assert _operator_exists(args[0]), f"operator '{args[0]}' is not registered"
            ops += 1
        elif name == "template_list":
            assert _has_property(args[2], args[3]) and _has_property(args[4], args[5]), args
    return props, ops


@pytest.mark.parametrize("target", ["none", "mesh", "armature"])
@pytest.mark.parametrize("source", ["FILE", "STRIP"])
def test_every_panel_draws_with_existing_properties_and_operators(scene, target, source):
    settings = scene.lipsync
    settings.clip_source = source
    if source == "STRIP":
        scene.sequence_editor_create()
    settings.face_blink = settings.face_gaze = True
    settings.face_expression = "smile"
    if target == "mesh":
        obj = make_mesh("Head", [*PRESET_SHAPE_KEYS["arkit"], "eyeBlink_L"])
    elif target == "armature":
        obj = bpy.data.objects.new("Rig", bpy.data.armatures.new("Rig"))
        scene.collection.objects.link(obj)
    else:
        obj = None
    if obj is not None:
        bpy.context.view_layer.objects.active = obj
    for transcript_source in ("NONE", "TEXT", "DATABLOCK", "FILE"):
        settings.transcript_source = transcript_source
        calls = _draw_all(bpy.context)
        props, ops = _check(calls)
        assert props >= 8 and ops >= 1  # the panels really drew (Generate at least)
    names = {args[1] for name, args, _ in calls if name == "prop" and len(args) > 1}
    assert {"face_gaze", "face_expression", "face_expression_strength"} <= names
    if source == "FILE":
        assert "reference_path" in names
        assert any(name == "operator" and args[0] == "lipsync.sync_to_reference" for name, args, _ in calls)
