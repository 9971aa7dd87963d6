#!/usr/bin/env bash
# Set everything up (scripts/setup.sh) and run the demo: builds a head, lip-syncs the bundled real
# clip, writes out/demo.blend, out/demo_cues.json and out/demo.mp4 (preview with audio).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python scripts/demo.py "$@"
