"""Words the forced alignment could not place, timed by espeak-ng + DTW instead of the phone loop.

Where pocketsphinx's alignment of a transcript fails in places (heavy noise, a cough over a word,
a part its beams lose), :class:`~.pocketsphinx_backend.PocketSphinxRecognizer` falls back to phone
recognition there: the mouth follows the sound, but the line's own words are dropped. The other
languages' aligner (:class:`~.espeak_align.EspeakAligner`: the transcript synthesized by espeak-ng and
warped onto the audio, then re-timed with the phone models where they confirm it) degrades more
gently in noise, so its timing of the missing words fills those gaps, between the words pocketsphinx
did place (whose timing is kept: it is the more accurate where it aligns). Measured in
docs/benchmarks.md ("Alignment on noisy speech").

A gap is left to the phone loop when the text does not seem to be what is said there: when the
espeak-ng path's own transcript checks warn, or when the missing words would have to be spoken much
faster than the line's aligned words are (``MAX_RATE_RATIO``: words in the text that were not said,
e.g. a sentence cut in the recording, must not be squeezed into the speech around them); and when the
DTW's words do not sit on the gap's speech (``MIN_ON_SPEECH``, ``MIN_SPEECH_COVERED``: in very heavy
noise the warp can lose its way, and the phone loop at least follows the sound).
"""

from __future__ import annotations

import re

import numpy as np

from ..audio import detect_speech
from ..types import Audio, CancelToken, Phone, Transcript, Word
from .timeline import tile_phones

#: a gap's missing words are timed only if their phones per second of speech in the gap are at most
#: this multiple of the rate of the words aligned around them (speaking rate varies within a line by
#: less than this; text that was not said needs far more: docs/benchmarks.md, "Transcript mismatch")
MAX_RATE_RATIO = 1.85
#: a word squeezed below this length (s) by the gap's edges is left out of the gap
MIN_WORD_S = 0.03
#: a gap is filled only if at least this share of its words' time is speech (energy VAD), and its words
#: cover at least ``MIN_SPEECH_COVERED`` of the gap's speech. Measured on the reference clips in bike
#: noise (0-10 dB, 7 lines whose alignment failed in places): where the DTW timed the words well (median
#: word-start error 20-40 ms) 0.70-0.88 of their time was speech and they covered 0.81-0.98 of it; where
#: it lost its way (median error 0.3-0.9 s) one of the two was 0.25-0.59 / 0.16-0.58. The margins are
#: thin and the sample small (docs/benchmarks.md); where aligned words surround the gap, the drift
#: check below is the stronger one, and where the whole line failed, this is the only one.
MIN_ON_SPEECH = 0.65
MIN_SPEECH_COVERED = 0.75
#: without aligned words to compare with (the whole line failed), at most this many phones per second
#: of speech (1.85 x the 11-14 phones/s of the reference lines' aligned words)
MAX_PHONE_RATE = 20.0
#: aligned words each side of a gap whose DTW timing is compared with pocketsphinx's
ANCHOR_WORDS = 4
#: a gap is filled only if the DTW starts those words within this median distance (s) of pocketsphinx
#: (measured: 0.005-0.02 s around the gaps it timed well, 0.6-4 s where it lost its way)
MAX_ANCHOR_DRIFT_S = 0.15


def _key(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _speech_seconds(regions: list, start: float, end: float) -> float:
    return sum(max(0.0, min(r.end, end) - max(r.start, start)) for r in regions)


def fill_gaps(
    audio: Audio,
    result: Transcript,
    words: list[str],
    gaps: list[tuple[float, float, int, int]],
    *,
    pronunciations: dict[str, str] | None = None,
    cancel: CancelToken | None = None,
) -> tuple[Transcript, int]:
    """``result`` with the words of its phone-loop ``gaps`` timed by an espeak-ng + DTW alignment of ``words``.

    Args:
        audio: the clip that was aligned (mono 16 kHz).
        result: pocketsphinx's transcript.
        words: the line's words as aligned (normalized: numbers spelled out, lower case).
        gaps: (start s, end s, first, last + 1 index into ``words``) of each span whose words fell back
            to the phone loop.
        pronunciations: the user's respellings (passed to espeak-ng).
        cancel: checked before and during the espeak-ng alignment.

    Returns:
        (transcript, number of gaps filled); ``result`` itself when nothing was filled (espeak-ng is
        missing, the texts do not match, or no gap passed the checks). A filled gap takes the espeak-ng
        path's phones and pauses; a gap that fails the checks keeps the phone loop.
    """
    from . import espeak, transcript_check
    from .espeak_align import EspeakAligner

    if not gaps or not espeak.available():
        return result, 0
    if cancel is not None:
        cancel.check()
    aligner = EspeakAligner("en")
    aligner.pronunciations = dict(pronunciations or {})
    try:
        other = aligner.transcribe(audio, " ".join(words), cancel=cancel)
    except espeak.EspeakError:
        return result, 0
    if aligner.last_fit is None or transcript_check.warnings_for(aligner.last_fit, "en"):
        return result, 0
    if [_key(w.text) for w in other.words] != [_key(w) for w in words]:
        return result, 0  # tokenized differently (e.g. a symbol espeak-ng reads aloud): no safe mapping
    regions = detect_speech(audio.samples, audio.rate, min_pause=0.15, margin=0.0)
    aligned_phones = sum(1 for p in result.phones if p.word_index >= 0)
    aligned_s = sum(w.end - w.start for w in result.words)
    line_rate = aligned_phones / aligned_s if aligned_s > 0 else 0.0
    max_rate = MAX_RATE_RATIO * line_rate if line_rate > 0 else MAX_PHONE_RATE
    missing = {i for _, _, first, stop in gaps for i in range(first, stop)}
    placed = [i for i in range(len(words)) if i not in missing]  # the words pocketsphinx aligned, in order
    anchors = dict(zip(placed, result.words, strict=False)) if len(placed) == len(result.words) else {}
    filled: dict[int, Word] = {}
    spans: list[tuple[float, float]] = []
    for start, end, first, stop in gaps:
        n_phones = sum(1 for p in other.phones if first <= p.word_index < stop and not p.is_silence)
        speech = _speech_seconds(regions, start, end)
        if speech <= 0 or n_phones / speech > max_rate:
            continue
        near = [i for i in placed if i < first][-ANCHOR_WORDS:] + [i for i in placed if i >= stop][:ANCHOR_WORDS]
        drift = [abs(other.words[i].start - anchors[i].start) for i in near if i in anchors]
        if drift and float(np.median(drift)) > MAX_ANCHOR_DRIFT_S:
            continue  # the DTW disagrees with pocketsphinx on the words around the gap: it lost its way
        gap_words: dict[int, Word] = {}
        for i in range(first, min(stop, len(other.words))):
            w = other.words[i]
            s, e = max(w.start, start), min(w.end, end)
            if e - s >= MIN_WORD_S:
                gap_words[i] = Word(w.text, s, e, w.confidence, "dtw")
        on_speech = sum(_speech_seconds(regions, w.start, w.end) for w in gap_words.values())
        word_s = sum(w.end - w.start for w in gap_words.values())
        if not gap_words or on_speech < MIN_ON_SPEECH * word_s or on_speech < MIN_SPEECH_COVERED * speech:
            continue  # the DTW lost its way here: the words sit on pauses, or leave the speech uncovered
        spans.append((start, end))
        filled.update(gap_words)
    if not spans:
        return result, 0
    # the method says "dtw" once no gap is left to the phone loop
    method = result.method.replace("phone_loop", "dtw") if len(spans) == len(gaps) else result.method
    out = _spliced(result, other, spans, filled, method)
    out.warnings = [_reworded(w, spans) for w in out.warnings]
    return out, len(spans)


def _spliced(result: Transcript, other: Transcript, spans: list[tuple[float, float]], filled: dict[int, Word],
             method: str) -> Transcript:
    """``result`` with ``other``'s phones (clipped) inside each gap of ``spans`` and the ``filled`` words
    (index into ``other.words`` -> word clipped to its gap); word indices renumbered in time order.
    A word squeezed out at a gap's edge keeps its phones, without a word."""
    items = [(w.start, "kept", k, w) for k, w in enumerate(result.words)]
    items += [(w.start, "filled", i, w) for i, w in filled.items()]
    items.sort(key=lambda item: item[0])
    index: dict[tuple[str, int], int] = {}
    words: list[Word] = []
    for _, src, k, w in items:
        index[(src, k)] = len(words)
        words.append(w)
    phones: list[Phone] = []
    for p in result.phones:  # outside the gaps (a phone straddling a gap's edge keeps its outside part)
        parts = [(p.start, p.end)]
        for a, b in spans:
            parts = [part for s, e in parts for part in ((s, min(e, a)), (max(s, b), e)) if part[1] > part[0] + 1e-6]
        phones += [Phone(p.ipa, s, e, p.confidence, index.get(("kept", p.word_index), -1), p.stress) for s, e in parts]
    for a, b in spans:
        for p in other.phones:
            s, e = max(p.start, a), min(p.end, b)
            if e > s + 1e-6:
                word = index.get(("filled", p.word_index), -1)
                if word >= 0:  # inside its (clipped) word
                    s, e = max(s, words[word].start), min(e, words[word].end)
                if e > s + 1e-6:
                    phones.append(Phone(p.ipa, s, e, p.confidence, word, p.stress))
    phones.sort(key=lambda p: p.start)
    return Transcript(words, tile_phones(phones, result.duration), result.duration, method, list(result.warnings),
                      wide_beam=result.wide_beam)


_FAILED = re.compile(r"^Alignment failed for (\d+(?:\.\d+)?)-(\d+(?:\.\d+)?) s; used phone recognition there")


def _reworded(warning: str, spans: list[tuple[float, float]]) -> str:
    """The recognizer's "used phone recognition there" note, for a span whose words were filled in."""
    m = _FAILED.match(warning)
    if not m or not any(s < float(m[2]) and e > float(m[1]) for s, e in spans):
        return warning
    return (f"Alignment failed for {m[1]}-{m[2]} s; the words there were timed by espeak-ng + DTW instead "
            "(less exact: check their timing, and that the transcript matches the audio).")
