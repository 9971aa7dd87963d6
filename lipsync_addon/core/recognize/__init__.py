"""Speech backends behind one interface: mono 16 kHz Audio (+ optional transcript) -> Transcript.

Every backend implements :class:`lipsync_addon.core.types.Recognizer` and always returns a result.
:func:`get_recognizer` picks the backend from the language and options: pocketsphinx for English,
espeak-ng + DTW transcript alignment for any language espeak-ng speaks, Vosk where a model for the
language is set (see docs/languages.md).
"""

from __future__ import annotations

from ..types import LipSyncError, Recognizer

#: accepted values of ``backend``
BACKENDS = ("auto", "pocketsphinx", "espeak", "vosk")


def base_language(language: str) -> str:
    """ISO 639 code without region: 'en-GB' -> 'en', 'pt_BR' -> 'pt'."""
    return (language or "en").strip().lower().replace("_", "-").split("-")[0]


def get_recognizer(language: str = "en", *, backend: str = "auto", vosk_model: str = "") -> Recognizer:
    """Return the backend for ``language`` (ISO 639 code, e.g. 'en', 'en-gb', 'es', 'ja').

    ``backend="auto"``: English uses pocketsphinx; any other language uses
    :class:`~lipsync_addon.core.recognize.languages.LanguageRecognizer`, which aligns the transcript
    with espeak-ng + DTW, recognizes with Vosk when there is no transcript and ``vosk_model`` (or a
    packaged model) is set, and otherwise explains what to provide. ``backend`` forces one of
    ``BACKENDS``.

    Raises:
        LipSyncError: unknown backend, unknown language, or a Vosk folder that is not a model.
    """
    if backend not in BACKENDS:
        raise LipSyncError(f"Unknown speech backend '{backend}'; choose one of: {', '.join(BACKENDS)}.")
    lang = base_language(language)
    if backend == "pocketsphinx" or (backend == "auto" and lang == "en" and not vosk_model):
        if lang != "en":
            raise LipSyncError(f"pocketsphinx only ships an English model; for '{language}' use backend 'auto'.")
        from .pocketsphinx_backend import PocketSphinxRecognizer

        return PocketSphinxRecognizer()
    from .languages import LanguageRecognizer

    return LanguageRecognizer(language, backend=backend, vosk_model=vosk_model)
