#!/usr/bin/env bash
# Set everything up, lint, and run the whole test suite on Blender 5.0 (.venv), then the Blender
# tests again on Blender 4.5 LTS (.venv-bpy45, the second target). Extra args go to pytest; when they
# select specific tests, the second run is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup_bpy45.sh
.venv/bin/ruff check .
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
# pytest exits 5 when a selection collects no tests: not a failure of the project.
if [ "$rc" = "5" ]; then echo "test.sh: no tests selected"; rc=0; fi
[ "$rc" = "0" ] || exit "$rc"
for arg in "$@"; do
  case "$arg" in -*) ;; *) exit 0 ;; esac  # a path or node id was given: that selection only
done
echo "test.sh: Blender tests again on the second target, Blender 4.5 LTS (.venv-bpy45)"
exec .venv-bpy45/bin/python -m pytest -p no:cacheprovider "$@" tests/blender
