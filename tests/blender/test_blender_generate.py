"""End to end in Blender: real speech -> core pipeline -> keys, through the API, the operator and jobs."""

from __future__ import annotations

import bpy
import pytest
from blender_helpers import (
    ARKIT_GLB,
    PRESET_SHAPE_KEYS,
    SPEECH,
    SPEECH_TEXT,
    fcurve_snapshot,
    make_mesh,
    scene_snapshot,
)

from lipsync_addon.blender import api, bake, compat, jobs
from lipsync_addon.core.types import Cancelled, RigError

#: VRoid's Fcl_MTH_* names are a spelling of the VRM preset.
EXPECTED_SET = {"vroid": "vrm"}


def keyed_channels(obj) -> set[str]:
    key = obj.data.shape_keys
    action = key.animation_data.action
    return {fc.data_path for fc in compat.action_fcurves(action, key)}


@pytest.mark.parametrize("preset", sorted(PRESET_SHAPE_KEYS))
def test_generate_on_every_preset(scene, preset):
    names = PRESET_SHAPE_KEYS[preset]
    obj = make_mesh("Head", names)
    report = api.generate("Head", str(SPEECH), transcript=SPEECH_TEXT, start_frame=1)
    assert report.viseme_set == EXPECTED_SET.get(preset, preset)
    assert report.action_name == "LipSync_Head_cmu_arctic_us_aew_a0001"
    assert set(report.channels) <= set(names) and len(report.channels) >= min(3, len(names))
    assert keyed_channels(obj) == {bake.shape_key_data_path(n) for n in report.channels}
    assert report.frames_keyed >= int(3.5 * 24)
    # the mouth really moves: some channel is clearly open somewhere in the clip
    key = obj.data.shape_keys
    peak = 0.0
    for frame in range(report.frame_start, report.frame_end + 1, 2):
        scene.frame_set(frame)
        peak = max(peak, *(key.key_blocks[n].value for n in report.channels))
    assert peak > 0.3
    # the clip plays from the start frame
    if compat.has_audio():
        strip = compat.all_strips(scene.sequence_editor)[0]
        assert strip.name == report.strip_name and compat.strip_start(strip) == 1
    else:  # bpy 4.2-4.4 wheels: keys baked, a clear warning instead of a strip
        assert any("no audio support" in w for w in report.warnings)
    assert scene.frame_end >= report.frame_end


@pytest.mark.skipif(not compat.has_audio(), reason="this bpy build has no audio")
def test_generate_from_aac_and_a_video_with_blenders_own_ffmpeg(scene, monkeypatch):
    """What Blender plays can be lip-synced: an AAC (M4A) clip and a video's sound track are decoded by
    Blender's own FFmpeg (no ffmpeg program needed), timed like the WAV, and become the sound strip."""
    from lipsync_addon.core import audio as core_audio

    assert compat.BLENDER_DECODER in core_audio._DECODERS  # added when the add-on registers
    monkeypatch.setattr(core_audio.shutil, "which", lambda name: None)  # no ffmpeg program
    bobby_wav = SPEECH.parent / "aligned" / "bobby.wav"
    m4a = SPEECH.parent / "formats" / "bobby.m4a"
    obj = make_mesh("Head", PRESET_SHAPE_KEYS["oculus"])
    wav = api.generate("Head", str(bobby_wav), transcript="Bobby ripped the ledger", start_frame=1)
    aac = api.generate("Head", str(m4a), transcript="Bobby ripped the ledger", start_frame=1)
    assert [w.text for w in aac.result.transcript.words] == ["bobby", "ripped", "the", "ledger"]
    for a, b in zip(aac.result.transcript.words, wav.result.transcript.words, strict=True):
        assert abs(a.start - b.start) <= 0.02 and abs(a.end - b.end) <= 0.02
    assert keyed_channels(obj) and aac.action_name == "LipSync_Head_bobby"
    strip = next(s for s in compat.all_strips(scene.sequence_editor) if s.name == aac.strip_name)
    assert strip.sound.filepath.endswith("bobby.m4a")
    video = SPEECH.parent / "video" / "bbaf2n.mpg"
    make_mesh("Other", PRESET_SHAPE_KEYS["arkit"])
    report = api.generate("Other", str(video), transcript="bin blue at f two now", start_frame=200)
    assert [w.text for w in report.result.transcript.words][:2] == ["bin", "blue"]
    strip = next(s for s in compat.all_strips(scene.sequence_editor) if s.name == report.strip_name)
    assert strip.sound.filepath.endswith("bbaf2n.mpg") and compat.strip_start(strip) == 200


def test_a_file_blender_cannot_play_gets_a_message_not_a_crash(scene, tmp_path, monkeypatch):
    """Audaspace aborts the process when asked for the samples of a file it cannot read; the decoder
    asks for its specs first, which raises instead."""
    from lipsync_addon.core import audio as core_audio

    monkeypatch.setattr(core_audio.shutil, "which", lambda name: None)
    make_mesh("Head", PRESET_SHAPE_KEYS["oculus"])
    fake = tmp_path / "take.m4a"
    fake.write_bytes(b"not a sound at all\n" * 100)
    before = scene_snapshot(scene)
    with pytest.raises(api.AudioError, match=r"Cannot read 'take\.m4a' as audio"):
        api.generate("Head", str(fake))
    assert scene_snapshot(scene) == before


def test_generate_on_real_arkit_head(scene):
    bpy.ops.import_scene.gltf(filepath=str(ARKIT_GLB))
    head = next(o for o in bpy.data.objects if o.type == "MESH" and o.data.shape_keys)
    blocks_before = [(k.name, k.value) for k in head.data.shape_keys.key_blocks]
    report = api.generate(head.name, str(SPEECH), transcript=SPEECH_TEXT, start_frame=5)
    assert report.viseme_set == "arkit"
    assert {"jawOpen", "mouthClose", "mouthFunnel", "mouthPucker"} <= set(report.channels)
    assert not any(n.startswith(("eye", "brow")) for n in report.channels)
    assert [(k.name, k.value) for k in head.data.shape_keys.key_blocks] == blocks_before
    scene.frame_set(5 + 24)
    assert max(head.data.shape_keys.key_blocks[n].value for n in report.channels) > 0.0


def test_rerun_same_result_one_action(scene):
    obj = make_mesh("Head", PRESET_SHAPE_KEYS["oculus"])
    api.generate("Head", str(SPEECH), transcript=SPEECH_TEXT)
    first = fcurve_snapshot(obj.data.shape_keys.animation_data.action, obj.data.shape_keys)
    strips_before = scene_snapshot(scene)["strips"]
    api.generate("Head", str(SPEECH), transcript=SPEECH_TEXT)
    assert len(bpy.data.actions) == 1
    assert fcurve_snapshot(obj.data.shape_keys.animation_data.action, obj.data.shape_keys) == first
    assert scene_snapshot(scene)["strips"] == strips_before


def test_user_animation_untouched_by_generate(scene):
    names = PRESET_SHAPE_KEYS["oculus"]
    other = make_mesh("Other", names)
    other.keyframe_insert("location", frame=1)
    other.location.x = 2.0
    other.keyframe_insert("location", frame=40)
    user_action = other.animation_data.action
    before = fcurve_snapshot(user_action, other)
    make_mesh("Head", names)
    api.generate("Head", str(SPEECH), transcript=SPEECH_TEXT)
    assert fcurve_snapshot(user_action, other) == before
    assert other.animation_data.action == user_action
    assert not bake.is_owned(user_action)


def test_user_action_on_target_refused_before_analysis(scene):
    obj = make_mesh("Head", PRESET_SHAPE_KEYS["oculus"])
    block = obj.data.shape_keys.key_blocks["viseme_aa"]
    block.keyframe_insert("value", frame=3)
    user_action = obj.data.shape_keys.animation_data.action
    user_action.name = "HandKeys"
    before = scene_snapshot(scene)
    with pytest.raises(RigError, match="HandKeys"):
        api.generate("Head", str(SPEECH), transcript=SPEECH_TEXT)
    assert scene_snapshot(scene) == before


def test_fractional_fps_generate(scene):
    scene.render.fps, scene.render.fps_base = 30000, 1001
    obj = make_mesh("Head", PRESET_SHAPE_KEYS["oculus"])
    report = api.generate("Head", str(SPEECH), transcript=SPEECH_TEXT, start_frame=1)
    assert report.result.curves.rate == pytest.approx(30000 / 1001)
    key = obj.data.shape_keys
    fc = compat.find_fcurve(key.animation_data.action, key, bake.shape_key_data_path(report.channels[0]))
    last = max(kp.co[0] for kp in fc.keyframe_points)
    assert last == pytest.approx(1 + report.result.curves.times[-1] * 30000 / 1001, abs=1e-2)


def test_operator_execute_background_path(scene):
    make_mesh("Head", PRESET_SHAPE_KEYS["vrchat"])
    result = bpy.ops.lipsync.generate(object_name="Head", audio_path=str(SPEECH), transcript=SPEECH_TEXT)
    assert result == {"FINISHED"}
    assert bpy.context.window_manager.lipsync_job.status == "DONE"
    assert len(bpy.data.actions) == 1 and bake.is_owned(bpy.data.actions[0])


def test_operator_uses_panel_settings_and_active_object(scene):
    obj = make_mesh("Face", PRESET_SHAPE_KEYS["preston_blair"])
    bpy.context.view_layer.objects.active = obj
    settings = scene.lipsync
    settings.audio_path = str(SPEECH)
    text = bpy.data.texts.new("line")
    text.write(SPEECH_TEXT)
    settings.transcript_source = "DATABLOCK"
    settings.transcript_text = text
    settings.start_frame = 20
    # INVOKE in background mode falls back to the blocking path
    assert bpy.ops.lipsync.generate("INVOKE_DEFAULT") == {"FINISHED"}
    # subtitles pasted into the text block: the pipeline aligns their cue text
    from lipsync_addon.blender.properties import scene_script_text
    from lipsync_addon.core.transcript_file import transcript_from_text

    text.clear()
    text.write(f"WEBVTT\n\n00:01.000 --> 00:04.000\n<v Anna>{SPEECH_TEXT}</v>\n")
    assert transcript_from_text(scene_script_text(settings)) == SPEECH_TEXT
    key = obj.data.shape_keys
    first = min(kp.co[0] for fc in compat.action_fcurves(key.animation_data.action, key) for kp in fc.keyframe_points)
    assert first == pytest.approx(20.0)


def test_operator_reports_errors_without_traceback(scene):
    make_mesh("Plain", [])
    before = scene_snapshot(scene)
    with pytest.raises(RuntimeError) as info:
        bpy.ops.lipsync.generate(object_name="Plain", audio_path=str(SPEECH))
    assert "has no shape keys" in str(info.value)
    assert "Traceback" not in str(info.value)
    assert bpy.context.window_manager.lipsync_job.status == "ERROR"
    assert scene_snapshot(scene) == before


# ------------------------------------------------------------------ bad input


def test_missing_audio_file(scene, tmp_path):
    make_mesh("Head", PRESET_SHAPE_KEYS["oculus"])
    before = scene_snapshot(scene)
    with pytest.raises(api.AudioError, match="does not exist"):
        api.generate("Head", str(tmp_path / "nope.wav"))
    assert scene_snapshot(scene) == before


def test_non_audio_file(scene, tmp_path):
    make_mesh("Head", PRESET_SHAPE_KEYS["oculus"])
    fake = tmp_path / "notes.wav"
    fake.write_text("this is not audio\n" * 50)
    before = scene_snapshot(scene)
    with pytest.raises(api.AudioError):
        api.generate("Head", str(fake))
    assert scene_snapshot(scene) == before


def test_mesh_without_shape_keys(scene):
    make_mesh("Plain", [])
    with pytest.raises(RigError, match="no shape keys"):
        api.generate("Plain", str(SPEECH))
    assert len(bpy.data.actions) == 0


def test_no_matching_names_lists_presets(scene):
    make_mesh("Head", ["smile", "frown", "blink"])
    with pytest.raises(RigError) as info:
        api.generate("Head", str(SPEECH))
    message = str(info.value)
    assert "viseme_aa" in message and "jawOpen" in message
    assert len(bpy.data.actions) == 0


def test_unknown_object_and_armature(scene):
    with pytest.raises(RigError, match="no object named 'Ghost'"):
        api.generate("Ghost", str(SPEECH))
    arm = bpy.data.objects.new("Rig", bpy.data.armatures.new("Rig"))
    scene.collection.objects.link(arm)
    with pytest.raises(RigError, match="armature"):
        api.generate("Rig", str(SPEECH))


def test_non_ascii_paths_and_text(scene, tmp_path):
    import shutil

    folder = tmp_path / "diálogo ñ 台詞"
    folder.mkdir()
    clip = folder / "línea ü.wav"
    shutil.copy(SPEECH, clip)
    make_mesh("Cabeza é", PRESET_SHAPE_KEYS["oculus"])
    report = api.generate("Cabeza é", str(clip), transcript="Author of the danger trail, Philip Steels, etc. ¡Olé!")
    assert report.action_name.startswith("LipSync_Cabeza é_línea ü")
    assert report.channels


# ------------------------------------------------------------------ the modal path, driven directly


def test_object_deleted_while_job_runs(scene):
    obj = make_mesh("Head", PRESET_SHAPE_KEYS["oculus"])
    request = api.prepare("Head", str(SPEECH), transcript=SPEECH_TEXT)
    job = jobs.Job(request)
    job.start()
    bpy.data.objects.remove(obj)  # the user deletes the object meanwhile
    job.join(120)
    assert job.poll() and job.result is not None
    before = scene_snapshot(scene)
    with pytest.raises(RigError, match="deleted or renamed"):
        api.apply(job.request, job.result)
    assert scene_snapshot(scene) == before


def test_object_renamed_while_job_runs(scene):
    obj = make_mesh("Head", PRESET_SHAPE_KEYS["oculus"])
    request = api.prepare("Head", str(SPEECH), transcript=SPEECH_TEXT)
    job = jobs.Job(request)
    job.run_blocking()
    obj.name = "Head.renamed"
    with pytest.raises(RigError, match="'Head' was deleted or renamed"):
        api.apply(job.request, job.result)
    assert obj.data.shape_keys.animation_data is None


def test_cancelled_job_changes_nothing(scene):
    make_mesh("Head", PRESET_SHAPE_KEYS["oculus"])
    before = scene_snapshot(scene)
    job = jobs.Job(api.prepare("Head", str(SPEECH), transcript=SPEECH_TEXT))
    job.cancel()  # Esc before the worker's first check
    job.run_blocking()
    assert job.done and isinstance(job.error, Cancelled) and job.result is None
    assert scene_snapshot(scene) == before


def test_job_reports_progress(scene):
    make_mesh("Head", PRESET_SHAPE_KEYS["oculus"])
    job = jobs.Job(api.prepare("Head", str(SPEECH), transcript=SPEECH_TEXT))
    seen = []
    original = job._progress

    def spy(fraction, stage):
        seen.append((fraction, stage))
        original(fraction, stage)

    job._progress = spy
    job.run_blocking()
    assert job.error is None, job.error
    assert len(seen) >= 2 and all(0.0 <= f <= 1.0 for f, _ in seen)
    assert job.fraction == 1.0
