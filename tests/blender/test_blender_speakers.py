"""Two characters on one dialogue track: each character's Speaker picks its lines from the scene's script."""

from __future__ import annotations

import json

import bpy
import numpy as np
import pytest
import soundfile as sf
from blender_helpers import DATA, PRESET_SHAPE_KEYS, SPEECH, SPEECH_TEXT, fcurve_snapshot, make_mesh

from lipsync_addon.blender import api, compat, markers, properties
from lipsync_addon.core.types import LineTiming

MARY = DATA / "aligned" / "mary.wav"
SCRIPT = f"JOHN: {SPEECH_TEXT}\nMARY: Mary rolled the barrel.\n"


def _track(tmp_path) -> tuple[str, float, float]:
    """John's line, a pause, Mary's line, as one 16 kHz WAV: (path, Mary's start s, Mary's end s)."""
    john, rate = sf.read(SPEECH, dtype="float32")
    mary, mary_rate = sf.read(MARY, dtype="float32")
    mary = np.interp(np.arange(0, len(mary), mary_rate / rate), np.arange(len(mary)), mary).astype(np.float32)
    pause = np.zeros(rate // 2, np.float32)
    path = tmp_path / "scene_dialogue.wav"
    sf.write(path, np.concatenate([john, pause, mary]), rate)
    start = (len(john) + len(pause)) / rate
    return str(path), start, start + len(mary) / rate


def _scene_with_script(scene, tmp_path) -> tuple[float, float, float]:
    """The two-speaker track as the scene's clip from frame 1, the script in a Text Block: (fps, Mary's start s,
    Mary's end s)."""
    audio, mary_start, mary_end = _track(tmp_path)
    settings = scene.lipsync
    settings.audio_path, settings.start_frame = audio, 1
    settings.transcript_source = "DATABLOCK"
    settings.transcript_text = bpy.data.texts.new("scene_script")
    settings.transcript_text.write(SCRIPT)
    return scene.render.fps / scene.render.fps_base, mary_start, mary_end


def _open(obj, frame: float) -> float:
    """How open the mouth of ``obj`` is at ``frame``: the largest viseme key value but sil."""
    key = obj.data.shape_keys
    return max(fc.evaluate(frame) for fc in compat.action_fcurves(key.animation_data.action, key)
               if "viseme_sil" not in fc.data_path)


def test_each_character_speaks_its_own_lines(scene, tmp_path):
    fps, mary_start, mary_end = _scene_with_script(scene, tmp_path)
    settings = scene.lipsync
    john, mary = make_mesh("John", PRESET_SHAPE_KEYS["oculus"]), make_mesh("Mary", PRESET_SHAPE_KEYS["oculus"])
    john.lipsync.speaker, mary.lipsync.speaker = "John", "MARY"
    # the Speaker field lists the script's speakers
    assert properties._script_speakers(john.lipsync, bpy.context, "") == ["JOHN", "MARY"]
    assert properties._script_speakers(john.lipsync, bpy.context, "ar") == ["MARY"]
    for obj in (john, mary):
        assert bpy.ops.lipsync.generate(object_name=obj.name) == {"FINISHED"}
    # a Speaker left on a character while the transcript is None (the field is hidden then) does not apply
    settings.transcript_source = "NONE"
    extra = make_mesh("Extra", PRESET_SHAPE_KEYS["oculus"])
    extra.lipsync.speaker = "MARY"
    assert bpy.ops.lipsync.generate(object_name="Extra") == {"FINISHED"}
    john_frames = np.arange(1 + 0.5 * fps, 1 + 3.3 * fps)  # inside John's line
    mary_frames = np.arange(1 + (mary_start + 0.3) * fps, 1 + (mary_end - 0.3) * fps)
    assert max(_open(john, f) for f in john_frames) > 0.5 and max(_open(john, f) for f in mary_frames) < 0.02
    assert max(_open(mary, f) for f in mary_frames) > 0.5 and max(_open(mary, f) for f in john_frames) < 0.02
    if compat.has_audio():  # (bpy 4.2 wheels have no audio: no sound strips)
        strips = [s.name for s in compat.all_strips(scene.sequence_editor)]
        assert strips == ["scene_dialogue.wav"]  # one strip for both characters


def test_an_unknown_speaker_is_a_message_and_changes_nothing(scene, tmp_path):
    audio, _, _ = _track(tmp_path)
    obj = make_mesh("Carl", PRESET_SHAPE_KEYS["oculus"])
    report = api.generate("Carl", audio, transcript=SCRIPT)  # every line: Carl's own keys
    assert "analysis_reused" not in report.result.provenance
    before = fcurve_snapshot(obj.data.shape_keys.animation_data.action, obj.data.shape_keys)
    with pytest.raises(api.TranscriptError, match="Its speakers are: JOHN, MARY"):
        api.generate("Carl", audio, transcript=SCRIPT, speaker="Carl")
    with pytest.raises(api.TranscriptError, match="there is no transcript"):
        api.generate("Carl", audio, speaker="John")
    assert fcurve_snapshot(obj.data.shape_keys.animation_data.action, obj.data.shape_keys) == before
    assert report.channels


def test_batch_script_takes_a_speaker_and_subtitles(scene, tmp_path):
    """scripts/batch_lipsync.py --speaker with an .srt whose cues name the speakers."""
    from test_blender_batch import run_batch

    audio, mary_start, mary_end = _track(tmp_path)
    make_mesh("Head", PRESET_SHAPE_KEYS["oculus"])
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "scene.blend"))
    (tmp_path / "scene.srt").write_text(
        f"1\n00:00:00,000 --> 00:00:04,000\nJOHN: {SPEECH_TEXT}\n\n"
        "2\n00:00:04,400 --> 00:00:06,500\nMARY: Mary rolled the barrel.\n", encoding="utf-8")
    out = tmp_path / "mary.blend"
    common = ("--blend", str(tmp_path / "scene.blend"), "--object", "Head", "--audio", audio,
              "--text", str(tmp_path / "scene.srt"), "--quiet")
    done = run_batch(*common, "--speaker", "Mary", "--out", str(out))
    assert done.returncode == 0, done.stderr
    bpy.ops.wm.open_mainfile(filepath=str(out))
    head = bpy.data.objects["Head"]
    fps = bpy.context.scene.render.fps / bpy.context.scene.render.fps_base
    assert max(_open(head, f) for f in np.arange(1 + 0.5 * fps, 1 + 3.3 * fps)) < 0.02
    assert max(_open(head, f) for f in np.arange(1 + (mary_start + 0.3) * fps, 1 + (mary_end - 0.3) * fps)) > 0.5
    # --dict and --line-markers reach the generate call too
    names = tmp_path / "names.txt"
    names.write_text("Xilip = philip\n", encoding="utf-8")
    (tmp_path / "odd.srt").write_text((tmp_path / "scene.srt").read_text(encoding="utf-8").replace("Philip", "Xilip"),
                                      encoding="utf-8")
    marked = run_batch("--blend", str(tmp_path / "scene.blend"), "--object", "Head", "--audio", audio, "--text",
                       str(tmp_path / "odd.srt"), "--speaker", "MARY", "--dict", str(names), "--line-markers",
                       "--out", str(tmp_path / "marked.blend"), "--quiet")
    assert marked.returncode == 0 and "xilip" not in marked.stdout, marked.stdout + marked.stderr  # (summary warnings)
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "marked.blend"))
    assert [m.name for m in bpy.context.scene.timeline_markers] == ["MARY: Mary rolled the barrel."]
    wrong = run_batch(*common, "--speaker", "Ann", "--out", str(tmp_path / "ann.blend"))
    assert wrong.returncode == 1 and "Its speakers are: JOHN, MARY" in wrong.stderr
    assert "Traceback" not in wrong.stderr and not (tmp_path / "ann.blend").exists()


def test_generating_again_reuses_the_analysis(scene, tmp_path):
    """Another speaker of the same script, or other animation settings: the speech is not analysed again."""
    audio, _, _ = _track(tmp_path)
    make_mesh("John", PRESET_SHAPE_KEYS["oculus"])
    make_mesh("Mary", PRESET_SHAPE_KEYS["arkit"])
    first = api.generate("John", audio, transcript=SCRIPT, speaker="John")
    mary = api.generate("Mary", audio, transcript=SCRIPT, speaker="Mary", add_sound_strip=False)
    softer = api.generate("John", audio, transcript=SCRIPT, speaker="John", strength=0.5)
    assert "analysis_reused" not in first.result.provenance
    assert mary.result.provenance["analysis_reused"] and softer.result.provenance["analysis_reused"]
    assert [w.text for w in mary.result.transcript.words] == ["mary", "rolled", "the", "barrel"]
    assert [(w.start, w.end) for w in softer.result.transcript.words] == [
        (w.start, w.end) for w in first.result.transcript.words]
    full, half = first.result.curves.channels["mouth_open"], softer.result.curves.channels["mouth_open"]
    assert float(half.max()) < 0.75 * float(full.max())
    other = api.generate("John", audio, transcript=SCRIPT.replace("barrel", "barrels"), speaker="John")
    assert "analysis_reused" not in other.result.provenance  # another text: analysed again


def test_line_markers_are_ours_alone(scene, tmp_path):
    """A marker at each of the character's lines; generating again replaces only the markers its run placed."""
    audio, mary_start, _ = _track(tmp_path)
    fps = scene.render.fps / scene.render.fps_base
    make_mesh("John", PRESET_SHAPE_KEYS["oculus"])
    make_mesh("Mary", PRESET_SHAPE_KEYS["oculus"])
    scene.timeline_markers.new("cam cut", frame=30)  # the user's own
    report = api.generate("John", audio, transcript=SCRIPT, line_markers=True, start_frame=11)  # every line
    first, second = report.result.lines
    john_frame, mary_frame = 11 + round(first.start * fps), 11 + round(second.start * fps)
    assert sorted((m.name, m.frame) for m in scene.timeline_markers) == sorted(
        [("cam cut", 30), (f"JOHN: {SPEECH_TEXT}", john_frame), ("MARY: Mary rolled the barrel.", mary_frame)])
    assert 11 + mary_start * fps <= mary_frame
    api.generate("John", audio, transcript=SCRIPT, speaker="JOHN", start_frame=11, line_markers=True)
    assert sorted(m.name for m in scene.timeline_markers) == ["JOHN: " + SPEECH_TEXT, "cam cut"]  # his lines
    api.generate("Mary", audio, transcript=SCRIPT, speaker="MARY", start_frame=11, line_markers=True,
                 add_sound_strip=False)
    assert len(scene.timeline_markers) == 3
    scene.timeline_markers[f"JOHN: {SPEECH_TEXT}"].name = "John starts"  # renamed by the user: now theirs
    api.generate("John", audio, transcript=SCRIPT, speaker="JOHN", start_frame=11, line_markers=True)
    assert len(scene.timeline_markers) == 4 and "John starts" in [m.name for m in scene.timeline_markers]
    api.generate("John", audio, transcript=SCRIPT, speaker="JOHN", start_frame=11)  # markers off: John's go
    assert sorted(m.name for m in scene.timeline_markers) == sorted(
        ["cam cut", "John starts", "MARY: Mary rolled the barrel."])
    # the record is the add-on's registered setting, not a custom property the user sees in the panel
    assert "lipsync_markers" not in scene and "Mary" in scene.lipsync.line_markers_record
    # a record left by an earlier version (a scene custom property) is honoured, then moved
    api.generate("Mary", audio, transcript=SCRIPT, speaker="MARY", start_frame=11, add_sound_strip=False)
    legacy = scene.timeline_markers.new("MARY: Mary rolled the barrel.", frame=mary_frame)
    scene[markers.LEGACY_RECORD] = json.dumps({"Mary": [[legacy.name, mary_frame]]})
    api.generate("Mary", audio, transcript=SCRIPT, speaker="MARY", start_frame=11, add_sound_strip=False)
    assert "MARY: Mary rolled the barrel." not in [m.name for m in scene.timeline_markers]
    assert markers.LEGACY_RECORD not in scene
    long_line = markers.marker_name(LineTiming("NARRATOR", "word " * 30, 0.0, 1.0))
    assert len(long_line) == markers.MAX_NAME and long_line.endswith("\u2026")


def test_all_selected_generates_each_character_with_its_speaker(scene, tmp_path):
    """One Generate for two selected heads (and a selected body whose shape keys are no mouth): each head
    speaks its own lines, the body is reported and left alone, one strip."""
    from lipsync_addon.blender import operators

    fps, mary_start, mary_end = _scene_with_script(scene, tmp_path)
    settings = scene.lipsync
    john, mary = make_mesh("John", PRESET_SHAPE_KEYS["oculus"]), make_mesh("Mary", PRESET_SHAPE_KEYS["arkit"])
    body = make_mesh("Body", ["Fat", "Thin"])
    john.lipsync.speaker, mary.lipsync.speaker = "JOHN", "MARY"
    for obj in (john, mary, body):
        obj.select_set(True)
    bpy.context.view_layer.objects.active = mary
    assert operators.target_names(bpy.context, "") == ["Mary"]  # All Selected is off: the active object only
    settings.all_selected = True
    twin = bpy.data.objects.new("John.001", john.data)  # a linked duplicate: the same shape keys as John's
    scene.collection.objects.link(twin)
    twin.select_set(True)
    assert operators.target_names(bpy.context, "") == ["Mary", "Body", "John"]
    assert operators.target_names(bpy.context, "John") == ["John"]  # an object named by the caller: only it
    assert bpy.ops.lipsync.generate() == {"FINISHED"}
    john_frames = np.arange(1 + 0.5 * fps, 1 + 3.3 * fps)
    mary_frames = np.arange(1 + (mary_start + 0.3) * fps, 1 + (mary_end - 0.3) * fps)
    assert max(_open(john, f) for f in john_frames) > 0.5 and max(_open(john, f) for f in mary_frames) < 0.02
    # Mary's ARKit mix spreads a viseme over several keys (jawOpen up to ~0.45)
    assert max(_open(mary, f) for f in mary_frames) > 0.3 and max(_open(mary, f) for f in john_frames) < 0.02
    assert body.data.shape_keys.animation_data is None  # no mouth shapes: reported, not touched
    state = bpy.context.window_manager.lipsync_job
    assert state.status == "DONE" and state.message == "Lip sync: 2 of 3 objects generated."
    if compat.has_audio():
        assert [s.name for s in compat.all_strips(scene.sequence_editor)] == ["scene_dialogue.wav"]


def test_all_selected_queue_reports_each_object_and_stops_on_escape(scene):
    """The interactive path's queue: each object's outcome, a failing one skipped, Esc keeps what was baked."""
    from test_blender_modal import run_until_done

    from lipsync_addon.blender import bake, operators

    heads = [make_mesh(name, PRESET_SHAPE_KEYS["oculus"]) for name in ("A", "B", "C")]
    make_mesh("Body", ["Fat"])

    def build(_context, name):
        return api.prepare(name, str(SPEECH), transcript=SPEECH_TEXT)

    queue = operators.GenerateQueue(["A", "Body", "B"], build)
    assert queue.start(bpy.context) is None
    outcome = run_until_done(queue)
    assert outcome.status == "FINISHED"
    assert outcome.reports[0] == ("INFO", "Lip sync: 2 of 3 objects generated.")
    assert any(level == "WARNING" and "'Body'" in message for level, message in outcome.reports)
    assert all(bake.is_owned(h.data.shape_keys.animation_data.action) for h in heads[:2])
    queue = operators.GenerateQueue(["C", "A"], build)  # Esc while C runs: nothing more is generated
    queue.start(bpy.context)
    stopped = queue.escape(bpy.context)
    assert stopped.status == "CANCELLED" and stopped.reports[-1] == ("WARNING", "Not generated (cancelled): A.")
    assert heads[2].data.shape_keys.animation_data is None and queue.timer is None
