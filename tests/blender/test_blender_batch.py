"""scripts/batch_lipsync.py with the bpy wheel's Python: a real .blend in, a real .blend out."""

from __future__ import annotations

import subprocess
import sys

import bpy
from blender_helpers import PRESET_SHAPE_KEYS, REPO, SPEECH, SPEECH_TEXT, make_mesh

from lipsync_addon.blender import bake

SCRIPT = REPO / "scripts" / "batch_lipsync.py"


def run_batch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=REPO, capture_output=True, text=True, timeout=300, check=False
    )


def save_scene(path) -> None:
    make_mesh("Head", PRESET_SHAPE_KEYS["oculus"])
    bpy.ops.wm.save_as_mainfile(filepath=str(path))


def test_batch_generates_and_saves(scene, tmp_path):
    save_scene(tmp_path / "scene.blend")
    (tmp_path / "line.txt").write_text(SPEECH_TEXT, encoding="utf-8")
    out = tmp_path / "out" / "lipsynced.blend"
    done = run_batch(
        "--blend", str(tmp_path / "scene.blend"), "--object", "Head", "--audio", str(SPEECH),
        "--text", str(tmp_path / "line.txt"), "--start-frame", "7", "--out", str(out), "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert '"action": "LipSync_Head_cmu_arctic_us_aew_a0001"' in done.stdout
    bpy.ops.wm.open_mainfile(filepath=str(out))
    action = bpy.data.objects["Head"].data.shape_keys.animation_data.action
    assert bake.is_owned(action) and action.name == "LipSync_Head_cmu_arctic_us_aew_a0001"
    assert bpy.context.scene.frame_end >= 7 + 90
    # the input file was not modified
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "scene.blend"))
    assert bpy.data.objects["Head"].data.shape_keys.animation_data is None


def test_batch_bad_input_exit_codes(scene, tmp_path):
    save_scene(tmp_path / "scene.blend")
    out = tmp_path / "out.blend"
    missing_object = run_batch(
        "--blend", str(tmp_path / "scene.blend"), "--object", "Nobody", "--audio", str(SPEECH), "--out", str(out)
    )
    assert missing_object.returncode == 1
    assert "no object named 'Nobody'" in missing_object.stderr
    assert "Traceback" not in missing_object.stderr
    missing_audio = run_batch(
        "--blend", str(tmp_path / "scene.blend"), "--object", "Head", "--audio", str(tmp_path / "x.wav"),
        "--out", str(out),
    )  # fmt: skip
    assert missing_audio.returncode == 1 and "does not exist" in missing_audio.stderr
    assert not out.exists()
    usage = run_batch("--object", "Head")
    assert usage.returncode == 2 and "--audio" in usage.stderr


def test_batch_face_motion_keys_blinks(scene, tmp_path):
    names = [*PRESET_SHAPE_KEYS["oculus"], "eyeBlink_L", "eyeBlink_R", "eyeLookOut_L", "eyeLookIn_R", "mouthSmile_L"]
    make_mesh("Head", names)
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "scene.blend"))
    out = tmp_path / "face.blend"
    done = run_batch(
        "--blend", str(tmp_path / "scene.blend"), "--object", "Head", "--audio", str(SPEECH),
        "--transcript", SPEECH_TEXT, "--face", "expressive", "--face-layers", "blink,gaze", "--expression", "smile",
        "--out", str(out), "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    bpy.ops.wm.open_mainfile(filepath=str(out))
    key = bpy.data.objects["Head"].data.shape_keys
    from lipsync_addon.blender import compat

    paths = {fc.data_path for fc in compat.action_fcurves(key.animation_data.action, key)}
    assert bake.shape_key_data_path("eyeBlink_L") in paths and bake.shape_key_data_path("viseme_PP") in paths
    for name in ("eyeLookOut_L", "eyeLookIn_R", "mouthSmile_L"):  # gaze and the held smile
        assert bake.shape_key_data_path(name) in paths, name
    bad = run_batch("--blend", str(tmp_path / "scene.blend"), "--object", "Head", "--audio", str(SPEECH),
                    "--face", "natural", "--face-layers", "wink", "--out", str(out))
    assert bad.returncode == 2 and "unknown face layer" in bad.stderr and "gaze" in bad.stderr


def test_batch_sync_to_reference_places_the_clip(scene, tmp_path):
    import soundfile as sf

    data, rate = sf.read(SPEECH, dtype="float32")
    clip = tmp_path / "pickup.wav"
    sf.write(clip, data[int(1.0 * rate):], rate)  # the take starts 1 s into the reference
    save_scene(tmp_path / "scene.blend")
    out = tmp_path / "synced.blend"
    done = run_batch("--blend", str(tmp_path / "scene.blend"), "--object", "Head", "--audio", str(clip),
                     "--sync-to", str(SPEECH), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "-> frame 25" in done.stdout  # scene start 1 + 1 s at 24 fps
