"""``python -m lipsync_addon ...``: the bpy-free command line (see :mod:`lipsync_addon.cli`)."""

import sys

from .cli import main

sys.exit(main())
