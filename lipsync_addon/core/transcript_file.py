"""Transcript files: plain text in any common encoding, or subtitles whose cue text is the line.

Dialogue often comes with subtitles (SubRip ``.srt``, WebVTT ``.vtt``) rather than a plain script.
Read as plain text, their cue numbers and time codes would be "spoken" (normalised to words) and
misalign everything, so the cue text is taken instead: numbers, time codes, WebVTT headers, notes and
styles, markup (``<i>``, ``<v Name>``, ``{\\an8}``), speaker labels (``JOHN:``), dialogue dashes and
sound descriptions (``[laughs]``, ``(sighs)``, music notes) are dropped.
"""

from __future__ import annotations

import os
import re

from .types import TranscriptError

#: A SubRip / WebVTT cue timing line: ``00:00:01,000 --> 00:00:02,500`` (hours optional in WebVTT).
_TIMING = re.compile(r"^\s*(\d+:)?\d{1,2}:\d{2}[,.]\d{1,3}\s*-->\s*(\d+:)?\d{1,2}:\d{2}[,.]\d{1,3}")
_TAG = re.compile(r"<[^>]*>|\{\\[^}]*\}")
_SOUND = re.compile(r"\[[^\]]*\]|\([^)]*\)|[♪♫#]")
_SPEAKER = re.compile(r"^\s*[A-Z][A-Z0-9 .'\-]{0,30}:\s+")
_DASH = re.compile(r"^\s*[-\u2010-\u2015]+\s*")


def decode_text(raw: bytes) -> str:
    """Text of a file's bytes: UTF-16 with a byte-order mark, UTF-8 (with or without BOM), else Latin-1."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def is_subtitles(text: str) -> bool:
    """True for WebVTT (``WEBVTT`` header) or SubRip (a cue timing line among the first lines)."""
    lines = text.lstrip("\ufeff").splitlines()
    if lines and lines[0].startswith("WEBVTT"):
        return True
    return any(_TIMING.match(line) for line in lines[:6])


def subtitle_text(text: str) -> str:
    """The spoken words of SubRip / WebVTT subtitles, cues joined with spaces, in order."""
    words: list[str] = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\r", "\n")):
        lines = [ln for ln in block.strip("\n").split("\n") if ln.strip()]
        if not lines or lines[0].startswith(("WEBVTT", "NOTE", "STYLE", "REGION")):
            continue
        timing = next((i for i, ln in enumerate(lines) if _TIMING.match(ln)), None)
        if timing is None:
            continue  # no cue timing: a number alone, a header, a stray line
        for raw in lines[timing + 1:]:
            line = _SPEAKER.sub("", _DASH.sub("", _SOUND.sub(" ", _TAG.sub("", raw)))).strip()
            if line:
                words.append(line)
    return " ".join(" ".join(words).split())


def transcript_from_text(text: str) -> str:
    """The line's text from what a user pasted or loaded: subtitles become their cue text, plain text is
    stripped."""
    return subtitle_text(text) if is_subtitles(text) else text.strip()


def read_transcript_file(path: str | os.PathLike[str]) -> str:
    """The line's text from a transcript file: plain text, or the cue text of ``.srt`` / ``.vtt`` subtitles.

    Raises:
        TranscriptError: the file cannot be read, or subtitles hold no text.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise TranscriptError(f"Cannot read the transcript file '{path}': {exc.strerror or exc}.") from exc
    text = decode_text(raw)
    if path.lower().endswith((".srt", ".vtt")) or is_subtitles(text):
        spoken = subtitle_text(text)
        if not spoken:
            raise TranscriptError(f"The subtitles '{os.path.basename(path)}' hold no text to align.")
        return spoken
    return text.strip()
