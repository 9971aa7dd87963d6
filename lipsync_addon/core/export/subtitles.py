"""Subtitles timed by the alignment: the transcript's lines as SubRip (``.srt``) or WebVTT (``.vtt``) cues.

Each cue runs from the line's first aligned word to its last (:class:`~lipsync_addon.core.types.LineTiming`),
so a rough script becomes subtitles that start and end with the speech. Speakers are kept: ``NAME: text``
in SubRip, a voice tag ``<v NAME>`` in WebVTT, which is how :mod:`lipsync_addon.core.transcript_file`
reads them back.
"""

from __future__ import annotations

from ..types import LineTiming, LipSyncError


def _clock(seconds: float, separator: str) -> str:
    """``HH:MM:SS,mmm`` (SubRip) or ``HH:MM:SS.mmm`` (WebVTT) for ``seconds`` >= 0."""
    ms = max(0, round(seconds * 1000.0))
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, ms = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{ms:03d}"


def to_srt(lines: list[LineTiming]) -> str:
    """SubRip text of ``lines`` (numbered cues, speaker labels as ``NAME:``)."""
    cues = []
    for i, line in enumerate(lines, start=1):
        text = f"{line.speaker}: {line.text}" if line.speaker else line.text
        cues.append(f"{i}\n{_clock(line.start, ',')} --> {_clock(line.end, ',')}\n{text}\n")
    return "\n".join(cues)


def to_vtt(lines: list[LineTiming]) -> str:
    """WebVTT text of ``lines`` (speakers as voice tags ``<v NAME>``)."""
    cues = ["WEBVTT\n"]
    for line in lines:
        text = f"<v {line.speaker}>{line.text}" if line.speaker else line.text
        cues.append(f"{_clock(line.start, '.')} --> {_clock(line.end, '.')}\n{text}\n")
    return "\n".join(cues)


def write_subtitles(lines: list[LineTiming], path: str) -> None:
    """Write ``lines`` to ``path`` as WebVTT when it ends in ``.vtt``, else SubRip (UTF-8).

    Raises:
        LipSyncError: no timed lines (no transcript, or nothing aligned), or the file cannot be written.
    """
    if not lines:
        raise LipSyncError("No timed lines to write as subtitles: they come from the transcript (give --text).")
    text = to_vtt(lines) if path.lower().endswith(".vtt") else to_srt(lines)
    try:
        with open(path, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
    except OSError as exc:
        raise LipSyncError(f"Cannot write '{path}': {exc.strerror or exc}") from exc
