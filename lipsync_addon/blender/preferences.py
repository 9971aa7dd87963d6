"""Add-on preferences (Edit > Preferences > Add-ons > Lip Sync), keyed by the package name."""

from __future__ import annotations

from typing import Any

import bpy
from bpy.props import StringProperty

#: The add-on's package: "lipsync_addon" from the repo, "bl_ext.<repo>.lipsync" as an extension.
ADDON_PACKAGE = (__package__ or "lipsync_addon").rpartition(".")[0] or "lipsync_addon"


class LIPSYNC_AP_preferences(bpy.types.AddonPreferences):
    """Global settings shared by every scene."""

    bl_idname = ADDON_PACKAGE

    custom_mapping_path: StringProperty(
        name="Custom Mapping (JSON)",
        subtype="FILE_PATH",
        description='JSON file {"viseme": {"shape key": weight}} overriding the preset mapping for every rig',
    )

    pronunciations_path: StringProperty(
        name="Pronunciation Dictionary",
        subtype="FILE_PATH",
        description="How names and invented words are said, one per line: 'Xalatath Z AA1 L AH0 T AE2 TH' (ARPAbet) "
        "or 'Hermione = her my oh nee' (sounds like); see docs/pronunciations.md",
    )

    vosk_model_dir: StringProperty(
        name="Vosk Model Folder",
        subtype="DIR_PATH",
        description="A Vosk model folder (any language) for lip sync without a transcript in languages "
        "other than English; see docs/languages.md for where to get models",
    )

    def draw(self, context: Any) -> None:
        layout = self.layout
        layout.prop(self, "custom_mapping_path")
        layout.prop(self, "pronunciations_path")
        layout.prop(self, "vosk_model_dir")


def get_preferences(context: Any = None) -> Any:
    """The add-on preferences, or None when the package is not enabled as an add-on (scripts, tests)."""
    context = context or bpy.context
    addon = context.preferences.addons.get(ADDON_PACKAGE)
    return addon.preferences if addon is not None else None


def custom_mapping_path(context: Any = None) -> str:
    """Path of the user mapping JSON from the preferences ("" if unset or not enabled)."""
    prefs = get_preferences(context)
    return str(prefs.custom_mapping_path) if prefs is not None else ""


def pronunciations_path(context: Any = None) -> str:
    """Path of the user pronunciation dictionary from the preferences ("" if unset or not enabled)."""
    prefs = get_preferences(context)
    return str(prefs.pronunciations_path) if prefs is not None else ""


def vosk_model_dir(context: Any = None) -> str:
    """Vosk model folder from the preferences ("" if unset or not enabled)."""
    prefs = get_preferences(context)
    return bpy.path.abspath(str(prefs.vosk_model_dir)) if prefs is not None and prefs.vosk_model_dir else ""


CLASSES = (LIPSYNC_AP_preferences,)
