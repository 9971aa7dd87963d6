"""Baked lip sync -> GLB / glTF / FBX for game engines (Blender's own exporters).

What goes into the file: the chosen objects (plus their parent armatures, so bone animation
travels too), their shape keys as morph targets and the *active* action of each animated
datablock: on the shape keys it becomes a glTF ``weights`` animation (FBX: blend-shape channel
animation). glTF drops NLA-only animation, so :func:`export_animation` refuses objects whose shape
keys carry strips but no active action instead of silently writing a file without motion.

glTF animation time ``t`` (s) corresponds to scene frame ``t * fps`` (no slide to zero: the clip's
first frame keeps its place, like the sound strip). Selection, active object and current frame are
restored in ``finally``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import bpy
from bpy.props import EnumProperty, StringProperty
from bpy_extras.io_utils import ExportHelper

from ..core.types import DEFAULT_BREATH, DEFAULT_SMOOTHING, DEFAULT_STRENGTH, LipSyncError, RigError
from . import bake

#: file format -> file extension
EXTENSIONS = {"GLB": ".glb", "GLTF_SEPARATE": ".gltf", "FBX": ".fbx"}


@dataclass
class ExportReport:
    """What :func:`export_animation` wrote.

    Attributes:
        filepath: the written file (absolute).
        file_format: "GLB", "GLTF_SEPARATE" or "FBX".
        objects: names of the exported objects (parent armatures included).
        actions: names of the actions exported (one per animated datablock).
        fps: scene frames per second; glTF time t (s) = frame / fps.
        frame_start: first keyed frame over the exported actions.
        frame_end: last keyed frame.
        warnings: anything the user should know.
    """

    filepath: str
    file_format: str
    objects: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    fps: float = 24.0
    frame_start: float = 0.0
    frame_end: float = 0.0
    warnings: list[str] = field(default_factory=list)


def check_output_path(filepath: str, file_format: str) -> str:
    """Absolute output path with the right extension; raise LipSyncError if it cannot be written."""
    if file_format not in EXTENSIONS:
        raise LipSyncError(f"Unknown export format '{file_format}'; use one of {', '.join(EXTENSIONS)}.")
    if not filepath:
        raise LipSyncError("No output file given for the export.")
    path = os.path.abspath(bpy.path.abspath(filepath))
    ext = EXTENSIONS[file_format]
    if not path.lower().endswith(ext):
        path += ext
    if os.path.isdir(path):
        raise LipSyncError(f"Cannot export to '{path}': it is a folder.")
    parent = os.path.dirname(path)
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as exc:
        raise LipSyncError(f"Cannot create the folder '{parent}': {exc.strerror or exc}.") from exc
    if not os.access(parent, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise LipSyncError(f"Cannot write '{path}': permission denied. Pick another folder.")
    return path


def _animated_action(datablock: Any) -> Any:
    """The active action of ``datablock`` or None; raise if it only has NLA strips (glTF drops them)."""
    anim = getattr(datablock, "animation_data", None)
    if anim is None:
        return None
    if anim.action is None and any(len(track.strips) for track in anim.nla_tracks):
        raise RigError(
            f"'{datablock.name}' is animated only through NLA strips, which glTF export drops. "
            "Generate Lip Sync again (it bakes into an active action) or assign the strip's action."
        )
    return anim.action


def collect_export_objects(object_names: Sequence[str]) -> tuple[list[Any], list[Any]]:
    """Objects to export (named ones + parent armatures) and the actions they carry.

    Raises RigError if an object is missing, not a mesh/armature, or nothing is animated.
    """
    if not object_names:
        raise RigError("No object given to export.")
    objects: list[Any] = []
    actions: list[Any] = []
    for name in object_names:
        obj = bpy.data.objects.get(name)
        if obj is None:
            raise RigError(f"There is no object named '{name}' to export.")
        if obj.type not in {"MESH", "ARMATURE"}:
            raise RigError(f"'{name}' is a {obj.type.lower()}, not a mesh or armature; nothing to export.")
        chain = [obj]
        parent = obj.parent
        while parent is not None:
            if parent.type == "ARMATURE":
                chain.append(parent)
            parent = parent.parent
        for item in chain:
            if item not in objects:
                objects.append(item)
    for obj in objects:
        for datablock in (obj, getattr(getattr(obj, "data", None), "shape_keys", None)):
            if datablock is None:
                continue
            action = _animated_action(datablock)
            if action is not None and action not in actions:
                actions.append(action)
    if not actions:
        raise RigError(
            f"Nothing is animated on {', '.join(repr(n) for n in object_names)}: generate lip sync first, "
            "then export."
        )
    return objects, actions


def _frame_span(actions: list[Any]) -> tuple[float, float]:
    spans = [tuple(a.frame_range) for a in actions]
    return min(s[0] for s in spans), max(s[1] for s in spans)


def export_animation(
    filepath: str,
    object_names: Sequence[str],
    *,
    file_format: str = "GLB",
    scene_name: str | None = None,
) -> ExportReport:
    """Export the objects with their baked animation as GLB / glTF (+ .bin) / FBX.

    Args:
        filepath: output file; the extension is added when missing.
        object_names: meshes (with lip-sync shape-key actions) or armatures to export.
        file_format: "GLB", "GLTF_SEPARATE" or "FBX".
        scene_name: scene to export from (default: the context scene).

    Returns:
        An :class:`ExportReport`. Raises LipSyncError subclasses with user messages.
    """
    path = check_output_path(filepath, file_format)
    scene = bpy.data.scenes.get(scene_name) if scene_name else bpy.context.scene
    if scene is None:
        raise RigError(f"There is no scene named '{scene_name}'.")
    objects, actions = collect_export_objects(object_names)
    view_layer = bpy.context.view_layer
    view_layer.update()  # objects linked since the last depsgraph update are not listed before this
    missing = [o.name for o in objects if view_layer.objects.get(o.name) is None]
    if missing:
        raise RigError(f"{', '.join(missing)} not in the active view layer; link it to the scene to export it.")

    fps = bake.scene_fps(scene)
    frame_start, frame_end = _frame_span(actions)
    report = ExportReport(
        filepath=path, file_format=file_format, objects=[o.name for o in objects],
        actions=[a.name for a in actions], fps=fps, frame_start=frame_start, frame_end=frame_end,
    )  # fmt: skip
    if frame_start < scene.frame_start or frame_end > scene.frame_end:
        report.warnings.append(
            f"The animation (frames {frame_start:g}-{frame_end:g}) reaches outside the scene range "
            f"{scene.frame_start}-{scene.frame_end}; it is exported whole."
        )
    selected = [o for o in view_layer.objects if o.select_get()]
    active = view_layer.objects.active
    frame = scene.frame_current
    try:
        for obj in selected:
            obj.select_set(False)
        for obj in objects:
            obj.select_set(True)
        view_layer.objects.active = objects[0]
        if file_format == "FBX":
            result = bpy.ops.export_scene.fbx(
                filepath=path, use_selection=True, object_types={"MESH", "ARMATURE", "EMPTY"},
                bake_anim=True, bake_anim_use_all_actions=False, bake_anim_use_nla_strips=False,
                bake_anim_force_startend_keying=True, bake_anim_simplify_factor=0.0, add_leaf_bones=False,
            )  # fmt: skip
        else:
            result = bpy.ops.export_scene.gltf(
                filepath=path, export_format=file_format, use_selection=True,
                export_animations=True, export_animation_mode="ACTIONS", export_force_sampling=True,
                export_frame_range=False, export_anim_slide_to_zero=False,
                export_morph=True, export_morph_animation=True, export_apply=False,
            )  # fmt: skip
    except RuntimeError as exc:
        raise LipSyncError(f"Blender's {file_format} exporter failed on '{path}': {exc}") from exc
    finally:
        for obj in objects:
            if obj.name in view_layer.objects:
                obj.select_set(False)
        for obj in selected:
            if obj.name in view_layer.objects:
                obj.select_set(True)
        view_layer.objects.active = active
        scene.frame_set(frame)
    if "FINISHED" not in result or not os.path.isfile(path):
        raise LipSyncError(f"Blender's {file_format} exporter did not write '{path}'.")
    return report


class LIPSYNC_OT_export_animation(bpy.types.Operator, ExportHelper):
    """Export the mesh with its lip-sync animation (morph targets) as GLB, glTF or FBX"""

    bl_idname = "lipsync.export_animation"
    bl_label = "Export Lip Sync Animation"
    bl_options: ClassVar[set[str]] = {"REGISTER"}

    filename_ext = ".glb"
    filter_glob: StringProperty(default="*.glb;*.gltf;*.fbx", options={"HIDDEN"})
    file_format: EnumProperty(
        name="Format",
        items=(
            ("GLB", "glTF Binary (.glb)", "One file with meshes, morph targets and the weights animation"),
            ("GLTF_SEPARATE", "glTF Separate (.gltf + .bin)", "JSON + binary buffer"),
            ("FBX", "FBX (.fbx)", "Blend-shape animation for Unity / Unreal"),
        ),
        default="GLB",
    )
    object_name: StringProperty(name="Object", description="Mesh to export (empty: the active object)")

    def check(self, context: Any) -> bool:
        """Keep the file extension in step with the chosen format."""
        self.filename_ext = EXTENSIONS[self.file_format]
        return super().check(context)

    def execute(self, context: Any) -> set[str]:
        """Export now; errors are reported, never raised."""
        name = self.object_name or (context.active_object.name if context.active_object else "")
        try:
            report = export_animation(self.filepath, [name], file_format=self.file_format,
                                      scene_name=context.scene.name)
        except LipSyncError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        for warning in report.warnings:
            self.report({"WARNING"}, warning)
        self.report({"INFO"}, f"Exported {', '.join(report.actions)} to {report.filepath}")
        return {"FINISHED"}


CLASSES: tuple[type, ...] = (LIPSYNC_OT_export_animation,)


def bake_line_into_template(
    template: str,
    object_name: str,
    audio_path: str,
    *,
    transcript: str = "",
    viseme_set: str = "auto",
    strength: float = DEFAULT_STRENGTH,
    smoothing: float = DEFAULT_SMOOTHING,
    breath: float = DEFAULT_BREATH,
    pronunciations: dict[str, str] | None = None,
    speaker: str = "",
    language: str = "en",
    vosk_model: str = "",
    dereverb: bool = False,
    blend_path: str = "",
    glb_path: str = "",
    fbx_path: str = "",
) -> Any:
    """Batch helper: open ``template``, lip-sync ``audio_path`` onto ``object_name``, save/export.

    Writes ``blend_path`` (a copy; the template is never overwritten), ``glb_path`` and
    ``fbx_path`` where given. Registers the add-on if needed. Returns the pipeline's
    ``LipSyncResult`` (for the cue files). Raises LipSyncError subclasses with user messages, e.g.
    when the template has no object of that name.
    """
    from . import api

    if not hasattr(bpy.types, "LIPSYNC_OT_generate"):
        from .. import register

        register()
    try:
        bpy.ops.wm.open_mainfile(filepath=template, load_ui=False)
    except RuntimeError as exc:
        raise LipSyncError(f"Cannot open the template '{template}': {exc}") from exc
    if bpy.data.objects.get(object_name) is None:
        raise RigError(f"The template '{os.path.basename(template)}' has no object named '{object_name}'.")
    report = api.generate(object_name, audio_path, transcript=transcript, viseme_set=viseme_set,
                          strength=strength, smoothing=smoothing, breath=breath, pronunciations=pronunciations,
                          speaker=speaker, language=language, vosk_model=vosk_model, dereverb=dereverb)
    if glb_path:
        export_animation(glb_path, [report.object_name], file_format="GLB")
    if fbx_path:
        export_animation(fbx_path, [report.object_name], file_format="FBX")
    if blend_path:
        os.makedirs(os.path.dirname(os.path.abspath(blend_path)), exist_ok=True)
        try:
            bpy.ops.wm.save_as_mainfile(filepath=os.path.abspath(blend_path), copy=True)
        except RuntimeError as exc:
            raise LipSyncError(f"Could not save '{blend_path}': {exc}") from exc
    result = report.result
    result.warnings = list(report.warnings)
    return result
