"""Panel settings feeding the operator: viseme-set enum, custom mapping list, transcript sources."""

from __future__ import annotations

import json
import os

import bpy
import pytest
from blender_helpers import PRESET_SHAPE_KEYS, SPEECH, SPEECH_TEXT, make_mesh

from lipsync_addon.blender import api, compat, panels


def test_viseme_set_enum_lists_presets(scene):
    obj = make_mesh("Head", PRESET_SHAPE_KEYS["arkit"])
    # a dynamic enum lists its items only through its callback: check them by assignment
    for name in ("auto", "oculus", "arkit", "vrm", "vrchat", "rhubarb", "preston_blair", "simple"):
        obj.lipsync.viseme_set = name
        assert obj.lipsync.viseme_set == name
    with pytest.raises(TypeError):
        obj.lipsync.viseme_set = "no_such_set"
    obj.lipsync.viseme_set = "auto"
    assert panels.detected_viseme_set(obj) == ("arkit", "")


def test_detected_set_shows_the_problem(scene):
    obj = make_mesh("Blob", ["smile"])
    detected, problem = panels.detected_viseme_set(obj)
    assert detected == "" and "viseme_aa" in problem


def test_panel_mapping_list_drives_custom_names(scene):
    obj = make_mesh("Puppet", ["Closed", "Open", "Round", "Wide"])
    for viseme, shape in (("PP", "Closed"), ("aa", "Open"), ("O", "Round"), ("U", "Round"), ("E", "Wide")):
        bpy.context.view_layer.objects.active = obj
        assert bpy.ops.lipsync.mapping_add() == {"FINISHED"}
        entry = obj.lipsync.mapping[-1]
        entry.viseme, entry.shape_key, entry.weight = viseme, shape, 1.0
    result = bpy.ops.lipsync.generate(object_name="Puppet", audio_path=str(SPEECH), transcript=SPEECH_TEXT)
    assert result == {"FINISHED"}
    key = obj.data.shape_keys
    keyed = {fc.data_path for fc in compat.action_fcurves(key.animation_data.action, key)}
    assert 'key_blocks["Closed"].value' in keyed and 'key_blocks["Open"].value' in keyed
    assert bpy.context.window_manager.lipsync_job.detected_set == "custom"


def test_custom_mapping_file_through_api(scene, tmp_path):
    make_mesh("Puppet", ["Closed", "Open"])
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"mapping": {"PP": {"Closed": 1.0}, "aa": {"Open": 1.0}}}), encoding="utf-8")
    report = api.generate(
        "Puppet", str(SPEECH), transcript=SPEECH_TEXT, custom_mapping=api.load_custom_mapping(str(path))
    )
    assert set(report.channels) == {"Closed", "Open"}
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(api.RigError, match="custom mapping"):
        api.load_custom_mapping(str(broken))


def test_transcript_file_source_and_bad_file(scene, tmp_path):
    obj = make_mesh("Head", PRESET_SHAPE_KEYS["oculus"])
    bpy.context.view_layer.objects.active = obj
    line = tmp_path / "línea.txt"
    line.write_text("\ufeff" + SPEECH_TEXT, encoding="utf-8")
    settings = scene.lipsync
    settings.audio_path = str(SPEECH)
    settings.transcript_source = "FILE"
    settings.transcript_path = str(line)
    assert bpy.ops.lipsync.generate() == {"FINISHED"}
    # subtitles: their cue text is the transcript (not the cue numbers and time codes)
    subtitles = tmp_path / "line.srt"
    subtitles.write_text(f"1\n00:00:00,500 --> 00:00:03,000\n{SPEECH_TEXT}\n", encoding="utf-8")
    settings.transcript_path = str(subtitles)
    assert bpy.ops.lipsync.generate() == {"FINISHED"}
    assert scene.lipsync.transcript_source == "FILE"
    assert api.read_transcript_file(str(subtitles)) == SPEECH_TEXT
    settings.transcript_path = str(tmp_path / "missing.txt")
    with pytest.raises(RuntimeError, match="Cannot read the transcript file"):
        bpy.ops.lipsync.generate()


def _strip_as_source(scene, path, name: str, channel: int, frame: int, transcript: str):
    """A head (active), a sound strip of ``path`` picked as the panel's clip source; (object, editor, strip)."""
    if not compat.has_audio():
        pytest.skip("this bpy build has no audio")
    obj = make_mesh("Head", PRESET_SHAPE_KEYS["oculus"])
    bpy.context.view_layer.objects.active = obj
    editor = scene.sequence_editor_create()
    strip = compat.top_level_strips(editor).new_sound(name, str(path), channel=channel, frame_start=frame)
    settings = scene.lipsync
    settings.clip_source, settings.sound_strip, settings.transcript = "STRIP", strip.name, transcript
    return obj, editor, strip


def _first_key_frame(obj) -> float:
    key = obj.data.shape_keys
    return min(kp.co[0] for fc in compat.action_fcurves(key.animation_data.action, key) for kp in fc.keyframe_points)


def test_sound_strip_as_clip_source(scene):
    obj, editor, _ = _strip_as_source(scene, SPEECH, "dialogue", 3, 48, SPEECH_TEXT)
    assert bpy.ops.lipsync.generate() == {"FINISHED"}
    assert _first_key_frame(obj) == pytest.approx(48.0)
    assert [(s.name, s.channel, compat.strip_start(s)) for s in compat.all_strips(editor)] == [("dialogue", 3, 48)]


def test_sound_strip_of_a_video_as_clip_source(scene, monkeypatch):
    """The sound of a video in the sequencer (what Blender adds with a movie) is decoded by Blender's own
    FFmpeg, not by a program the user may not have."""
    from lipsync_addon.core import audio as core_audio

    monkeypatch.setattr(core_audio.shutil, "which", lambda name: None)
    video = SPEECH.parent / "video" / "bbaf2n.mpg"
    obj, editor, _ = _strip_as_source(scene, video, "take 3", 2, 30, "bin blue at f two now")
    assert bpy.ops.lipsync.generate() == {"FINISHED"}
    assert _first_key_frame(obj) == pytest.approx(30.0)
    assert [s.name for s in compat.all_strips(editor)] == ["take 3"]


def test_packed_sound_strip_as_clip_source(scene):
    """A .blend shared with its sound packed (no file on disk): the packed data is analysed."""
    obj, editor, strip = _strip_as_source(scene, SPEECH, "dialogue", 2, 12, SPEECH_TEXT)
    strip.sound.pack()
    strip.sound.filepath = "//elsewhere/line_042.wav"  # the file is not there: only the packed data is
    assert bpy.ops.lipsync.generate() == {"FINISHED"}
    assert obj.data.shape_keys.animation_data.action.name == "LipSync_Head_line_042"
    assert _first_key_frame(obj) == pytest.approx(12.0)
    assert [s.name for s in compat.all_strips(editor)] == ["dialogue"] and strip.sound.packed_file is not None
    scene.lipsync.enhance = "light"  # no file beside which to write the cleaned clip: a clear message
    with pytest.raises(RuntimeError, match=r"packed into the \.blend"):
        bpy.ops.lipsync.generate()


def test_packed_sounds_with_the_same_file_name_get_their_own_copies(scene):
    """Two packed sounds named alike (takes from different folders) are never analysed from one shared
    copy, and the copy of a sound is written once, not rewritten under a job that may be reading it."""
    from lipsync_addon.blender import operators

    _, editor, first = _strip_as_source(scene, SPEECH, "take A", 2, 1, SPEECH_TEXT)
    second = compat.top_level_strips(editor).new_sound("take B", str(SPEECH.parent / "aligned" / "bobby.wav"),
                                                       channel=3, frame_start=1)
    for strip in (first, second):
        strip.sound.pack()
        strip.sound.filepath = "//takes/line.wav"
    path_a, path_b = (operators._strip_audio_path(s, "off") for s in (first, second))
    assert path_a != path_b and os.path.basename(path_a) == os.path.basename(path_b) == "line.wav"
    for path, strip in ((path_a, first), (path_b, second)):
        with open(path, "rb") as handle:
            assert handle.read() == bytes(strip.sound.packed_file.data)
    stamp = os.stat(path_a).st_mtime_ns
    assert operators._strip_audio_path(first, "off") == path_a and os.stat(path_a).st_mtime_ns == stamp
    assert not [n for n in os.listdir(os.path.dirname(path_a)) if n.endswith(".part")]


def test_pronunciation_dictionary_from_the_preferences(scene, tmp_path, monkeypatch):
    """The preferences' dictionary reaches the analysis; a bad line is a message and changes nothing."""
    from lipsync_addon.blender import preferences

    obj = make_mesh("Head", PRESET_SHAPE_KEYS["oculus"])
    bpy.context.view_layer.objects.active = obj
    names = tmp_path / "names.txt"
    names.write_text("Xilip = philip\n", encoding="utf-8")
    monkeypatch.setattr(preferences, "pronunciations_path", lambda context=None: str(names))
    odd = SPEECH_TEXT.replace("Philip", "Xilip")
    assert bpy.ops.lipsync.generate(audio_path=str(SPEECH), transcript=odd) == {"FINISHED"}
    assert "xilip" not in bpy.context.window_manager.lipsync_job.warnings
    report = api.generate("Head", str(SPEECH), transcript=odd, pronunciations=api.read_pronunciations(str(names)))
    assert [(w.text, w.pronunciation_source) for w in report.result.transcript.words][5] == ("xilip", "user")
    before = json.dumps(sorted(k.name for k in obj.data.shape_keys.key_blocks))
    action = obj.data.shape_keys.animation_data.action.name
    names.write_text("Xilip Q\n", encoding="utf-8")
    with pytest.raises(RuntimeError, match=r"names\.txt, line 1: Q is not ARPAbet"):
        bpy.ops.lipsync.generate(audio_path=str(SPEECH), transcript=odd)
    assert obj.data.shape_keys.animation_data.action.name == action
    assert json.dumps(sorted(k.name for k in obj.data.shape_keys.key_blocks)) == before
