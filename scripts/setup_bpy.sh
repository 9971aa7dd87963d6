#!/usr/bin/env bash
# Set up .venv-bpy<TAG> from requirements-bpy<TAG>.txt: another Blender as a module (bpy wheel), for the
# Blender test targets besides 5.0 (scripts/test.sh): 45 = Blender 4.5 LTS, 42 = Blender 4.2 LTS (both
# Python 3.11, with the runtime packages: the Blender tests run there), 51 = Blender 5.1.0 and 52 = Blender
# 5.2 (Python 3.13; tests/ship installs the extension zip for Blender 5.1+ into them). Idempotent (stamp);
# run by scripts/test.sh after scripts/setup.sh. Without a Python 3.13 (python3.13 on PATH or pyenv's),
# the 5.1 and 5.2 targets are skipped with a message and their tests say so.
#   bash scripts/setup_bpy.sh 45
set -euo pipefail
cd "$(dirname "$0")/.."
tag="${1:?usage: setup_bpy.sh TAG (45, 42, 51 or 52)}"
req="requirements-bpy${tag}.txt"
venv=".venv-bpy${tag}"
[ -f "$req" ] || { echo "setup_bpy: no $req" >&2; exit 2; }
case "$tag" in
  51 | 52) want_py=3.13 ;;
  *) want_py=3.11 ;;
esac
# the first interpreter that really is that version (a pyenv shim may exist but refuse to run)
PY=""
for cand in ${PYTHON:-} "python$want_py" "$HOME"/.pyenv/versions/"$want_py"*/bin/python"$want_py" python3; do
  if "$cand" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$want_py'.split('.'))))" \
      >/dev/null 2>&1; then
    PY="$cand"
    break
  fi
done
if [ -z "$PY" ]; then
  echo "setup: no Python $want_py here: the Blender test target $tag ($venv) is skipped"
  exit 0
fi
stamp="$venv/.requirements.sha256"
want="$(cat requirements.txt requirements-lang.txt "$req" | sha256sum | cut -d' ' -f1)"
install() {  # each step only if the one before worked (set -e is off inside "if ! install")
  { [ -x "$venv/bin/python" ] || "$PY" -m venv "$venv"; } &&
    "$venv/bin/python" -m pip install -q --upgrade "pip>=24" >/dev/null &&
    "$venv/bin/python" -m pip install -q -r "$req"
}
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: creating $venv ($(grep -m1 '^bpy==' "$req") as a module, ~350 MB download on the first run)"
  if [ "$want_py" = "3.11" ]; then
    install
  elif ! install; then
    # the Python 3.13 target is optional: a Python without venv/ensurepip (Debian's python3.13 without
    # python3.13-venv) or a platform without that bpy wheel skips it instead of failing the tests
    rm -rf "$venv"
    echo "setup: could not set up $venv with $PY: the Blender test target $tag is skipped"
    exit 0
  fi
  echo "$want" > "$stamp"
fi
