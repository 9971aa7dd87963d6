"""Python API for scripts: generate lip sync on an object, blocking.

The operator, ``scripts/batch_lipsync.py`` and the demo all go through the
three steps below, so every door behaves the same:

1. :func:`prepare` (main thread): resolve names, validate early, snapshot
   everything the analysis needs into plain data (:class:`GenerateRequest`).
2. :func:`analyze` (any thread, never touches bpy): ``core.pipeline.run``.
3. :func:`apply` (main thread): re-resolve the object and scene by name, bake
   the curves into the add-on's own action, place the sound strip.

:func:`generate` runs the three in a row.

Example::

    from lipsync_addon.blender import api
    report = api.generate("Head", "/path/line.wav", transcript="Hello there")
    print(report.action_name, report.frames_keyed, report.warnings)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

import bpy

from ..core.recognize import get_recognizer
from ..core.types import (
    DEFAULT_BREATH,
    DEFAULT_SMOOTHING,
    DEFAULT_STRENGTH,
    AudioError,
    CancelToken,
    FaceConfig,
    LipSyncError,
    LipSyncResult,
    PipelineConfig,
    ProgressFn,
    RigError,
    TranscriptError,
    no_progress,
)
from . import bake, compat, enhanced, markers, rig, strips
from . import bones as bone_mouth
from . import face as face_bake

#: Clips at least this long (seconds) are checked for clock drift against a sync reference.
DRIFT_CHECK_S = 30.0

#: Channels the pipeline always produces that need no shape key (used by jaw bones, 2D mouths).
SILENT_CHANNELS = frozenset({"mouth_open", "tongue_up"})


@dataclass
class GenerateRequest:
    """Plain-data snapshot of one job, taken on the main thread (safe to hand to a worker).

    Attributes:
        object_name: object to animate (re-resolved by name when baking).
        scene_name: scene for fps, sequencer and frame range.
        audio_path: absolute path of the clip.
        config: the pipeline configuration (fps, viseme set, channel names, ...).
        start_frame: scene frame where the clip's t = 0 s lands.
        fps: scene frames per second (``fps / fps_base``).
        add_sound_strip: place the clip in the sequencer when baking.
        clip: clip label for the action name.
        enhance: enhancement preset ("off", "light", "standard", "strong").
        enhanced_target: where the enhanced clip goes (None when enhance is off or no strip is wanted).
        enhanced_written: the enhanced file written by :func:`analyze` (set in the worker).
        mouth: the bone-mouth plan (poses, jaw/tongue bones), None when no bones are driven.
        bone_only: the target has no mouth shape keys: only bones are keyed.
        line_markers: put a timeline marker at each line's start (docs/blender.md); off removes this
            object's earlier ones.
    """

    object_name: str
    scene_name: str
    audio_path: str
    config: PipelineConfig
    start_frame: int
    fps: float
    add_sound_strip: bool = True
    clip: str = "clip"
    enhance: str = "off"
    enhanced_target: enhanced.EnhancedTarget | None = None
    enhanced_written: enhanced.WrittenFile | None = None
    mouth: bone_mouth.MouthPlan | None = None
    bone_only: bool = False
    line_markers: bool = False


@dataclass
class GenerateReport:
    """What :func:`generate` / :func:`apply` did.

    Attributes:
        result: the full pipeline result (words, phones, visemes, curves, provenance).
        object_name: the animated object.
        action_name: the add-on's action on the object's shape keys.
        viseme_set: the viseme set used.
        channels: shape keys that received keys.
        frame_start: first frame of the clip.
        frame_end: last frame of the clip.
        frames_keyed: frames spanned by the keys (``frame_end - frame_start + 1``).
        keys_written: keyframes written over all channels (after key reduction).
        strip_name: the sound strip playing the clip ("" if none); the enhanced clip's when enhancing.
        enhanced_path: the enhanced clip as stored in Blender (``//name_enhanced.wav``; "" if none).
        original_strip_name: the original clip's strip, muted while the enhanced one plays ("" if none).
        warnings: everything the user should know (unknown words, skipped channels, ...).
        face_channels: face layer -> shape keys (or head channels) it keyed.
        head_action_name: the add-on's action on the armature with the head motion ("" if none).
        head_bone: the bone that received the head motion ("" if none).
        gaze_bones: the eye bones that received the gaze (none when the rig has no eye bones).
        armature_action_name: the add-on's action on the armature with the bone mouth ("" if none).
        bone_channels: bone-mouth channels keyed (``pose.bones["jaw"].rotation_quaternion#1`` ...).
        mouth_bones: bones that received bone-mouth keys.
        jaw_bone: the jaw bone keyed from ``mouth_open`` ("" if none or the poses drive it).
        pose_set: viseme set detected from the mouth pose names ("" without poses).
    """

    result: LipSyncResult
    object_name: str
    action_name: str
    viseme_set: str
    channels: list[str] = field(default_factory=list)
    frame_start: int = 0
    frame_end: int = 0
    frames_keyed: int = 0
    keys_written: int = 0
    strip_name: str = ""
    enhanced_path: str = ""
    original_strip_name: str = ""
    warnings: list[str] = field(default_factory=list)
    face_channels: dict[str, list[str]] = field(default_factory=dict)
    head_action_name: str = ""
    head_bone: str = ""
    gaze_bones: list[str] = field(default_factory=list)
    armature_action_name: str = ""
    bone_channels: list[str] = field(default_factory=list)
    mouth_bones: list[str] = field(default_factory=list)
    jaw_bone: str = ""
    pose_set: str = ""


def resolve_scene(scene_name: str | None) -> Any:
    """The scene called ``scene_name``, or the context scene when None/empty."""
    if not scene_name:
        scene = bpy.context.scene
        if scene is None:
            raise RigError("There is no scene to work in.")
        return scene
    scene = bpy.data.scenes.get(scene_name)
    if scene is None:
        raise RigError(f"There is no scene named '{scene_name}'.")
    return scene


def check_speaker(transcript: str, speaker: str) -> str:
    """The speaker name to use ("" for every line), checked against the transcript's speakers.

    Raises:
        TranscriptError: a speaker is given without a transcript, or the transcript does not name it.
    """
    from ..core import speakers

    speaker = (speaker or "").strip()
    if not speaker:
        return ""
    if not (transcript or "").strip():
        raise TranscriptError(
            f"Speaker '{speaker}' is set, but there is no transcript: the script that says who speaks each line is "
            "needed to tell the speakers apart. Give the transcript, or clear the speaker."
        )
    speakers.select(transcript, speaker)
    return speaker


def read_transcript_file(path: str) -> str:
    """The line's text from a transcript file (``//`` = .blend-relative): plain text in UTF-8, UTF-16 or
    Latin-1, or the cue text of .srt / .vtt subtitles (:mod:`lipsync_addon.core.transcript_file`).

    Raises:
        TranscriptError: unreadable file, or subtitles without text.
    """
    from ..core import transcript_file

    return transcript_file.read_transcript_file(bpy.path.abspath(path))


def read_script_file(path: str) -> str:
    """A transcript file as written (``//`` = .blend-relative): plain text, a script with speaker labels, or
    .srt / .vtt subtitles, for ``generate(transcript=..., speaker=...)``, which reads them.

    Raises:
        TranscriptError: unreadable file, or subtitles without text.
    """
    from ..core import transcript_file

    return transcript_file.read_script_file(bpy.path.abspath(path))


def read_pronunciations(path: str) -> dict[str, str]:
    """A pronunciation dictionary file (``//`` = .blend-relative) for ``generate(pronunciations=...)``.

    Raises:
        TranscriptError: unreadable file or a bad line (with its number).
    """
    from ..core import pronunciations

    return pronunciations.read(bpy.path.abspath(path))


def load_custom_mapping(path: str) -> dict[str, dict[str, float]]:
    """Load a user mapping JSON (see ``core.visemes.load_custom_mapping``); ``//`` paths are .blend-relative.

    Returns {} for an empty path; raises RigError for a missing or invalid file.
    """
    if not path:
        return {}
    from ..core import visemes

    return visemes.load_custom_mapping(bpy.path.abspath(path))


def _check_audio_path(audio_path: str) -> str:
    """Absolute path of an existing file, or raise AudioError (deep checks happen in the core)."""
    if not audio_path:
        raise AudioError("No audio clip given. Pick a WAV, FLAC, OGG, MP3 or M4A file, or a video with sound.")
    full = os.path.abspath(bpy.path.abspath(audio_path))
    if not os.path.isfile(full):
        raise AudioError(f"The audio file '{audio_path}' does not exist.")
    return full


def prepare(
    object_name: str,
    audio_path: str,
    *,
    transcript: str = "",
    speaker: str = "",
    pronunciations: dict[str, str] | None = None,
    viseme_set: str = "auto",
    start_frame: int | None = None,
    strength: float = DEFAULT_STRENGTH,
    smoothing: float = DEFAULT_SMOOTHING,
    breath: float = DEFAULT_BREATH,
    scene_name: str | None = None,
    add_sound_strip: bool = True,
    custom_mapping: dict[str, dict[str, float]] | None = None,
    enhance: str = "off",
    language: str = "en",
    vosk_model: str = "",
    face: FaceConfig | None = None,
    bones: bone_mouth.BoneOptions | None = None,
    line_markers: bool = False,
    dereverb: bool = False,
) -> GenerateRequest:
    """Validate inputs on the main thread and snapshot them as plain data.

    ``start_frame`` None means: where the clip already sits in the sequencer,
    else the scene's start frame. ``enhance`` other than "off" cleans the clip before the
    analysis and (with ``add_sound_strip``) plays the cleaned file instead of the original; its
    location is chosen and checked for write access here. ``face`` turns on procedural blinks,
    brows and head motion (docs/face.md). ``bones`` drives a bone mouth (mouth poses, jaw, tongue;
    docs/bones.md): always on an armature or a mesh with an armature and no shape keys, on a mesh with
    shape keys only when ``bones.enabled``. ``dereverb`` reduces room echo before the analysis and, with
    ``enhance``, in the enhanced sound. Raises LipSyncError subclasses with user messages.
    """
    enhance = check_enhance(enhance)
    face = check_face(face)
    speaker = check_speaker(transcript, speaker)
    get_recognizer(language or "en", vosk_model=vosk_model)  # unknown language / bad model: refuse early
    scene = resolve_scene(scene_name)
    obj = bpy.data.objects.get(object_name) if object_name else None
    options = replace(bones) if bones is not None else bone_mouth.BoneOptions()
    bone_only = rig.is_bone_target(obj)
    mouth = None
    if bone_only:
        mouth = _plan_mouth(obj, options, viseme_set=viseme_set, custom_mapping=custom_mapping)
        channel_names = list(mouth.poses)
        if mouth.poses:
            set_name = (viseme_set or "auto") if custom_mapping else mouth.viseme_set
        else:  # jaw (and tongue) only: any set gives the same mouth_open
            set_name, custom_mapping = "oculus", None
    else:
        targets = rig.resolve_targets(obj, viseme_set or "auto", custom_mapping, object_name=object_name)
        bake.check_bakeable(obj)
        if options.enabled:
            mouth = _plan_mouth(obj, options)
        channel_names = list(targets.channel_names)
        set_name = (viseme_set or "auto") if custom_mapping else targets.viseme_set
    if face.head:
        arm, bone = face_bake.head_target(obj)
        if arm is not None and bone:
            face_bake.check_head_bakeable(arm)
    if face.gaze:
        arm, eyes = face_bake.eye_targets(obj)
        if arm is not None and all(eyes):
            bake.check_action_free(arm, f"The armature '{arm.name}'", " or turn Gaze off")
    full_audio = _check_audio_path(audio_path)
    if start_frame is None:
        existing = strips.find_strips_for_file(scene, full_audio)
        start_frame = round(compat.strip_start(existing[0])) if existing else int(scene.frame_start)
    fps = bake.scene_fps(scene)
    config = PipelineConfig(
        transcript=transcript or "",
        speaker=speaker,
        pronunciations=dict(pronunciations or {}),
        # With a custom mapping the core merges it over the user's choice again (set "custom").
        viseme_set=set_name,
        channel_names=channel_names,
        custom_mapping=dict(custom_mapping or {}),
        fps=fps,
        strength=float(strength),
        smoothing=float(smoothing),
        breath=float(breath),
        enhance=enhance,
        language=language or "en",
        vosk_model=vosk_model,
        face=face,
        dereverb=bool(dereverb),
        reuse_analysis=True,  # generating again with other animation settings, or for another speaker: instant
    )
    target = (enhanced.plan_target(full_audio, enhance, dereverb=bool(dereverb))
              if enhance != "off" and add_sound_strip else None)
    return GenerateRequest(
        object_name=obj.name,
        scene_name=scene.name,
        audio_path=full_audio,
        config=config,
        start_frame=int(start_frame),
        fps=fps,
        add_sound_strip=add_sound_strip,
        clip=bake.clip_label(full_audio),
        enhance=enhance,
        enhanced_target=target,
        mouth=mouth,
        bone_only=bone_only,
        line_markers=bool(line_markers),
    )


def _plan_mouth(
    obj: Any,
    options: bone_mouth.BoneOptions,
    *,
    viseme_set: str = "auto",
    custom_mapping: dict[str, dict[str, float]] | None = None,
) -> bone_mouth.MouthPlan:
    """The bone-mouth plan for ``obj``'s armature; RigError when it has none or nothing to drive."""
    arm = face_bake.armature_of(obj)
    if arm is None or arm.pose is None:
        raise RigError(
            f"Bone Mouth is on, but '{obj.name}' has no armature (parent or Armature modifier). Parent the mesh "
            "to the face rig or turn Bone Mouth off."
        )
    plan = bone_mouth.plan_mouth(arm, options, viseme_set=viseme_set or "auto", custom_mapping=custom_mapping)
    if not plan.drives_anything:
        raise RigError(bone_mouth.nothing_to_drive_message(obj, arm, options))
    bone_mouth.check_mouth_bakeable(arm)
    return plan


def check_face(face: FaceConfig | None) -> FaceConfig:
    """The face settings, validated (None = all layers off); raises LipSyncError on a bad level/strength."""
    from ..core.animate import procedural

    face = replace(face) if face is not None else FaceConfig()
    if face.level not in procedural.LEVELS:
        raise LipSyncError(f"Unknown face motion level '{face.level}'. Choose one of: {', '.join(procedural.LEVELS)}.")
    if face.expression not in procedural.EXPRESSIONS:
        raise LipSyncError(
            f"Unknown expression '{face.expression}'. Choose one of: {', '.join(procedural.EXPRESSIONS)}."
        )
    for name in ("blink_strength", "brows_strength", "head_strength", "gaze_strength", "expression_strength"):
        value = float(getattr(face, name))
        if not 0.0 <= value <= 2.0:
            raise LipSyncError(f"Face motion {name.replace('_', ' ')} must be between 0 and 2, not {value}.")
    return face


def check_enhance(enhance: str) -> str:
    """The enhancement preset name, validated ("" and None mean "off"); raises AudioError."""
    from ..core.enhance import PRESETS

    name = (enhance or "off").lower()
    if name not in PRESETS:
        raise AudioError(f"Unknown audio enhancement '{enhance}'. Choose one of: {', '.join(PRESETS)}.")
    return name


def analyze(
    request: GenerateRequest,
    *,
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
) -> LipSyncResult:
    """Run the core pipeline for ``request``. Never touches bpy: safe in a worker thread.

    With an enhanced target the clip is enhanced once at its own rate (written to a temporary
    file that :func:`apply` moves into place) and the analysis runs on that enhanced signal, except
    where the preset plays DeepFilterNet3's output (strong): the timing then comes from the RNNoise
    chain's output, which aligns better (``core.enhance.analysis_options``).
    """
    from ..core import pipeline
    from ..core.enhance import analysis_options

    target = request.enhanced_target
    if target is None:
        return pipeline.run(request.audio_path, request.config, progress=progress, cancel=cancel)
    from dataclasses import replace

    from ..core.types import Audio

    share = 0.0 if target.reuse else 0.3
    written = enhanced.write_enhanced(
        request.audio_path, target, request.enhance, dereverb=request.config.dereverb,
        progress=lambda f, s: progress(share * f, f"enhancing audio: {s}"), cancel=cancel,
    )
    request.enhanced_written = written
    try:
        if analysis_options(request.enhance).get("neural_denoiser") == "hybrid":
            # the strip plays DeepFilterNet3's output; the timing comes from RNNoise's, which aligns better
            # (where RNNoise is missing, the written file already holds what the analysis would use)
            source: Audio | str = request.audio_path
            config = replace(request.config, enhance=request.enhance)
        else:
            source = Audio(written.samples, written.rate, request.audio_path, written.rate, written.channels)
            config = replace(request.config, enhance="off", dereverb=False)  # already enhanced, at the source rate
        result = pipeline.run(
            source,
            config,
            progress=lambda f, s: progress(share + (1.0 - share) * f, s),
            cancel=cancel,
        )
    except BaseException:
        discard(request)
        raise
    result.warnings[:0] = written.warnings
    result.provenance["enhance"] = written.report or {"preset": request.enhance, "reused": target.path}
    result.provenance["enhanced_audio"] = target.path
    return result


def discard(request: GenerateRequest) -> None:
    """Remove the enhanced file of a job that will not be applied (cancelled, failed). Idempotent."""
    enhanced.discard(request.enhanced_written)


def apply(request: GenerateRequest, result: LipSyncResult) -> GenerateReport:
    """Bake ``result`` into the object named in ``request`` and place the sound strip (main thread).

    The object and scene are looked up again by name: if either was deleted or
    renamed meanwhile, a RigError says so and nothing is changed.
    """
    scene = bpy.data.scenes.get(request.scene_name)
    if scene is None:
        raise RigError(
            f"The scene '{request.scene_name}' was deleted or renamed while lip sync was running; nothing was baked."
        )
    obj = bpy.data.objects.get(request.object_name)
    if obj is None:
        raise RigError(
            f"The object '{request.object_name}' was deleted or renamed while lip sync was running; "
            "nothing was baked. Select it and generate again."
        )
    plan = request.mouth
    arm = bpy.data.objects.get(plan.armature_name) if plan is not None else face_bake.armature_of(obj)
    if plan is not None and (arm is None or arm.type != "ARMATURE"):
        raise RigError(
            f"The armature '{plan.armature_name}' was deleted or renamed while lip sync was running; nothing was baked."
        )
    if plan is not None:
        bone_mouth.check_mouth_bakeable(arm)
    if not request.bone_only:
        rig.check_object(obj, request.object_name)
        bake.check_bakeable(obj)
    target, written = request.enhanced_target, request.enhanced_written
    if target is not None and written is not None:
        enhanced.commit(written, target)  # the enhanced file exists only once the lip sync succeeded
    bake_report = None
    if not request.bone_only:
        bake_report = bake.bake_curves(
            obj, result.curves, start_frame=request.start_frame, fps=request.fps, clip=request.clip, scene=scene
        )
    warnings = list(result.warnings)
    mouth = bone_mouth.MouthBakeReport()
    if plan is not None:
        warnings.extend(plan.warnings)
        mouth = bone_mouth.bake_mouth(
            arm, plan, result, start_frame=request.start_frame, fps=request.fps, clip=request.clip
        )
        warnings.extend(mouth.warnings)
    elif arm is not None:
        bone_mouth.remove_mouth(arm)  # Bone Mouth off: its previous keys go, the head layer stays
    face = request.config.face
    head = face_bake.bake_head(
        obj, result.face_curves if face.head else None, start_frame=request.start_frame, fps=request.fps,
        clip=request.clip,
    )
    if face.head and not head.keys_written:
        warnings.append(
            f"Head Motion: '{obj.name}' has no armature with a head or neck bone (parent or Armature modifier); "
            "no head motion was keyed."
        )
    gaze = face_bake.bake_gaze(
        obj, result.face_curves if face.gaze else None, start_frame=request.start_frame, fps=request.fps,
        clip=request.clip,
    )
    face_channels = dict(result.face_channels)
    if not head.keys_written:
        face_channels.pop("head", None)
    if gaze.keys_written:
        face_channels["gaze"] = [*face_channels.get("gaze", []), *gaze.bones]
    for layer, on, what in (
        ("blink", face.blink, "blink shape keys"),
        ("brows", face.brows, "brow shape keys"),
        ("gaze", face.gaze, "eye-look shape keys or eye bones"),
        ("expression", face.expression != "neutral", f"{face.expression} shape keys"),
    ):
        if on and not face_channels.get(layer):
            warnings.append(f"Face Motion: '{obj.name}' has no {what} (docs/face.md); {layer} not keyed.")
    unmatched = [c for c in bake_report.skipped if c not in SILENT_CHANNELS] if bake_report is not None else []
    if unmatched:
        warnings.append(f"No shape key for channel(s) {', '.join(unmatched)} on '{obj.name}'; not keyed.")
    duration = float(result.duration)
    frame_end = strips.clip_end_frame(request.start_frame, duration, request.fps)
    strip_name = original_strip_name = ""
    if request.add_sound_strip and target is not None:
        attached = enhanced.attach(
            scene, request.audio_path, target, start_frame=request.start_frame, duration=duration,
            fps=request.fps, rewritten=not target.reuse,
        )
        strip_name, original_strip_name = attached.strip_name, attached.original_name
        warnings.extend(target.warnings + attached.warnings)
    elif request.add_sound_strip:
        strip_report = strips.place_sound_strip(
            scene, request.audio_path, start_frame=request.start_frame, duration=duration, fps=request.fps
        )
        strip_name = strip_report.strip_name
        warnings.extend(strip_report.warnings)
        warnings.extend(enhanced.restore_original(scene, request.audio_path, request.start_frame))
    else:
        strips.extend_frame_end(scene, frame_end)
    if request.line_markers:
        markers.place_line_markers(scene, obj.name, markers.own_lines(result.lines, request.config.speaker),
                                   start_frame=request.start_frame, fps=request.fps)
    else:
        markers.remove_line_markers(scene, obj.name)
    times = result.viseme_curves.times
    span = (float(times[-1]) - float(times[0])) * request.fps if len(times) else 0.0
    return GenerateReport(
        result=result,
        object_name=obj.name,
        action_name=bake_report.action_name if bake_report is not None else mouth.action_name,
        viseme_set=result.viseme_set,
        channels=bake_report.channels if bake_report is not None else [],
        frame_start=request.start_frame,
        frame_end=frame_end,
        frames_keyed=round(bake_report.frame_end - bake_report.frame_start if bake_report is not None else span) + 1,
        keys_written=(bake_report.keys_written if bake_report is not None else 0) + mouth.keys_written,
        strip_name=strip_name,
        enhanced_path=target.blend_path if target is not None and request.add_sound_strip else "",
        original_strip_name=original_strip_name,
        warnings=warnings,
        face_channels=face_channels,
        head_action_name=head.action_name if head.keys_written else "",
        head_bone=head.bone_name if head.keys_written else "",
        gaze_bones=list(gaze.bones) if gaze.keys_written else [],
        armature_action_name=mouth.action_name if mouth.keys_written else "",
        bone_channels=list(mouth.channels),
        mouth_bones=list(mouth.bones),
        jaw_bone=plan.jaw_bone if plan is not None and plan.jaw_bone in mouth.bones else "",
        pose_set=plan.viseme_set if plan is not None else "",
    )


def sync_start_frame(
    reference_path: str,
    audio_path: str,
    *,
    reference_start_frame: int | None = None,
    scene_name: str | None = None,
) -> tuple[int, Any]:
    """The frame at which ``audio_path`` plays in sync with a reference recording or video.

    The offset is found by GCC-PHAT cross-correlation (:func:`lipsync_addon.core.offset.estimate_offset`;
    video files are read through FFmpeg: Blender's own, else the ffmpeg program). Clips of
    :data:`DRIFT_CHECK_S` seconds and more are also checked for clock drift (:mod:`lipsync_addon.core.drift`):
    the start comes from the line fitted through the whole take, and a drift that slips the end by a
    quarter frame or more is a warning.
    ``reference_start_frame``: where the reference starts on
    the timeline; None = the frame of an existing strip of the reference (sound or movie), else the
    scene's start frame.

    Returns:
        (start frame, OffsetResult). Strips start on whole frames: the rounding left over
        (at most half a frame) is in the result's warnings.

    Raises:
        OffsetError / AudioError: the two do not match, or a file cannot be read (clear message).
    """
    from ..core.drift import drift_warning, estimate_drift_arrays
    from ..core.offset import estimate_offset_arrays, read_any

    scene = resolve_scene(scene_name)
    reference = _check_audio_path(reference_path)
    clip = _check_audio_path(audio_path)
    if reference_start_frame is None:
        here = strips.normalize_path(reference)
        editor = scene.sequence_editor
        def strip_file(strip: Any) -> str:  # sound strips: strip.sound.filepath; movie strips: strip.filepath
            sound = getattr(strip, "sound", None)
            return sound.filepath if sound is not None else getattr(strip, "filepath", "")

        found = [s for s in (compat.all_strips(editor) if editor else [])
                 if strip_file(s) and strips.normalize_path(strip_file(s)) == here]
        reference_start_frame = round(compat.strip_start(found[0])) if found else int(scene.frame_start)
    ref_samples, ref_rate = read_any(reference)
    clip_samples, clip_rate = read_any(clip)
    result = estimate_offset_arrays(ref_samples, ref_rate, clip_samples, clip_rate)
    fps = bake.scene_fps(scene)
    if len(clip_samples) / clip_rate >= DRIFT_CHECK_S:  # long takes from another recorder drift: say so
        drift = estimate_drift_arrays(ref_samples, ref_rate, clip_samples, clip_rate)
        if drift.measurable:
            result.offset = drift.offset  # the start of the line fitted through the whole take
        message = drift_warning(drift, fps)
        if message:
            result.warnings.append(message)
    exact = result.frame(fps, reference_start_frame)
    frame = round(exact)
    if abs(exact - frame) * 1000.0 / fps > 0.5:
        result.warnings.append(f"The clip starts {abs(exact - frame) / fps * 1000.0:.1f} ms off the frame grid; "
                               f"placed at frame {frame} (strips start on whole frames).")
    return frame, result


def generate(
    object_name: str,
    audio_path: str,
    *,
    transcript: str = "",
    speaker: str = "",
    pronunciations: dict[str, str] | None = None,
    viseme_set: str = "auto",
    start_frame: int | None = None,
    strength: float = DEFAULT_STRENGTH,
    smoothing: float = DEFAULT_SMOOTHING,
    breath: float = DEFAULT_BREATH,
    scene_name: str | None = None,
    add_sound_strip: bool = True,
    custom_mapping: dict[str, dict[str, float]] | None = None,
    enhance: str = "off",
    language: str = "en",
    vosk_model: str = "",
    face: FaceConfig | None = None,
    bones: bone_mouth.BoneOptions | None = None,
    line_markers: bool = False,
    dereverb: bool = False,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> GenerateReport:
    """Lip-sync ``object_name`` to ``audio_path`` and bake it (blocking, main thread).

    Args:
        object_name: mesh with mouth shape keys, or an armature (bone mouth).
        audio_path: clip file (WAV/FLAC/OGG/MP3; ``//`` paths are relative to the .blend).
        transcript: the line's text ("" = recognize speech): plain text, the text of .srt / .vtt subtitles,
            or a script with speaker labels (``ANNA: ...``).
        speaker: with a transcript that names its speakers, only this speaker's lines move the mouth; the
            others' speech is rest (docs/speakers.md). "" animates every line.
        pronunciations: how names and invented words are said, word -> ARPAbet phones or "= respelling"
            (``read_pronunciations(path)`` reads a dictionary file; docs/pronunciations.md).
        viseme_set: "auto" (detect from shape-key names) or a preset name.
        start_frame: frame where the clip starts (None: its existing strip's frame, else scene start).
        strength: amplitude multiplier in [0, 2].
        smoothing: coarticulation smoothing in [0, 1].
        breath: in [0, 1], how far the lips part to inhale before a phrase after a pause (0 = off).
        scene_name: scene to use (None: the context scene).
        add_sound_strip: put the clip in the sequencer.
        custom_mapping: viseme -> {shape key: weight}, overrides the preset.
        enhance: "off" (default), "light", "standard" or "strong": clean the clip (denoise, hum,
            EQ, loudness; timing unchanged), analyse the cleaned signal and, with
            ``add_sound_strip``, play ``//<clip>_enhanced.wav`` with the original muted beside it.
        language: ISO 639 code of the dialogue ("en" uses pocketsphinx; others need the transcript
            or ``vosk_model``; docs/languages.md).
        vosk_model: Vosk model folder for recognition without a transcript in other languages.
        face: procedural face layers (blinks, brows, head motion on the armature's head bone),
            per-layer strength, level and seed; None = off (docs/face.md).
        line_markers: put a timeline marker at the start of each line of the transcript (speaker and first
            words); False removes the markers an earlier run placed for this object (docs/blender.md).
        bones: bone mouth (mouth poses from a pose-marker action or pose-asset actions, jaw from
            ``mouth_open``, tongue from ``tongue_up``; docs/bones.md). Always used when ``object_name``
            is an armature or a mesh with an armature and no shape keys; on a mesh with shape keys
            only with ``enabled=True``. None = ``BoneOptions()``: no poses, jaw and tongue on (which
            matters only for bone-only targets, since ``enabled`` is False).
        dereverb: reduce room echo (WPE) before the analysis and, with ``enhance``, in the enhanced
            sound: for recordings made in a reverberant room (docs/enhance.md, "Room echo").
        progress: callable(fraction in [0, 1], stage name).
        cancel: CancelToken to stop the analysis.

    Returns:
        A :class:`GenerateReport`. Raises LipSyncError subclasses (AudioError,
        TranscriptError, RigError, Cancelled) with user-facing messages; the
        scene is unchanged when an error is raised.
    """
    request = prepare(
        object_name,
        audio_path,
        transcript=transcript,
        speaker=speaker,
        pronunciations=pronunciations,
        viseme_set=viseme_set,
        start_frame=start_frame,
        strength=strength,
        smoothing=smoothing,
        breath=breath,
        scene_name=scene_name,
        add_sound_strip=add_sound_strip,
        custom_mapping=custom_mapping,
        enhance=enhance,
        language=language,
        vosk_model=vosk_model,
        face=face,
        bones=bones,
        line_markers=line_markers,
        dereverb=dereverb,
    )
    try:
        result = analyze(request, progress=progress or no_progress, cancel=cancel)
        return apply(request, result)
    finally:
        discard(request)  # no-op once apply moved the file into place
