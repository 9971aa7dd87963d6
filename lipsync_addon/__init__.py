"""Lip Sync for Blender: audio (+ transcript) to coarticulated viseme shape-key animation.

This file only registers the Blender layer, imported lazily so that
``python -m lipsync_addon`` and ``import lipsync_addon.core`` never import bpy.
"""

from __future__ import annotations


def register() -> None:
    """Register the add-on's Blender classes and properties (called by Blender)."""
    from .blender import registration

    registration.register()


def unregister() -> None:
    """Unregister everything :func:`register` added (called by Blender)."""
    from .blender import registration

    registration.unregister()
