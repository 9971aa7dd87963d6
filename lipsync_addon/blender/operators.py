"""LIPSYNC_OT_generate: the "Generate Lip Sync" button.

``invoke`` (interactive): snapshot the inputs on the main thread, run the core
in a worker thread, poll it with a 0.1 s timer, show progress in the status bar
and the panel; Esc cancels and leaves the scene as it was. When the worker ends
the object is looked up again by name and the bake happens in one main-thread
call (one undo step). ``execute`` is the blocking path (background mode, scripts).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, ClassVar

import bpy
from bpy.props import StringProperty

from ..core.types import Cancelled, FaceConfig, LipSyncError
from . import api, compat, preferences, properties
from .jobs import Job

#: Seconds between polls of the worker.
POLL_INTERVAL = 0.1
#: Longest message shown in a report / the panel.
MAX_MESSAGE = 400


def _scene_settings(context: Any) -> Any:
    return getattr(context.scene, "lipsync", None)


def target_names(context: Any, object_name: str) -> list[str]:
    """The objects one Generate animates, in order: ``object_name`` when given; else the active object,
    and with the scene's **All Selected** also every other selected mesh with shape keys (by name; one per
    shape-key datablock, since linked duplicates share their keys)."""
    if object_name:
        return [object_name]
    active = context.active_object
    names = [active.name] if active is not None else []
    settings = _scene_settings(context)
    if settings is not None and settings.all_selected:
        # one object per shape-key datablock: linked duplicates share their keys (and so their animation)
        def key_block(obj: Any) -> int | None:
            keys = obj.data.shape_keys if obj.type == "MESH" else None
            return keys.as_pointer() if keys is not None else None

        seen = {key_block(active)} if active is not None else set()
        for o in sorted(getattr(context, "selected_objects", []) or [], key=lambda o: o.name):
            block = key_block(o)
            if block is not None and block not in seen and o.name not in names:
                seen.add(block)
                names.append(o.name)
    return names


def build_request(context: Any, op: Any, object_name: str = "") -> api.GenerateRequest:
    """Snapshot the operator's overrides + the scene/object settings into a GenerateRequest.

    Empty operator properties fall back to: the active object (``object_name`` picks another), the
    scene's clip and transcript settings, the object's viseme set and mapping list, the preferences'
    custom mapping file.
    """
    settings = _scene_settings(context)
    if settings is None:
        raise LipSyncError("The Lip Sync add-on is not registered in this scene.")
    obj_name = object_name or op.object_name or (context.active_object.name if context.active_object else "")
    obj = bpy.data.objects.get(obj_name) if obj_name else None

    start_frame: int | None = int(settings.start_frame)
    add_strip = bool(settings.add_sound_strip)
    audio_path = op.audio_path
    if not audio_path:
        if settings.clip_source == "STRIP":
            strip = _find_strip(context.scene, settings.sound_strip)
            audio_path = _strip_audio_path(strip, settings.enhance)
            # the strip is already there; with enhancement the cleaned clip is added beside it
            start_frame, add_strip = round(compat.strip_start(strip)), settings.enhance != "off"
        else:
            audio_path = settings.audio_path
    transcript = op.transcript or properties.scene_script_text(settings)

    mapping = api.load_custom_mapping(preferences.custom_mapping_path(context))
    dictionary = preferences.pronunciations_path(context)
    user_prons = api.read_pronunciations(dictionary) if dictionary else {}
    viseme_set, speaker = "auto", ""
    bones = properties.object_bone_options(obj) if obj is not None else None
    if obj is not None and getattr(obj, "lipsync", None) is not None:
        viseme_set = obj.lipsync.viseme_set or "auto"
        # the panel hides Speaker when the transcript source is None: a value left there does not apply
        speaker = obj.lipsync.speaker.strip() if op.transcript or settings.transcript_source != "NONE" else ""
        for viseme, targets in properties.object_mapping_overrides(obj).items():
            mapping[viseme] = targets
    return api.prepare(
        obj_name,
        audio_path,
        transcript=transcript,
        speaker=speaker,
        pronunciations=user_prons,
        line_markers=bool(settings.line_markers),
        viseme_set=viseme_set,
        start_frame=start_frame,
        strength=settings.strength,
        smoothing=settings.smoothing,
        breath=settings.breath,
        scene_name=context.scene.name,
        add_sound_strip=add_strip,
        custom_mapping=mapping or None,
        enhance=settings.enhance,
        dereverb=bool(settings.dereverb),
        language=settings.language.strip() or "en",
        vosk_model=preferences.vosk_model_dir(context),
        face=FaceConfig(
            blink=settings.face_blink, brows=settings.face_brows, head=settings.face_head,
            blink_strength=settings.face_blink_strength, brows_strength=settings.face_brows_strength,
            head_strength=settings.face_head_strength, level=settings.face_level, seed=settings.face_seed,
            gaze=settings.face_gaze, gaze_strength=settings.face_gaze_strength,
            expression=settings.face_expression, expression_strength=settings.face_expression_strength,
        ),
        bones=bones,
    )


def _strip_audio_path(strip: Any, enhance: str) -> str:
    """The file to analyse for a sound strip: its sound's file, or, for a sound packed into the .blend
    (File > External Data > Pack Resources), a copy of the packed data in Blender's temporary folder
    under the original file name (so the action is still named after the clip)."""
    sound = strip.sound
    packed = getattr(sound, "packed_file", None)
    if packed is None:
        return bpy.path.abspath(sound.filepath, library=sound.library)
    if enhance != "off":
        raise LipSyncError(
            f"The sound of strip '{strip.name}' is packed into the .blend, so there is no file to enhance beside "
            "it. Unpack it (File > External Data > Unpack Resources) or set Enhance Audio to Off."
        )
    name = os.path.basename(bpy.path.abspath(sound.filepath)) or f"{bpy.path.clean_name(sound.name)}.wav"
    data = bytes(packed.data)
    # one folder per content: two packed sounds with the same file name never share a copy, and a copy
    # another job is reading is never rewritten (it is written under a temporary name, then renamed)
    folder = os.path.join(bpy.app.tempdir or tempfile.gettempdir(), "lipsync_packed",
                          hashlib.sha1(data, usedforsecurity=False).hexdigest()[:16])
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    if not (os.path.isfile(path) and os.path.getsize(path) == len(data)):
        fd, partial = tempfile.mkstemp(dir=folder, suffix=".part")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(partial, path)
    return path


def _find_strip(scene: Any, name: str) -> Any:
    from . import strips

    for strip in strips.sound_strips(scene):
        if strip.name == name:
            return strip
    raise LipSyncError(f"There is no sound strip named '{name}' in the sequencer. Pick one in the Lip Sync panel.")


def _short(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."


def _job_state(context: Any) -> Any:
    return getattr(context.window_manager, "lipsync_job", None)


def _set_state(context: Any, status: str, message: str = "", progress: float | None = None, stage: str = "") -> None:
    state = _job_state(context)
    if state is None:
        return
    state.status = status
    state.message = _short(message)
    state.stage = stage
    if progress is not None:
        state.progress = max(0.0, min(100.0, progress * 100.0))


def _redraw(context: Any) -> None:
    screen = getattr(context, "screen", None)
    if screen is None:
        return
    for area in screen.areas:
        if area.type in {"VIEW_3D", "STATUSBAR"}:
            area.tag_redraw()


def _store_report(context: Any, report: api.GenerateReport) -> None:
    state = _job_state(context)
    if state is None:
        return
    state.warnings = "\n".join(report.warnings)
    state.detected_set = report.viseme_set


def done_message(report: api.GenerateReport) -> str:
    """One-line summary of a finished generate, for the status report and the panel."""
    bones = (
        f", {len(report.mouth_bones)} mouth bones in '{report.armature_action_name}'" if report.mouth_bones else ""
    )
    return (
        f"Lip sync: {len(report.channels)} shape keys keyed on '{report.object_name}'{bones}, frames "
        f"{report.frame_start}-{report.frame_end} ({report.viseme_set}), action '{report.action_name}'."
    )


@dataclass
class Outcome:
    """How a session ended: operator return status plus the reports to show.

    Attributes:
        status: "FINISHED" (baked, one undo step) or "CANCELLED" (nothing changed).
        reports: (level, message) pairs for ``Operator.report`` ("INFO", "WARNING", "ERROR").
        report: the GenerateReport when baked.
    """

    status: str
    reports: list[tuple[str, str]] = field(default_factory=list)
    report: api.GenerateReport | None = None


def _outcome_from_report(context: Any, report: api.GenerateReport) -> Outcome:
    message = done_message(report)
    _set_state(context, "DONE", message, 1.0, "done")
    _store_report(context, report)
    reports = [("INFO", message)] + [("WARNING", _short(w)) for w in report.warnings[:5]]
    return Outcome("FINISHED", reports, report)


def _outcome_from_error(context: Any, exc: LipSyncError) -> Outcome:
    if isinstance(exc, Cancelled):
        _set_state(context, "CANCELLED", "Cancelled; nothing was changed.")
        return Outcome("CANCELLED", [("WARNING", "Lip sync cancelled; nothing was changed.")])
    _set_state(context, "ERROR", str(exc))
    return Outcome("CANCELLED", [("ERROR", _short(str(exc)))])


class GenerateSession:
    """The interactive run, independent of the operator instance (so tests can drive it).

    ``start`` launches the worker and the 0.1 s timer; ``tick`` (on each timer
    event) polls the worker and, once it is done, bakes via :func:`api.apply`
    on the main thread; ``escape`` cancels and changes nothing.
    """

    def __init__(self, request: api.GenerateRequest) -> None:
        self.job = Job(request)
        self.timer: Any = None

    def start(self, context: Any) -> None:
        """Start the worker thread and the poll timer; show progress."""
        self.job.start()
        if context.window is not None:
            self.timer = context.window_manager.event_timer_add(POLL_INTERVAL, window=context.window)
        _set_state(context, "RUNNING", "Analyzing the clip... (Esc to cancel)", 0.0, "starting")
        _status_text(context, 0.0, "starting")

    def tick(self, context: Any) -> Outcome | None:
        """Poll the worker; None while it runs, else the finished Outcome (baked or not)."""
        if not self.job.poll():
            _set_state(context, "RUNNING", "Analyzing the clip... (Esc to cancel)", self.job.fraction, self.job.stage)
            _status_text(context, self.job.fraction, self.job.stage)
            return None
        self.cleanup(context)
        return self.finish(context)

    def finish(self, context: Any) -> Outcome:
        """Bake the finished job's result in one main-thread call (one undo step)."""
        try:
            if self.job.error is not None:
                raise self.job.error
            if self.job.result is None:
                raise Cancelled("Lip sync was cancelled.")
            report = api.apply(self.job.request, self.job.result)
        except LipSyncError as exc:
            return _outcome_from_error(context, exc)
        finally:
            api.discard(self.job.request)  # an enhanced file that was not moved into place
        return _outcome_from_report(context, report)

    def escape(self, context: Any) -> Outcome:
        """Esc: stop the worker (its result is discarded), change nothing."""
        self.job.cancel()
        self.cleanup(context)
        if self.job.poll():  # finished but never applied: drop its enhanced file
            api.discard(self.job.request)
        return _outcome_from_error(context, Cancelled("Lip sync was cancelled."))

    def cleanup(self, context: Any) -> None:
        """Remove the timer and the status-bar text (safe to call twice)."""
        if self.timer is not None:
            context.window_manager.event_timer_remove(self.timer)
            self.timer = None
        workspace = getattr(context, "workspace", None)
        if workspace is not None:
            workspace.status_text_set(None)
        _redraw(context)


def combine(outcomes: list[tuple[str, Outcome]]) -> Outcome:
    """One outcome for a Generate over several objects: FINISHED when any object was baked (the undo
    step then holds them all; the others' errors become warnings), each report naming its object."""
    if len(outcomes) == 1:
        return outcomes[0][1]
    baked = [o for _, o in outcomes if o.status == "FINISHED"]
    reports: list[tuple[str, str]] = []
    for name, outcome in outcomes:
        for level, message in outcome.reports:
            # an object skipped while others were generated is a warning: the run did not fail
            shown = "WARNING" if baked and level == "ERROR" else level
            reports.append((shown, message if message.startswith("Lip sync:") or f"'{name}'" in message
                            else f"'{name}': {message}"))
    summary = f"Lip sync: {len(baked)} of {len(outcomes)} objects generated."
    return Outcome("FINISHED" if baked else "CANCELLED", [("INFO" if baked else "ERROR", summary), *reports],
                   baked[-1].report if baked else None)


def _show_combined(context: Any, outcome: Outcome, count: int) -> Outcome:
    """The panel's status line says how a Generate over several objects went (one object: as it is)."""
    if count > 1:
        _set_state(context, "DONE" if outcome.status == "FINISHED" else "ERROR", outcome.reports[0][1], 1.0, "done")
    return outcome


class GenerateQueue:
    """Generate on several objects one after the other, each prepared just before it runs (so the
    second finds the first's sound strip and enhanced file, and reuses its analysis).

    ``build(context, name)`` makes an object's request (LipSyncError: that object is reported and skipped);
    it gets the context of the current call, never one kept from an earlier call.
    """

    def __init__(self, names: list[str], build: Any) -> None:
        self.names = list(names)
        self.build = build
        self.outcomes: list[tuple[str, Outcome]] = []
        self.session: GenerateSession | None = None
        self.current = ""

    @property
    def timer(self) -> Any:
        return self.session.timer if self.session is not None else None

    def start(self, context: Any) -> Outcome | None:
        """Start the next object's session; the combined Outcome when none is left to run."""
        while self.names:
            self.current = self.names.pop(0)
            try:
                request = self.build(context, self.current)
            except LipSyncError as exc:
                self.outcomes.append((self.current, _outcome_from_error(context, exc)))
                continue
            self.session = GenerateSession(request)
            self.session.start(context)
            return None
        self.session = None
        return _show_combined(context, combine(self.outcomes), len(self.outcomes))

    def tick(self, context: Any) -> Outcome | None:
        """Poll the running session; when it is done, start the next; the combined Outcome at the end."""
        if self.session is None:
            return self.start(context)
        outcome = self.session.tick(context)
        if outcome is None:
            return None
        self.outcomes.append((self.current, outcome))
        return self.start(context)

    def escape(self, context: Any) -> Outcome:
        """Esc: cancel the running object and the ones after it; objects already baked stay (undo removes them)."""
        if self.session is not None:
            self.outcomes.append((self.current, self.session.escape(context)))
        skipped, self.names = self.names, []
        self.session = None
        outcome = combine(self.outcomes)
        if skipped:
            outcome.reports.append(("WARNING", f"Not generated (cancelled): {', '.join(skipped)}."))
        return outcome

    def cleanup(self, context: Any) -> None:
        if self.session is not None:
            self.session.cleanup(context)


def _status_text(context: Any, fraction: float, stage: str) -> None:
    workspace = getattr(context, "workspace", None)
    if workspace is not None:
        workspace.status_text_set(f"Lip Sync: {stage} {fraction * 100:.0f}%  (Esc to cancel)")
    _redraw(context)


class LIPSYNC_OT_generate(bpy.types.Operator):
    """Analyze the clip and bake lip-sync keys on the mesh's shape keys"""

    bl_idname = "lipsync.generate"
    bl_label = "Generate Lip Sync"
    bl_options: ClassVar[set[str]] = {"REGISTER", "UNDO"}

    object_name: StringProperty(name="Object", description="Mesh to animate (empty: the active object)")
    audio_path: StringProperty(
        name="Audio", subtype="FILE_PATH", description="Clip to use (empty: the Lip Sync panel's clip)"
    )
    transcript: StringProperty(name="Transcript", description="The line's text (empty: the panel's transcript)")

    _session: GenerateQueue | None = None

    @classmethod
    def poll(cls, context: Any) -> bool:
        state = _job_state(context)
        return state is None or state.status != "RUNNING"

    # ------------------------------------------------------------------ blocking path
    def execute(self, context: Any) -> set[str]:
        """Blocking: analyze and bake now (background mode, scripts), object after object."""
        outcomes = [(name, self._execute_one(context, name)) for name in target_names(context, self.object_name)]
        if not outcomes:
            return self._report(self._execute_one(context, ""))  # no object: its message
        return self._report(_show_combined(context, combine(outcomes), len(outcomes)))

    def _execute_one(self, context: Any, object_name: str) -> Outcome:
        wm = context.window_manager
        use_cursor_progress = not bpy.app.background and context.window is not None
        try:
            request = build_request(context, self, object_name)
            if use_cursor_progress:
                wm.progress_begin(0, 100)
            try:

                def progress(fraction: float, _stage: str) -> None:
                    if use_cursor_progress:
                        wm.progress_update(int(fraction * 100))

                result = api.analyze(request, progress=progress)
            finally:
                if use_cursor_progress:
                    wm.progress_end()
            try:
                outcome = _outcome_from_report(context, api.apply(request, result))
            finally:
                api.discard(request)  # no-op once apply moved the enhanced file into place
        except LipSyncError as exc:
            outcome = _outcome_from_error(context, exc)
        return outcome

    # ------------------------------------------------------------------ interactive path
    def invoke(self, context: Any, event: Any) -> set[str]:
        """Interactive: start the worker and return to the UI; fall back to execute headless."""
        if bpy.app.background or context.window is None:
            return self.execute(context)
        names = target_names(context, self.object_name) or [""]
        self._session = GenerateQueue(names, lambda ctx, name: build_request(ctx, self, name))
        done = self._session.start(context)
        if done is not None:  # no object could be prepared
            return self._report(done)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context: Any, event: Any) -> set[str]:
        session = self._session
        if session is None:
            return {"CANCELLED"}
        try:
            if event.type == "ESC" and event.value == "PRESS":
                return self._report(session.escape(context))
            if event.type != "TIMER":
                return {"PASS_THROUGH"}
            outcome = session.tick(context)
            return {"PASS_THROUGH"} if outcome is None else self._report(outcome)
        except Exception as exc:  # a bug: never leave a stuck RUNNING state or a timer behind
            outcome = session.escape(context)  # stops the worker; objects already baked stay in the undo step
            error = _outcome_from_error(context, LipSyncError(f"Lip sync failed unexpectedly: {exc}"))
            outcome.reports[:0] = error.reports
            return self._report(outcome)

    def cancel(self, context: Any) -> None:
        """Blender cancelled the modal (file load, quit): stop the worker, change nothing."""
        if self._session is not None:
            self._session.escape(context)

    def _report(self, outcome: Outcome) -> set[str]:
        for level, message in outcome.reports:
            self.report({level}, message)
        return {outcome.status}


class LIPSYNC_OT_mapping_add(bpy.types.Operator):
    """Add a custom viseme -> shape key entry to the active object"""

    bl_idname = "lipsync.mapping_add"
    bl_label = "Add Mapping Entry"
    bl_options: ClassVar[set[str]] = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context: Any) -> bool:
        return context.active_object is not None

    def execute(self, context: Any) -> set[str]:
        settings = context.active_object.lipsync
        settings.mapping.add()
        settings.mapping_index = len(settings.mapping) - 1
        return {"FINISHED"}


class LIPSYNC_OT_mapping_remove(bpy.types.Operator):
    """Remove the selected custom mapping entry"""

    bl_idname = "lipsync.mapping_remove"
    bl_label = "Remove Mapping Entry"
    bl_options: ClassVar[set[str]] = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context: Any) -> bool:
        obj = context.active_object
        return obj is not None and len(obj.lipsync.mapping) > 0

    def execute(self, context: Any) -> set[str]:
        settings = context.active_object.lipsync
        settings.mapping.remove(settings.mapping_index)
        settings.mapping_index = max(0, min(settings.mapping_index, len(settings.mapping) - 1))
        return {"FINISHED"}


class LIPSYNC_OT_sync_to_reference(bpy.types.Operator):
    """Find where the clip sits in the reference recording or video (GCC-PHAT) and set the Start Frame to it"""

    bl_idname = "lipsync.sync_to_reference"
    bl_label = "Sync to Reference"
    bl_options: ClassVar[set[str]] = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context: Any) -> bool:
        settings = _scene_settings(context)
        return settings is not None and settings.clip_source == "FILE" and bool(settings.audio_path.strip())

    def execute(self, context: Any) -> set[str]:
        settings = _scene_settings(context)
        if not settings.reference_path.strip():
            self.report({"ERROR"}, "Choose a Sync Reference first: a recording or video of the same performance.")
            return {"CANCELLED"}
        try:
            frame, result = api.sync_start_frame(
                bpy.path.abspath(settings.reference_path), bpy.path.abspath(settings.audio_path),
                scene_name=context.scene.name,
            )
        except LipSyncError as exc:
            self.report({"ERROR"}, str(exc)[:MAX_MESSAGE])
            return {"CANCELLED"}
        settings.start_frame = frame
        for warning in result.warnings:
            self.report({"WARNING"}, warning[:MAX_MESSAGE])
        self.report(
            {"INFO"},
            f"The clip starts {result.offset * 1000.0:.1f} ms into the reference (confidence {result.confidence:.2f}): "
            f"Start Frame set to {frame}. Generate Lip Sync to key the mouth and place the sound there.",
        )
        return {"FINISHED"}


CLASSES = (LIPSYNC_OT_generate, LIPSYNC_OT_mapping_add, LIPSYNC_OT_mapping_remove, LIPSYNC_OT_sync_to_reference)
