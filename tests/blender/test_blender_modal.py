"""The interactive (modal) path, driven directly: worker thread + timer ticks + Esc + finish.

The bpy wheel has no event loop, so the operator's ``modal()`` cannot receive
events here; it only forwards them to ``GenerateSession``, which is what these
tests drive with the real context, a real timer and a real worker thread.
"""

from __future__ import annotations

import time

import bpy
import pytest
from blender_helpers import PRESET_SHAPE_KEYS, SPEECH, SPEECH_TEXT, make_mesh, scene_snapshot

from lipsync_addon.blender import api, bake
from lipsync_addon.blender.operators import GenerateSession

TIMEOUT = 120.0  # seconds, generous for a 2-core machine under load


def run_until_done(session: GenerateSession):
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        outcome = session.tick(bpy.context)
        if outcome is not None:
            return outcome
        time.sleep(0.02)
    raise AssertionError("the worker did not finish")


def test_session_bakes_when_worker_finishes(scene):
    obj = make_mesh("Head", PRESET_SHAPE_KEYS["oculus"])
    session = GenerateSession(api.prepare("Head", str(SPEECH), transcript=SPEECH_TEXT))
    session.start(bpy.context)
    assert bpy.context.window_manager.lipsync_job.status == "RUNNING"
    outcome = run_until_done(session)
    assert outcome.status == "FINISHED", outcome.reports
    assert outcome.reports[0][0] == "INFO" and "LipSync_Head" in outcome.reports[0][1]
    assert bake.is_owned(obj.data.shape_keys.animation_data.action)
    state = bpy.context.window_manager.lipsync_job
    assert state.status == "DONE" and state.detected_set == "oculus"
    assert session.timer is None


def test_session_decodes_an_m4a_on_the_worker_thread(scene, monkeypatch):
    """Blender's own FFmpeg decodes the clip on the worker thread (no ffmpeg program)."""
    from lipsync_addon.blender import compat
    from lipsync_addon.core import audio as core_audio

    if not compat.has_audio():
        pytest.skip("this bpy build has no audio (tests/unit covers the ffmpeg program)")
    monkeypatch.setattr(core_audio.shutil, "which", lambda name: None)
    obj = make_mesh("Head", PRESET_SHAPE_KEYS["oculus"])
    m4a = SPEECH.parent / "formats" / "bobby.m4a"
    session = GenerateSession(api.prepare("Head", str(m4a), transcript="Bobby ripped the ledger"))
    session.start(bpy.context)
    outcome = run_until_done(session)
    assert outcome.status == "FINISHED", outcome.reports
    assert bake.is_owned(obj.data.shape_keys.animation_data.action)


def test_escape_changes_nothing(scene):
    make_mesh("Head", PRESET_SHAPE_KEYS["oculus"])
    before = scene_snapshot(scene)
    session = GenerateSession(api.prepare("Head", str(SPEECH), transcript=SPEECH_TEXT))
    session.start(bpy.context)
    outcome = session.escape(bpy.context)
    assert outcome.status == "CANCELLED"
    session.job.join(TIMEOUT)
    assert scene_snapshot(scene) == before
    assert bpy.context.window_manager.lipsync_job.status == "CANCELLED"
    assert session.timer is None


def test_object_deleted_during_modal_run(scene):
    obj = make_mesh("Head", PRESET_SHAPE_KEYS["oculus"])
    session = GenerateSession(api.prepare("Head", str(SPEECH), transcript=SPEECH_TEXT))
    session.start(bpy.context)
    bpy.data.objects.remove(obj)
    before = scene_snapshot(scene)
    outcome = run_until_done(session)
    assert outcome.status == "CANCELLED"
    assert outcome.reports == [("ERROR", outcome.reports[0][1])]
    assert "'Head' was deleted or renamed" in outcome.reports[0][1]
    assert scene_snapshot(scene) == before
    assert bpy.context.window_manager.lipsync_job.status == "ERROR"


def test_worker_error_is_reported_not_raised(scene, tmp_path):
    make_mesh("Head", PRESET_SHAPE_KEYS["oculus"])
    fake = tmp_path / "noise.wav"
    fake.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 10)
    before = scene_snapshot(scene)
    session = GenerateSession(api.prepare("Head", str(fake)))
    session.start(bpy.context)
    outcome = run_until_done(session)
    assert outcome.status == "CANCELLED" and outcome.reports[0][0] == "ERROR"
    assert "Traceback" not in outcome.reports[0][1]
    assert scene_snapshot(scene) == before
