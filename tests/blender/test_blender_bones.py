"""Bone-based mouths on procedurally built armatures (real bpy, real speech): poses, jaw, tongue, ownership."""

from __future__ import annotations

import math

import bpy
import numpy as np
import pytest
from blender_helpers import DATA, PRESET_SHAPE_KEYS, SPEECH, SPEECH_TEXT, make_mesh

from lipsync_addon.blender import api, bake, bones, compat
from lipsync_addon.blender.bones import BoneOptions
from lipsync_addon.core.types import FaceConfig, RigError

#: Lip bones sit 20 mm apart at rest; the MBP pose moves each 8 mm towards the other.
LIP_GAP = 0.02
CLOSE = 0.008
#: Preston Blair poses: (frame, {bone: {channel: value}}); the rest pose is the rest position. The lip
#: bones point up, so their local Y is the armature's Z: location (0, y, 0) moves a lip up by y.
POSES = {
    "rest": (1, {}),
    "MBP": (3, {"lip_upper": {"location": (0.0, -CLOSE, 0.0)}, "lip_lower": {"location": (0.0, CLOSE, 0.0)}}),
    "AI": (5, {"lip_lower": {"location": (0.0, 0.004, 0.0)}, "lip_upper": {"location": (0.0, 0.003, 0.0)}}),
    "E": (7, {"lip_upper": {"location": (0.0, 0.002, 0.0)}}),
    "O": (9, {"lip_upper": {"location": (0.0, 0.002, 0.001)}, "lip_lower": {"location": (0.0, 0.003, 0.001)}}),
    "U": (11, {"lip_lower": {"location": (0.0, 0.001, 0.002)}}),
    "FV": (13, {"lip_lower": {"location": (0.0, -0.004, 0.003)}}),
    "etc": (15, {"lip_lower": {"location": (0.0, 0.001, 0.0)}}),
    "L": (17, {"lip_lower": {"location": (0.0, 0.002, 0.0)}}),
    "WQ": (19, {"lip_upper": {"location": (0.0, 0.0, 0.002)}}),
}
#: 25.7 s of real conversational speech with many bilabials ("probably", "bunch", "environment", "pause" ...).
CLIP = DATA / "aligned" / "cold_corpus.wav"
TEXT = (DATA / "aligned" / "cold_corpus.lab").read_text(encoding="utf-8").strip()
BILABIALS = {"p", "b", "m"}
VOWELS = {"ɑ", "æ", "ʌ", "aɪ", "aʊ", "eɪ", "ɔ", "ɔɪ", "oʊ", "a", "ɒ"}


def build_rig(name: str = "FaceRig", *, jaw: str = "jaw", jaw_roll: float = 0.0, tongue: str = "tongue", extra=()):
    """An armature: head (up), a jaw pointing forward and down carrying the lower lip and the tongue
    (pointing forward), the upper lip on the head; both lip bones point up, 20 mm apart."""
    data = bpy.data.armatures.new(name)
    arm = bpy.data.objects.new(name, data)
    bpy.context.scene.collection.objects.link(arm)
    bpy.context.view_layer.objects.active = arm
    bpy.ops.object.mode_set(mode="EDIT")
    eb = data.edit_bones
    head = eb.new("head")
    head.head, head.tail = (0, 0, 0), (0, 0, 0.3)
    bones = {"head": head}
    if jaw:
        j = eb.new(jaw)
        j.head, j.tail, j.parent = (0, 0, 0), (0, -0.1, -0.05), head
        j.roll = jaw_roll
        bones[jaw] = j
    for bone, z, parent in (("lip_upper", LIP_GAP / 2, head), ("lip_lower", -LIP_GAP / 2, bones.get(jaw, head))):
        b = eb.new(bone)
        b.head, b.tail, b.parent = (0, -0.1, z), (0, -0.1, z + 0.01), parent
        bones[bone] = b
    if tongue:
        t = eb.new(tongue)
        t.head, t.tail, t.parent = (0, -0.02, -0.04), (0, -0.07, -0.04), bones.get(jaw, head)
    for extra_name in extra:
        e = eb.new(extra_name)
        e.head, e.tail, e.parent = (0.05, 0, 0), (0.05, 0, 0.05), head
    bpy.ops.object.mode_set(mode="OBJECT")
    return arm


def make_pose_action(arm, name: str = "MouthPoses", poses=POSES, ghost: bool = False):
    """The user's pose library: keys on each marker's frame, then unassigned (as a user would leave it)."""
    action = bpy.data.actions.new(name)
    compat.assign_action(arm, action)
    all_bones = {b for _, pose in poses.values() for b in pose}
    for marker_name, (frame, pose) in poses.items():
        for bone in all_bones:
            pbone = arm.pose.bones[bone]
            pbone.location = pose.get(bone, {}).get("location", (0.0, 0.0, 0.0))
            pbone.keyframe_insert("location", frame=frame)
        action.pose_markers.new(marker_name).frame = frame
    if ghost:  # a bone this armature does not have (pose library made on another rig)
        fc = compat.new_fcurve(action, arm, 'pose.bones["lip_corner.L"].location', 0)
        fc.keyframe_points.insert(1, 0.0)
        fc.keyframe_points.insert(3, 0.01)
    for pbone in arm.pose.bones:
        pbone.location = (0, 0, 0)
    arm.animation_data.action = None
    return action


def action_values(action, datablock=None) -> dict[tuple[str, int], list[tuple[float, float]]]:
    fcurves = compat.every_fcurve(action) if datablock is None else compat.action_fcurves(action, datablock)
    return {
        (fc.data_path, fc.array_index): [tuple(round(c, 6) for c in kp.co) for kp in fc.keyframe_points]
        for fc in fcurves
    }


def phone_frames(report, ipa: set[str], start_frame: int = 1) -> list[float]:
    fps = bake.scene_fps(bpy.context.scene)
    return [start_frame + (p.start + p.end) / 2 * fps for p in report.result.transcript.phones if p.ipa in ipa]


def lip_gap(arm) -> float:
    """Vertical distance (armature space) between the upper and lower lip bone heads, metres."""
    return arm.pose.bones["lip_upper"].head.z - arm.pose.bones["lip_lower"].head.z


@pytest.fixture
def rig(scene):
    return build_rig()


def generate(name: str, *, long: bool = False, **kw):
    clip, text = (CLIP, TEXT) if long else (SPEECH, SPEECH_TEXT)
    return api.generate(name, str(clip), transcript=text, start_frame=1, **kw)


def test_pose_markers_close_lips_on_bilabials_and_jaw_opens_on_vowels(rig):
    user = make_pose_action(rig, ghost=True)
    before = action_values(user)
    assert len(before) == 7  # 2 bones x 3 + the ghost bone's fcurve
    report = generate(rig.name, long=True, bones=BoneOptions(pose_action=user.name))

    action = rig.animation_data.action
    assert bake.is_owned(action) and action != user and action.name == report.armature_action_name
    assert report.pose_set == "preston_blair" and report.viseme_set == "preston_blair"
    assert report.jaw_bone == "jaw"
    assert set(report.mouth_bones) == {"jaw", "lip_upper", "lip_lower", "tongue"}  # tongue_up drives the tongue
    # nothing keyed on channels the rig lacks; the warning names the skipped bone
    assert all("lip_corner" not in path for path, _ in action_values(action, rig))
    assert any("lip_corner.L" in w for w in report.warnings)
    # the user's pose action is untouched
    assert action_values(user) == before and len(user.pose_markers) == len(POSES)

    scene = bpy.context.scene
    closures = phone_frames(report, BILABIALS)
    assert len(closures) >= 8
    for frame in closures:
        scene.frame_set(round(frame))
        assert lip_gap(rig) < LIP_GAP - 1.5 * CLOSE, (frame, lip_gap(rig))  # lips (nearly) closed
    rest_tail = rig.data.bones["jaw"].tail_local.z
    openings = []
    for frame in phone_frames(report, VOWELS):
        scene.frame_set(round(frame))
        openings.append(rest_tail - rig.pose.bones["jaw"].tail.z)
    assert openings and max(openings) > 0.01  # tail 10+ mm down on open vowels (0.3 rad x 11 cm bone)
    assert min(openings) > -1e-6  # never up
    scene.frame_set(1)
    assert abs(lip_gap(rig) - LIP_GAP) < 1e-4  # silence at the start: rest


def test_rerun_idempotent_user_keys_untouched_and_layers(rig):
    user = make_pose_action(rig)
    options = BoneOptions(pose_action=user.name)
    generate(rig.name, bones=options, face=FaceConfig(head=True, seed=1))
    action = rig.animation_data.action
    layers = bake.owned_layers(action)
    assert set(layers) == {"mouth", "head"}
    assert all("head" in k for k in layers["head"]) and all('"head"' not in k for k in layers["mouth"])
    # a user fcurve on another bone inside the owned action, and a user key on the tongue
    mine = compat.new_fcurve(action, rig, 'pose.bones["tongue"].location', 2, "mine")
    mine.keyframe_points.add(2)
    mine.keyframe_points.foreach_set("co", [1.0, 0.0, 20.0, 0.01])
    first = action_values(action, rig)
    generate(rig.name, bones=options, face=FaceConfig(head=True, seed=1))
    assert rig.animation_data.action == action
    assert action_values(action, rig) == first
    assert len([a for a in bpy.data.actions if bake.is_owned(a)]) == 1
    # head off: only the head channels go; the mouth and the user's fcurve stay
    generate(rig.name, bones=options)
    after = action_values(action, rig)
    head_keys = {(p, i) for p, i in first if p.startswith('pose.bones["head"]')}
    assert head_keys and not head_keys & set(after)
    assert after == {k: v for k, v in first.items() if k not in head_keys}
    # a file baked before layers existed: only the flat channel list -> treated as the head layer
    generate(rig.name, bones=options, face=FaceConfig(head=True, seed=1))
    bones.remove_mouth(rig)
    del action[bake.LAYERS_TAG]
    assert all('"head"' in k for k in action[bake.CHANNELS_TAG])
    assert {p for p, _ in action_values(action, rig)} == {'pose.bones["head"].rotation_quaternion', mine.data_path}
    generate(rig.name, bones=options)
    assert action_values(action, rig) == after
    # bone mouth off on a bone-only target is impossible; on the mesh with shape keys it removes the mouth
    mesh = make_mesh("Face", PRESET_SHAPE_KEYS["oculus"])
    mesh.parent = rig
    generate("Face")
    assert action_values(action, rig) == {k: v for k, v in after.items() if k[0] == mine.data_path}


def test_mouth_and_shape_keys_together_on_a_mesh(rig):
    user = make_pose_action(rig)
    mesh = make_mesh("Face", PRESET_SHAPE_KEYS["oculus"])
    mesh.parent = rig
    report = generate("Face", bones=BoneOptions(enabled=True, pose_action=user.name, jaw=False))
    assert report.viseme_set == "oculus" and report.pose_set == "preston_blair"
    assert mesh.data.shape_keys.animation_data.action.name == report.action_name
    assert report.armature_action_name == rig.animation_data.action.name != report.action_name
    assert report.jaw_bone == "" and set(report.mouth_bones) == {"lip_upper", "lip_lower", "tongue"}
    # without the bone options the mesh gets its shape keys only (as before)
    report = generate("Face")
    assert report.bone_channels == [] and compat.action_fcurves(rig.animation_data.action, rig) == []


@pytest.mark.parametrize("roll", [0.0, math.pi, 0.4])
def test_jaw_only_rigify_names_sign_is_geometric(scene, roll):
    arm = build_rig("RIG-face", jaw="jaw_master", jaw_roll=roll, tongue="", extra=("DEF-jaw", "ORG-face"))
    mesh = make_mesh("Body", [])
    mod = mesh.modifiers.new("Armature", "ARMATURE")
    mod.object = arm
    report = generate("Body")  # a mesh without shape keys whose armature has a jaw: bone mouth
    assert report.jaw_bone == "jaw_master" and report.mouth_bones == ["jaw_master"]
    assert report.channels == [] and report.armature_action_name
    keyed = {p for p, _ in action_values(arm.animation_data.action, arm)}
    assert keyed == {'pose.bones["jaw_master"].rotation_quaternion'}
    scene.frame_set(round(phone_frames(report, VOWELS)[0]))
    drop = arm.data.bones["jaw_master"].tail_local.z - arm.pose.bones["jaw_master"].tail.z
    assert drop > 0.005, drop  # the tail moves down whatever the bone's roll
    assert report.frames_keyed > 3.5 * 24


def test_tongue_follows_tongue_up_when_present(rig):
    plan = bones.plan_mouth(rig, BoneOptions())
    assert (plan.jaw_bone, plan.tongue_bone) == ("jaw", "tongue")
    request = api.prepare(rig.name, str(SPEECH), transcript=SPEECH_TEXT, start_frame=1)
    result = api.analyze(request)
    times = result.curves.times
    assert result.curves.channels["tongue_up"].max() > 0.6  # "trail", "etc": t/d/n/l raise the tongue tip
    report = api.apply(request, result)
    assert "tongue" in report.mouth_bones
    peak = int(np.argmax(result.curves.channels["tongue_up"]))
    bpy.context.scene.frame_set(round(1 + times[peak] * 24))
    jaw = rig.pose.bones["jaw"]
    carried = jaw.matrix @ jaw.bone.matrix_local.inverted() @ rig.data.bones["tongue"].tail_local  # jaw motion only
    rise = rig.pose.bones["tongue"].tail.z - carried.z
    assert rise > 0.01, rise  # 0.25 rad x 5 cm, tail up (on top of where the jaw carries it)


def test_euler_and_axis_angle_bones_and_pose_prefix(scene):
    arm = build_rig("Rig2")
    arm.pose.bones["jaw"].rotation_mode = "XYZ"
    arm.pose.bones["lip_lower"].rotation_mode = "AXIS_ANGLE"
    # pose assets: one action per pose, named with a prefix (Rhubarb A-H, X)
    for i, name in enumerate(("A", "B", "C", "D", "E", "F", "G", "H", "X")):
        action = bpy.data.actions.new(f"PA_{name}")
        compat.assign_action(arm, action)
        pbone = arm.pose.bones["lip_lower"]
        pbone.rotation_axis_angle = (0.05 * i, 1.0, 0.0, 0.0)
        pbone.keyframe_insert("rotation_axis_angle", frame=1)
        arm.animation_data.action = None
    pbone.rotation_axis_angle = (0.0, 0.0, 1.0, 0.0)
    report = generate("Rig2", bones=BoneOptions(pose_prefix="PA_"))
    assert report.pose_set == "rhubarb"
    keyed = {p for p, _ in action_values(arm.animation_data.action, arm)}
    assert keyed == {
        'pose.bones["jaw"].rotation_euler', 'pose.bones["lip_lower"].rotation_axis_angle',
        'pose.bones["tongue"].rotation_quaternion',  # tongue_up on the tongue bone
    }
    assert len(report.bone_channels) == 3 + 4 + 4  # Euler jaw, axis-angle lip, quaternion tongue


def test_clear_messages_and_user_action_refused(scene):
    build_rig("Bare", jaw="", tongue="")
    with pytest.raises(RigError, match="jaw bone") as info:
        generate("Bare")
    assert "Pose Action" in str(info.value) and "jaw_master" in str(info.value)
    with pytest.raises(RigError, match="no action named 'Nope'"):
        generate("Bare", bones=BoneOptions(pose_action="Nope"))
    empty = bpy.data.actions.new("NoMarkers")
    with pytest.raises(RigError, match="no pose markers"):
        generate("Bare", bones=BoneOptions(pose_action=empty.name))
    rig = build_rig("WithJaw")
    walk = bpy.data.actions.new("MyWalk")
    compat.assign_action(rig, walk)
    actions = sorted(a.name for a in bpy.data.actions)
    with pytest.raises(RigError, match="MyWalk"):
        generate("WithJaw")
    assert rig.animation_data.action == walk and sorted(a.name for a in bpy.data.actions) == actions
    mesh = make_mesh("Plain", [])
    with pytest.raises(RigError, match="no shape keys"):
        generate("Plain")
    assert mesh.animation_data is None


def test_operator_reads_the_bone_mouth_panel_settings(rig):
    from lipsync_addon.blender import properties

    user = make_pose_action(rig)
    assert properties._pose_action_poll(None, user)
    settings = rig.lipsync
    settings.pose_action = user
    settings.jaw_angle = 0.5
    result = bpy.ops.lipsync.generate(object_name=rig.name, audio_path=str(SPEECH), transcript=SPEECH_TEXT)
    assert result == {"FINISHED"}
    action = rig.animation_data.action
    assert bake.is_owned(action) and not properties._pose_action_poll(None, action)
    assert "mouth bones" in bpy.context.window_manager.lipsync_job.message
    jaw_w = [
        kp.co[1]
        for kp in compat.find_fcurve(action, rig, bones.bone_path("jaw", "rotation_quaternion"), 0).keyframe_points
    ]
    # the panel's 0.5 rad: the widest vowel here (mouth_open 0.57) turns the jaw by 0.28 rad (0.17 at the default)
    assert min(jaw_w) < math.cos(0.2 / 2)
    settings.jaw = False
    assert bpy.ops.lipsync.generate(object_name=rig.name, audio_path=str(SPEECH), transcript=SPEECH_TEXT) == {
        "FINISHED"
    }
    assert compat.find_fcurve(action, rig, bones.bone_path("jaw", "rotation_quaternion"), 0) is None
    # the user keys the jaw by hand inside the owned action; turning Jaw back on must not overwrite it
    mine = compat.new_fcurve(action, rig, bones.bone_path("jaw", "rotation_quaternion"), 1, "mine")
    mine.keyframe_points.add(2)
    mine.keyframe_points.foreach_set("co", [1.0, 0.1, 9.0, 0.2])
    settings.jaw = True
    assert bpy.ops.lipsync.generate(object_name=rig.name, audio_path=str(SPEECH), transcript=SPEECH_TEXT) == {
        "FINISHED"
    }
    kept = compat.find_fcurve(action, rig, bones.bone_path("jaw", "rotation_quaternion"), 1)
    assert [tuple(kp.co) for kp in kept.keyframe_points] == [(1.0, pytest.approx(0.1)), (9.0, pytest.approx(0.2))]
    assert "left alone" in bpy.context.window_manager.lipsync_job.warnings
    assert bones.bone_path("jaw", "rotation_quaternion") + "#1" not in bake.owned_layers(action)["mouth"]


def test_batch_script_pose_action_and_no_jaw(rig, tmp_path):
    import subprocess
    import sys

    from blender_helpers import REPO

    user = make_pose_action(rig)
    user.use_fake_user = True  # a pose library is kept in the file without users
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "rig.blend"))
    out = tmp_path / "out.blend"
    args = ["--blend", str(tmp_path / "rig.blend"), "--object", "FaceRig", "--audio", str(SPEECH)]
    args += ["--transcript", SPEECH_TEXT, "--pose-action", "MouthPoses", "--no-jaw", "--out", str(out), "--quiet"]
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "batch_lipsync.py"), *args],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert '"armature_action": "LipSync_FaceRig_cmu_arctic_us_aew_a0001"' in done.stdout
    bpy.ops.wm.open_mainfile(filepath=str(out))
    arm = bpy.data.objects["FaceRig"]
    keyed = {p for p, _ in action_values(arm.animation_data.action, arm)}
    assert keyed == {  # --no-jaw: no jaw channel; the tongue follows tongue_up
        'pose.bones["lip_upper"].location', 'pose.bones["lip_lower"].location',
        'pose.bones["tongue"].rotation_quaternion',
    }


def test_glb_export_carries_the_bone_mouth(rig, tmp_path):
    import json
    import struct

    from lipsync_addon.blender import export

    user = make_pose_action(rig)
    report = generate(rig.name, bones=BoneOptions(pose_action=user.name))
    path = export.export_animation(str(tmp_path / "rig.glb"), [rig.name], file_format="GLB").filepath
    data = (tmp_path / "rig.glb").read_bytes() if path else b""
    length = struct.unpack("<I", data[12:16])[0]
    gltf = json.loads(data[20 : 20 + length])
    animations = {a["name"]: {c["target"]["path"] for c in a["channels"]} for a in gltf["animations"]}
    assert {"rotation", "translation"} <= animations[report.armature_action_name]
