"""One ordered CLASSES list: registered in order, unregistered in reverse.

``register()`` is idempotent (a second call first unregisters what is there);
``unregister()`` tolerates classes that are not registered.
"""

from __future__ import annotations

import sys

import bpy

from ..core import audio
from . import compat, export, operators, panels, preferences, properties

CLASSES: tuple[type, ...] = (
    *properties.CLASSES,
    *preferences.CLASSES,
    *operators.CLASSES,
    *export.CLASSES,
    *panels.CLASSES,
)


def _is_registered(cls: type) -> bool:
    return bool(getattr(cls, "is_registered", False))


def register() -> None:
    """Register every class and the PointerProperties; on failure roll back and re-raise."""
    if any(_is_registered(cls) for cls in CLASSES):
        unregister()
    done: list[type] = []
    try:
        for cls in CLASSES:
            bpy.utils.register_class(cls)
            done.append(cls)
        properties.add_pointers()
        panels.add_menus()
        if compat.has_audio():  # whatever Blender plays can be lip-synced (AAC/M4A, video files, ...)
            audio.add_decoder(compat.BLENDER_DECODER, compat.decode_with_blender)
    except Exception:
        for cls in reversed(done):
            _safe_unregister(cls)
        raise


def unregister() -> None:
    """Remove the menu entry and PointerProperties, unregister every class in reverse order."""
    audio.remove_decoder(compat.BLENDER_DECODER)
    panels.remove_menus()
    try:
        properties.remove_pointers()
    except (AttributeError, RuntimeError) as exc:
        print(f"lipsync: could not remove properties: {exc}", file=sys.stderr)
    for cls in reversed(CLASSES):
        _safe_unregister(cls)


def _safe_unregister(cls: type) -> None:
    if not _is_registered(cls):
        return
    try:
        bpy.utils.unregister_class(cls)
    except RuntimeError as exc:
        print(f"lipsync: could not unregister {cls.__name__}: {exc}", file=sys.stderr)
