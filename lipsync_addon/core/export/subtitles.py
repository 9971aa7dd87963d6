"""Subtitles timed by the alignment: the transcript's lines as SubRip (``.srt``) or WebVTT (``.vtt``) cues.

Each cue runs from the line's first aligned word to its last (:class:`~lipsync_addon.core.types.LineTiming`),
so a rough script becomes subtitles that start and end with the speech. A line too long to read as one
subtitle (more than fits on two rows of :data:`ROW_CHARS` characters, or :data:`MAX_SECONDS`) or with a
long pause inside is cut into several cues between its words, at its longest pause, each timed by its
own words; a cue longer than one row (:data:`ROW_CHARS`) is written on two balanced rows. Speakers are
kept: ``NAME: text`` in SubRip, a voice tag ``<v NAME>`` in WebVTT, which is how
:mod:`lipsync_addon.core.transcript_file` reads them back.
"""

from __future__ import annotations

from dataclasses import replace

from ..types import LineTiming, LipSyncError

#: Most characters in one row of a cue: the usual broadcast and streaming limit.
ROW_CHARS = 42
#: Most characters in one cue: two full rows.
MAX_CHARS = 2 * ROW_CHARS
#: Longest cue, seconds.
MAX_SECONDS = 7.0
#: A pause at least this long (s) between two words ends a cue: no text on screen through silence.
PAUSE_SECONDS = 1.0
#: Characters that end a phrase: a good place to cut a line.
_PHRASE_END = ".,;:!?…—–-)»”\"'。、！？"


def _word_times(line: LineTiming, written: list[str], language: str) -> list[tuple[float, float]]:
    """(start, end) in seconds of each written (space-separated) word of ``line``: from its aligned
    words when every word of the line was aligned, else spread over the line by character count."""
    from ..recognize.espeak_align import tokenize

    counts = [len(tokenize(w, language)) for w in written]
    if line.words and sum(counts) == len(line.words):
        out, k = [], 0
        for n in counts:
            if n:
                out.append((line.words[k].start, line.words[k + n - 1].end))
                k += n
            else:  # punctuation or an annotation: no time of its own
                out.append(out[-1] if out else (line.words[0].start, line.words[0].start))
        return out
    total = max(1, sum(len(w) for w in written) + len(written) - 1)
    span = line.end - line.start
    out, chars = [], 0
    for w in written:
        a = line.start + span * chars / total
        chars += len(w)
        out.append((a, line.start + span * chars / total))
        chars += 1
    return out


def split_line(line: LineTiming, language: str = "en") -> list[LineTiming]:
    """``line`` as one or more cues: cut before a pause of :data:`PAUSE_SECONDS`, and where the text
    would no longer fit on two rows (:func:`fits`) or last over :data:`MAX_SECONDS`, at the longest pause of the cue so
    far (punctuation counts as 0.25 s more) that keeps a third of a cue before it. Text without spaces
    (Japanese, Chinese) stays one cue."""
    written = line.text.split()
    if len(written) < 2:
        return [line]
    times = _word_times(line, written, language)
    label = f"{line.speaker}: " if line.speaker else ""  # SubRip's "NAME: " is on screen too
    pieces: list[list[int]] = [[0]]
    for j in range(1, len(written)):
        piece = pieces[-1]
        text = " ".join(written[i] for i in [*piece, j])
        if times[j][0] - times[piece[-1]][1] >= PAUSE_SECONDS:
            pieces.append([j])
            continue
        if fits(label + text) and times[j][1] - times[piece[0]][0] <= MAX_SECONDS:
            piece.append(j)
            continue
        # cut where the speaker pauses longest, phrase punctuation counting as a 0.25 s pause; the
        # cue before keeps at least a third of MAX_CHARS unless the cut is just before the new word
        best, cut = -1.0, len(piece)
        for c in range(1, len(piece) + 1):
            nxt = piece[c] if c < len(piece) else j
            if c < len(piece) and len(" ".join(written[i] for i in piece[:c])) < MAX_CHARS // 3:
                continue
            score = times[nxt][0] - times[piece[c - 1]][1] + (0.25 if written[piece[c - 1]][-1] in _PHRASE_END else 0.0)
            if score >= best:
                best, cut = score, c
        pieces[-1], rest = piece[:cut], piece[cut:]
        pieces.append([*rest, j])
    if len(pieces) == 1:
        return [line]
    return [replace(line, text=" ".join(written[i] for i in p), start=times[p[0]][0], end=times[p[-1]][1],
                    words=()) for p in pieces]


def cues(lines: list[LineTiming], language: str = "en") -> list[LineTiming]:
    """The subtitle cues of ``lines``: each line, cut where :func:`split_line` cuts it."""
    return [cue for line in lines for cue in split_line(line, language)]


def _clock(seconds: float, separator: str) -> str:
    """``HH:MM:SS,mmm`` (SubRip) or ``HH:MM:SS.mmm`` (WebVTT) for ``seconds`` >= 0."""
    ms = max(0, round(seconds * 1000.0))
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, ms = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{ms:03d}"


def _row_cut(text: str, width: int) -> tuple[int, bool]:
    """(index of the space to break ``text`` at, whether both rows then fit in ``width``); -1 for no space.

    Among cuts whose rows both fit, the one whose longer row is shortest, a space after punctuation
    counting as 6 characters shorter; when none fits, the one whose longer row is shortest."""
    best: tuple[bool, int] | None = None
    cut = -1
    for i, ch in enumerate(text):
        if ch != " ":
            continue
        longer = max(i, len(text) - i - 1)
        rank = (longer > width, longer - (6 if text[i - 1] in _PHRASE_END else 0))
        if best is None or rank < best:
            best, cut = rank, i
    return cut, best is not None and not best[0]


def fits(text: str, width: int = ROW_CHARS) -> bool:
    """True when ``text`` fits on one row of ``width`` characters or on two (cut between words)."""
    return len(text) <= width or _row_cut(text, width)[1]


def two_rows(text: str, width: int = ROW_CHARS) -> str:
    """``text`` on two rows (joined by a line break) when it is longer than ``width`` characters: cut at the
    space that keeps both rows within ``width`` and the longer one shortest, preferring punctuation."""
    if len(text) <= width:
        return text
    cut, _ = _row_cut(text, width)
    return text if cut < 0 else text[:cut] + "\n" + text[cut + 1:]


def to_srt(lines: list[LineTiming]) -> str:
    """SubRip text of ``lines`` (numbered cues, speaker labels as ``NAME:``, two rows when long)."""
    cues = []
    for i, line in enumerate(lines, start=1):
        text = two_rows(f"{line.speaker}: {line.text}" if line.speaker else line.text)
        cues.append(f"{i}\n{_clock(line.start, ',')} --> {_clock(line.end, ',')}\n{text}\n")
    return "\n".join(cues)


def to_vtt(lines: list[LineTiming]) -> str:
    """WebVTT text of ``lines`` (speakers as voice tags ``<v NAME>``, two rows when long)."""
    cues = ["WEBVTT\n"]
    for line in lines:
        text = f"<v {line.speaker}>{two_rows(line.text)}" if line.speaker else two_rows(line.text)
        cues.append(f"{_clock(line.start, '.')} --> {_clock(line.end, '.')}\n{text}\n")
    return "\n".join(cues)


def write_subtitles(lines: list[LineTiming], path: str, language: str = "en") -> None:
    """Write ``lines`` to ``path`` as WebVTT when it ends in ``.vtt``, else SubRip (UTF-8); long lines
    are cut into several cues (:func:`cues`; ``language``: the transcript's ISO 639 code).

    Raises:
        LipSyncError: no timed lines (no transcript, or nothing aligned), or the file cannot be written.
    """
    if not lines:
        raise LipSyncError("No timed lines to write as subtitles: they come from the transcript (give --text).")
    timed = cues(lines, language)
    text = to_vtt(timed) if path.lower().endswith(".vtt") else to_srt(timed)
    try:
        with open(path, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
    except OSError as exc:
        raise LipSyncError(f"Cannot write '{path}': {exc.strerror or exc}") from exc
