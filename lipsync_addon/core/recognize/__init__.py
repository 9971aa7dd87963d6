"""Speech backends behind one interface: mono 16 kHz Audio (+ optional transcript) -> Transcript.

Every backend implements :class:`lipsync_addon.core.types.Recognizer` and always returns a result
(alignment, recognition + alignment, or a phone loop as the last resort). English uses pocketsphinx.
"""

from __future__ import annotations

from ..types import LipSyncError, Recognizer


def get_recognizer(language: str = "en") -> Recognizer:
    """Return the backend for ``language`` (ISO 639-1). Only English ships for now."""
    lang = (language or "en").lower().split("-")[0].split("_")[0]
    if lang == "en":
        from .pocketsphinx_backend import PocketSphinxRecognizer

        return PocketSphinxRecognizer()
    raise LipSyncError(
        f"Language '{language}' is not supported yet; English ('en') is. "
        "Other languages (Vosk models, espeak-ng alignment) are planned."
    )
