#!/usr/bin/env bash
# One-time (idempotent) set-up on a fresh Debian/Ubuntu machine with Python 3.11:
# system libraries for headless Blender (bpy wheel) and rendering, then .venv/ with pinned packages.
# Re-running is cheap: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for cand in python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PY="$cand"; break
    fi
  done
fi
if [ -z "$PY" ]; then
  echo "setup: Python 3.11 is required (bpy 5.0.1 wheels exist for 3.11 only). Install python3.11 and re-run." >&2
  exit 1
fi

# System packages: libraries the bpy wheel loads, EGL/Mesa for headless Workbench renders, ffmpeg to mux
# the preview video. Installed only if missing, and only where we can (root + apt-get).
APT_PKGS="libxrender1 libxxf86vm1 libxfixes3 libxi6 libxkbcommon0 libsm6 libgl1 libegl1 libegl-mesa0 libgl1-mesa-dri libsndfile1 ffmpeg chromium nodejs gcc"
missing=""
if command -v dpkg >/dev/null 2>&1; then
  for p in $APT_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  command -v npm >/dev/null 2>&1 || missing="$missing npm"
  "$PY" -m venv --help >/dev/null 2>&1 && "$PY" -c 'import ensurepip' >/dev/null 2>&1 || missing="$missing python3-venv"
fi
if [ -n "$missing" ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing system packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "setup: WARNING: missing system packages:$missing (run as root or: sudo apt-get install$missing)" >&2
  fi
fi

stamp=".venv/.requirements.sha256"
# every requirements file counts for the stamp (requirements-eval.txt is for .venv-eval)
want="$(cat $(ls requirements*.txt | grep -v requirements-eval.txt) | sha256sum | cut -d' ' -f1)"
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: creating .venv with pinned packages (first run downloads ~900 MB, mostly the bpy wheel)"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade "pip>=24" >/dev/null
  .venv/bin/python -m pip install -q -r requirements-dev.txt -r requirements-enhance.txt -r requirements-lang.txt \
    -r requirements-batch.txt
  echo "$want" > "$stamp"
fi

# Wheels bundled in the extension zip (tests build and install it offline): cached in build/wheels.
.venv/bin/python scripts/build_extension.py --fetch-only --platform linux-x64 >/dev/null
# three.js + Khronos glTF validator for the export tests (pinned by tests/ship/web/package-lock.json).
lock_sum="$(sha256sum tests/ship/web/package-lock.json | cut -d' ' -f1)"
if command -v npm >/dev/null 2>&1 && [ "$(cat tests/ship/web/node_modules/.lock.sha256 2>/dev/null)" != "$lock_sum" ]; then
  (cd tests/ship/web && npm ci --no-audit --no-fund --loglevel=error >/dev/null) && echo "$lock_sum" > tests/ship/web/node_modules/.lock.sha256
fi
