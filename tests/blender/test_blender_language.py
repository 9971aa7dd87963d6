"""Other languages through the Blender door: the language setting reaches the pipeline."""

from __future__ import annotations

import pytest
from blender_helpers import PRESET_SHAPE_KEYS, REPO, make_mesh

from lipsync_addon.blender import api, compat
from lipsync_addon.core.types import LipSyncError

SPANISH = REPO / "tests" / "data" / "lang" / "13697_11991_000000.opus"


def test_spanish_line_is_aligned_with_espeak(scene):
    make_mesh("Head", PRESET_SHAPE_KEYS["oculus"])
    text = SPANISH.with_suffix(".lab").read_text(encoding="utf-8")
    report = api.generate("Head", str(SPANISH), transcript=text, language="es", start_frame=1,
                          add_sound_strip=False)
    result = report.result
    assert result.provenance["backend"].startswith("espeak")
    assert result.provenance["language"] == "es"
    assert len(result.transcript.words) >= 5 and report.frames_keyed > 24


def test_unknown_language_is_refused_before_anything_changes(scene):
    obj = make_mesh("Head", PRESET_SHAPE_KEYS["oculus"])
    with pytest.raises(LipSyncError, match="xx"):
        api.generate("Head", str(SPANISH), transcript="hola", language="xx", start_frame=1)
    assert obj.data.shape_keys.animation_data is None
    assert scene.sequence_editor is None or not compat.all_strips(scene.sequence_editor)


def test_panel_language_setting_exists(scene):
    scene.lipsync.language = "ja"
    assert scene.lipsync.language == "ja"
