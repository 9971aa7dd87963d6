"""Viseme pose blending (core/animate/poses.py): exact poses, rest, rotation sums, hemispheres, speed."""

from __future__ import annotations

import time

import numpy as np
import pytest

from lipsync_addon.core.animate import poses


def about_x(angle: float) -> tuple[float, float, float, float]:
    return (float(np.cos(angle / 2)), float(np.sin(angle / 2)), 0.0, 0.0)


def angle_about_x(q: np.ndarray) -> np.ndarray:
    return 2.0 * np.arctan2(q[..., 1], q[..., 0])


POSES: dict[str, poses.Pose] = {
    "sil": {"jaw": {"rotation_quaternion": (1.0, 0.0, 0.0, 0.0), "location": (0.0, 0.0, 0.0)}},
    "aa": {
        "jaw": {"rotation_quaternion": about_x(0.4), "location": (0.0, 0.01, 0.0)},
        "lip_low": {"location": (0.0, 0.0, -0.02), "scale": (1.0, 1.2, 1.0)},
    },
    "PP": {
        "lip_low": {"location": (0.0, 0.0, 0.01), "rotation_euler": (0.1, 0.0, -0.2)},
        "lip_up": {"location": (0.0, 0.0, -0.01)},
    },
}


def test_single_pose_at_full_weight_is_exact_and_zero_is_rest():
    w = {"aa": np.array([0.0, 1.0]), "PP": np.array([0.0, 0.0]), "sil": np.array([1.0, 0.0])}
    out = poses.blend_poses(POSES, w, rest="sil")
    assert set(out) == {"jaw", "lip_low", "lip_up"}
    np.testing.assert_allclose(out["jaw"]["rotation_quaternion"][1], about_x(0.4), atol=1e-12)
    np.testing.assert_allclose(out["jaw"]["location"][1], (0.0, 0.01, 0.0), atol=1e-12)
    np.testing.assert_allclose(out["lip_low"]["location"][1], (0.0, 0.0, -0.02), atol=1e-12)
    np.testing.assert_allclose(out["lip_low"]["scale"][1], (1.0, 1.2, 1.0), atol=1e-12)
    # frame 0: every viseme weight 0 -> rest (identity here)
    np.testing.assert_allclose(out["jaw"]["rotation_quaternion"][0], (1, 0, 0, 0), atol=1e-12)
    np.testing.assert_allclose(out["lip_low"]["scale"][0], (1, 1, 1), atol=1e-12)
    np.testing.assert_allclose(out["lip_low"]["rotation_euler"][0], (0, 0, 0), atol=1e-12)
    np.testing.assert_allclose(out["lip_up"]["location"][0], (0, 0, 0), atol=1e-12)


def test_blend_is_relative_to_a_non_identity_rest_pose():
    rest = {"jaw": {"rotation_quaternion": about_x(0.1), "location": (0.0, 0.0, 0.5), "scale": (2.0, 2.0, 2.0)}}
    openp = {"jaw": {"rotation_quaternion": about_x(0.5), "location": (0.0, 0.0, 0.7), "scale": (3.0, 2.0, 2.0)}}
    out = poses.blend_poses({"rest": rest, "open": openp}, {"open": np.array([0.0, 0.5, 1.0])}, rest="rest")
    np.testing.assert_allclose(angle_about_x(out["jaw"]["rotation_quaternion"]), [0.1, 0.3, 0.5], atol=1e-12)
    np.testing.assert_allclose(out["jaw"]["location"][:, 2], [0.5, 0.6, 0.7], atol=1e-12)
    np.testing.assert_allclose(out["jaw"]["scale"][:, 0], [2.0, 2.5, 3.0], atol=1e-12)


def test_two_rotations_about_one_axis_add_angles_and_stay_unit():
    two = {"a": {"b": {"rotation_quaternion": about_x(0.2)}}, "c": {"b": {"rotation_quaternion": about_x(0.3)}}}
    w = {"a": np.array([1.0, 0.5, 1.0]), "c": np.array([1.0, 0.5, 0.0])}
    q = poses.blend_poses(two, w)["b"]["rotation_quaternion"]
    np.testing.assert_allclose(angle_about_x(q), [0.5, 0.25, 0.2], atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-12)


def test_rotations_about_different_axes_unit_norm_and_symmetric():
    rng = np.random.default_rng(0)
    many = {}
    for i in range(6):
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        angle = rng.uniform(-2.5, 2.5)
        many[f"p{i}"] = {"b": {"rotation_quaternion": (np.cos(angle / 2), *(np.sin(angle / 2) * axis))}}
    w = {k: rng.uniform(0, 1, size=50) for k in many}
    q = poses.blend_poses(many, w)["b"]["rotation_quaternion"]
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-12)


def test_hemisphere_q_and_minus_q_are_the_same_pose():
    q = np.array(about_x(0.6))
    plus = poses.blend_poses({"p": {"b": {"rotation_quaternion": tuple(q)}}}, {"p": np.array([0.25, 0.5, 1.0])})
    minus = poses.blend_poses({"p": {"b": {"rotation_quaternion": tuple(-q)}}}, {"p": np.array([0.25, 0.5, 1.0])})
    a, b = plus["b"]["rotation_quaternion"], minus["b"]["rotation_quaternion"]
    # the same rotation (up to the overall sign) at every weight, not a detour the long way round
    np.testing.assert_allclose(np.abs(np.sum(a * b, axis=1)), 1.0, atol=1e-12)
    np.testing.assert_allclose(angle_about_x(b), [0.15, 0.3, 0.6], atol=1e-12)
    # a rest pose stored on the other hemisphere changes nothing either
    rest = {"b": {"rotation_quaternion": (-1.0, 0.0, 0.0, 0.0)}}
    out = poses.blend_poses(
        {"r": rest, "p": {"b": {"rotation_quaternion": tuple(q)}}}, {"p": np.array([1.0])}, rest="r"
    )
    assert abs(abs(float(np.dot(out["b"]["rotation_quaternion"][0], q))) - 1.0) < 1e-12


def test_weights_above_one_add_deltas_or_normalize():
    two = {"a": {"b": {"location": (1.0, 0.0, 0.0)}}, "c": {"b": {"location": (0.0, 1.0, 0.0)}}}
    w = {"a": np.array([0.8]), "c": np.array([0.7])}
    np.testing.assert_allclose(poses.blend_poses(two, w)["b"]["location"][0], (0.8, 0.7, 0.0))
    np.testing.assert_allclose(poses.blend_poses(two, w, normalize=True)["b"]["location"][0], (0.8 / 1.5, 0.7 / 1.5, 0))


def test_euler_is_a_weighted_sum_and_bad_channels_raise():
    e = {"a": {"b": {"rotation_euler": (0.1, 0.2, 0.3)}}, "c": {"b": {"rotation_euler": (0.0, -0.2, 0.1)}}}
    out = poses.blend_poses(e, {"a": np.array([0.5]), "c": np.array([1.0])})
    np.testing.assert_allclose(out["b"]["rotation_euler"][0], (0.05, -0.1, 0.25))
    with pytest.raises(ValueError, match="unknown pose channel"):
        poses.blend_poses({"a": {"b": {"rotation_mode": (1.0,)}}}, {"a": np.array([1.0])})
    with pytest.raises(ValueError, match="needs 3 values"):
        poses.blend_poses({"a": {"b": {"location": (1.0, 2.0)}}}, {"a": np.array([1.0])})
    assert poses.blend_poses(e, {"zz": np.array([1.0])}) == {}


def test_log_exp_round_trip_and_axis_angle():
    rng = np.random.default_rng(1)
    q = poses.quat_normalize(rng.normal(size=(200, 4)))
    back = poses.quat_exp(poses.quat_log(q))
    np.testing.assert_allclose(np.abs(np.sum(back * q, axis=1)), 1.0, atol=1e-10)
    aa = poses.quat_to_axis_angle(np.array([about_x(0.7), (1.0, 0.0, 0.0, 0.0)]))
    np.testing.assert_allclose(aa, [[0.7, 1, 0, 0], [0.0, 0, 1, 0]], atol=1e-12)


def test_hinge_rotation_modes_and_sign():
    angles = np.array([0.0, 0.3])
    chan, q = poses.x_rotation(angles, "QUATERNION")
    assert chan == "rotation_quaternion"
    np.testing.assert_allclose(q[1], about_x(0.3))
    assert poses.x_rotation(angles, "XYZ")[0] == "rotation_euler"
    np.testing.assert_allclose(poses.x_rotation(angles, "ZYX")[1][1], (0.3, 0, 0))
    np.testing.assert_allclose(poses.x_rotation(angles, "AXIS_ANGLE")[1][1], (0.3, 1, 0, 0))
    # local Z pointing up: +X rotation lifts the tail, so opening a jaw needs the negative sign
    assert poses.hinge_sign(1.0, tail_down=True) == -1.0
    assert poses.hinge_sign(-0.7, tail_down=True) == 1.0
    assert poses.hinge_sign(1.0, tail_down=False) == 1.0


def test_rest_pose_and_bone_names():
    assert poses.find_rest_pose(["MBP", "AI", "rest", "E"]) == "rest"
    assert poses.find_rest_pose(["viseme_PP", "viseme_sil", "viseme_aa"]) == "viseme_sil"
    assert poses.find_rest_pose(["A", "B", "X"]) == "X"
    assert poses.find_rest_pose(["A", "B"]) is None
    assert poses.find_jaw_bone(["root", "DEF-jaw", "jaw_master"]) == "jaw_master"
    assert poses.find_jaw_bone(["mixamorig:Head", "mixamorig:Jaw"]) == "mixamorig:Jaw"
    assert poses.find_jaw_bone(["JAW"]) == "JAW"
    assert poses.find_jaw_bone(["head"]) == ""
    assert poses.find_tongue_bone(["CC_Base_Tongue01", "CC_Base_Tongue02"]) == "CC_Base_Tongue01"
    assert 0.0 < poses.default_jaw_angle() < 1.0 and 0.0 < poses.default_tongue_angle() < 1.0


def test_ten_minutes_at_60_fps_is_fast():
    n = 10 * 60 * 60
    rng = np.random.default_rng(2)
    many = {
        f"v{i}": {
            f"bone{j}": {"rotation_quaternion": about_x(0.1 * i + 0.01 * j), "location": (0.0, 0.01 * i, 0.0)}
            for j in range(12)
        }
        for i in range(15)
    }
    w = {k: rng.uniform(0, 1, size=n) for k in many}
    start = time.perf_counter()
    out = poses.blend_poses(many, w, rest="v0")
    elapsed = time.perf_counter() - start
    assert out["bone3"]["rotation_quaternion"].shape == (n, 4)
    assert elapsed < 2.0, elapsed  # measured 0.07 s on a shared 2-core machine
