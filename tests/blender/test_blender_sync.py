"""Placing a clip in sync with a reference recording (offset by GCC-PHAT) through the Python API."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from blender_helpers import PRESET_SHAPE_KEYS, SPEECH, SPEECH_TEXT, make_mesh

from lipsync_addon.blender import api, compat
from lipsync_addon.core.types import LipSyncError


def test_clip_cut_from_the_reference_lands_on_the_right_frame(scene, tmp_path):
    data, rate = sf.read(SPEECH, dtype="float32")
    clip = tmp_path / "close_mic.wav"
    sf.write(clip, data[int(0.5 * rate):] * 0.5, rate)  # starts 0.5 s into the reference, quieter
    scene.render.fps, scene.render.fps_base = 24, 1.0
    scene.frame_start = 3
    frame, result = api.sync_start_frame(str(SPEECH), str(clip))
    assert abs(result.offset - 0.5) < 0.001
    assert frame == 3 + 12  # reference at the scene start (frame 3), + 0.5 s at 24 fps
    if compat.has_audio():  # the reference already in the sequencer: its strip's frame counts
        editor = scene.sequence_editor_create()
        compat.top_level_strips(editor).new_sound("reference", str(SPEECH), channel=1, frame_start=40)
        frame, _ = api.sync_start_frame(str(SPEECH), str(clip))
        assert frame == 52
    make_mesh("Head", PRESET_SHAPE_KEYS["oculus"])
    report = api.generate("Head", str(clip), transcript=SPEECH_TEXT, start_frame=frame, add_sound_strip=False)
    assert report.frame_start == frame


def test_sync_to_reference_button_sets_the_start_frame(scene, tmp_path):
    import bpy

    data, rate = sf.read(SPEECH, dtype="float32")
    clip = tmp_path / "pickup é.wav"  # non-ASCII path on purpose
    sf.write(clip, data[int(1.25 * rate):int(3.5 * rate)], rate)
    scene.render.fps, scene.render.fps_base = 25, 1.0
    scene.frame_start = 1
    settings = scene.lipsync
    settings.clip_source, settings.audio_path = "FILE", str(clip)
    assert bpy.ops.lipsync.sync_to_reference.poll()
    with pytest.raises(RuntimeError, match="Sync Reference"):  # no reference chosen: an error report
        bpy.ops.lipsync.sync_to_reference()
    settings.reference_path = str(SPEECH)
    assert bpy.ops.lipsync.sync_to_reference() == {"FINISHED"}
    assert settings.start_frame == 1 + round(1.25 * 25)
    # a recording of something else: refused with the reason, the Start Frame is kept
    rng = np.random.default_rng(2)
    other = tmp_path / "other.wav"
    sf.write(other, (0.1 * rng.standard_normal(16000 * 3)).astype(np.float32), 16000)
    settings.audio_path = str(other)
    with pytest.raises(RuntimeError):
        bpy.ops.lipsync.sync_to_reference()
    assert settings.start_frame == 1 + round(1.25 * 25)


def test_unrelated_clip_is_refused(scene, tmp_path):
    rng = np.random.default_rng(1)
    other = tmp_path / "other.wav"
    sf.write(other, (0.1 * rng.standard_normal(16000 * 3)).astype(np.float32), 16000)
    with pytest.raises(LipSyncError):
        api.sync_start_frame(str(SPEECH), str(other))


def test_camera_video_as_reference_without_the_ffmpeg_program(scene, tmp_path, monkeypatch):
    """Sync to a camera video inside Blender: its sound track is decoded by Blender's own FFmpeg."""
    if not compat.has_audio():
        pytest.skip("this bpy build has no audio")
    from lipsync_addon.core import audio as core_audio

    monkeypatch.setattr(core_audio.shutil, "which", lambda name: None)
    video = SPEECH.parent / "video" / "bbaf2n.mpg"
    track, rate = compat.decode_with_blender(str(video))
    clip = tmp_path / "lavalier.wav"
    sf.write(clip, np.asarray(track)[int(0.8 * rate):, 0] * 0.7, rate)  # starts 0.8 s into the video
    scene.render.fps, scene.render.fps_base = 25, 1.0
    scene.frame_start = 1
    frame, result = api.sync_start_frame(str(video), str(clip))
    assert abs(result.offset - 0.8) < 0.001
    assert frame == 1 + 20
