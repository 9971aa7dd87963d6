#!/usr/bin/env bash
# Set everything up, lint, and run the whole test suite on Blender 5.0 (.venv), then the Blender
# tests again on Blender 4.5 LTS (.venv-bpy45), Blender 4.2 LTS (.venv-bpy42, the oldest supported)
# and Blender 5.1.0 and 5.2 (.venv-bpy51, .venv-bpy52: Python 3.13, when one is found); tests/ship also
# installs the extension zips into each of them.
# Extra args go to pytest; when they select specific tests, the other targets are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup_bpy.sh 45
bash scripts/setup_bpy.sh 42
bash scripts/setup_bpy.sh 51
bash scripts/setup_bpy.sh 52
.venv/bin/ruff check .
# pytest exits 5 when a selection collects no tests: not a failure of the project.
run() {
  set +e
  "$@"
  local rc=$?
  set -e
  if [ "$rc" = "5" ]; then echo "test.sh: no tests selected"; rc=0; fi
  return "$rc"
}
run .venv/bin/python -m pytest "$@"
for arg in "$@"; do
  case "$arg" in -*) ;; *) exit 0 ;; esac  # a path or node id was given: that selection only
done
echo "test.sh: Blender tests again on Blender 4.5 LTS (.venv-bpy45)"
run .venv-bpy45/bin/python -m pytest -p no:cacheprovider "$@" tests/blender
echo "test.sh: Blender tests again on Blender 4.2 LTS (.venv-bpy42)"
run .venv-bpy42/bin/python scripts/pytest_no_teardown.py -p no:cacheprovider "$@" tests/blender
for tag in 51 52; do
  version="${tag:0:1}.${tag:1}"
  if [ -x ".venv-bpy$tag/bin/python" ]; then
    echo "test.sh: Blender tests again on Blender $version (.venv-bpy$tag, Python 3.13)"
    # Blender's own deprecations (APIs going away in 6.0) fail the run: compat.py must route around them
    run ".venv-bpy$tag/bin/python" -m pytest -p no:cacheprovider \
      -o "filterwarnings=error:.*is expected to be removed in Blender:DeprecationWarning" "$@" tests/blender
  else
    echo "test.sh: no Python 3.13 here, so no Blender $version run (scripts/setup_bpy.sh $tag said so above)"
  fi
done
