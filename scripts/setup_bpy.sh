#!/usr/bin/env bash
# Set up .venv-bpy<TAG> from requirements-bpy<TAG>.txt: an older Blender as a module (bpy wheel) + the
# runtime packages, for the Blender test targets after 5.0 (scripts/test.sh): 45 = Blender 4.5 LTS,
# 42 = Blender 4.2 LTS. Idempotent (stamp); run by scripts/test.sh after scripts/setup.sh.
#   bash scripts/setup_bpy.sh 45
set -euo pipefail
cd "$(dirname "$0")/.."
tag="${1:?usage: setup_bpy.sh TAG (45 or 42)}"
req="requirements-bpy${tag}.txt"
venv=".venv-bpy${tag}"
[ -f "$req" ] || { echo "setup_bpy: no $req" >&2; exit 2; }
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
stamp="$venv/.requirements.sha256"
want="$(cat requirements.txt requirements-lang.txt "$req" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: creating $venv ($(grep -m1 '^bpy==' "$req") as a module, ~350 MB download on the first run)"
  [ -x "$venv/bin/python" ] || "$PY" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade "pip>=24" >/dev/null
  "$venv/bin/python" -m pip install -q -r "$req"
  echo "$want" > "$stamp"
fi
