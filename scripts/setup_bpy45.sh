#!/usr/bin/env bash
# Set up .venv-bpy45: Blender 4.5 LTS (bpy wheel) + the runtime packages, for the second Blender test
# target. Idempotent (stamp); run by scripts/test.sh after scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
stamp=".venv-bpy45/.requirements.sha256"
want="$(cat requirements.txt requirements-lang.txt requirements-bpy45.txt | sha256sum | cut -d' ' -f1)"
if [ ! -x .venv-bpy45/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: creating .venv-bpy45 (Blender 4.5 as a module, ~370 MB download on the first run)"
  [ -x .venv-bpy45/bin/python ] || "$PY" -m venv .venv-bpy45
  .venv-bpy45/bin/python -m pip install -q --upgrade "pip>=24" >/dev/null
  .venv-bpy45/bin/python -m pip install -q -r requirements-bpy45.txt
  echo "$want" > "$stamp"
fi
