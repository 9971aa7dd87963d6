"""Transcript files: plain text in any common encoding, or subtitles whose cue text is the line.

Dialogue often comes with subtitles (SubRip ``.srt``, WebVTT ``.vtt``) rather than a plain script.
Read as plain text, their cue numbers and time codes would be "spoken" (normalised to words) and
misalign everything, so the cue text is taken instead: numbers, time codes, WebVTT headers, notes and
styles, markup (``<i>``, ``<v Name>``, ``{\\an8}``), speaker labels (``JOHN:``), dialogue dashes and
sound descriptions (``[laughs]``, ``(sighs)``, music notes) are dropped.

A scene's dialogue often has several speakers on one track. :func:`script_lines` keeps who says each
line: WebVTT voice tags (``<v Anna>``), speaker labels (``ANNA:``; in a plain-text script where every
line is labelled, also ``Anna:``), an unlabelled line belonging to the last named speaker, and an
unlabelled dialogue dash (``- Hi.``) to an unknown one. :mod:`lipsync_addon.core.speakers` uses it
to animate one speaker's lines only.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from .types import TranscriptError

#: A SubRip / WebVTT cue timing line: ``00:00:01,000 --> 00:00:02,500`` (hours optional in WebVTT).
_TIMING = re.compile(r"^\s*(\d+:)?\d{1,2}:\d{2}[,.]\d{1,3}\s*-->\s*(\d+:)?\d{1,2}:\d{2}[,.]\d{1,3}")
_TAG = re.compile(r"<[^>]*>|\{\\[^}]*\}")
#: Directions and sound descriptions, not speech: ``(quietly)``, ``[door creaks]``, ``{B_TRANS}``, full-width
#: ``（笑）`` ``［拍手］``, music signs (a number in parentheses, ``(555)``, and ``#1`` are spoken). With ``_TAG``
#: (``<VOCNOISE>``, ``<i>``) they are left out of every transcript.
_SOUND = re.compile(r"\[[^\]]*\]|\((?![\d\s\-+.]+\))[^)]*\)|\{[^}]*\}|（[^）]*）|［[^］]*］|【[^】]*】|[♪♫]|#(?!\s?\d)")
_SPEAKER = re.compile(r"^\s*([A-Z][A-Z0-9 .'\-]{0,30}):\s+")
#: In plain text a capital label needs two characters: "I: ..." or "A: ..." stay spoken words.
_PLAIN_SPEAKER = re.compile(r"^\s*([A-Z][A-Z0-9 .'\-]{1,30}):\s+")
#: A label in any case (``Anna:``), trusted only in a plain-text script where every line has one.
_ANY_SPEAKER = re.compile(r"^\s*([^\W\d_][\w .'\-]{0,30}?):\s+")
_VOICE = re.compile(r"<v(?:\.[\w.\-]+)?\s+([^>]+)>")
_DASH = re.compile(r"^\s*[-\u2010-\u2015]+\s*")
#: Subtitle formatting, voice and timestamp tags: markup, not annotations (``<i>``, ``</b>``, ``<v Anna>``,
#: ``<00:00:05.000>``, ``{\\an8}``).
_FORMAT = re.compile(
    r"</?(?:[ibus]|br\s*/?|v(?:\.[\w.\-]+)?(?:\s[^>]*)?|c(?:\.[\w.\-]+)?|lang[^>]*|ruby|rt|font[^>]*)>"
    r"|<\d[\d:.]*>|\{\\[^}]*\}",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ScriptLine:
    """One line of dialogue: who says it ("" when unknown) and its spoken text (markup dropped)."""

    speaker: str
    text: str


def annotations(text: str) -> list[str]:
    """The directions and sound descriptions in ``text`` (``(laughs)``, ``[door creaks]``, ``<VOCNOISE>``),
    in order: they are not spoken, so they are never aligned. Formatting tags (``<i>``, ``</v>``) are
    not listed."""
    found = [m.group(0) for m in re.finditer(f"{_TAG.pattern}|{_SOUND.pattern}", text)]
    return [a for a in found if a.strip("<>/{}\\ ").strip() and not _FORMAT.fullmatch(a) and a not in "♪♫#"]


def without_annotations(text: str) -> str:
    """``text`` without its directions, sound descriptions and tags: each becomes a space, except
    formatting tags, which go without one (``<i>Hel</i>lo`` is ``Hello``; a ``<br>`` is a space)."""
    def tag(m: re.Match[str]) -> str:
        markup = _FORMAT.fullmatch(m.group(0)) and not m.group(0).lower().startswith("<br")
        return "" if markup else " "

    return _SOUND.sub(" ", _TAG.sub(tag, text))


def speaker_key(name: str) -> str:
    """How speaker names are compared: case and spacing do not matter ("Anna ", "ANNA" and "anna")."""
    return " ".join(name.split()).casefold()


def decode_text(raw: bytes) -> str:
    """Text of a file's bytes: UTF-16 with a byte-order mark, UTF-8 (with or without BOM), else Latin-1."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def is_subtitles(text: str) -> bool:
    """True for WebVTT (``WEBVTT`` header) or SubRip (cue timing lines: no plain transcript has one)."""
    lines = text.lstrip("\ufeff").splitlines()
    if lines and lines[0].startswith("WEBVTT"):
        return True
    return any(_TIMING.match(line) for line in lines)


def _cue_lines(text: str) -> list[list[str]]:
    """The text rows of every SubRip / WebVTT cue, cue by cue, in order (headers, notes, numbers and timings
    dropped)."""
    out: list[list[str]] = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\r", "\n")):
        lines = [ln for ln in block.strip("\n").split("\n") if ln.strip()]
        if not lines or lines[0].startswith(("WEBVTT", "NOTE", "STYLE", "REGION")):
            continue
        timing = next((i for i, ln in enumerate(lines) if _TIMING.match(ln)), None)
        if timing is None:
            continue  # no cue timing: a number alone, a header, a stray line
        out.append(lines[timing + 1:])
    return out


def _labelled(raw: str, label: re.Pattern[str], speaker: str) -> tuple[str, str, bool]:
    """(speaker, spoken text, whether a speaker label, voice tag or dialogue dash starts it) of one raw line;
    ``speaker`` is the last named one (kept when unlabelled)."""
    voice = _VOICE.search(raw)
    if voice:
        speaker = voice.group(1).strip()
    line = without_annotations(raw)
    dash = _DASH.match(line)
    line = _DASH.sub("", line)
    named = label.match(line)
    if named:
        speaker, line = named.group(1).strip(), line[named.end():]
    elif dash and not voice:
        speaker = ""  # a dialogue dash without a name: someone else speaks
    return speaker, " ".join(line.split()), bool(voice or dash or named)


def script_lines(text: str) -> list[ScriptLine]:
    """The dialogue lines of a transcript, subtitles or script, in order, with their speakers.

    Subtitles give one line per cue (per speaker when a cue's rows start with labels, voice tags or
    dialogue dashes). Plain text gives one line per text line when it has speaker
    labels (``ANNA: ...``; ``Anna: ...`` when at least two lines and every line are labelled), else
    the whole text as one line of an unknown speaker. Lines with no words are dropped.
    """
    return _script_lines(text, subtitles=is_subtitles(text))


def _script_lines(text: str, *, subtitles: bool) -> list[ScriptLine]:
    if subtitles:
        return _subtitle_lines(_cue_lines(text))
    raw_lines = [ln for ln in text.replace("\r\n", "\n").replace("\r", "\n").split("\n") if ln.strip()]
    bare = [_DASH.sub("", without_annotations(ln)).lstrip() for ln in raw_lines]
    if len(raw_lines) >= 2 and all(_ANY_SPEAKER.match(ln) for ln in bare):
        label = _ANY_SPEAKER
    elif any(_PLAIN_SPEAKER.match(ln) for ln in bare):
        label = _PLAIN_SPEAKER
    else:
        plain = " ".join(without_annotations(text).split())
        return [ScriptLine("", plain)] if plain else []
    out: list[ScriptLine] = []
    speaker = ""
    for raw in raw_lines:
        speaker, line, _ = _labelled(raw, label, speaker)
        if line:
            out.append(ScriptLine(speaker, line))
    return out


def _subtitle_lines(cues: list[list[str]]) -> list[ScriptLine]:
    """One line per cue, or per speaker within a cue: a row that no label, voice tag or dialogue dash
    starts continues the line above it in the same cue (a subtitle's second row)."""
    out: list[ScriptLine] = []
    speaker = ""
    for rows in cues:
        open_line = False
        for raw in rows:
            speaker, line, starts = _labelled(raw, _SPEAKER, speaker)
            if not line:
                continue
            if open_line and not starts:
                out[-1] = ScriptLine(out[-1].speaker, f"{out[-1].text} {line}")
            else:
                out.append(ScriptLine(speaker, line))
                open_line = True
    return out


def sentences(text: str) -> list[str]:
    """``text`` cut after sentence ends (``.``, ``!``, ``?``, ``…`` and their CJK forms) followed by a space
    or the end; pieces without letters or digits join the one before."""
    out: list[str] = []
    for piece in re.split(r"(?<=[.!?…。！？])\s+|(?<=[。！？])", " ".join(text.split())):
        if not piece.strip():
            continue
        if out and not any(c.isalnum() for c in piece):
            out[-1] += " " + piece
        else:
            out.append(piece.strip())
    return out


def speakers(text: str) -> list[str]:
    """The named speakers of a transcript, subtitles or script, in order of their first line."""
    seen: dict[str, str] = {}
    for line in script_lines(text):
        if line.speaker:
            seen.setdefault(speaker_key(line.speaker), line.speaker)
    return list(seen.values())


def subtitle_text(text: str) -> str:
    """The spoken words of SubRip / WebVTT subtitles, cues joined with spaces, in order."""
    return " ".join(line.text for line in _script_lines(text, subtitles=True))


def transcript_from_text(text: str) -> str:
    """The line's text from what a user pasted or loaded: subtitles become their cue text, a script's
    speaker labels are dropped, plain text is stripped."""
    if is_subtitles(text):
        return subtitle_text(text)
    lines = script_lines(text)
    if len(lines) == 1 and not lines[0].speaker:
        return without_annotations(text).strip()  # plain text, its line breaks kept
    return " ".join(line.text for line in lines)


def read_script_file(path: str | os.PathLike[str]) -> str:
    """The text of a transcript file as written (plain text, a labelled script, or ``.srt`` / ``.vtt``
    subtitles), decoded; :func:`transcript_from_text` and :func:`script_lines` read it.

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
    subtitles = path.lower().endswith((".srt", ".vtt")) or is_subtitles(text)
    if subtitles and not subtitle_text(text):
        raise TranscriptError(f"The subtitles '{os.path.basename(path)}' hold no text to align.")
    return text


def read_transcript_file(path: str | os.PathLike[str]) -> str:
    """The line's text from a transcript file: plain text, a script without its speaker labels, or the cue
    text of ``.srt`` / ``.vtt`` subtitles.

    Raises:
        TranscriptError: the file cannot be read, or subtitles hold no text.
    """
    text = read_script_file(path)
    if os.fspath(path).lower().endswith((".srt", ".vtt")):
        return subtitle_text(text)
    return transcript_from_text(text)
