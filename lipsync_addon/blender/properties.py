"""Settings stored in .blend files (Scene.lipsync, Object.lipsync) and the runtime job state.

Job status lives on the window manager (``WindowManager.lipsync_job``): it is
runtime-only, never saved, and writing it does not dirty or change the scene.
"""

from __future__ import annotations

from typing import Any

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    FloatProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)

from ..core.types import DEFAULT_BREATH, DEFAULT_SMOOTHING, DEFAULT_STRENGTH

_VISEME_SET_ITEMS: list[tuple[str, str, str]] = []


def viseme_set_names() -> list[str]:
    """Preset names from the core ("auto" excluded); empty if the core cannot list them."""
    try:
        from ..core import visemes

        return list(visemes.list_viseme_sets())
    except (ImportError, AttributeError, OSError, ValueError):
        return []


def scene_script_text(settings: Any) -> str:
    """The scene's transcript as written (typed text, a text block, or a .txt / .srt / .vtt file): plain
    text, subtitles or a script with speaker labels; the pipeline reads it. "" when the source is None.

    Raises:
        TranscriptError: no text block or file chosen, or the file cannot be read.
    """
    from ..core.transcript_file import read_script_file
    from ..core.types import TranscriptError

    source = settings.transcript_source
    if source == "TEXT":
        return settings.transcript
    if source == "DATABLOCK":
        if settings.transcript_text is None:
            raise TranscriptError("Transcript source is 'Text Block' but no text block is selected.")
        return settings.transcript_text.as_string()
    if source == "FILE":
        if not settings.transcript_path:
            raise TranscriptError("Transcript source is 'File' but no .txt, .srt or .vtt file is selected.")
        return read_script_file(bpy.path.abspath(settings.transcript_path))
    return ""


def _script_speakers(_self: Any, context: Any, edit_text: str) -> list[str]:
    """The speakers the scene's transcript names, for the Speaker field's search list."""
    from ..core.transcript_file import speakers
    from ..core.types import LipSyncError

    settings = getattr(context.scene, "lipsync", None)
    try:
        names = speakers(scene_script_text(settings)) if settings is not None else []
    except LipSyncError:
        return []
    return [n for n in names if edit_text.casefold() in n.casefold()]


def _viseme_set_items(_self: Any, _context: Any) -> list[tuple[str, str, str]]:
    # Blender keeps only pointers to these strings: the list must stay alive (module global).
    if not _VISEME_SET_ITEMS:
        _VISEME_SET_ITEMS.append(("auto", "Auto", "Detect the viseme set from the shape-key names"))
        for name in viseme_set_names():
            _VISEME_SET_ITEMS.append((name, name.replace("_", " ").title(), f"The '{name}' preset"))
    return _VISEME_SET_ITEMS


class LIPSYNC_PG_mapping_entry(bpy.types.PropertyGroup):
    """One user override: canonical viseme -> shape key with a weight."""

    viseme: StringProperty(name="Viseme", description="Canonical viseme (sil PP FF TH DD kk CH SS nn RR aa E I O U)")
    shape_key: StringProperty(name="Shape Key", description="Shape key that shows this viseme")
    weight: FloatProperty(name="Weight", default=1.0, min=0.0, max=1.0)


def _pose_action_poll(_self: Any, action: Any) -> bool:
    """Offer only actions with pose markers that Lip Sync did not create (the user's pose libraries)."""
    return len(action.pose_markers) > 0 and not bool(action.get("lipsync_generated", False))


class LIPSYNC_PG_object(bpy.types.PropertyGroup):
    """Per-character settings (Object.lipsync)."""

    viseme_set: EnumProperty(
        name="Viseme Set",
        description="Naming of the mouth shape keys (or mouth poses); Auto detects it from their names",
        items=_viseme_set_items,
    )
    mapping: CollectionProperty(type=LIPSYNC_PG_mapping_entry, name="Custom Mapping")
    mapping_index: IntProperty(name="Active Mapping Entry", default=0)
    speaker: StringProperty(
        name="Speaker",
        description="This character's name in a script or subtitles that say who speaks (ANNA: ..., <v Anna>): "
        "only its lines move this mouth. Empty animates every line",
        search=_script_speakers,
    )
    bone_mouth: BoolProperty(
        name="Bone Mouth",
        default=False,
        description="Also drive the mouth bones of the mesh's armature (an armature, or a mesh without shape "
        "keys, always uses its bones)",
    )
    pose_action: PointerProperty(
        type=bpy.types.Action,
        name="Pose Action",
        poll=_pose_action_poll,
        description="Your pose library: an action with one pose marker per mouth pose, named after a viseme "
        "(MBP, AI, O ... or viseme_PP, viseme_aa ...); it is only read, never changed",
    )
    pose_prefix: StringProperty(
        name="Pose Prefix",
        description="Or: the mouth poses are actions / pose assets named <prefix><viseme> (e.g. Mouth_MBP)",
    )
    jaw: BoolProperty(name="Jaw", default=True, description="Open the jaw bone with the mouth (unless a pose keys it)")
    jaw_angle: FloatProperty(
        name="Jaw Angle",
        default=0.3,
        min=0.0,
        max=1.2,
        subtype="ANGLE",
        description="Jaw rotation when the mouth is fully open (about the bone's X axis, chin down)",
    )
    tongue: BoolProperty(
        name="Tongue", default=True, description="Raise the tongue bone on tongue sounds (when the analysis has them)"
    )


class LIPSYNC_PG_scene(bpy.types.PropertyGroup):
    """Per-scene settings for the next Generate (Scene.lipsync)."""

    clip_source: EnumProperty(
        name="Clip",
        items=[
            ("FILE", "File", "An audio file on disk"),
            ("STRIP", "Sound Strip", "A sound strip already in the sequencer (its start frame is used)"),
        ],
        default="FILE",
    )
    audio_path: StringProperty(name="Audio File", subtype="FILE_PATH",
                               description="The dialogue: WAV, FLAC, OGG, MP3, M4A, or anything else Blender plays "
                                           "(a video's sound too)")
    sound_strip: StringProperty(name="Sound Strip", description="Name of a sound strip in the sequencer")
    transcript_source: EnumProperty(
        name="Transcript",
        items=[
            ("NONE", "None", "Recognize the speech (less accurate than with the text)"),
            ("TEXT", "Text", "Type or paste the line"),
            ("DATABLOCK", "Text Block", "A text datablock from the Text Editor"),
            ("FILE", "File", "A .txt file, or .srt / .vtt subtitles (their text)"),
        ],
        default="TEXT",
    )
    transcript: StringProperty(name="Text", description="The spoken line; empty recognizes the speech")
    transcript_text: PointerProperty(type=bpy.types.Text, name="Text Block")
    transcript_path: StringProperty(name="Transcript File", subtype="FILE_PATH",
                                    description="The line's text: a .txt file, or .srt / .vtt subtitles")
    start_frame: IntProperty(name="Start Frame", default=1, description="Frame where the clip starts")
    line_markers: BoolProperty(
        name="Line Markers",
        default=False,
        description="Put a timeline marker at the start of each line of the transcript (speaker and first words); "
        "generating again replaces them, other markers are never touched",
    )
    dereverb: BoolProperty(
        name="Reduce Room Echo",
        default=False,
        description="For dialogue recorded in a reverberant room: remove the late echo (WPE) before the analysis, "
        "and from the enhanced sound when Enhance Audio is on. The original file is never changed",
    )
    all_selected: BoolProperty(
        name="All Selected",
        default=False,
        description="Generate for the active object and every other selected mesh with shape keys, each with its "
        "own Speaker, viseme set and mapping, one after the other (one undo step; the speech is analysed once)",
    )
    line_markers_record: StringProperty(
        name="Line Markers Placed",
        options={"HIDDEN"},
        description="The timeline markers each object's lip sync placed (JSON: object name -> [name, frame] "
        "pairs), so that generating again removes exactly those",
    )
    reference_path: StringProperty(
        name="Sync Reference",
        subtype="FILE_PATH",
        description="A recording or video of the same performance (e.g. the camera's own sound): Sync to "
        "Reference finds where the clip sits in it and sets the Start Frame",
    )
    strength: FloatProperty(
        name="Strength", default=DEFAULT_STRENGTH, min=0.0, max=2.0, description="Mouth motion amplitude"
    )
    smoothing: FloatProperty(
        name="Smoothing", default=DEFAULT_SMOOTHING, min=0.0, max=1.0, description="0 = crisp shapes, 1 = very smooth"
    )
    breath: FloatProperty(
        name="Breath", default=DEFAULT_BREATH, min=0.0, max=1.0,
        description="Lips part slightly to inhale before a phrase that follows a pause (0 = off)",
    )
    add_sound_strip: BoolProperty(name="Add Sound Strip", default=True, description="Put the clip in the sequencer")
    language: StringProperty(
        name="Language",
        default="en",
        description="ISO 639 code of the dialogue (en, en-gb, es, fr, de, ja, sv, ...). English uses the bundled "
        "pocketsphinx model; other languages need the transcript (espeak-ng alignment) or a Vosk model "
        "folder in the add-on preferences",
    )
    enhance: EnumProperty(
        name="Enhance Audio",
        items=[
            ("off", "Off", "Use the clip as it is"),
            ("light", "Light", "High-pass, hum removal, gentle noise reduction, loudness"),
            ("standard", "Standard", "Noise reduction, speech EQ and loudness (timing unchanged)"),
            ("strong", "Strong", "Cleanest sound for very noisy recordings (DeepFilterNet3 and RNNoise neural "
             "denoisers blended, about 2.5 times the time of Standard)"),
        ],
        default="off",
        description="Clean the dialogue before analysis; with Add Sound Strip the cleaned file "
        "(<clip>_enhanced.wav next to the .blend) plays and the original is kept muted",
    )
    face_blink: BoolProperty(name="Blinks", default=False, description="Key eye blinks (eyeBlink_L/R, Blink...)")
    face_blink_strength: FloatProperty(name="Blink Strength", default=1.0, min=0.0, max=2.0)
    face_brows: BoolProperty(
        name="Brows", default=False, description="Raise brows on emphasis and questions, furrow on low emphasis"
    )
    face_brows_strength: FloatProperty(name="Brow Strength", default=1.0, min=0.0, max=2.0)
    face_head: BoolProperty(
        name="Head Motion", default=False,
        description="Nods, tilts and drift on the head (or neck) bone of the mesh's armature",
    )
    face_head_strength: FloatProperty(name="Head Strength", default=1.0, min=0.0, max=2.0)
    face_gaze: BoolProperty(
        name="Gaze", default=False,
        description="Saccades and fixations on eye-look shape keys (eyeLook*) and the armature's eye bones",
    )
    face_gaze_strength: FloatProperty(name="Gaze Strength", default=1.0, min=0.0, max=2.0)
    face_expression: EnumProperty(
        name="Expression",
        items=[
            ("neutral", "Neutral", "No held expression"),
            ("smile", "Smile", "A slight, living smile (mouthSmile, cheekSquint, Joy...)"),
            ("serious", "Serious", "Pressed lips and a slight frown (mouthPress, browDown...)"),
        ],
        default="neutral",
    )
    face_expression_strength: FloatProperty(
        name="Intensity", default=1.0, min=0.0, max=2.0, description="How strong the held expression is"
    )
    face_level: EnumProperty(
        name="Level",
        items=[
            ("subtle", "Subtle", "Small motion, fewer blinks"),
            ("natural", "Natural", "Everyday conversation"),
            ("expressive", "Expressive", "Bigger brows and head motion"),
        ],
        default="natural",
    )
    face_seed: IntProperty(name="Seed", default=0, min=0, description="Same clip and seed give the same motion")


class LIPSYNC_PG_job(bpy.types.PropertyGroup):
    """Runtime state of the current/last job (WindowManager.lipsync_job, never saved)."""

    status: EnumProperty(
        name="Status",
        items=[
            ("IDLE", "Idle", ""),
            ("RUNNING", "Running", ""),
            ("DONE", "Done", ""),
            ("ERROR", "Error", ""),
            ("CANCELLED", "Cancelled", ""),
        ],
        default="IDLE",
    )
    progress: FloatProperty(name="Progress", min=0.0, max=100.0, subtype="PERCENTAGE")
    stage: StringProperty(name="Stage")
    message: StringProperty(name="Message")
    warnings: StringProperty(name="Warnings", description="Warnings of the last result, one per line")
    detected_set: StringProperty(name="Viseme Set Used")


CLASSES = (LIPSYNC_PG_mapping_entry, LIPSYNC_PG_object, LIPSYNC_PG_scene, LIPSYNC_PG_job)


def add_pointers() -> None:
    """Attach the namespaced PointerProperties to Scene, Object and WindowManager."""
    bpy.types.Scene.lipsync = PointerProperty(type=LIPSYNC_PG_scene)
    bpy.types.Object.lipsync = PointerProperty(type=LIPSYNC_PG_object)
    bpy.types.WindowManager.lipsync_job = PointerProperty(type=LIPSYNC_PG_job)


def remove_pointers() -> None:
    """Detach the PointerProperties (tolerates ones that are already gone)."""
    for owner, attr in (
        (bpy.types.Scene, "lipsync"),
        (bpy.types.Object, "lipsync"),
        (bpy.types.WindowManager, "lipsync_job"),
    ):
        if hasattr(owner, attr):
            delattr(owner, attr)


def object_bone_options(obj: Any) -> Any:
    """The object's Bone Mouth panel settings as a :class:`.bones.BoneOptions` (defaults without settings)."""
    from .bones import BoneOptions

    settings = getattr(obj, "lipsync", None)
    if settings is None:
        return BoneOptions()
    return BoneOptions(
        enabled=bool(settings.bone_mouth),
        pose_action=settings.pose_action.name if settings.pose_action is not None else "",
        pose_prefix=settings.pose_prefix.strip(),
        jaw=bool(settings.jaw),
        jaw_angle=float(settings.jaw_angle),
        tongue=bool(settings.tongue),
    )


def object_mapping_overrides(obj: Any) -> dict[str, dict[str, float]]:
    """The object's panel mapping list as viseme -> {shape key: weight}."""
    mapping: dict[str, dict[str, float]] = {}
    settings = getattr(obj, "lipsync", None)
    if settings is None:
        return mapping
    for entry in settings.mapping:
        if entry.viseme and entry.shape_key:
            mapping.setdefault(entry.viseme, {})[entry.shape_key] = float(entry.weight)
    return mapping
