"""Run pytest, then leave the interpreter without its shutdown (``os._exit`` with pytest's exit code).

For the Blender 4.2 LTS test target only (scripts/test.sh): the bpy 4.2 wheel crashes with SIGSEGV
while Python shuts down after Blender's own glTF exporter has run in the process
(tests/blender/test_blender_bones.py::test_glb_export_carries_the_bone_mouth passes, then the
interpreter dies at exit; the 4.5 and 5.0 wheels do not). Every result is printed before the exit.

    .venv-bpy42/bin/python scripts/pytest_no_teardown.py -p no:cacheprovider tests/blender
"""

import os
import sys

import pytest

if __name__ == "__main__":
    code = int(pytest.main(sys.argv[1:]))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
