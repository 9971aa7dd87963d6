"""The enhanced dialogue as the synced sound strip (Generate with "Enhance audio" on).

Three steps, split like :mod:`.api` so the slow one runs off the main thread:

1. :func:`plan_target` (main thread, bpy): where the cleaned file goes. Next to the .blend as
   ``//<clip stem>_enhanced.wav`` (relative), or, for an unsaved .blend, in the extension's user
   folder (``extension_path_user(..., "enhanced")``) or the temp folder, with a warning that the
   path is absolute. A file of that name that we did not write for this clip is never
   overwritten: a new name is picked (``_enhanced_2.wav``, ...). The folder is probed for write
   access, so an unwritable folder fails here, before any analysis, and nothing changes.
2. :func:`write_enhanced` (worker thread, bpy-free): ``core.enhance.enhance_array`` at the
   source file's own rate and channel count, written as 24-bit WAV to a temporary name and moved
   into place only once the lip sync succeeded (:func:`commit`). The file carries a tag (WAV
   comment) naming the source, its size/mtime and the preset, so a re-run with the same inputs
   reuses it without enhancing again. When RNNoise cannot be loaded (e.g. the macOS extension
   zips: PyPI's only macOS RNNoise wheel needs macOS 26) DeepFilterNet3 (numpy, weights bundled)
   is used instead, with a note; the Wiener denoiser (numpy/scipy) only if those weights are missing.
3. :func:`attach` (main thread, bpy): the enhanced file becomes the strip the keys are synced to,
   at the same frame as the original; the original stays in the sequencer, muted if the add-on made
   that strip (a user's own strip is left as it is, with a warning). Only our own strips are
   created, moved, muted or removed.

The enhanced file is sample-aligned with the original (``core.enhance`` contract), so strips at the
same frame play in sync and the keys fit both.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

from ..core.types import AudioError, CancelToken, ProgressFn, no_progress

#: Suffix of the cleaned file's name: ``<clip stem>_enhanced.wav``.
SUFFIX = "_enhanced"
#: ``software`` string written into our enhanced WAVs (with the JSON tag in ``comment``).
SOFTWARE_TAG = "lipsync_addon enhance"
#: Strip custom properties: source of an enhanced strip; "muted by us" on an original strip.
ENHANCED_FROM = "lipsync_enhanced_from"
MUTED_BY_US = "lipsync_muted"
#: Most alternative names tried before giving up (``_enhanced_2`` ... ``_enhanced_99``).
MAX_NAMES = 99


@dataclass
class EnhancedTarget:
    """Where the cleaned file goes (decided on the main thread).

    Attributes:
        path: absolute file path.
        blend_path: the path stored in Blender (``//name.wav`` next to a saved .blend, else absolute).
        reuse: an existing file we wrote for the same source, size/mtime and preset: not enhanced again.
        warnings: messages for the user (absolute path, name taken, ...).
    """

    path: str
    blend_path: str
    reuse: bool = False
    warnings: list[str] = field(default_factory=list)


@dataclass
class WrittenFile:
    """Outcome of :func:`write_enhanced` (worker thread).

    Attributes:
        temp_path: the freshly written file, moved to the target by :func:`commit` ("" if reused).
        samples: mono mix of the enhanced audio (float32, source rate) for the analysis.
        rate: sample rate in Hz (the source's).
        channels: channel count (the source's).
        report: ``EnhanceReport.to_dict()`` of the run ({} if the file was reused).
        warnings: messages for the user.
    """

    temp_path: str
    samples: Any
    rate: int
    channels: int
    report: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def source_signature(source: str) -> str:
    """``size:mtime_ns`` of the source file: changes when the clip is replaced or edited."""
    st = os.stat(source)
    return f"{st.st_size}:{st.st_mtime_ns}"


def make_tag(source: str, preset: str, *, dereverb: bool = False) -> dict[str, str]:
    """The tag our enhanced file carries (source path, its signature, preset; with room-echo reduction, the
    preset name gets ``+dereverb``)."""
    return {"source": os.path.normcase(os.path.realpath(source)), "signature": source_signature(source),
            "preset": preset + ("+dereverb" if dereverb else "")}


def read_tag(path: str) -> dict[str, str] | None:
    """The tag of an enhanced file we wrote, or None (not ours, unreadable, not audio)."""
    import soundfile as sf

    try:
        with sf.SoundFile(path) as handle:
            if not str(handle.software or "").startswith(SOFTWARE_TAG):
                return None
            tag = json.loads(handle.comment or "{}")
    except Exception:  # soundfile raises several types for non-audio files
        return None
    return tag if isinstance(tag, dict) and "source" in tag else None


def _user_folder() -> tuple[str, bool]:
    """(folder for enhanced files of an unsaved .blend, True if it is the extension's user folder)."""
    import bpy

    package = (__package__ or "").rpartition(".")[0]
    try:
        folder = bpy.utils.extension_path_user(package, path="enhanced", create=True)
        return folder, True
    except (ValueError, AttributeError, OSError):  # running from a checkout, not as an extension
        folder = os.path.join(tempfile.gettempdir(), "lipsync_enhanced")
        os.makedirs(folder, exist_ok=True)
        return folder, False


def _probe_writable(folder: str) -> None:
    """Raise AudioError unless a file can really be created in ``folder``."""
    if not os.path.isdir(folder):
        raise AudioError(
            f"Cannot write the enhanced audio: the folder '{folder}' does not exist (was the .blend's folder "
            "moved?). Save the .blend to an existing folder or set Enhance Audio to Off. Nothing was changed."
        )
    try:
        fd, probe = tempfile.mkstemp(prefix=".lipsync_probe_", dir=folder)
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        raise AudioError(
            f"Cannot write the enhanced audio into '{folder}' ({exc.strerror or exc}). Save the .blend to a "
            "writable folder or set Enhance Audio to Off. Nothing was changed."
        ) from exc


def plan_target(source: str, preset: str, *, dereverb: bool = False) -> EnhancedTarget:
    """Choose the cleaned file's path for ``source`` (absolute) and check that it can be written.

    Raises AudioError (clear message, nothing changed) when the folder cannot be written.
    """
    import bpy

    warnings: list[str] = []
    blend = bpy.data.filepath
    if blend:
        folder, relative = os.path.dirname(os.path.abspath(blend)), True
    else:
        folder, relative = "", False
        try:
            folder, _ = _user_folder()
        except OSError as exc:
            raise AudioError(f"Cannot create a folder for the enhanced audio: {exc}. Save the .blend first.") from exc
    _probe_writable(folder)
    stem = os.path.splitext(os.path.basename(source))[0]
    wanted = make_tag(source, preset, dereverb=dereverb)
    path = ""
    reuse = False
    for k in range(1, MAX_NAMES + 1):
        candidate = os.path.join(folder, f"{stem}{SUFFIX}{'' if k == 1 else f'_{k}'}.wav")
        if not os.path.lexists(candidate):
            path = candidate
            break
        tag = read_tag(candidate) if os.path.isfile(candidate) else None
        if tag is not None and tag.get("source") == wanted["source"]:
            path, reuse = candidate, tag == wanted  # ours for this clip: rewrite it if anything changed
            break
    if not path:
        raise AudioError(f"Cannot find a free name for the enhanced audio in '{folder}' ({stem}{SUFFIX}_N.wav).")
    if os.path.basename(path) != f"{stem}{SUFFIX}.wav":
        warnings.append(f"'{stem}{SUFFIX}.wav' already exists and is not ours; the enhanced audio is "
                        f"'{os.path.basename(path)}'.")
    if os.path.normcase(os.path.realpath(path)) == wanted["source"]:
        raise AudioError("The enhanced audio would overwrite the clip itself; rename the clip.")
    if relative:
        blend_path = bpy.path.relpath(path)
    else:
        blend_path = path
        warnings.append(f"The .blend is not saved, so the enhanced audio was written to '{path}' and the strip "
                        "uses that absolute path; save the .blend and generate again to keep it next to the .blend.")
    return EnhancedTarget(path=path, blend_path=blend_path, reuse=reuse, warnings=warnings)


def _check_enhance_installed() -> None:
    """Refuse early, with the fix, where the loudness step's package is missing from this install.

    (A missing neural denoiser is no error: the chain lets another stand in and says so in its report,
    ``core.enhance.installed_denoiser``.)
    """
    import importlib.util

    from ..core import enhance

    if importlib.util.find_spec("pyloudnorm") is None:
        raise enhance.EnhanceError(
            "Audio enhancement needs the 'pyloudnorm' package, which is missing from this installation; "
            "reinstall the extension zip (or 'pip install pyloudnorm==0.2.0'), or set Enhance Audio to Off."
        )


def write_enhanced(
    source: str,
    target: EnhancedTarget,
    preset: str,
    *,
    dereverb: bool = False,
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
) -> WrittenFile:
    """Enhance ``source`` at its own rate/channels into a temporary file beside ``target.path``.

    Never touches bpy (worker thread). When ``target.reuse`` the existing file is read instead.
    The temporary file is removed on any error or cancel. Raises AudioError / EnhanceError / Cancelled.
    """
    import numpy as np
    import soundfile as sf

    from ..core.audio import audio_from_samples, read_audio_file
    from ..core.enhance import enhance_array

    token = cancel or CancelToken()
    if target.reuse:
        data, rate = sf.read(target.path, dtype="float32", always_2d=True)
        mono = data.mean(axis=1, dtype=np.float64).astype(np.float32)
        return WrittenFile("", mono, int(rate), int(data.shape[1]))
    data, rate = read_audio_file(source)  # any format the pipeline reads (libsndfile, then FFmpeg)
    audio_from_samples(data, rate, source)  # the pipeline's checks and messages (no samples, too short)
    _check_enhance_installed()
    y, report = enhance_array(data if data.shape[1] > 1 else data[:, 0], int(rate), preset,
                              options={"dereverb": True} if dereverb else None, progress=progress, cancel=token)
    token.check()
    y2 = np.asarray(y, dtype=np.float32).reshape(len(data), -1)
    folder = os.path.dirname(target.path)
    fd, temp = tempfile.mkstemp(prefix=".lipsync_enhanced_", suffix=".wav", dir=folder)
    os.close(fd)
    try:
        with sf.SoundFile(temp, "w", samplerate=int(rate), channels=y2.shape[1], subtype="PCM_24",
                          format="WAV") as handle:
            handle.software = SOFTWARE_TAG
            handle.comment = json.dumps(make_tag(source, preset, dereverb=dereverb))
            handle.write(y2)
        os.chmod(temp, 0o644)  # mkstemp makes 0600
    except Exception as exc:
        _remove_quietly(temp)
        raise AudioError(f"Cannot write the enhanced audio '{target.path}': {exc}. Nothing was changed.") from exc
    mono = y2.mean(axis=1, dtype=np.float64).astype(np.float32)
    return WrittenFile(temp, mono, int(rate), int(y2.shape[1]), report.to_dict(), list(report.warnings))


def commit(written: WrittenFile, target: EnhancedTarget) -> None:
    """Move the temporary file onto ``target.path`` (atomic on one file system). Raises AudioError."""
    if not written.temp_path:
        return
    try:
        os.replace(written.temp_path, target.path)
    except OSError as exc:
        _remove_quietly(written.temp_path)
        raise AudioError(f"Cannot write the enhanced audio '{target.path}': {exc.strerror or exc}.") from exc
    written.temp_path = ""


def discard(written: WrittenFile | None) -> None:
    """Remove a temporary file that will not be used (cancel, failed bake)."""
    if written is not None and written.temp_path:
        _remove_quietly(written.temp_path)
        written.temp_path = ""


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)


# --------------------------------------------------------------------------- strips (main thread)


@dataclass
class AttachReport:
    """Outcome of :func:`attach`.

    Attributes:
        strip_name: the enhanced strip (the one the keys are synced to; "" if none).
        original_name: the original clip's strip, muted ("" if none).
        warnings: messages for the user.
    """

    strip_name: str = ""
    original_name: str = ""
    warnings: list[str] = field(default_factory=list)


def _strip_at(scene: Any, path: str, start_frame: int) -> Any:
    from . import compat, strips

    for strip in strips.find_strips_for_file(scene, path):
        if round(compat.strip_start(strip)) == int(start_frame):
            return strip
    return None


def _enhanced_strips_of(scene: Any, source: str, start_frame: int) -> list[Any]:
    """Our enhanced strips made from ``source`` at ``start_frame``."""
    from . import compat, strips

    key = os.path.normcase(os.path.realpath(source))
    return [s for s in strips.sound_strips(scene)
            if s.get(strips.OWNER_TAG) and s.get(ENHANCED_FROM) == key
            and round(compat.strip_start(s)) == int(start_frame)]


def attach(scene: Any, source: str, target: EnhancedTarget, *, start_frame: int, duration: float, fps: float,
           rewritten: bool) -> AttachReport:
    """Make the enhanced file the playing strip at ``start_frame`` and mute the original there.

    Args:
        scene: the ``bpy.types.Scene``.
        source: the original clip (absolute path).
        target: the enhanced file (written or reused).
        start_frame: frame of the clip's first sample (the keys' start).
        duration: clip length in seconds.
        fps: scene frames per second.
        rewritten: the file was (re)written by this run: our old strip of it is replaced, so Blender
            does not keep playing stale sound data.

    Problems are warnings, never exceptions.
    """
    import bpy

    from . import compat, strips

    report = AttachReport()
    original = strips.place_sound_strip(scene, source, start_frame=start_frame, duration=duration, fps=fps)
    report.warnings.extend(original.warnings)
    if not compat.has_audio():
        return report
    editor = scene.sequence_editor or scene.sequence_editor_create()
    here = strips.normalize_path(target.path)
    # our strips to replace: of this very file when it was rewritten, and our enhanced strips of this
    # clip at this frame that play another file (e.g. written before the .blend was saved)
    stale = [s for s in strips.find_strips_for_file(scene, target.path) if s.get(strips.OWNER_TAG)] if rewritten else []
    stale += [s for s in _enhanced_strips_of(scene, source, start_frame)
              if strips.normalize_path(s.sound.filepath) != here and s not in stale]
    for old in stale:
        sound = old.sound
        compat.top_level_strips(editor).remove(old)
        if sound is not None and sound.users == 0:
            bpy.data.sounds.remove(sound)
    placed = strips.place_sound_strip(scene, target.path, start_frame=start_frame, duration=duration, fps=fps,
                                      name=os.path.basename(target.path))
    report.warnings.extend(w for w in placed.warnings if w not in report.warnings)
    enhanced = _strip_at(scene, target.path, start_frame)
    if enhanced is None:
        return report
    if enhanced.get(strips.OWNER_TAG):
        enhanced[ENHANCED_FROM] = os.path.normcase(os.path.realpath(source))
        if enhanced.sound is not None and enhanced.sound.filepath != target.blend_path:
            enhanced.sound.filepath = target.blend_path  # "//name.wav" next to a saved .blend
        enhanced.mute = False
    report.strip_name = enhanced.name
    orig = _strip_at(scene, source, start_frame)
    if orig is not None and orig != enhanced:
        report.original_name = orig.name
        if orig.get(strips.OWNER_TAG):
            if not orig.mute:
                orig.mute = True
                orig[MUTED_BY_US] = True
        elif not orig.mute:
            # a user strip is never changed, not even muted: say how to hear only the enhanced dialogue
            report.warnings.append(f"Your strip '{orig.name}' plays the original clip at the same frame as the "
                                   f"enhanced dialogue '{enhanced.name}'; mute it to hear only the enhanced one "
                                   "(the add-on does not change your strips).")
    return report


def restore_original(scene: Any, source: str, start_frame: int) -> list[str]:
    """Enhancement off: unmute the original we muted and mute our enhanced strips of it at ``start_frame``."""
    notes: list[str] = []
    muted = [s.name for s in _enhanced_strips_of(scene, source, start_frame) if not s.mute]
    for strip in _enhanced_strips_of(scene, source, start_frame):
        strip.mute = True
    orig = _strip_at(scene, source, start_frame)
    if orig is not None and orig.get(MUTED_BY_US):
        orig.mute = False
        del orig[MUTED_BY_US]
    if muted:
        notes.append(f"Enhancement is off: the enhanced strip(s) {', '.join(muted)} were muted and the original "
                     "clip plays again.")
    return notes
