"""Enhanced dialogue as the synced sound strip (Generate with "Enhance Audio" on), real bpy, real noisy speech.

The clip is real speech (CMU ARCTIC aew a0001) mixed with real noise (exercise bike, Speech
Commands) at 5 dB SNR, stereo 44.1 kHz, so the enhanced file must keep a rate and channel count
that are not the analysis ones.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import bpy
import numpy as np
import pytest
import soundfile as sf
from blender_helpers import DATA, PRESET_SHAPE_KEYS, SPEECH, SPEECH_TEXT, make_mesh
from scipy.signal import resample_poly

from lipsync_addon.blender import api, compat, enhanced, strips
from lipsync_addon.core.types import AudioError, Cancelled, CancelToken

pytestmark = pytest.mark.skipif(not compat.has_audio(), reason="this bpy build has no audio")

NOISE = DATA / "noise_exercise_bike_12s.flac"
RATE = 44100
SNR_DB = 5.0


def _noisy_speech() -> np.ndarray:
    """(n, 2) float32 at 44.1 kHz: speech + bike noise at SNR_DB (slightly different per channel)."""
    speech, sr = sf.read(SPEECH, dtype="float64")
    noise, nr = sf.read(NOISE, dtype="float64", always_2d=True)
    speech = resample_poly(speech, RATE // 100, sr // 100)
    noise = resample_poly(noise[:, 0], RATE // 100, nr // 100)[: len(speech)]
    gain = np.sqrt(np.mean(speech**2) / np.mean(noise**2) / 10 ** (SNR_DB / 10))
    left = speech + gain * noise
    right = 0.9 * speech + gain * np.roll(noise, 4410)
    mix = np.stack([left, right], axis=1)
    return (0.5 * mix / np.max(np.abs(mix))).astype(np.float32)


@pytest.fixture(scope="module")
def noisy_data() -> np.ndarray:
    return _noisy_speech()


@pytest.fixture
def shot(scene, tmp_path, noisy_data):
    """A saved .blend in tmp_path/shot, the noisy clip in tmp_path/shot/audio, an Oculus-rigged head."""
    folder = tmp_path / "shot"
    (folder / "audio").mkdir(parents=True)
    clip = folder / "audio" / "line.wav"
    sf.write(clip, noisy_data, RATE, subtype="PCM_16")
    make_mesh("Head", PRESET_SHAPE_KEYS["oculus"])
    blend = folder / "shot.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    return folder, clip


def sound_strips_by_name(scene) -> dict:
    return {s.name: s for s in strips.sound_strips(scene)}


def lag_samples(a: np.ndarray, b: np.ndarray, max_lag: int = 200) -> int:
    """Lag (samples) maximising the cross-correlation of b against a (0 = aligned)."""
    a = a - a.mean()
    b = b - b.mean()
    lags = range(-max_lag, max_lag + 1)
    scores = [float(np.dot(a[max(0, -k): len(a) - max(0, k)], b[max(0, k): len(b) - max(0, -k)])) for k in lags]
    return list(lags)[int(np.argmax(scores))]


def test_enhanced_strip_is_relative_aligned_and_original_muted(shot):
    folder, clip = shot
    scene = bpy.context.scene
    report = api.generate("Head", str(clip), transcript=SPEECH_TEXT, start_frame=7, enhance="standard")
    # the enhanced file, next to the .blend, relative
    assert report.enhanced_path == "//line_enhanced.wav"
    out = folder / "line_enhanced.wav"
    src_info, out_info = sf.info(str(clip)), sf.info(str(out))
    assert (out_info.samplerate, out_info.channels, out_info.frames) == (RATE, 2, src_info.frames)
    assert enhanced.read_tag(str(out))["preset"] == "standard"
    assert not [p for p in folder.iterdir() if p.name.startswith(".lipsync")]  # no temporary left
    # strips: the enhanced one plays, the original is muted, both at the start frame
    by_name = sound_strips_by_name(scene)
    assert set(by_name) == {"line.wav", "line_enhanced.wav"}
    enh, orig = by_name["line_enhanced.wav"], by_name["line.wav"]
    assert report.strip_name == enh.name and report.original_strip_name == orig.name
    assert enh.sound.filepath == "//line_enhanced.wav"
    assert compat.strip_start(enh) == compat.strip_start(orig) == 7
    assert compat.strip_duration(enh) == compat.strip_duration(orig)
    assert orig.mute and not enh.mute
    assert enh.get(strips.OWNER_TAG) and orig.get(strips.OWNER_TAG)
    assert enh.channel != orig.channel
    # sample-aligned with the original, and really cleaner
    x, _ = sf.read(str(clip), dtype="float64")
    y, _ = sf.read(str(out), dtype="float64")
    assert lag_samples(x[:, 0], y[:, 0]) == 0
    enh_report = report.result.provenance["enhance"]
    assert enh_report["snr_after_db"] > enh_report["snr_before_db"] + 5.0
    # keys baked from the start frame
    assert report.frame_start == 7 and len(report.channels) == 15
    # the path survives a save/reload as a relative path
    bpy.ops.wm.save_mainfile()
    bpy.ops.wm.open_mainfile(filepath=str(folder / "shot.blend"))
    reloaded = sound_strips_by_name(bpy.context.scene)["line_enhanced.wav"]
    assert reloaded.sound.filepath == "//line_enhanced.wav"
    assert Path(bpy.path.abspath(reloaded.sound.filepath)).resolve() == out.resolve()


def test_enhance_an_m4a_clip_decoded_by_blender(shot, monkeypatch):
    """An AAC clip is decoded by Blender's own FFmpeg, cleaned into a WAV next to the .blend, sample-aligned
    with what the sequencer plays from the M4A."""
    from lipsync_addon.core import audio as core_audio

    folder, _ = shot
    m4a = folder / "audio" / "bobby.m4a"
    shutil.copy(DATA / "formats" / "bobby.m4a", m4a)
    monkeypatch.setattr(core_audio.shutil, "which", lambda name: None)  # no ffmpeg program
    report = api.generate("Head", str(m4a), transcript="Bobby ripped the ledger", start_frame=3,
                          enhance="light")
    assert report.enhanced_path == "//bobby_enhanced.wav"
    decoded, rate = compat.decode_with_blender(str(m4a))
    y, out_rate = sf.read(str(folder / "bobby_enhanced.wav"), dtype="float64")
    assert out_rate == rate and len(y) == len(decoded)
    assert lag_samples(np.asarray(decoded)[:, 0].astype(np.float64), y) == 0
    by_name = sound_strips_by_name(bpy.context.scene)
    enh, orig = by_name["bobby_enhanced.wav"], by_name["bobby.m4a"]
    assert orig.mute and not enh.mute and compat.strip_start(enh) == compat.strip_start(orig) == 3
    assert compat.strip_duration(enh) == compat.strip_duration(orig)
    assert [w.text for w in report.result.transcript.words] == ["bobby", "ripped", "the", "ledger"]


def test_rerun_reuses_file_and_strips_then_off_restores_original(shot):
    folder, clip = shot
    scene = bpy.context.scene
    first = api.generate("Head", str(clip), transcript=SPEECH_TEXT, start_frame=1, enhance="standard")
    out = folder / "line_enhanced.wav"
    stamp = out.stat().st_mtime_ns
    layout = sorted((s.name, s.channel, compat.strip_start(s), s.mute) for s in strips.sound_strips(scene))
    again = api.generate("Head", str(clip), transcript=SPEECH_TEXT, start_frame=1, enhance="standard")
    assert out.stat().st_mtime_ns == stamp  # reused, not enhanced again
    assert again.result.provenance["enhance"].get("reused")
    assert sorted((s.name, s.channel, compat.strip_start(s), s.mute) for s in strips.sound_strips(scene)) == layout
    assert again.strip_name == first.strip_name
    # another preset rewrites our own file and replaces our strip, still one of each
    strong = api.generate("Head", str(clip), transcript=SPEECH_TEXT, start_frame=1, enhance="strong")
    assert out.stat().st_mtime_ns != stamp and enhanced.read_tag(str(out))["preset"] == "strong"
    assert len(strips.sound_strips(scene)) == 2 and strong.enhanced_path == "//line_enhanced.wav"
    # Reduce Room Echo: our file is written again with the de-reverberation step, timing unchanged
    echo = api.generate("Head", str(clip), transcript=SPEECH_TEXT, start_frame=1, enhance="strong", dereverb=True)
    assert enhanced.read_tag(str(out))["preset"] == "strong+dereverb"
    assert {"step": "dereverb", "applied": True, "method": "wpe"} in echo.result.provenance["enhance"]["steps"]
    x, _ = sf.read(str(clip), dtype="float64")
    y, _ = sf.read(str(out), dtype="float64")
    assert lag_samples(x[:, 0], y[:, 0]) == 0 and len(strips.sound_strips(scene)) == 2
    # enhancement off: the original plays again, our enhanced strip is muted (kept), no new file
    off = api.generate("Head", str(clip), transcript=SPEECH_TEXT, start_frame=1, enhance="off")
    by_name = sound_strips_by_name(scene)
    assert off.strip_name == "line.wav" and off.enhanced_path == ""
    assert not by_name["line.wav"].mute and by_name["line_enhanced.wav"].mute
    assert enhanced.MUTED_BY_US not in by_name["line.wav"]
    assert sorted(p.name for p in folder.glob("*.wav")) == ["line_enhanced.wav"]


def test_enhance_off_places_strips_as_before(shot):
    folder, clip = shot
    scene = bpy.context.scene
    report = api.generate("Head", str(clip), transcript=SPEECH_TEXT, start_frame=3)
    by_name = sound_strips_by_name(scene)
    assert list(by_name) == ["line.wav"] and not by_name["line.wav"].mute
    assert compat.strip_start(by_name["line.wav"]) == 3 and report.enhanced_path == ""
    assert "enhance" not in report.result.provenance
    assert not list(folder.glob("*_enhanced*"))


def test_user_strips_and_user_file_untouched(shot):
    folder, clip = shot
    scene = bpy.context.scene
    editor = scene.sequence_editor_create()
    music_file = folder / "audio" / "music.flac"
    shutil.copy(NOISE, music_file)
    music = compat.top_level_strips(editor).new_sound("music", str(music_file), channel=1, frame_start=1)
    dialogue = compat.top_level_strips(editor).new_sound("dialogue", str(clip), channel=2, frame_start=5)
    music.volume = 0.4
    before = (music.channel, compat.strip_start(music), compat.strip_span(music)[1], music.mute, music.volume)
    # a file of the user's own with our name, next to the .blend
    user_file = folder / "line_enhanced.wav"
    sf.write(user_file, np.zeros((4410, 1), dtype=np.float32), RATE)
    user_bytes = user_file.read_bytes()
    report = api.generate("Head", str(clip), transcript=SPEECH_TEXT, start_frame=None, enhance="light")
    assert user_file.read_bytes() == user_bytes
    assert report.enhanced_path == "//line_enhanced_2.wav"
    assert any("not ours" in w for w in report.warnings)
    assert (music.channel, compat.strip_start(music), compat.strip_span(music)[1], music.mute, music.volume) == before
    # the user's dialogue strip is exactly as it was (not even muted); a warning says how to mute it
    assert (dialogue.channel, compat.strip_start(dialogue)) == (2, 5) and report.frame_start == 5
    assert not dialogue.mute and enhanced.MUTED_BY_US not in dialogue
    assert report.original_strip_name == "dialogue"
    assert any("'dialogue'" in w and "mute it" in w for w in report.warnings)
    enh = sound_strips_by_name(scene)[report.strip_name]
    assert compat.strip_start(enh) == 5 and enh.channel not in (1, 2)
    assert len(strips.sound_strips(scene)) == 3  # no copy of the original was added
    # off again: our enhanced strip is muted, the user's strip still untouched
    api.generate("Head", str(clip), transcript=SPEECH_TEXT, start_frame=None, enhance="off")
    assert sound_strips_by_name(scene)[report.strip_name].mute
    assert not dialogue.mute and enhanced.MUTED_BY_US not in dialogue
    assert (dialogue.channel, compat.strip_start(dialogue)) == (2, 5)


def test_unsaved_blend_writes_absolute_path_with_warning(scene, tmp_path, noisy_data):
    clip = tmp_path / "unsaved_line.wav"
    sf.write(clip, noisy_data, RATE)
    make_mesh("Head", PRESET_SHAPE_KEYS["oculus"])
    assert not bpy.data.filepath
    report = api.generate("Head", str(clip), transcript=SPEECH_TEXT, enhance="standard")
    path = Path(report.enhanced_path)
    try:
        assert path.is_absolute() and path.is_file() and path.name == "unsaved_line_enhanced.wav"
        assert path.parent != tmp_path  # not beside the clip: the add-on's own folder
        assert any("absolute" in w and "not saved" in w for w in report.warnings)
        strip = sound_strips_by_name(scene)[report.strip_name]
        assert Path(strip.sound.filepath) == path
        # saved afterwards: the next run moves it next to the .blend and replaces our absolute strip
        bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "now_saved.blend"))
        again = api.generate("Head", str(clip), transcript=SPEECH_TEXT, enhance="standard")
        assert again.enhanced_path == "//unsaved_line_enhanced.wav"
        by_name = sound_strips_by_name(scene)
        assert set(by_name) == {"unsaved_line.wav", "unsaved_line_enhanced.wav"}
        assert by_name["unsaved_line_enhanced.wav"].sound.filepath == "//unsaved_line_enhanced.wav"
        assert not any(Path(bpy.path.abspath(s.filepath)) == path for s in bpy.data.sounds)
    finally:
        path.unlink(missing_ok=True)


def _scene_state(scene):
    obj = bpy.data.objects["Head"]
    key_anim = obj.data.shape_keys.animation_data
    return (
        [s.name for s in strips.sound_strips(scene)],
        key_anim.action.name if key_anim and key_anim.action else None,
        scene.frame_end,
    )


def test_unwritable_folder_is_a_clear_error_and_changes_nothing(shot, tmp_path):
    folder, _clip = shot
    scene = bpy.context.scene
    moved = tmp_path / "elsewhere"
    shutil.copytree(folder / "audio", moved)
    shutil.rmtree(folder)  # the .blend's folder is gone (moved drive, deleted share)
    before = _scene_state(scene)
    with pytest.raises(AudioError, match="Cannot write the enhanced audio"):
        api.generate("Head", str(moved / "line.wav"), transcript=SPEECH_TEXT, enhance="standard")
    assert _scene_state(scene) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_read_only_folder_is_a_clear_error(shot):
    folder, clip = shot
    scene = bpy.context.scene
    before = _scene_state(scene)
    folder.chmod(0o555)
    try:
        with pytest.raises(AudioError, match="Cannot write the enhanced audio"):
            api.generate("Head", str(clip), transcript=SPEECH_TEXT, enhance="standard")
    finally:
        folder.chmod(0o755)
    assert _scene_state(scene) == before and not list(folder.glob("*_enhanced*"))


def test_cancel_leaves_no_file(shot):
    folder, clip = shot
    scene = bpy.context.scene
    token = CancelToken()

    def progress(fraction: float, stage: str) -> None:
        if fraction > 0.5:  # after the enhanced file was written, during the analysis
            token.cancel()

    before = _scene_state(scene)
    with pytest.raises(Cancelled):
        api.generate("Head", str(clip), transcript=SPEECH_TEXT, enhance="standard", progress=progress, cancel=token)
    assert not [p for p in folder.iterdir() if "enhanced" in p.name]
    assert _scene_state(scene) == before


def test_without_rnnoise_deepfilternet_stands_in_and_wiener_last(shot, monkeypatch):
    from lipsync_addon.core.enhance import deepfilter, rnnoise

    folder, clip = shot
    monkeypatch.setattr(rnnoise, "available", lambda: False)
    report = api.generate("Head", str(clip), transcript=SPEECH_TEXT, enhance="standard")
    assert report.result.provenance["enhance"]["denoiser"] == "deepfilter"
    assert any("RNNoise" in w and "DeepFilterNet3" in w for w in report.warnings)
    assert (folder / "line_enhanced.wav").is_file()

    monkeypatch.setattr(deepfilter, "available", lambda: False)
    report = api.generate("Head", str(clip), transcript=SPEECH_TEXT, enhance="light")
    assert report.result.provenance["enhance"]["denoiser"] == "wiener"
    assert any("RNNoise" in w and "Wiener" in w for w in report.warnings)


def test_strong_plays_deepfilternet_and_times_on_rnnoise(shot, monkeypatch):
    """The strip gets DeepFilterNet3's output; the analysis runs on the RNNoise chain's (it aligns better)."""
    from lipsync_addon.core import pipeline
    from lipsync_addon.core.enhance import rnnoise

    if not rnnoise.available():
        pytest.skip("RNNoise is not installed here")
    folder, clip = shot
    seen: list[str] = []
    real_run = pipeline.run

    def spy(audio, config, **kw):
        seen.append(config.enhance)
        return real_run(audio, config, **kw)

    monkeypatch.setattr(pipeline, "run", spy)
    report = api.generate("Head", str(clip), transcript=SPEECH_TEXT, enhance="strong")
    assert report.result.provenance["enhance"]["denoiser"] == "deepfilter"
    assert seen == ["strong"]  # the core enhances its own analysis copy, with RNNoise
    assert (folder / "line_enhanced.wav").is_file()


def test_unknown_preset_is_refused(shot):
    _, clip = shot
    with pytest.raises(AudioError, match="Unknown audio enhancement 'loud'"):
        api.generate("Head", str(clip), transcript=SPEECH_TEXT, enhance="loud")


def test_operator_with_panel_setting_and_strip_source(shot):
    _folder, clip = shot
    scene = bpy.context.scene
    editor = scene.sequence_editor_create()
    compat.top_level_strips(editor).new_sound("take3", str(clip), channel=1, frame_start=11)
    settings = scene.lipsync
    assert settings.enhance == "off"  # default
    assert [i.identifier for i in settings.bl_rna.properties["enhance"].enum_items] == list(
        __import__("lipsync_addon.core.enhance", fromlist=["PRESETS"]).PRESETS
    )
    settings.enhance = "standard"
    settings.clip_source = "STRIP"
    settings.sound_strip = "take3"
    settings.transcript_source = "TEXT"
    settings.transcript = SPEECH_TEXT
    bpy.context.view_layer.objects.active = bpy.data.objects["Head"]
    assert bpy.ops.lipsync.generate() == {"FINISHED"}
    by_name = sound_strips_by_name(scene)
    assert set(by_name) == {"take3", "line_enhanced.wav"}
    assert not by_name["take3"].mute and compat.strip_start(by_name["line_enhanced.wav"]) == 11  # the user's strip
    assert by_name["line_enhanced.wav"].sound.filepath == "//line_enhanced.wav"
    # the panel's Reduce Room Echo reaches the request (analysis and the enhanced file's tag)
    from types import SimpleNamespace

    from lipsync_addon.blender import operators

    assert settings.dereverb is False  # default
    settings.dereverb = True
    request = operators.build_request(bpy.context, SimpleNamespace(object_name="", audio_path="", transcript=""))
    assert request.config.dereverb and request.enhanced_target is not None


def test_batch_script_enhance(shot, tmp_path, capsys):
    import importlib.util

    from blender_helpers import REPO

    folder, clip = shot
    spec = importlib.util.spec_from_file_location("batch_lipsync", REPO / "scripts" / "batch_lipsync.py")
    batch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(batch)
    out = folder / "out.blend"
    code = batch.main(["batch_lipsync.py", "--blend", str(folder / "shot.blend"), "--object", "Head",
                       "--audio", str(clip), "--transcript", SPEECH_TEXT, "--enhance", "standard", "--dereverb",
                       "--out", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert '"enhanced": "//line_enhanced.wav"' in capsys.readouterr().out
    assert enhanced.read_tag(str(folder / "line_enhanced.wav"))["preset"] == "standard+dereverb"  # --dereverb
    bpy.ops.wm.open_mainfile(filepath=str(out))
    by_name = sound_strips_by_name(bpy.context.scene)
    assert by_name["line_enhanced.wav"].sound.filepath == "//line_enhanced.wav" and by_name["line.wav"].mute
    assert batch.main(["batch_lipsync.py", "--object", "Head", "--audio", str(clip), "--enhance", "loud",
                       "--out", str(out)]) == batch.batch_module().EXIT_USAGE
