"""Register / unregister, twice, and the bpy-free guarantee of the package root."""

from __future__ import annotations

import subprocess
import sys

import bpy
from blender_helpers import REPO


def test_register_unregister_twice(addon):
    from lipsync_addon.blender import compat, registration
    from lipsync_addon.core import audio

    for _ in range(2):
        addon.unregister()
        assert compat.BLENDER_DECODER not in audio._DECODERS
        assert not hasattr(bpy.types.Scene, "lipsync")
        assert not hasattr(bpy.types, "LIPSYNC_OT_generate")
        assert not hasattr(bpy.types, "LIPSYNC_PT_main")
        addon.register()
        assert hasattr(bpy.types.Scene, "lipsync")
        assert hasattr(bpy.types.Object, "lipsync")
        assert hasattr(bpy.types, "LIPSYNC_PT_main")
        assert all(cls.is_registered for cls in registration.CLASSES)
        assert (compat.BLENDER_DECODER in audio._DECODERS) == compat.has_audio()  # Blender's FFmpeg
    # register twice in a row is tolerated too
    addon.register()
    addon.register()
    assert bpy.ops.lipsync.generate.idname() == "LIPSYNC_OT_generate"
    assert bpy.types.LIPSYNC_OT_generate.bl_label == "Generate Lip Sync"
    assert bpy.types.LIPSYNC_PT_main.bl_category == "Lip Sync"
    assert bpy.types.LIPSYNC_PT_main.bl_space_type == "VIEW_3D"


def test_unregister_when_not_registered_is_harmless(addon):
    addon.unregister()
    addon.unregister()
    addon.register()
    assert hasattr(bpy.types.Scene, "lipsync")


def test_settings_exist_on_factory_scene(scene):
    settings = scene.lipsync
    assert settings.start_frame == 1
    assert 0.0 <= settings.smoothing <= 1.0
    assert bpy.context.window_manager.lipsync_job.status == "IDLE"


def test_package_root_and_core_do_not_import_bpy():
    code = (
        "import sys, lipsync_addon, lipsync_addon.core.types;"
        "assert 'bpy' not in sys.modules, 'bpy imported';"
        "assert callable(lipsync_addon.register)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def _export_menu_entries() -> int:
    return sum(getattr(f, "__name__", "") == "draw_export_menu"
               for f in bpy.types.TOPBAR_MT_file_export._dyn_ui_initialize())


def test_file_export_menu_entry_exactly_once(addon):
    addon.register()
    addon.register()
    assert _export_menu_entries() == 1
    addon.unregister()
    assert _export_menu_entries() == 0
    addon.register()
    assert _export_menu_entries() == 1
