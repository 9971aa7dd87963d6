"""Sound strip placement: reuse, free channel, user strips never moved, frame_end grows only."""

from __future__ import annotations

import shutil

import pytest
from blender_helpers import SPEECH

from lipsync_addon.blender import compat, strips

DURATION = 3.88  # seconds, cmu_arctic_us_aew_a0001.wav


def user_strip(scene, name, path, channel, frame):
    editor = scene.sequence_editor or scene.sequence_editor_create()
    return compat.top_level_strips(editor).new_sound(name, str(path), channel=channel, frame_start=frame)


def by_name(scene, name):
    """A strip of the scene by name, in any meta strip (4.2-4.3 name ``sequences_all``, 4.4+ ``strips_all``)."""
    return next(s for s in compat.all_strips(scene.sequence_editor) if s.name == name)


def positions(scene):
    return sorted(
        (s.name, s.channel, compat.strip_start(s), compat.strip_span(s)[1])
        for s in compat.all_strips(scene.sequence_editor)
    )


pytestmark = pytest.mark.skipif(not compat.has_audio(), reason="this bpy build has no audio")


def test_new_strip_at_start_frame_then_reused(scene):
    report = strips.place_sound_strip(scene, str(SPEECH), start_frame=12, duration=DURATION, fps=24.0)
    assert report.created and report.channel == 1 and not report.warnings
    strip = by_name(scene, report.strip_name)
    assert compat.strip_start(strip) == 12
    assert strip.get(strips.OWNER_TAG)
    again = strips.place_sound_strip(scene, str(SPEECH), start_frame=12, duration=DURATION, fps=24.0)
    assert not again.created and again.strip_name == report.strip_name
    assert len(compat.all_strips(scene.sequence_editor)) == 1


def test_user_strips_are_not_moved_and_channel_is_free(scene, tmp_path):
    other = tmp_path / "other.wav"
    shutil.copy(SPEECH, other)
    music = user_strip(scene, "music", other, 1, 1)
    fx = user_strip(scene, "fx", other, 2, 20)
    music.select, fx.select = True, False
    scene.sequence_editor.active_strip = music
    before = positions(scene)
    report = strips.place_sound_strip(scene, str(SPEECH), start_frame=10, duration=DURATION, fps=24.0)
    assert report.created and report.channel == 3
    # the user's selection and active strip are as they were
    assert music.select and not fx.select and scene.sequence_editor.active_strip == music
    assert not by_name(scene, report.strip_name).select
    after = [p for p in positions(scene) if p[0] != report.strip_name]
    assert after == before


def test_same_file_by_other_path_spelling_is_reused(scene, tmp_path):
    user = user_strip(scene, "dialogue", SPEECH, 4, 30)
    spelled = str(SPEECH.parent / ".." / SPEECH.parent.name / SPEECH.name)
    report = strips.place_sound_strip(scene, spelled, start_frame=30, duration=DURATION, fps=24.0)
    assert report.strip_name == user.name and not report.created
    assert len(compat.all_strips(scene.sequence_editor)) == 1


def test_user_strip_elsewhere_is_not_moved_but_warned(scene):
    user = user_strip(scene, "dialogue", SPEECH, 2, 100)
    report = strips.place_sound_strip(scene, str(SPEECH), start_frame=1, duration=DURATION, fps=24.0)
    assert compat.strip_start(user) == 100 and user.channel == 2
    assert report.warnings and "dialogue" in report.warnings[0] and "100" in report.warnings[0]
    assert len(compat.all_strips(scene.sequence_editor)) == 1


def test_own_strip_follows_a_new_start_frame(scene):
    first = strips.place_sound_strip(scene, str(SPEECH), start_frame=1, duration=DURATION, fps=24.0)
    second = strips.place_sound_strip(scene, str(SPEECH), start_frame=50, duration=DURATION, fps=24.0)
    assert second.strip_name == first.strip_name
    assert compat.strip_start(by_name(scene, first.strip_name)) == 50
    assert len(compat.all_strips(scene.sequence_editor)) == 1


def test_frame_end_grows_never_shrinks(scene):
    scene.frame_end = 40
    report = strips.place_sound_strip(scene, str(SPEECH), start_frame=100, duration=DURATION, fps=24.0)
    assert scene.frame_end == report.frame_end >= 100 + int(DURATION * 24) - 1
    scene.frame_end = 1000
    strips.place_sound_strip(scene, str(SPEECH), start_frame=100, duration=DURATION, fps=24.0)
    assert scene.frame_end == 1000


def test_fractional_fps_strip_length(scene):
    scene.render.fps, scene.render.fps_base = 30000, 1001
    report = strips.place_sound_strip(scene, str(SPEECH), start_frame=1, duration=DURATION, fps=30000 / 1001)
    strip = by_name(scene, report.strip_name)
    assert compat.strip_duration(strip) == pytest.approx(DURATION * 30000 / 1001, abs=2)
