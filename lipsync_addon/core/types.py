"""Data contracts shared by every stage of the pipeline (bpy-free).

Times are seconds (float) everywhere in the core; frames exist only in the
Blender bake and in exporters. Phones are carried in IPA (see
:mod:`lipsync_addon.core.phonemes`), so any language backend plugs in.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

#: Version of the JSON cue format written by :mod:`lipsync_addon.core.export.cues`.
CUE_FORMAT_VERSION = "1.2"

#: Default coarticulation smoothing (0 crisp .. 1 very smooth). 0.3 rather than the middle: on real
#: talking-face video (scripts/eval_sync.py) lip aperture follows crisper curves better (r 0.612 at
#: 0.5, 0.625 at 0.3, 0.652 at 0), and 0.3 still anticipates ~55 ms and carries over ~40 ms.
DEFAULT_SMOOTHING = 0.3
#: Default amplitude multiplier (0..2).
DEFAULT_STRENGTH = 1.0
#: Default breath before phrases (0 off .. 1): the lips part slightly to inhale after a pause, before
#: the next phrase; on real talking-face video (scripts/eval_sync.py) both speakers do, and r rises
#: from 0.662 to 0.778 (docs/eval_sync.md).
DEFAULT_BREATH = 1.0

#: Analysis sample rate (Hz). Every recognizer works on mono audio at this rate.
ANALYSIS_RATE = 16000


class LipSyncError(Exception):
    """Root of every error the add-on raises on purpose.

    The message is written for the user: it says what is wrong and what to do.
    Entry points (operator, CLI, batch) show it as-is, never a traceback.
    """


class AudioError(LipSyncError):
    """The audio file is missing, unreadable, empty or not audio."""


class TranscriptError(LipSyncError):
    """The transcript cannot be used (unreadable file, wrong encoding...)."""


class RigError(LipSyncError):
    """The target object has no usable shape keys / bones for any viseme set."""


class Cancelled(LipSyncError):  # noqa: N818 (reads as a state: 'the job was Cancelled')
    """The user cancelled the job (Esc or CancelToken.cancel())."""


class CancelToken:
    """Thread-safe cancellation flag checked by every long loop in the core."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the running job to stop at its next check."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if cancellation was requested."""
        if self._event.is_set():
            raise Cancelled("Lip sync was cancelled.")


#: progress(fraction in [0, 1], stage name) -> None
ProgressFn = Callable[[float, str], None]


def no_progress(fraction: float, stage: str) -> None:
    """Default progress callback: does nothing."""


@dataclass
class Audio:
    """Mono audio for analysis.

    Attributes:
        samples: float32 mono samples in [-1, 1].
        rate: sample rate of ``samples`` in Hz.
        source_path: file it came from ("" if synthesized); playback keeps this file.
        source_rate: sample rate of the original file in Hz.
        source_channels: channel count of the original file.
    """

    samples: np.ndarray
    rate: int
    source_path: str = ""
    source_rate: int = 0
    source_channels: int = 1

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return float(len(self.samples)) / float(self.rate) if self.rate else 0.0


@dataclass
class Word:
    """A word with its timing in seconds.

    ``pronunciation_source`` is "dictionary", "cmudict", "elongated" (a drawn-out spelling of a
    dictionary word: "nooo"), "compound", "hesitation" (a spelling of a hesitation sound the
    dictionaries lack: "uhm", ``phonemes.HESITATIONS``), "letter_to_sound",
    "recognized" (when the word came from recognition, not a transcript) or "dtw" (pocketsphinx
    could not align it; espeak-ng + DTW timed it, ``recognize.gap_fill``).
    """

    text: str
    start: float
    end: float
    confidence: float = 1.0
    pronunciation_source: str = "dictionary"


@dataclass
class Phone:
    """A phone in IPA with timing in seconds; ``word_index`` is -1 for silence/noise.

    ``stress`` is the lexical stress of a vowel: 1 primary, 2 secondary, 0 unstressed, -1 unknown
    (consonants, or no dictionary entry matched what was aligned).
    """

    ipa: str
    start: float
    end: float
    confidence: float = 1.0
    word_index: int = -1
    stress: int = -1

    @property
    def is_silence(self) -> bool:
        """True for silence / pause / non-speech noise phones."""
        return self.ipa in SILENCE_PHONES


#: IPA-inventory symbols used for non-speech segments.
SILENCE_PHONES = frozenset({"", "sil", "sp", "spn", "noise"})


@dataclass
class Transcript:
    """Output of a recognizer/aligner: words and phones on one timeline (seconds)."""

    words: list[Word] = field(default_factory=list)
    phones: list[Phone] = field(default_factory=list)
    duration: float = 0.0
    #: how the result was obtained: "align", "align+phone_loop" (alignment failed in places), "align+dtw" (DTW
    #: timing in places: the espeak-ng path's phone models could not confirm it, or pocketsphinx's alignment
    #: failed there and espeak-ng + DTW timed those words), "recognize+align", "phone_loop", "silence"
    method: str = ""
    warnings: list[str] = field(default_factory=list)
    #: the forced alignment only succeeded with widened search beams somewhere: the words fit the sound
    #: poorly there (noise, or a text that does not quite match); the pipeline then tries a denoised copy
    wide_beam: bool = False


@dataclass
class VisemeSegment:
    """A span of one canonical viseme (seconds), see core/visemes/phone_to_viseme.json."""

    viseme: str
    start: float
    end: float
    phone: str = ""
    weight: float = 1.0


@dataclass
class Curves:
    """Animation channels sampled on a shared regular timeline.

    Attributes:
        times: sample times in seconds, shape (n,), strictly increasing, step 1/rate.
        rate: samples per second (the target frame rate, may be fractional, e.g. 23.976).
        channels: channel name -> values in [0, 1], shape (n,). Always contains
            ``mouth_open``. Names are the target rig's channel names (shape keys)
            or canonical viseme names before mapping.
    """

    times: np.ndarray
    rate: float
    channels: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class FaceConfig:
    """Procedural face motion layers (core/animate/procedural.py; docs/face.md). Plain data.

    Attributes:
        blink: eye blinks on the rig's blink shape keys.
        brows: brow raises / furrows on emphasis and questions.
        head: nods, tilts and drift on the head (or neck) bone of the rig's armature.
        blink_strength / brows_strength / head_strength: per-layer amplitude in [0, 2].
        level: "subtle", "natural" or "expressive" preset scaling every layer.
        seed: random seed; the same input and seed give the same motion.
        gaze: eye saccades and fixations (eye_yaw / eye_pitch in radians; eye look shape keys).
        gaze_strength: gaze amplitude in [0, 2].
        expression: "neutral" (off), "smile" or "serious": a held, slowly varying facial expression.
        expression_strength: intensity of the expression in [0, 2].
    """

    blink: bool = False
    brows: bool = False
    head: bool = False
    blink_strength: float = 1.0
    brows_strength: float = 1.0
    head_strength: float = 1.0
    level: str = "natural"
    seed: int = 0
    gaze: bool = False
    gaze_strength: float = 1.0
    expression: str = "neutral"
    expression_strength: float = 1.0

    @property
    def enabled(self) -> bool:
        """True if any layer is on (an expression other than "neutral" counts as a layer)."""
        return self.blink or self.brows or self.head or self.gaze or self.expression != "neutral"


@dataclass
class PipelineConfig:
    """Everything the pipeline needs besides the audio. Plain data (JSON-able).

    Attributes:
        transcript: the line's text (plain, subtitles, or a script with speaker labels), or "" to
            recognize speech.
        speaker: with a script naming its speakers, only this speaker's lines move the mouth (the
            others' speech is silence for this rig); "" animates every line (docs/speakers.md).
        pronunciations: the user's pronunciations, word -> ARPAbet phones or "= respelling"
            (:mod:`lipsync_addon.core.pronunciations`, docs/pronunciations.md).
        language: ISO 639 code ("en", "en-gb", "es", "ja", ...); see docs/languages.md.
        backend: speech backend, "auto" (by language/transcript/model), "pocketsphinx", "espeak", "vosk".
        vosk_model: Vosk model folder for recognition without a transcript ("" = none).
        viseme_set: preset name ("oculus", "arkit", ...) or "auto" (needs ``channel_names``).
        channel_names: the rig's shape-key names, used for set detection and mapping.
        custom_mapping: canonical viseme -> {channel: weight}, overrides the preset.
        fps: output sample rate in frames per second (scene fps / fps_base).
        strength: global amplitude multiplier in [0, 2].
        smoothing: coarticulation smoothing in [0, 1]; 0 = crisp, 1 = very smooth.
        breath: 0..1, how far the lips part to inhale before a phrase that follows a pause (0 = off).
        jobs: worker processes for long clips (0 = all cores).
        enhance: enhancement preset applied to the analysis signal before recognition ("off",
            "light", "standard", "strong"); the enhanced signal is sample-aligned with the original
            (docs/enhance.md), so timings hold for the original file too.
        denoise_fallback: with a transcript and enhance "off", time the line on a denoised copy when
            noise hides the speech from the VAD or makes the alignment fail (docs/enhance.md).
        dereverb: reduce room echo (WPE de-reverberation) before the analysis, and in the enhanced sound
            when ``enhance`` is on (docs/enhance.md, "Room echo"); off by default (it costs ~0.01x
            real time and changes nothing on dry recordings).
        face: procedural face layers (blink, brows, head, gaze, expression); all off by default.
        reuse_analysis: keep the speech analysis in memory and reuse it when the same clip is analysed
            again with the same transcript and analysis settings (only animation settings or the
            speaker changed); the Blender add-on turns it on, one-shot commands leave it off.
    """

    transcript: str = ""
    speaker: str = ""
    pronunciations: dict[str, str] = field(default_factory=dict)
    language: str = "en"
    backend: str = "auto"
    vosk_model: str = ""
    viseme_set: str = "auto"
    channel_names: list[str] = field(default_factory=list)
    custom_mapping: dict[str, dict[str, float]] = field(default_factory=dict)
    fps: float = 24.0
    strength: float = DEFAULT_STRENGTH
    smoothing: float = DEFAULT_SMOOTHING
    breath: float = DEFAULT_BREATH
    jobs: int = 0
    enhance: str = "off"
    face: FaceConfig = field(default_factory=FaceConfig)
    denoise_fallback: bool = True
    dereverb: bool = False
    reuse_analysis: bool = False


@dataclass
class LipSyncResult:
    """Everything the pipeline produced for one clip.

    ``curves`` holds the target-set channels plus ``mouth_open`` and ``tongue_up``;
    ``viseme_curves`` the canonical viseme weights before mapping.
    ``mapping`` is the channel map actually used: canonical viseme -> {channel: weight}.
    ``face_curves`` holds the canonical procedural channels (eye_blink_L/R, brow_up/down, smile or
    serious in [0, 1]; head_pitch/yaw/roll and eye_yaw/pitch in radians) when a face layer is on;
    the shape-key ones are also merged into ``curves`` under the rig's names, listed per layer in
    ``face_channels`` (an expression key the lip sync also drives is added onto the lip curve).
    ``lines`` times every line of the transcript (all speakers, also when one speaker is animated).
    """

    audio_path: str
    duration: float
    transcript: Transcript
    visemes: list[VisemeSegment]
    viseme_set: str
    mapping: dict[str, dict[str, float]]
    curves: Curves
    viseme_curves: Curves
    warnings: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    face_curves: Curves | None = None
    face_channels: dict[str, list[str]] = field(default_factory=dict)
    #: the transcript's lines (script lines, subtitle cues, else sentences) with their aligned times
    lines: list[LineTiming] = field(default_factory=list)


@dataclass
class LineTiming:
    """A line of the transcript as spoken: from its first aligned word's start to its last word's end (s)."""

    speaker: str
    text: str
    start: float
    end: float
    #: the line's aligned words, in order (subtitle cues are cut between them); not in the cue JSON
    words: tuple[Word, ...] = field(default=(), compare=False, repr=False)


class Recognizer(Protocol):
    """A speech backend: audio (mono, ANALYSIS_RATE) -> Transcript."""

    name: str

    def transcribe(
        self,
        audio: Audio,
        transcript: str = "",
        *,
        progress: ProgressFn = no_progress,
        cancel: CancelToken | None = None,
    ) -> Transcript:
        """Align ``transcript`` (if given) or recognize speech; never returns nothing."""
        ...
