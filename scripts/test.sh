#!/usr/bin/env bash
# Set everything up (scripts/setup.sh), lint, and run the whole test suite. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
# pytest exits 5 when a selection collects no tests: not a failure of the project.
if [ "$rc" = "5" ]; then echo "test.sh: no tests selected"; exit 0; fi
exit "$rc"
