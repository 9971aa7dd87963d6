"""The "Lip Sync" tab of the 3D viewport sidebar (N panel)."""

from __future__ import annotations

from typing import Any, ClassVar

import bpy

from ..core.types import LipSyncError
from . import operators, rig, strips

#: (object name, shape-key names, set override) -> detected set or error message.
_DETECT_CACHE: dict[tuple[str, tuple[str, ...], str], tuple[str, str]] = {}
_DETECT_CACHE_SIZE = 64


def detected_viseme_set(obj: Any) -> tuple[str, str]:
    """(viseme set, "") for ``obj``, or ("", error message). Cached: draw() runs often."""
    names = tuple(rig.shape_key_names(obj))
    override = obj.lipsync.viseme_set if getattr(obj, "lipsync", None) is not None else "auto"
    cache_key = (obj.name, names, override)
    if cache_key not in _DETECT_CACHE:
        if len(_DETECT_CACHE) > _DETECT_CACHE_SIZE:
            _DETECT_CACHE.clear()
        try:
            targets = rig.resolve_targets(obj, override or "auto")
            _DETECT_CACHE[cache_key] = (targets.viseme_set, "")
        except LipSyncError as exc:
            _DETECT_CACHE[cache_key] = ("", str(exc))
        except (ImportError, AttributeError) as exc:  # core not available
            _DETECT_CACHE[cache_key] = ("", f"Viseme sets unavailable: {exc}")
    return _DETECT_CACHE[cache_key]


def _wrapped(layout: Any, text: str, icon: str = "NONE", width: int = 48) -> None:
    """Show ``text`` as several short labels (Blender labels do not wrap)."""
    col = layout.column(align=True)
    line, first = "", True
    for word in text.split():
        if len(line) + len(word) + 1 > width and line:
            col.label(text=line, icon=icon if first else "BLANK1")
            line, first = "", False
        line = f"{line} {word}".strip()
    if line:
        col.label(text=line, icon=icon if first else "BLANK1")


class LIPSYNC_UL_mapping(bpy.types.UIList):
    """Rows of the custom viseme -> shape key list."""

    def draw_item(  # noqa: PLR0917 (Blender calls it positionally)
        self,
        context: Any,
        layout: Any,
        data: Any,
        item: Any,
        icon: Any,
        active_data: Any,
        active_property: Any,
        index: int = 0,
        flt_flag: int = 0,
    ) -> None:
        row = layout.row(align=True)
        row.prop(item, "viseme", text="", emboss=True)
        key = getattr(getattr(data.id_data, "data", None), "shape_keys", None)
        if key is not None:
            row.prop_search(item, "shape_key", key, "key_blocks", text="")
        else:
            row.prop(item, "shape_key", text="")
        row.prop(item, "weight", text="")


class _SubPanel:
    """Shared settings of the sub-panels under the Lip Sync sidebar tab (a mixin: not registered)."""

    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Lip Sync"
    bl_parent_id = "LIPSYNC_PT_main"
    bl_options: ClassVar[set[str]] = {"DEFAULT_CLOSED"}


class LIPSYNC_PT_main(bpy.types.Panel):
    """Clip, transcript, rig and the Generate button."""

    bl_idname = "LIPSYNC_PT_main"
    bl_label = "Lip Sync"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Lip Sync"

    def draw(self, context: Any) -> None:
        layout = self.layout
        settings = getattr(context.scene, "lipsync", None)
        if settings is None:
            layout.label(text="Lip Sync is not registered.", icon="ERROR")
            return
        obj = context.active_object

        box = layout.box()
        box.label(text="Clip", icon="SOUND")
        box.row().prop(settings, "clip_source", expand=True)
        if settings.clip_source == "FILE":
            box.prop(settings, "audio_path", text="")
            box.prop(settings, "start_frame")
            row = box.row(align=True)
            row.prop(settings, "reference_path", text="")
            row.operator("lipsync.sync_to_reference", text="", icon="UV_SYNC_SELECT")
            box.prop(settings, "add_sound_strip")
        else:
            editor = context.scene.sequence_editor
            if editor is not None and strips.sound_strips(context.scene):
                box.prop_search(
                    settings,
                    "sound_strip",
                    editor,
                    "strips_all" if hasattr(editor, "strips_all") else "sequences_all",
                    text="",
                )
            else:
                box.label(text="No sound strips in the sequencer.", icon="INFO")

        box = layout.box()
        box.label(text="Transcript", icon="TEXT")
        box.prop(settings, "transcript_source", text="")
        if settings.transcript_source == "TEXT":
            box.prop(settings, "transcript", text="")
        elif settings.transcript_source == "DATABLOCK":
            box.prop(settings, "transcript_text", text="")
        elif settings.transcript_source == "FILE":
            box.prop(settings, "transcript_path", text="")
        if settings.transcript_source != "NONE":
            box.prop(settings, "line_markers")

        box = layout.box()
        box.label(text="Character", icon="OUTLINER_OB_MESH")
        if obj is None:
            box.label(text="Select the character's face mesh.", icon="INFO")
        else:
            box.label(text=obj.name, icon="OBJECT_DATA")
            if getattr(obj, "lipsync", None) is not None:
                box.prop(obj.lipsync, "viseme_set")
                if settings.transcript_source != "NONE":  # several speakers on one track: this one's lines
                    box.prop(obj.lipsync, "speaker", icon="USER")
            detected, problem = detected_viseme_set(obj) if not rig.is_bone_target(obj) else ("", "")
            if rig.is_bone_target(obj):
                box.label(text="No shape keys: the bone mouth is used", icon="BONE_DATA")
            elif detected:
                box.label(text=f"Viseme set: {detected}", icon="CHECKMARK")
            else:
                _wrapped(box, problem, icon="ERROR")
        layout.prop(settings, "language")
        layout.prop(settings, "enhance")
        layout.prop(settings, "dereverb")
        col = layout.column(align=True)
        col.prop(settings, "strength", slider=True)
        col.prop(settings, "smoothing", slider=True)
        col.prop(settings, "breath", slider=True)

        state = getattr(context.window_manager, "lipsync_job", None)
        running = state is not None and state.status == "RUNNING"
        layout.prop(settings, "all_selected")
        count = len(operators.target_names(context, "")) if settings.all_selected else 1
        row = layout.row()
        row.scale_y = 1.5
        row.enabled = not running
        row.operator("lipsync.generate", icon="PLAY_SOUND",
                     text=f"Generate Lip Sync ({count} objects)" if count > 1 else "Generate Lip Sync")
        layout.operator("lipsync.export_animation", icon="EXPORT", text="Export GLB / FBX...")
        if state is None:
            return
        if running:
            layout.progress(factor=state.progress / 100.0, text=f"{state.stage} {state.progress:.0f}%  (Esc cancels)")
        elif state.message:
            icon = {"DONE": "CHECKMARK", "ERROR": "ERROR", "CANCELLED": "CANCEL"}.get(state.status, "INFO")
            _wrapped(layout, state.message, icon=icon)


class LIPSYNC_PT_warnings(_SubPanel, bpy.types.Panel):
    """Warnings of the last result (unknown words, low confidence, skipped channels)."""

    bl_idname = "LIPSYNC_PT_warnings"
    bl_label = "Last Result Warnings"

    @classmethod
    def poll(cls, context: Any) -> bool:
        state = getattr(context.window_manager, "lipsync_job", None)
        return state is not None and bool(state.warnings)

    def draw(self, context: Any) -> None:
        for line in context.window_manager.lipsync_job.warnings.splitlines()[:20]:
            _wrapped(self.layout, line, icon="INFO")


class LIPSYNC_PT_mapping(_SubPanel, bpy.types.Panel):
    """Per-object overrides of the viseme -> shape key mapping."""

    bl_idname = "LIPSYNC_PT_mapping"
    bl_label = "Custom Mapping"

    @classmethod
    def poll(cls, context: Any) -> bool:
        obj = context.active_object
        return obj is not None and getattr(obj, "lipsync", None) is not None

    def draw(self, context: Any) -> None:
        obj = context.active_object
        layout = self.layout
        layout.label(text="Viseme -> shape key (overrides the preset):")
        row = layout.row()
        row.template_list("LIPSYNC_UL_mapping", "", obj.lipsync, "mapping", obj.lipsync, "mapping_index", rows=3)
        col = row.column(align=True)
        col.operator("lipsync.mapping_add", icon="ADD", text="")
        col.operator("lipsync.mapping_remove", icon="REMOVE", text="")


class LIPSYNC_PT_face(_SubPanel, bpy.types.Panel):
    """Procedural face motion: blinks, brows, head (docs/face.md)."""

    bl_idname = "LIPSYNC_PT_face"
    bl_label = "Face Motion"

    @classmethod
    def poll(cls, context: Any) -> bool:
        return getattr(context.scene, "lipsync", None) is not None

    def draw(self, context: Any) -> None:
        settings = context.scene.lipsync
        layout = self.layout
        for layer in ("blink", "brows", "head", "gaze"):
            row = layout.row(align=True)
            row.prop(settings, f"face_{layer}")
            sub = row.row(align=True)
            sub.active = bool(getattr(settings, f"face_{layer}"))
            sub.prop(settings, f"face_{layer}_strength", text="Strength")
        row = layout.row(align=True)
        row.prop(settings, "face_expression")
        sub = row.row(align=True)
        sub.active = settings.face_expression != "neutral"
        sub.prop(settings, "face_expression_strength", text="Intensity")
        layout.prop(settings, "face_level")
        layout.prop(settings, "face_seed")


class LIPSYNC_PT_bones(_SubPanel, bpy.types.Panel):
    """Bone mouth: viseme poses, jaw and tongue bones of the armature (docs/bones.md)."""

    bl_idname = "LIPSYNC_PT_bones"
    bl_label = "Bone Mouth"

    @classmethod
    def poll(cls, context: Any) -> bool:
        obj = context.active_object
        return obj is not None and getattr(obj, "lipsync", None) is not None

    def draw_header(self, context: Any) -> None:
        obj = context.active_object
        row = self.layout.row()
        row.active = not rig.is_bone_target(obj)  # bone-only targets always use it
        row.prop(obj.lipsync, "bone_mouth", text="")

    def draw(self, context: Any) -> None:
        from ..core.animate import poses
        from .face import armature_of

        obj = context.active_object
        settings = obj.lipsync
        layout = self.layout
        arm = armature_of(obj)
        if arm is None:
            _wrapped(layout, "No armature: parent the mesh to the face rig (or add an Armature modifier).", "INFO")
            return
        layout.active = bool(settings.bone_mouth) or rig.is_bone_target(obj)
        layout.label(text=f"Armature: {arm.name}", icon="ARMATURE_DATA")
        layout.prop(settings, "pose_action")
        row = layout.row()
        row.active = settings.pose_action is None
        row.prop(settings, "pose_prefix")
        names = [b.name for b in arm.pose.bones] if arm.pose is not None else []
        row = layout.row(align=True)
        row.prop(settings, "jaw")
        sub = row.row(align=True)
        sub.active = bool(settings.jaw)
        sub.prop(settings, "jaw_angle", text="Angle")
        jaw = poses.find_jaw_bone(names)
        layout.label(text=f"Jaw bone: {jaw}" if jaw else "No jaw bone found", icon="BONE_DATA" if jaw else "INFO")
        layout.prop(settings, "tongue")


CLASSES = (
    LIPSYNC_UL_mapping,
    LIPSYNC_PT_main,
    LIPSYNC_PT_warnings,
    LIPSYNC_PT_mapping,
    LIPSYNC_PT_face,
    LIPSYNC_PT_bones,
)


def draw_export_menu(self: Any, context: Any) -> None:  # noqa: ARG001 (Blender passes it)
    """File > Export entry for the baked lip sync (GLB/glTF/FBX with the shape-key animation)."""
    self.layout.operator("lipsync.export_animation", text="Lip Sync Animation (.glb/.fbx)")


def add_menus() -> None:
    """Add the File > Export entry (once, even if called twice)."""
    remove_menus()
    bpy.types.TOPBAR_MT_file_export.append(draw_export_menu)


def remove_menus() -> None:
    """Remove the File > Export entry if present."""
    bpy.types.TOPBAR_MT_file_export.remove(draw_export_menu)
