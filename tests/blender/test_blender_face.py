"""Face motion in Blender: blinks/brows on a real ARKit head, head motion on an armature's head bone."""

from __future__ import annotations

import itertools
import math

import bpy
import pytest
from blender_helpers import ARKIT_GLB, DATA, PRESET_SHAPE_KEYS, fcurve_snapshot, make_mesh
from mathutils import Vector

from lipsync_addon.blender import api, bake, compat
from lipsync_addon.core.types import FaceConfig, LipSyncError, RigError

#: 25.7 s of real conversational speech (MFA test corpus) with its transcript: room for ~7 blinks.
CLIP = DATA / "aligned" / "cold_corpus.wav"
TEXT = (DATA / "aligned" / "cold_corpus.lab").read_text(encoding="utf-8").strip()
ALL = FaceConfig(blink=True, brows=True, head=True, seed=3)


def keyed(action, datablock) -> dict[str, list[tuple[float, float]]]:
    return fcurve_snapshot(action, datablock)


def shape_key_name(path: str) -> str:
    return path.split('"')[1]


@pytest.fixture
def arkit_head(scene):
    bpy.ops.import_scene.gltf(filepath=str(ARKIT_GLB))
    return next(o for o in bpy.data.objects if o.type == "MESH" and o.data.shape_keys)


def add_armature(mesh, bone: str, rotation_mode: str = "QUATERNION"):
    """An armature (spine -> neck -> ``bone``) parenting ``mesh``."""
    arm_data = bpy.data.armatures.new("Rig")
    arm = bpy.data.objects.new("Rig", arm_data)
    bpy.context.scene.collection.objects.link(arm)
    bpy.context.view_layer.objects.active = arm
    bpy.ops.object.mode_set(mode="EDIT")
    parent = None
    for name, (y0, y1) in (("spine", (0.0, 1.0)), ("neck_x", (1.0, 1.3)), (bone, (1.3, 1.8))):
        eb = arm_data.edit_bones.new(name)
        eb.head, eb.tail, eb.parent = (0, 0, y0), (0, 0, y1), parent
        parent = eb
    bpy.ops.object.mode_set(mode="OBJECT")
    arm.pose.bones[bone].rotation_mode = rotation_mode
    mesh.parent = arm
    return arm


def test_blinks_and_brows_on_arkit_head(arkit_head):
    keys = arkit_head.data.shape_keys
    names = {k.name for k in keys.key_blocks}
    assert {"eyeBlink_L", "eyeBlink_R", "browInnerUp_L", "browDown_L"} <= names
    report = api.generate(arkit_head.name, str(CLIP), transcript=TEXT, start_frame=1, face=ALL)
    action = keys.animation_data.action
    paths = keyed(action, keys)
    got = {shape_key_name(p) for p in paths}
    assert {"eyeBlink_L", "eyeBlink_R"} <= got
    assert set(report.face_channels["blink"]) == {"eyeBlink_L", "eyeBlink_R"}
    assert {"browInnerUp_L", "browInnerUp_R", "browDown_L"} <= set(report.face_channels["brows"])
    assert got <= names  # nothing keyed on channels the rig lacks
    # blinks close the eyes fully at least a few times over 25 s
    blink = paths['key_blocks["eyeBlink_L"].value']
    closures = sum(1 for (_, a), (_, b) in itertools.pairwise(blink) if a < 0.5 <= b)
    assert 3 <= closures <= 12
    assert all(0.0 <= v <= 1.0 for _, v in blink)
    # the head layer was asked for but the mesh has no armature: a warning, not an error
    assert any("Head Motion" in w for w in report.warnings)
    assert report.head_action_name == ""


def test_rerun_idempotent_layers_removable_user_keys_kept(arkit_head):
    keys = arkit_head.data.shape_keys
    api.generate(arkit_head.name, str(CLIP), transcript=TEXT, face=ALL)
    action = keys.animation_data.action
    # a user key on a channel the add-on does not own, inside the owned action
    user = compat.new_fcurve(action, keys, 'key_blocks["cheekPuff"].value', 0, "mine")
    user.keyframe_points.add(2)
    user.keyframe_points.foreach_set("co", [1.0, 0.2, 30.0, 0.9])
    first = keyed(action, keys)
    api.generate(arkit_head.name, str(CLIP), transcript=TEXT, face=ALL)
    assert keyed(keys.animation_data.action, keys) == first
    assert len([a for a in bpy.data.actions if bake.is_owned(a)]) == 1
    # blink off: only the blink channels go; brows, mouth and the user's key stay
    api.generate(arkit_head.name, str(CLIP), transcript=TEXT, face=FaceConfig(brows=True, seed=3))
    after = keyed(keys.animation_data.action, keys)
    assert 'key_blocks["eyeBlink_L"].value' not in after
    assert after['key_blocks["cheekPuff"].value'] == first['key_blocks["cheekPuff"].value']
    for path in ('key_blocks["browInnerUp_L"].value', 'key_blocks["jawOpen"].value'):
        assert after[path] == first[path]


def test_same_seed_same_keys_other_seed_differs(arkit_head):
    keys = arkit_head.data.shape_keys
    path = 'key_blocks["eyeBlink_L"].value'
    api.generate(arkit_head.name, str(CLIP), transcript=TEXT, face=FaceConfig(blink=True, seed=1))
    a = keyed(keys.animation_data.action, keys)[path]
    api.generate(arkit_head.name, str(CLIP), transcript=TEXT, face=FaceConfig(blink=True, seed=2))
    b = keyed(keys.animation_data.action, keys)[path]
    api.generate(arkit_head.name, str(CLIP), transcript=TEXT, face=FaceConfig(blink=True, seed=1))
    assert keyed(keys.animation_data.action, keys)[path] == a != b


@pytest.mark.parametrize(("bone", "mode", "count"), [("head", "QUATERNION", 4), ("mixamorig:Head", "XYZ", 3)])
def test_head_motion_on_armature(scene, bone, mode, count):
    mesh = make_mesh("Face", [*PRESET_SHAPE_KEYS["oculus"], "Blink"])
    arm = add_armature(mesh, bone, mode)
    report = api.generate("Face", str(CLIP), transcript=TEXT, face=FaceConfig(blink=True, head=True))
    action = arm.animation_data.action
    assert bake.is_owned(action) and action.name == report.head_action_name
    assert report.head_bone == bone
    fcurves = compat.action_fcurves(action, arm)
    assert len(fcurves) == count
    assert all(bpy.utils.escape_identifier(bone) in fc.data_path for fc in fcurves)
    pitch = fcurves[1 if mode == "QUATERNION" else 0]
    values = [kp.co[1] for kp in pitch.keyframe_points]
    assert max(values) - min(values) > 0.01  # it moves
    assert max(abs(v) for v in values) < 0.5  # but stays small (radians / quaternion component)
    assert report.face_channels["blink"] == ["Blink"]  # the both-eyes key
    # head off: the head channels go, the owned action stays for the user to delete
    report = api.generate("Face", str(CLIP), transcript=TEXT, face=FaceConfig(blink=True))
    assert compat.action_fcurves(arm.animation_data.action, arm) == []


def test_user_armature_action_refused(scene):
    mesh = make_mesh("Face", PRESET_SHAPE_KEYS["oculus"])
    arm = add_armature(mesh, "CC_Base_Head")
    user = bpy.data.actions.new("MyWalk")
    compat.assign_action(arm, user)
    with pytest.raises(RigError, match="MyWalk"):
        api.generate("Face", str(CLIP), transcript=TEXT, face=FaceConfig(head=True))
    assert arm.animation_data.action == user
    assert mesh.data.shape_keys.animation_data is None
    with pytest.raises(LipSyncError, match="level"):
        api.generate("Face", str(CLIP), transcript=TEXT, face=FaceConfig(blink=True, level="wild"))


def add_eye_rig(mesh, *, pointing: str = "forward", roll: float = 0.0, mode: str = "QUATERNION",
                names: tuple[str, str] = ("eye.L", "eye.R")):
    """An armature (head + two eye bones, children of the head) parenting ``mesh``; the face looks to -Y."""
    arm = bpy.data.objects.new("EyeRig", bpy.data.armatures.new("EyeRig"))
    bpy.context.scene.collection.objects.link(arm)
    bpy.context.view_layer.objects.active = arm
    bpy.ops.object.mode_set(mode="EDIT")
    head = arm.data.edit_bones.new("head")
    head.head, head.tail = (0, 0, 0), (0, 0, 1)
    for name, x in zip(names, (0.3, -0.3), strict=True):  # the character's left eye is at +X
        eb = arm.data.edit_bones.new(name)
        eb.head = (x, -0.8, 0.5)
        eb.tail = (x, -1.0, 0.5) if pointing == "forward" else (x, -0.8, 0.7)  # forward (-Y) or up (Mixamo)
        eb.roll, eb.parent = roll, head
    bpy.ops.object.mode_set(mode="OBJECT")
    for name in names:
        arm.pose.bones[name].rotation_mode = mode
    mesh.parent = arm
    return arm


def _look_angles(arm, bone: str) -> tuple[float, float]:
    """(yaw to the character's left, pitch up) in radians of where the eye bone looks relative to the head
    (forward = -Y): its own pose rotation, taken to armature space through its rest orientation."""
    rest = arm.data.bones[bone].matrix_local.to_3x3()
    rot = rest @ arm.pose.bones[bone].matrix_basis.to_3x3() @ rest.inverted()
    d = rot @ Vector((0.0, -1.0, 0.0))
    return math.atan2(d.x, -d.y), math.asin(max(-1.0, min(1.0, d.z)))


@pytest.mark.parametrize(
    ("pointing", "roll", "mode", "names"),
    [
        ("forward", 0.0, "QUATERNION", ("eye.L", "eye.R")),
        ("forward", math.pi / 2, "XYZ", ("DEF-eye.L", "DEF-eye.R")),
        ("up", 0.7, "AXIS_ANGLE", ("mixamorig:LeftEye", "mixamorig:RightEye")),
    ],
)
def test_gaze_on_eye_bones_looks_where_the_curves_say(scene, pointing, roll, mode, names):
    mesh = make_mesh("Face", PRESET_SHAPE_KEYS["oculus"])
    arm = add_eye_rig(mesh, pointing=pointing, roll=roll, mode=mode, names=names)
    face = FaceConfig(gaze=True, head=True, seed=4)
    report = api.generate("Face", str(CLIP), transcript=TEXT, face=face, start_frame=1)
    assert report.gaze_bones == list(names)
    assert set(names) <= set(report.face_channels["gaze"])
    layers = bake.owned_layers(arm.animation_data.action)
    assert set(layers) == {"head", "gaze"}
    assert all(any(bpy.utils.escape_identifier(n) in key for n in names) for key in layers["gaze"])
    curves = report.result.face_curves
    fps = bake.scene_fps(scene)
    yaws = []
    for k in range(0, len(curves.times), 37):
        scene.frame_set(1 + round(curves.times[k] * fps))
        for bone in names:
            yaw, pitch = _look_angles(arm, bone)
            assert yaw == pytest.approx(curves.channels["eye_yaw"][k], abs=2e-3)
            assert pitch == pytest.approx(curves.channels["eye_pitch"][k], abs=2e-3)
        yaws.append(yaw)
    assert max(yaws) - min(yaws) > 0.03  # the eyes really move (several degrees)
    # gaze off: only the gaze layer goes; the head layer stays
    report = api.generate("Face", str(CLIP), transcript=TEXT, face=FaceConfig(head=True, seed=4), start_frame=1)
    assert set(bake.owned_layers(arm.animation_data.action)) == {"head"}
    assert report.gaze_bones == []


def test_gaze_without_eyes_warns_and_user_armature_action_refused(scene):
    mesh = make_mesh("Face", PRESET_SHAPE_KEYS["oculus"])
    report = api.generate("Face", str(CLIP), transcript=TEXT, face=FaceConfig(gaze=True, expression="smile"))
    assert any("eye-look shape keys or eye bones" in w for w in report.warnings)
    assert any("smile shape keys" in w for w in report.warnings)
    arm = add_eye_rig(mesh)
    user = bpy.data.actions.new("MyBlinkTest")
    compat.assign_action(arm, user)
    with pytest.raises(RigError, match="MyBlinkTest"):
        api.generate("Face", str(CLIP), transcript=TEXT, face=FaceConfig(gaze=True))
    assert arm.animation_data.action == user and len(compat.action_fcurves(user, arm)) == 0
    with pytest.raises(LipSyncError, match="expression"):
        api.generate("Face", str(CLIP), transcript=TEXT, face=FaceConfig(expression="angry"))
    with pytest.raises(LipSyncError, match="gaze strength"):
        api.generate("Face", str(CLIP), transcript=TEXT, face=FaceConfig(gaze=True, gaze_strength=3.0))
