"""Bake hand-built Curves into shape keys: frames, fps, ownership, idempotence, user data."""

from __future__ import annotations

import bpy
import numpy as np
import pytest
from blender_helpers import PRESET_SHAPE_KEYS, fcurve_snapshot, make_mesh

from lipsync_addon.blender import bake, compat
from lipsync_addon.core.types import Curves, RigError

OCULUS = PRESET_SHAPE_KEYS["oculus"]


def make_curves(names: list[str], *, seconds: float = 2.0, rate: float = 24.0, seed: int = 0) -> Curves:
    """Smooth random curves in [0, 1] with flat silent stretches, plus mouth_open."""
    n = round(seconds * rate)
    rng = np.random.default_rng(seed)
    channels = {}
    for name in [*names, "mouth_open"]:
        values = np.clip(np.convolve(rng.random(n), np.ones(5) / 5, mode="same"), 0, 1)
        values[: n // 5] = 0.0  # leading silence: a flat run
        channels[name] = values
    return Curves(times=np.arange(n) / rate, rate=rate, channels=channels)


def owned_action(obj):
    return obj.data.shape_keys.animation_data.action


def test_keys_land_on_frames_with_values(scene):
    obj = make_mesh("Head", OCULUS)
    curves = make_curves(OCULUS)
    report = bake.bake_curves(obj, curves, start_frame=10, clip="line01")
    action = owned_action(obj)
    assert action.name == "LipSync_Head_line01" == report.action_name
    assert action[bake.OWNER_TAG] is True or action[bake.OWNER_TAG] == 1
    assert report.channels == OCULUS
    assert report.skipped == ["mouth_open"]
    assert report.frame_start == pytest.approx(10.0)
    key = obj.data.shape_keys
    fcurves = compat.action_fcurves(action, key)
    assert len(fcurves) == len(OCULUS)
    for name in OCULUS:
        fc = compat.find_fcurve(action, key, bake.shape_key_data_path(name))
        assert fc is not None
        frames = 10 + np.arange(len(curves.times))
        got = np.array([fc.evaluate(f) for f in frames])
        np.testing.assert_allclose(got, curves.channels[name], atol=1e-5)
        assert all(kp.interpolation == "LINEAR" for kp in fc.keyframe_points)
    # leading silence was reduced to its endpoints
    fc = compat.find_fcurve(action, key, bake.shape_key_data_path("viseme_aa"))
    assert len(fc.keyframe_points) < len(curves.times)
    # the keys drive the shape key
    scene.frame_set(10 + 30)
    expected = curves.channels["viseme_aa"][30]
    assert obj.data.shape_keys.key_blocks["viseme_aa"].value == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize(("fps", "fps_base"), [(24000, 1001), (30000, 1001), (25, 1), (60, 1)])
def test_fractional_scene_fps(scene, fps, fps_base):
    scene.render.fps, scene.render.fps_base = fps, fps_base
    real_fps = fps / fps_base
    obj = make_mesh("Head", OCULUS)
    curves = make_curves(OCULUS, seconds=3.0, rate=real_fps)
    report = bake.bake_curves(obj, curves, start_frame=1, clip="c", reduce=False)
    assert report.fps == pytest.approx(real_fps)
    fc = compat.find_fcurve(owned_action(obj), obj.data.shape_keys, bake.shape_key_data_path("viseme_PP"))
    frames = np.array([kp.co[0] for kp in fc.keyframe_points])
    # the sample at t seconds lands on frame 1 + t * fps: a clip of 3 s ends at frame 1 + (n-1)
    np.testing.assert_allclose(frames, 1 + curves.times * real_fps, atol=1e-3)
    assert report.frame_end == pytest.approx(1 + curves.times[-1] * real_fps)


def test_curves_at_other_rate_are_placed_by_seconds(scene):
    scene.render.fps, scene.render.fps_base = 24000, 1001
    obj = make_mesh("Head", OCULUS)
    curves = make_curves(OCULUS, seconds=1.0, rate=100.0)
    bake.bake_curves(obj, curves, start_frame=5, clip="c", reduce=False)
    fc = compat.find_fcurve(owned_action(obj), obj.data.shape_keys, bake.shape_key_data_path("viseme_E"))
    assert fc.keyframe_points[-1].co[0] == pytest.approx(5 + 0.99 * 24000 / 1001, abs=1e-3)


def test_rerun_is_idempotent(scene):
    obj = make_mesh("Head", OCULUS)
    curves = make_curves(OCULUS)
    bake.bake_curves(obj, curves, start_frame=1, clip="line")
    first = fcurve_snapshot(owned_action(obj), obj.data.shape_keys)
    actions_before = len(bpy.data.actions)
    bake.bake_curves(obj, curves, start_frame=1, clip="line")
    bake.bake_curves(obj, curves, start_frame=1, clip="line")
    assert len(bpy.data.actions) == actions_before == 1
    assert fcurve_snapshot(owned_action(obj), obj.data.shape_keys) == first


def test_rerun_replaces_only_own_channels(scene):
    obj = make_mesh("Head", OCULUS)
    key = obj.data.shape_keys
    bake.bake_curves(obj, make_curves(OCULUS), start_frame=1, clip="a")
    action = owned_action(obj)
    # The user adds a channel of their own into our action (a blink-like key on the Basis-relative key).
    user_fc = compat.new_fcurve(action, key, 'key_blocks["viseme_sil"].slider_max', 0, "User")
    user_fc.keyframe_points.insert(3, 1.0)
    # Second run keys fewer channels (another clip): old channels of ours go, the user's stays.
    bake.bake_curves(obj, make_curves(OCULUS[:5], seed=1), start_frame=1, clip="b")
    paths = {fc.data_path for fc in compat.action_fcurves(owned_action(obj), key)}
    assert paths == {bake.shape_key_data_path(n) for n in OCULUS[:5]} | {'key_blocks["viseme_sil"].slider_max'}
    assert owned_action(obj).name == "LipSync_Head_b"
    assert len(bpy.data.actions) == 1


def test_user_action_on_shape_keys_is_refused_and_untouched(scene):
    obj = make_mesh("Head", OCULUS)
    key = obj.data.shape_keys
    key.key_blocks["viseme_aa"].value = 0.3
    key.key_blocks["viseme_aa"].keyframe_insert("value", frame=1)
    key.key_blocks["viseme_aa"].value = 0.8
    key.key_blocks["viseme_aa"].keyframe_insert("value", frame=20)
    user_action = key.animation_data.action
    user_action.name = "MyBlinks"
    before = fcurve_snapshot(user_action, key)
    with pytest.raises(RigError, match="MyBlinks"):
        bake.bake_curves(obj, make_curves(OCULUS), start_frame=1, clip="a")
    assert key.animation_data.action == user_action
    assert fcurve_snapshot(user_action, key) == before
    assert [a.name for a in bpy.data.actions] == ["MyBlinks"]


def test_user_animation_elsewhere_is_untouched(scene):
    other = make_mesh("Other", OCULUS)
    other.location = (0, 0, 0)
    other.keyframe_insert("location", frame=1)
    other.location = (1, 2, 3)
    other.keyframe_insert("location", frame=30)
    other_key = other.data.shape_keys
    other_key.key_blocks["viseme_O"].value = 0.5
    other_key.key_blocks["viseme_O"].keyframe_insert("value", frame=5)
    obj_action, key_action = other.animation_data.action, other_key.animation_data.action
    snap_obj, snap_key = fcurve_snapshot(obj_action, other), fcurve_snapshot(key_action, other_key)

    head = make_mesh("Head", OCULUS)
    head.data.shape_keys.key_blocks["viseme_U"].slider_max = 0.9  # a user shape-key setting
    bake.bake_curves(head, make_curves(OCULUS), start_frame=1, clip="a")
    bake.bake_curves(head, make_curves(OCULUS, seed=3), start_frame=1, clip="a")

    assert fcurve_snapshot(obj_action, other) == snap_obj
    assert fcurve_snapshot(key_action, other_key) == snap_key
    assert other.animation_data.action == obj_action and other_key.animation_data.action == key_action
    assert head.data.shape_keys.key_blocks["viseme_U"].slider_max == pytest.approx(0.9)
    assert [k.name for k in head.data.shape_keys.key_blocks] == ["Basis", *OCULUS]
    assert not bake.is_owned(obj_action) and not bake.is_owned(key_action)


def test_shared_owned_action_is_copied_not_overwritten(scene):
    head = make_mesh("Head", OCULUS)
    bake.bake_curves(head, make_curves(OCULUS), start_frame=1, clip="a")
    twin = make_mesh("Twin", OCULUS)
    compat.assign_action(twin.data.shape_keys, owned_action(head))
    head_keys = fcurve_snapshot(owned_action(head), head.data.shape_keys)
    bake.bake_curves(twin, make_curves(OCULUS, seed=7), start_frame=1, clip="b")
    assert owned_action(twin) != owned_action(head)
    assert fcurve_snapshot(owned_action(head), head.data.shape_keys) == head_keys


def test_mesh_without_shape_keys_is_refused(scene):
    obj = make_mesh("Plain", [])
    with pytest.raises(RigError, match="no mouth shape keys"):
        bake.bake_curves(obj, make_curves(OCULUS), start_frame=1)
    assert len(bpy.data.actions) == 0


def test_no_matching_channel_is_refused(scene):
    obj = make_mesh("Head", ["smile", "frown"])
    with pytest.raises(RigError, match="Nothing to bake"):
        bake.bake_curves(obj, make_curves(OCULUS), start_frame=1)
    assert len(bpy.data.actions) == 0


def test_shape_key_names_with_quotes(scene):
    names = ['mouth "A"', "mouth\\B"]
    obj = make_mesh("Head", names)
    report = bake.bake_curves(obj, make_curves(names), start_frame=1, clip="q")
    assert report.channels == names
    scene.frame_set(40)
    assert obj.data.shape_keys.key_blocks['mouth "A"'].value > 0.0


def test_long_bake_ten_minutes_sixty_fps(scene):
    """The benchmark's size (10 min at 60 fps, 15 channels) bakes correctly (timing: scripts/bench.py)."""
    scene.render.fps = 60
    obj = make_mesh("Head", OCULUS)
    curves = make_curves(OCULUS, seconds=600.0, rate=60.0)
    report = bake.bake_curves(obj, curves, start_frame=1, clip="long", reduce=False)
    assert report.keys_written == 15 * 36000
    assert report.frame_end == pytest.approx(36000)
