"""One speaker's lines of a dialogue track with several speakers.

A scene's dialogue is often one recording of two or more characters, with a script or subtitles that
say who speaks each line (:func:`lipsync_addon.core.transcript_file.script_lines`). Each character is
then generated from the same clip with its own speaker chosen:

1. the whole script is aligned to the clip (every speaker's words: the aligner needs all the speech it
   hears to place any of it);
2. each aligned word is matched back to its script line (a sequence alignment of the aligned words
   against the lines' words, so words the aligner skipped or could not pronounce do not shift the
   others; a word it cannot match takes its neighbours' line);
3. the other speakers' phones become silence: the mouth rests while someone else talks (pauses
   longer than ~0.15 s relax to rest, as everywhere). Sounds outside any word (fillers, a stretch
   the phone loop timed) go to the speaker of the nearest word in time.

Nothing here uses subtitle times, so a script without times, or subtitles made for a longer cut of
the scene, work the same.
"""

from __future__ import annotations

import bisect
import difflib
import unicodedata

from .recognize.timeline import tile_phones
from .transcript_file import ScriptLine, script_lines, speaker_key, speakers
from .types import LineTiming, Phone, Transcript, TranscriptError, Word


def select(text: str, speaker: str) -> tuple[list[ScriptLine], set[int]]:
    """The script's lines and the indices of ``speaker``'s lines (names compared without case).

    Raises:
        TranscriptError: the transcript names no speakers, or none called ``speaker``.
    """
    lines = script_lines(text)
    names = speakers(text)
    if not names:
        raise TranscriptError(
            f"Speaker '{speaker}' was chosen, but the transcript names no speakers. Label each line with who "
            "says it ('ANNA: Hello.', or '<v Anna>' in WebVTT subtitles), or clear the speaker to animate every line."
        )
    key = speaker_key(speaker)
    keep = {i for i, line in enumerate(lines) if speaker_key(line.speaker) == key}
    if not keep:
        raise TranscriptError(
            f"No line of the transcript is spoken by '{speaker}'. Its speakers are: {', '.join(names)}."
        )
    return lines, keep


def _fold(word: str) -> str:
    """A word as compared: case, accents and punctuation do not matter."""
    nfkd = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in nfkd if c.isalnum() and not unicodedata.combining(c))


def word_lines(words: list[str], lines: list[ScriptLine], language: str) -> list[int]:
    """The script line (index into ``lines``) of each aligned word.

    ``words`` are the aligned words' texts in order; each line is split into words the way the
    aligner splits a transcript in ``language``, and the two word sequences are aligned (difflib).
    A word with no match takes the line of the nearest matched word before it, else after it.
    Returns [] for no words; every index is -1 when no word matches at all.
    """
    from .recognize.espeak_align import tokenize

    line_words: list[str] = []
    line_of: list[int] = []
    for i, line in enumerate(lines):
        for token in tokenize(line.text, language):
            line_words.append(_fold(token.text))
            line_of.append(i)
    ours = [_fold(w) for w in words]
    if ours == line_words:  # every word aligned, as written: the usual case, and linear time
        return list(line_of)
    found: list[int | None] = [None] * len(ours)
    matcher = difflib.SequenceMatcher(None, line_words, ours, autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            found[block.b + k] = line_of[block.a + k]
    known = [i for i, v in enumerate(found) if v is not None]
    if not known:
        return [-1] * len(ours)
    out: list[int] = []
    for i, line in enumerate(found):
        if line is not None:
            out.append(line)
            continue
        before = bisect.bisect_left(known, i) - 1
        out.append(out[known[before]] if before >= 0 else int(found[known[0]]))  # type: ignore[arg-type]
    return out


def line_times(transcript: Transcript, lines: list[ScriptLine], language: str) -> list[LineTiming]:
    """Each line's span in the clip: its first aligned word's start to its last aligned word's end (s).

    Lines none of whose words were aligned are left out. ``transcript`` is the alignment of every line.
    """
    owner = word_lines([w.text for w in transcript.words], lines, language)
    spans: dict[int, list[float]] = {}
    words: dict[int, list[Word]] = {}
    for word, line in zip(transcript.words, owner, strict=True):
        if line >= 0:
            span = spans.setdefault(line, [word.start, word.end])
            span[0], span[1] = min(span[0], word.start), max(span[1], word.end)
            words.setdefault(line, []).append(word)
    return [LineTiming(lines[i].speaker, lines[i].text, start, end, tuple(words[i]))
            for i, (start, end) in sorted(spans.items())]


def keep_speaker(transcript: Transcript, lines: list[ScriptLine], keep: set[int], language: str) -> Transcript:
    """``transcript`` with only the words of the lines in ``keep``; every other speech phone is silence.

    Phones outside any word (fillers, phone-loop stretches) belong to the speaker of the nearest word
    in time. Words keep their order; phones' ``word_index`` refer to the kept words.
    """
    words = transcript.words
    owner = word_lines([w.text for w in words], lines, language)
    mine = [i for i, line in enumerate(owner) if line in keep]
    new_index = {old: k for k, old in enumerate(mine)}
    starts = [w.start for w in words]
    warnings = list(transcript.warnings)
    unsure = False
    phones: list[Phone] = []
    for p in transcript.phones:
        if p.is_silence:
            phones.append(p)
            continue
        wi = p.word_index if 0 <= p.word_index < len(words) else _nearest_word(p, words, starts)
        if wi < 0 or owner[wi] < 0:
            unsure = True  # no word to tell whose it is: keep it (better a moving mouth than a lost line)
            phones.append(Phone(p.ipa, p.start, p.end, p.confidence, -1, p.stress))
        elif owner[wi] in keep:
            phones.append(Phone(p.ipa, p.start, p.end, p.confidence, new_index.get(p.word_index, -1), p.stress))
        else:
            phones.append(Phone("sil", p.start, p.end))
    if unsure:
        warnings.append(
            "The speakers could not be told apart where no words were aligned: that speech moves this mouth too. "
            "Check that the transcript matches the clip."
        )
    if words and not mine:
        warnings.append("None of this speaker's words could be aligned to the clip; the mouth stays at rest.")
    return Transcript([words[i] for i in mine], tile_phones(phones, transcript.duration), transcript.duration,
                      transcript.method, warnings)


def _nearest_word(phone: Phone, words: list, starts: list[float]) -> int:
    """Index of the word nearest in time to ``phone`` (-1 when there are no words)."""
    if not words:
        return -1
    k = bisect.bisect_right(starts, phone.start)
    best, best_gap = -1, float("inf")
    for i in (k - 1, k):
        if 0 <= i < len(words):
            gap = max(0.0, words[i].start - phone.end, phone.start - words[i].end)
            if gap < best_gap:
                best, best_gap = i, gap
    return best
