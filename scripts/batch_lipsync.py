"""Headless lip sync of one clip onto one object, saved to a .blend.

Two ways to run it (same options):

    blender -b scene.blend --python scripts/batch_lipsync.py -- \\
        --object Head --audio line.wav [--text line.txt] [--viseme-set oculus] [--start-frame 1] \\
        [--enhance standard] --out out.blend

    # a face rig (armature) with a pose library action and a jaw bone: the bone mouth (docs/bones.md)
    blender -b rig.blend --python scripts/batch_lipsync.py -- \
        --object FaceRig --audio line.wav --pose-action MouthPoses [--no-jaw] --out out.blend

    .venv/bin/python scripts/batch_lipsync.py --blend scene.blend \\
        --object Head --audio line.wav [--text line.txt] --out out.blend [--glb out.glb] [--fbx out.fbx]

    # Blender with the extension installed, no repository needed (docs/blender.md, "Headless"):
    blender -b scene.blend --python-expr \
        "import sys, bl_ext.user_default.lipsync.blender.batch_script as b; sys.exit(b.main())" -- ...

Exit codes: 0 done, 1 lip-sync error (message on stderr, nothing saved), 2 bad command line,
3 internal error (a bug; traceback on stderr).

This file only finds the add-on and runs ``lipsync_addon.blender.batch_script.main``: the enabled
add-on when there is one (an installed extension inside Blender), else this repository's copy.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent


def batch_module() -> ModuleType:
    """``<add-on>.blender.batch_script`` of the enabled add-on, or of this repository's copy."""
    try:
        import bpy
    except ImportError:
        bpy = None
    operator = getattr(bpy.types, "LIPSYNC_OT_generate", None) if bpy is not None else None
    if operator is not None:
        package = operator.__module__.rpartition(".blender.")[0]
        if package:
            return importlib.import_module(package + ".blender.batch_script")
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    return importlib.import_module("lipsync_addon.blender.batch_script")


def main(argv: list[str] | None = None) -> int:
    """Run the batch job (see the module docstring); return the process exit code."""
    return batch_module().main(argv)


if __name__ == "__main__":
    sys.exit(main())
