"""English speech analysis with pocketsphinx 5.1.1 and the en-us model its wheel ships.

With a transcript: forced alignment to words, then a second pass for phones.
Without: recognition with the bundled n-gram LM, then a phone alignment of the recognizer's own
hypothesis on the same decoder.
When recognition or alignment fails, an all-phone loop gives phones anyway, so there is always
a result. Long clips are cut at pauses and the pieces run in worker processes.

Known traps (DESIGN.md): alignment needs wide beams (retried wider on failure), bestpath=False,
and float -> int16 with rounding.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .. import pronunciations
from ..audio import detect_speech, split_at_pauses, to_int16
from ..phonemes import Lexicon, arpabet_to_ipa, normalize_text, strip_stress
from ..types import ANALYSIS_RATE, Audio, Cancelled, CancelToken, Phone, ProgressFn, Transcript, Word, no_progress
from . import gap_fill, hum
from .timeline import tile_phones
from .transcript_check import no_speech_warnings
from .worker import WorkerPool

#: pocketsphinx frame period, seconds (100 frames/s).
FRAME = 0.01
#: HMM beams tried in order for forced alignment (narrow = fast; wider on failure); the phone-exit
#: and word-exit beams (pbeam, wbeam) stay at the first.
ALIGN_BEAMS = (1e-80, 1e-160, 1e-300)
#: The last resort when those fail: every beam this wide. A path pruned at a phone or word exit is
#: lost whatever the HMM beam, so a line can fail all of ALIGN_BEAMS and align here; but so can a text
#: with an unsaid sentence squeezed into the speech, so such an alignment is checked (``_repair``).
WIDE_SEARCH = 1e-300
#: A forced alignment whose words fit the sound worse than this (median over words of the
#: per-frame acoustic score relative to the best-scoring senone, pocketsphinx log units) gets a
#: "transcript may not match" warning. Measured (docs/benchmarks.md, "Transcript mismatch"): the
#: right text scores -6 to -32 on clean read and spontaneous speech and down to -40 with noise at
#: 10 dB SNR; another line's text scores -43 to -73.
MISMATCH_FIT = -45.0
#: Aligned words covering less than this share of the detected speech get a "missing words"
#: warning. Measured: complete transcripts cover 0.66-1.05 of the VAD speech time, a quarter of
#: the words 0.14-0.44 (scripts/eval_mismatch.py).
MIN_WORD_COVERAGE = 0.5
#: With a transcript, the words of the spans where the alignment failed (phone-loop fallback) are
#: timed by espeak-ng + DTW where it is installed and the text fits (``gap_fill``). Measured
#: (docs/benchmarks.md, "Alignment on noisy speech"): viseme agreement in bike noise rises at every
#: SNR where spans fail; clean speech never gets there.
FILL_GAPS_WITH_DTW = True
#: Longest piece decoded in one go, seconds; longer clips are cut at pauses.
MAX_CHUNK = 30.0
#: Longest piece when locating a transcript's words in a long clip, seconds.
LOCATE_CHUNK = 15.0
#: Long clips are cut into a multiple of this many pieces (``_piece_length``).
PIECES_IN = 2
#: Pieces for the workers may run this much over an even share (the cuts go into pauses).
BALANCE_SLACK = 1.1
#: Shortest pause between two recognized transcript words where a long clip may be cut, seconds.
MIN_CUT_PAUSE = 0.1
#: Fillers the en-us dictionary knows; never turned into words.
_FILLERS = {"<s>", "</s>", "<sil>", "[noise]", "[speech]", "++noise++", "+nsn+", "+spn+"}
#: Fillers that are speech the dictionary cannot spell (the en-us model's +SPN+).
_SPEECH_FILLERS = {"[speech]", "+spn+"}
#: Recognition search settings. Measured on real speech (scripts/eval_align.py, no transcript):
#: no fwdflat/bestpath passes (they cost time and lost accuracy: 0.63 vs 0.665 viseme agreement),
#: and a word beam of 1e-15, 10k HMMs per frame and 5-frame phone lookahead, which cut recognition
#: time by ~40 % at unchanged accuracy (narrower settings lose accuracy: maxhmmpf 5000 -> 0.675,
#: beam 1e-40 -> 0.66). Since phones are aligned to the recognizer's own hypothesis
#: (``_recognize_aligned``, more accurate: 0.676 / 0.699 F1 / agreement), phone beams of 1e-40
#: (exit) and 1e-30 (last phone) cut recognition CPU by ~25 % at 0.679 / 0.691; topn 2-3, ds 2,
#: maxwpf, lponlybeam and lw 7-8 lost accuracy or saved nothing (docs/benchmarks.md).
RECOGNIZE_SETTINGS: dict[str, float | bool | int] = {
    "fwdflat": False,
    "bestpath": False,
    "wbeam": 1e-15,
    "maxhmmpf": 10000,
    "pl_window": 5,
    "pbeam": 1e-40,
    "lpbeam": 1e-30,
}


def model_dir() -> str:
    """Folder of the en-us model that ships inside the pocketsphinx wheel."""
    from pocketsphinx import get_model_path

    return os.path.join(get_model_path(), "en-us")


def _config(**kwargs: object) -> object:
    from pocketsphinx import Config

    md = model_dir()
    base: dict[str, object] = {
        "hmm": os.path.join(md, "en-us"),
        "dict": os.path.join(md, "cmudict-en-us.dict"),
        "loglevel": "FATAL",
    }
    base.update(kwargs)
    return Config(**base)


_LOCAL = threading.local()


def _decoder(kind: str) -> object:
    """One decoder per kind per thread ("align", "recognize", "phones"); building one costs ~0.3 s.

    Decoders are not thread-safe, so each thread (e.g. two Blender jobs at once) gets its own.
    """
    cache: dict[str, object] = _LOCAL.__dict__.setdefault("decoders", {})
    if kind not in cache:
        cache[kind] = _new_decoder(kind)
    return cache[kind]


def fresh_features() -> None:
    """Reset the feature extraction of this thread's decoders (``reinit_feat``, ~0.1 ms each).

    pocketsphinx carries feature state from one utterance to the next, so the same audio could time
    differently depending on what the decoder heard before (measured: up to 0.06 F1 on a 1-2 s line).
    Called before each piece of a line, the timing of a line depends only on the line: the same
    on the first or the hundredth line of a session, and on 1 or 8 worker processes.
    """
    cache: dict[str, object] = _LOCAL.__dict__.get("decoders", {})
    decoders = [*cache.values(), *_LOCAL.__dict__.get("transcript_decoders", {}).values()]
    for decoder in decoders:
        decoder.reinit_feat()  # type: ignore[attr-defined]


def _new_decoder(kind: str) -> object:
    from pocketsphinx import Decoder

    md = model_dir()
    if kind == "align":
        return Decoder(_config(lm=None, beam=ALIGN_BEAMS[0], wbeam=ALIGN_BEAMS[0], pbeam=ALIGN_BEAMS[0],
                               bestpath=False))
    if kind == "recognize":
        return Decoder(_config(lm=os.path.join(md, "en-us.lm.bin"), **RECOGNIZE_SETTINGS))
    if kind == "phones":
        return Decoder(_config(lm=None, allphone=os.path.join(md, "en-us-phone.lm.bin"), bestpath=False,
                               beam=1e-40, pbeam=1e-40, lw=2.0, pip=0.3))
    raise ValueError(kind)


@dataclass
class _Piece:
    """Work for one chunk: audio slice and (optionally) the words to align, plain data (picklable)."""

    offset: float
    pcm: bytes
    words: list[str] = field(default_factory=list)
    prons: dict[str, list[str]] = field(default_factory=dict)
    recognize: bool = False
    #: ARPA LM and dictionary of the transcript: recognition restricted to the line's own words
    #: (used to locate words in long clips).
    transcript_lm: str = ""
    transcript_dict: str = ""
    #: align without the WIDE_SEARCH last resort (every part made by ``_repair``)
    narrow: bool = False
    #: index of ``words[0]`` in the whole line's words
    first: int = 0


@dataclass
class _PieceResult:
    words: list[tuple[str, float, float]]  # (word, start, end) absolute seconds
    phones: list[tuple[str, float, float, int]]  # (ARPAbet, start, end, index into words or -1)
    method: str
    warnings: list[str] = field(default_factory=list)
    #: how well the aligned words fit the sound (see MISMATCH_FIT); None without an alignment
    fit: float | None = None
    #: per aligned word: acoustic score per frame relative to the best senone (``fit`` is their median)
    word_scores: list[float] = field(default_factory=list)
    #: the forced alignment failed with ALIGN_BEAMS and needed WIDE_SEARCH (see Transcript.wide_beam)
    wide_beam: bool = False
    #: spans where transcript words fell back to the phone loop: (start s, end s, first, last + 1 index
    #: into the whole line's words)
    missing: list[tuple[float, float, int, int]] = field(default_factory=list)


def _added_words(decoder: object) -> set[str]:
    """Words this thread added to ``decoder`` at run time (pronounced by cmudict, compounds, letter-to-sound
    or the user), which are not the model dictionary's own."""
    added: dict[int, set[str]] = _LOCAL.__dict__.setdefault("added", {})
    return added.setdefault(id(decoder), set())


def _add_prons(decoder: object, prons: dict[str, list[str]]) -> None:
    added = _added_words(decoder)
    for word, phones in prons.items():
        if decoder.lookup_word(word) is None and phones:  # type: ignore[attr-defined]
            decoder.add_word(word, " ".join(strip_stress(phones)), True)  # type: ignore[attr-defined]
            added.add(word)


def _align(
    pcm: bytes,
    words: list[str],
    prons: dict[str, list[str]],
    offset: float,
    beams: tuple[float, ...] | None = None,
    *,
    wide: bool = True,
) -> _PieceResult | None:
    """Forced alignment of ``words`` to ``pcm`` (int16 bytes at 16 kHz, ``offset`` s into the clip) trying
    the HMM ``beams`` (default ALIGN_BEAMS) in turn, phone and word exits at the first, then, with
    ``wide``, every beam at WIDE_SEARCH (the result says ``wide_beam``); None if all failed."""
    decoder = _decoder("align")
    _add_prons(decoder, prons)
    text = " ".join(words)
    beams = beams or ALIGN_BEAMS
    tries = [(beam, beams[0], beams[0]) for beam in beams] + ([(WIDE_SEARCH,) * 3] if wide else [])
    for k, settings in enumerate(tries):
        try:
            config = decoder.get_config()  # type: ignore[attr-defined]
            if tuple(config[key] for key in ("beam", "pbeam", "wbeam")) != settings:
                for key, value in zip(("beam", "pbeam", "wbeam"), settings, strict=True):
                    config[key] = value
                decoder.reinit()  # type: ignore[attr-defined]
                _add_prons(decoder, prons)
            decoder.set_align_text(text)  # type: ignore[attr-defined]
            decoder.start_utt()  # type: ignore[attr-defined]
            decoder.process_raw(pcm, full_utt=True)  # type: ignore[attr-defined]
            decoder.end_utt()  # type: ignore[attr-defined]
            if decoder.hyp() is None:  # type: ignore[attr-defined]
                continue
            decoder.set_alignment()  # type: ignore[attr-defined]
            decoder.start_utt()  # type: ignore[attr-defined]
            decoder.process_raw(pcm, full_utt=True)  # type: ignore[attr-defined]
            decoder.end_utt()  # type: ignore[attr-defined]
            alignment = decoder.get_alignment()  # type: ignore[attr-defined]
        except RuntimeError:
            continue
        if alignment is None:
            continue
        result = _from_alignment(alignment, words, offset)
        result.wide_beam = k >= len(beams)
        return result
    return None


def _from_alignment(alignment: object, words: list[str], offset: float) -> _PieceResult:
    out_words: list[tuple[str, float, float]] = []
    out_phones: list[tuple[str, float, float, int]] = []
    scores: list[float] = []
    wi = 0
    for w in alignment:  # type: ignore[attr-defined]
        name = w.name.split("(")[0].lower()
        ws, we = offset + w.start * FRAME, offset + (w.start + w.duration) * FRAME
        if name in _FILLERS or name.startswith("+") or wi >= len(words):
            out_phones.append((_filler_phone(name), ws, we, -1))
            continue
        out_words.append((words[wi], ws, we))
        scores.append(float(w.score) / max(1, int(w.duration)))
        for p in w:
            out_phones.append((p.name, offset + p.start * FRAME, offset + (p.start + p.duration) * FRAME, wi))
        wi += 1
    return _PieceResult(out_words, out_phones, "align", fit=float(np.median(scores)) if scores else None,
                        word_scores=scores)


def _filler_phone(name: str) -> str:
    """Phone for a filler: speech noise (mumbles, "uh", "um" outside the text) keeps the mouth
    half open as a schwa; silence and other noise close it."""
    return "AH0" if name.lower() in _SPEECH_FILLERS else "SIL"


def _recognize(pcm: bytes, offset: float) -> list[tuple[str, float, float]]:
    return _decode_words(_decoder("recognize"), pcm, offset)


def _recognize_aligned(pcm: bytes, offset: float) -> tuple[list[str], _PieceResult | None]:
    """Recognize ``pcm``, then align phones to the recognizer's own hypothesis.

    The phone pass runs on the recognition decoder itself (pocketsphinx ``set_alignment`` after an
    n-gram search), so the word sequence keeps the recognizer's pauses and noise fillers and its
    choice among pronunciation variants, and no separate word-level alignment pass or alignment
    decoder is needed. Returns (recognized words, result); the result is None when the phone pass
    fails, and the caller then aligns the words with the alignment decoder instead.
    """
    decoder = _decoder("recognize")
    words = [w for w, _, _ in _decode_words(decoder, pcm, offset)]
    if not words:
        return words, None
    try:
        decoder.set_alignment()  # type: ignore[attr-defined]
        decoder.start_utt()  # type: ignore[attr-defined]
        decoder.process_raw(pcm, full_utt=True)  # type: ignore[attr-defined]
        decoder.end_utt()  # type: ignore[attr-defined]
        alignment = decoder.get_alignment()  # type: ignore[attr-defined]
    except RuntimeError:
        alignment = None
    finally:
        decoder.activate_search()  # type: ignore[attr-defined]  # back to the n-gram search
    if alignment is None:
        return words, None
    return words, _from_alignment(alignment, words, offset)


def _decode_words(decoder: object, pcm: bytes, offset: float) -> list[tuple[str, float, float]]:
    decoder.start_utt()  # type: ignore[attr-defined]
    decoder.process_raw(pcm, full_utt=True)  # type: ignore[attr-defined]
    decoder.end_utt()  # type: ignore[attr-defined]
    out = []
    for seg in decoder.seg():  # type: ignore[attr-defined]
        word = seg.word.split("(")[0].lower()
        if word in _FILLERS or word.startswith(("[", "+")):
            continue
        out.append((word, offset + seg.start_frame * FRAME, offset + (seg.end_frame + 1) * FRAME))
    return out


def _phone_loop(pcm: bytes, offset: float) -> _PieceResult:
    decoder = _decoder("phones")
    decoder.start_utt()  # type: ignore[attr-defined]
    decoder.process_raw(pcm, full_utt=True)  # type: ignore[attr-defined]
    decoder.end_utt()  # type: ignore[attr-defined]
    phones = []
    for seg in decoder.seg():  # type: ignore[attr-defined]
        name = seg.word.upper()
        start, end = offset + seg.start_frame * FRAME, offset + (seg.end_frame + 1) * FRAME
        phones.append((_filler_phone(name) if name.startswith("+") or name == "SIL" else name, start, end, -1))
    return _PieceResult([], phones, "phone_loop")


def run_piece(piece: _Piece) -> _PieceResult:
    """Analyse one chunk (runs in a worker process for long clips)."""
    warnings: list[str] = []
    words, prons = piece.words, piece.prons
    method = "align"
    if piece.recognize:
        words, aligned = _recognize_aligned(piece.pcm, piece.offset)
        method = "recognize+align"
        if aligned is not None:
            aligned.method = method
            if RESOLVE_FILLERS:
                aligned.phones = _resolve_fillers(aligned, piece)
            if FILL_SPEECH_GAPS:
                aligned.phones = _fill_speech_gaps(aligned.phones, piece)
            return aligned
    if words:
        result = _align(piece.pcm, words, prons, piece.offset, wide=not piece.narrow)
        if result is not None:
            result.method = method
            if piece.recognize and FILL_SPEECH_GAPS:
                result.phones = _fill_speech_gaps(result.phones, piece)
            elif not piece.recognize:
                result.warnings.extend(_mismatch_warnings(piece, result))
            return result
        warnings.append(
            f"Alignment failed for {piece.offset:.1f}-{piece.offset + len(piece.pcm) / 2 / ANALYSIS_RATE:.1f} s; "
            "used phone recognition there (check the transcript matches the audio)."
        )
    result = _phone_loop(piece.pcm, piece.offset)
    result.warnings = warnings
    if piece.words and not piece.recognize:
        end = piece.offset + len(piece.pcm) / 2 / ANALYSIS_RATE
        result.missing = [(piece.offset, end, piece.first, piece.first + len(piece.words))]
    return result


def _mismatch_warnings(piece: _Piece, result: _PieceResult) -> list[str]:
    """Warnings when a forced alignment suggests the transcript is not what is said in ``piece``.

    Two measured signs (scripts/eval_mismatch.py): the words fit the sound poorly (another line's
    text), or they cover too little of the detected speech (a transcript with words missing).
    """
    span = f"{piece.offset:.1f}-{piece.offset + len(piece.pcm) / 2 / ANALYSIS_RATE:.1f} s"
    out = []
    if result.fit is not None and result.fit < MISMATCH_FIT:
        out.append(
            f"The transcript may not match the audio at {span}: its words fit the sound poorly (score "
            f"{result.fit:.0f}; matching text scores above {MISMATCH_FIT:.0f}). Check the text; if it is right, the "
            "recording may be very noisy (try Enhance Audio)."
        )
    samples = np.frombuffer(piece.pcm, dtype=np.int16).astype(np.float32) / 32768.0
    speech = sum(r.end - r.start for r in detect_speech(samples, ANALYSIS_RATE))
    spoken = sum(e - s for _, s, e in result.words)
    if speech >= 1.0 and spoken < MIN_WORD_COVERAGE * speech:
        out.append(
            f"The transcript may be missing words at {span}: its words cover {spoken:.1f} s of about {speech:.1f} s "
            "of speech, so the rest gets no proper mouth shapes. Check the text is complete."
        )
    return out


#: The vowel -> /m/ boundary of "um" moved to where the hum starts in the spectrum (``hum.refine_hums``).
REFINE_HUMS = True
#: Without a transcript, speech fillers ("uh", "um", "mm") are told apart by aligning them in context
#: (viseme agreement 0.691 -> 0.695 on the reference clips: "um" closes the lips for its hum).
RESOLVE_FILLERS = True
#: Shortest speech filler worth resolving, seconds.
MIN_FILLER = 0.1
#: The filler's pronunciations the alignment chooses from: "uh", "um", "mm" (lips closed).
FILLER_VARIANTS = (("AH",), ("AH", "M"), ("M",))
_FILLER_WORD = "lipsyncfiller"
#: The filler's dictionary entries (``word(2)`` ... are alternates the alignment chooses from).
_FILLER_PRONS = {(_FILLER_WORD if k == 0 else f"{_FILLER_WORD}({k + 1})"): list(v)
                 for k, v in enumerate(FILLER_VARIANTS)}


def _resolve_fillers(result: _PieceResult, piece: _Piece) -> list[tuple[str, float, float, int]]:
    """Speech fillers (+SPN+) as "uh", "um" or "mm": the words around each are aligned again with the
    filler as a word whose pronunciations are :data:`FILLER_VARIANTS`; where the alignment picks one
    with M, the filler's span is split at the M (the lips close for the hum)."""
    end = piece.offset + len(piece.pcm) / 2 / ANALYSIS_RATE
    out: list[tuple[str, float, float, int]] = []
    for ph in result.phones:
        name, ws, we, wi = ph
        out.append(ph)
        if wi != -1 or name != "AH0" or we - ws < MIN_FILLER:
            continue
        before = [w for w in result.words if w[2] <= ws + 1e-6][-1:]
        after = [w for w in result.words if w[1] >= we - 1e-6][:1]
        lo = before[0][1] if before else max(piece.offset, ws - 0.2)
        hi = after[0][2] if after else min(end, we + 0.2)
        words = [*(w[0] for w in before), _FILLER_WORD, *(w[0] for w in after)]
        i0, i1 = round((lo - piece.offset) * ANALYSIS_RATE), round((hi - piece.offset) * ANALYSIS_RATE)
        # the entries go in with the words: _align adds them again whenever it rebuilds the decoder
        got = _align(piece.pcm[2 * i0:2 * i1], words, _FILLER_PRONS, lo, ALIGN_BEAMS[:1], wide=False)
        if got is None:
            continue
        m = next((s for n, s, _, w in got.phones if w == len(before) and n == "M"), None)
        if m is None:
            continue
        m = min(max(m, ws), we)
        out[-1:] = [("AH0", ws, m, -1), ("M", m, we, -1)]
    return [p for p in out if p[2] > p[1]]


#: Without a transcript, pauses the recognizer left in speech are filled from the phone loop.
FILL_SPEECH_GAPS = True
#: Shortest pause considered for filling, seconds.
MIN_GAP = 0.06
#: Audio decoded by the phone loop on each side of a pause being filled, seconds.
GAP_CONTEXT = 0.6


def _fill_speech_gaps(
    phones: list[tuple[str, float, float, int]], piece: _Piece
) -> list[tuple[str, float, float, int]]:
    """Replace "silences" that contain speech energy with the phone loop's phones.

    Recognition drops words it cannot match (fillers like "um", names, mumbles) and the alignment
    then calls that stretch silence, so the mouth would stay shut while the character talks.
    Where the energy says speech (voice activity over most of the span), the phone loop's phones
    are used instead.
    """
    samples = np.frombuffer(piece.pcm, dtype=np.int16).astype(np.float32) / 32768.0
    regions = detect_speech(samples, ANALYSIS_RATE, min_pause=0.1, margin=0.0)
    if not regions:
        return phones
    speech = [(piece.offset + r.start, piece.offset + r.end) for r in regions]

    out: list[tuple[str, float, float, int]] = []
    end = piece.offset + len(piece.pcm) / 2 / ANALYSIS_RATE
    for ph in phones:
        name, a, b, _ = ph
        spans = [(max(a, s), min(b, e)) for s, e in speech if min(b, e) - max(a, s) >= MIN_GAP]
        if name != "SIL" or not spans:
            out.append(ph)
            continue
        # the phone loop on this pause only (plus context on both sides), not on the whole piece
        lo, hi = max(piece.offset, spans[0][0] - GAP_CONTEXT), min(end, spans[-1][1] + GAP_CONTEXT)
        i0, i1 = round((lo - piece.offset) * ANALYSIS_RATE), round((hi - piece.offset) * ANALYSIS_RATE)
        loop = [p for p in _phone_loop(piece.pcm[2 * i0:2 * i1], lo).phones if p[0] != "SIL"]
        t = a
        for sa, sb in spans:
            for n, ls, le, _ in loop:
                s, e = max(sa, ls), min(sb, le)
                if e - s < 0.02:
                    continue
                if s > t:
                    out.append(("SIL", t, s, -1))
                out.append((n, s, e, -1))
                t = e
        if t < b:
            out.append(("SIL", t, b, -1))
    return out


def _user_phones(entry: str, lexicon: Lexicon) -> list[str]:
    """ARPAbet of a user pronunciation: its phones, or its respelling's words pronounced one by one."""
    if not pronunciations.is_respelling(entry):
        return entry.split()
    out: list[str] = []
    for w in normalize_text(pronunciations.respelling(entry)):
        stressed = Lexicon.stressed_variants(w)  # cmudict's stress marks, where it knows the word
        out.extend(stressed[0] if stressed else lexicon.pronounce(w).phones)
    return out


def _user_key(word: str, phones: list[str]) -> str:
    """The decoder's dictionary word for a user pronunciation of ``word``: its own key per pronunciation,
    so it replaces what the dictionary says and a changed entry never meets an older one in a decoder
    that outlives the run."""
    digest = hashlib.sha1(" ".join(phones).encode("utf-8"), usedforsecurity=False).hexdigest()[:8]
    return f"{word}__user{digest}"


class PocketSphinxRecognizer:
    """English backend (pocketsphinx 5.1.1, en-us model from its wheel).

    Args:
        jobs: worker processes for long clips (0 = all cores, 1 = in-process).
        max_chunk: longest piece decoded at once, seconds.
    """

    name = "pocketsphinx"

    def __init__(self, *, jobs: int = 0, max_chunk: float = MAX_CHUNK) -> None:
        self.jobs = jobs
        self.max_chunk = max_chunk
        #: the user's pronunciations (:mod:`lipsync_addon.core.pronunciations`): word -> ARPAbet or respelling
        self.pronunciations: dict[str, str] = {}

    # -- public -------------------------------------------------------------------------------------
    def transcribe(
        self,
        audio: Audio,
        transcript: str = "",
        *,
        progress: ProgressFn = no_progress,
        cancel: CancelToken | None = None,
    ) -> Transcript:
        """Align ``transcript`` to ``audio`` (mono, 16 kHz) or recognize speech; always returns phones."""
        if audio.rate != ANALYSIS_RATE:
            raise ValueError(f"PocketSphinxRecognizer needs {ANALYSIS_RATE} Hz audio, got {audio.rate} Hz")
        duration = audio.duration
        warnings: list[str] = []
        if not detect_speech(audio.samples, audio.rate):
            warnings.append("No speech found in the clip (silence or steady noise); the mouth stays at rest.")
            return Transcript([], [Phone("sil", 0.0, duration)], duration, "silence", warnings)
        chunks = split_at_pauses(audio.samples, audio.rate, max_chunk=self._piece_length(duration, self.max_chunk))
        # long clips: the workers start (and build their decoders) while the transcript is read here
        with self._pool(len(chunks), ("align",) if transcript.strip() else ("recognize",)) as pool:
            return self._transcribe(audio, transcript, chunks, pool=pool, warnings=warnings, progress=progress,
                                    cancel=cancel)

    def _transcribe(
        self,
        audio: Audio,
        transcript: str,
        chunks: list[tuple[float, float]],
        *,
        pool: WorkerPool | None,
        warnings: list[str],
        progress: ProgressFn,
        cancel: CancelToken | None,
    ) -> Transcript:
        duration = audio.duration
        words = normalize_text(transcript) if transcript.strip() else []
        prons: dict[str, list[str]] = {}
        sources: dict[str, str] = {}
        spelled: dict[str, str] = {}  # the user's pronunciations: dictionary key -> the word as written
        if words:
            lexicon = Lexicon(lookup=self._dictionary_lookup)
            kept = []
            for w in words:
                if w in self.pronunciations:
                    phones = _user_phones(self.pronunciations[w], lexicon)
                    if phones:
                        key = _user_key(w, phones)
                        kept.append(key)
                        prons[key], sources[key], spelled[key] = phones, "user", w
                        continue
                pron = lexicon.pronounce(w)
                if not pron.phones:
                    warnings.append(f"No pronunciation for '{w}'; it was skipped.")
                    continue
                kept.append(w)
                sources[w] = pron.source
                if pron.source != "dictionary":
                    prons[w] = pron.phones
            for w, src in sources.items():
                if src in ("compound", "letter_to_sound"):
                    warnings.append(
                        f"'{w}' is not in the dictionary; pronounced as {' '.join(strip_stress(prons[w]))} "
                        f"({src.replace('_', '-')}). A pronunciation dictionary can say it otherwise "
                        f"('{w} = sounds like', docs/pronunciations.md)."
                    )
            words = kept
            warnings.extend(no_speech_warnings(audio.samples, audio.rate))

        pcm = to_int16(audio.samples)
        check = cancel.check if cancel is not None else (lambda: None)
        check()
        if words and len(chunks) > 1:
            progress(0.05, "locating words in long clip")
            locate = self._piece_length(duration, min(LOCATE_CHUNK, self.max_chunk))
            with tempfile.TemporaryDirectory(prefix="lipsync_") as tmp:
                lm_path, dict_path = write_transcript_model(words, prons, tmp)
                recognized = self._map(
                    [_Piece(s, pcm[int(s * ANALYSIS_RATE):int(e * ANALYSIS_RATE)].tobytes(),
                            transcript_lm=lm_path, transcript_dict=dict_path)
                     for s, e in split_at_pauses(audio.samples, audio.rate, max_chunk=locate)],
                    progress, cancel, 0.05, 0.4, pool=pool, only_recognize=True,
                )
                cuts = _cut_at_anchors(words, [w for r in recognized for w in r.words], duration, self.max_chunk)
                pieces = [_Piece(s, pcm[round(s * ANALYSIS_RATE):round(e * ANALYSIS_RATE)].tobytes(), ws, prons,
                                 transcript_lm=lm_path, transcript_dict=dict_path, first=first)
                          for (s, e, ws), first in zip(cuts, _firsts(cuts, 0), strict=True)]
                results = _repair(pieces, self._map(pieces, progress, cancel, 0.4, 0.95, pool=pool), cancel)
        else:
            pieces = [_Piece(s, pcm[int(s * ANALYSIS_RATE):int(e * ANALYSIS_RATE)].tobytes(),
                             words if len(chunks) == 1 else [], prons, recognize=not words)
                      for s, e in chunks]
            results = self._map(pieces, progress, cancel, 0.0, 1.0, pool=pool)
            if words and len(pieces) == 1 and (results[0].method == "phone_loop" or results[0].wide_beam):
                # the line failed as a whole (e.g. words in the text that were not said), or aligned only with
                # widened beams: align what can be, check the wide alignment (``_repair``)
                with tempfile.TemporaryDirectory(prefix="lipsync_") as tmp:
                    pieces[0].transcript_lm, pieces[0].transcript_dict = write_transcript_model(words, prons, tmp)
                    results = _repair(pieces, results, cancel)
        result = _merge(results, duration, warnings, sources, recognized_mode=not words, prons=prons)
        for word in result.words:
            word.text = spelled.get(word.text, word.text)
        if words and "phone_loop" in result.method and FILL_GAPS_WITH_DTW:
            check()
            progress(1.0, "timing the words the alignment missed (espeak-ng + DTW)")
            result, _ = gap_fill.fill_gaps(audio, result, [spelled.get(w, w) for w in words],
                                           [m for r in results for m in r.missing],
                                           pronunciations=self.pronunciations, cancel=cancel)
        if REFINE_HUMS:
            result.phones = hum.refine_hums(result.phones, result.words, audio.samples, audio.rate)
        return result

    # -- helpers ------------------------------------------------------------------------------------
    @staticmethod
    def _dictionary_lookup(word: str) -> list[str] | None:
        """The model dictionary's pronunciation of ``word``; words added by an earlier run do not count
        (they are pronounced, and reported, the same way every run)."""
        decoder = _decoder("align")
        if word in _added_words(decoder):
            return None
        found = decoder.lookup_word(word)  # type: ignore[attr-defined]
        return found.split() if found else None

    def _map(
        self,
        pieces: Sequence[_Piece],
        progress: ProgressFn,
        cancel: CancelToken | None,
        lo: float,
        hi: float,
        *,
        pool: WorkerPool | None = None,
        only_recognize: bool = False,
    ) -> list[_PieceResult]:
        """Run the pieces on ``pool``'s workers, or in this process when there is none (or one piece, or the
        workers failed)."""
        fn = recognize_piece if only_recognize else run_piece
        if pool is not None and len(pieces) > 1:
            try:
                return pool.map(fn.__name__, pieces, progress=progress, cancel=cancel, lo=lo, hi=hi)
            except Cancelled:
                raise
            except RuntimeError:
                pass  # the pool is stopped; finish in-process
        results: list[_PieceResult] = []
        for i, piece in enumerate(pieces):
            if cancel is not None:
                cancel.check()
            fresh_features()
            results.append(fn(piece))
            progress(lo + (hi - lo) * (i + 1) / len(pieces), "analysing speech")
        return results

    @staticmethod
    def _piece_length(duration: float, longest: float) -> float:
        """Longest piece, seconds, when ``duration`` seconds are cut into pieces: at most ``longest``, and short
        enough that the pieces come in pairs (two cores: none idles while the other decodes a last piece
        alone). The same on every machine, whatever its core count, so the result is too."""
        if duration <= longest:
            return longest
        pieces = math.ceil(math.ceil(duration / longest) / PIECES_IN) * PIECES_IN
        return min(longest, BALANCE_SLACK * duration / pieces)

    def _pool(self, n_pieces: int, warm: Sequence[str]) -> contextlib.AbstractContextManager[WorkerPool | None]:
        """Worker processes for ``n_pieces`` pieces (``jobs``; 0 = one per core), or None: one piece, one job,
        or no Python interpreter to start (inside Blender)."""
        jobs = min(self.jobs or (os.cpu_count() or 1), n_pieces)
        if jobs <= 1:
            return contextlib.nullcontext()
        try:
            return WorkerPool(jobs, warm)
        except (RuntimeError, OSError):
            return contextlib.nullcontext()


def recognize_piece(piece: _Piece) -> _PieceResult:
    """Recognize one chunk, with the transcript's own LM when given (fast, used to locate words)."""
    if not piece.transcript_lm:
        return _PieceResult(_recognize(piece.pcm, piece.offset), [], "recognize")
    decoder = _transcript_decoder(piece.transcript_lm, piece.transcript_dict)
    return _PieceResult(_decode_words(decoder, piece.pcm, piece.offset), [], "recognize")


def _transcript_decoder(lm_path: str, dict_path: str) -> object:
    cache: dict[str, object] = _LOCAL.__dict__.setdefault("transcript_decoders", {})
    if lm_path not in cache:
        from pocketsphinx import Decoder

        cache.clear()  # one transcript at a time per thread
        cache[lm_path] = Decoder(_config(lm=lm_path, dict=dict_path, **RECOGNIZE_SETTINGS))
    return cache[lm_path]


def write_transcript_model(words: list[str], prons: dict[str, list[str]], folder: str) -> tuple[str, str]:
    """Write an ARPA trigram LM (pocketsphinx's own builder) and a dictionary of the transcript.

    A dictionary of just these words loads in milliseconds (the full one takes ~1 s to index for
    an LM search). Returns (lm path, dict path).
    """
    from pocketsphinx.lm import ArpaBoLM

    lm = ArpaBoLM(text=" ".join(words) + "\n", add_start=True)
    lm.compute()
    lm_path, dict_path = os.path.join(folder, "transcript.lm"), os.path.join(folder, "transcript.dict")
    with open(lm_path, "w", encoding="utf-8") as fh:
        lm.write(fh)
    lookup = _decoder("align").lookup_word  # type: ignore[attr-defined]
    lines = []
    for word in sorted(set(words)):
        if word in prons:
            lines.append(f"{word} {' '.join(strip_stress(prons[word]))}")
            continue
        for variant in range(1, 6):
            key = word if variant == 1 else f"{word}({variant})"
            found = lookup(key)
            if not found:
                break
            lines.append(f"{key} {found}")
    with open(dict_path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return lm_path, dict_path


def _repair(
    pieces: list[_Piece], results: list[_PieceResult], cancel: CancelToken | None, *, depth: int = 2
) -> list[_PieceResult]:
    """Split pieces whose alignment failed into smaller ones and align those.

    A piece can fail as a whole while its halves align (e.g. a transcript word missing from the
    audio, or a splice between recordings with different levels). The failed piece is recognized
    again with the transcript's LM and cut at a pause near its middle; halves that still fail are
    split again (``depth`` times) and keep the phone loop's result at the end. Parts are aligned
    without the widest search: their cuts come from recognition, which heavy noise misleads, and the
    widest search fits a part's words to whatever audio it was given (measured: words placed 1-17 s
    from where they were said in 0-5 dB noise; the phone loop follows the sound instead).

    A piece that aligned only with WIDE_SEARCH is checked the same way, its parts without it: the wide
    search also fits words that were not said (an unsaid sentence squeezed into the speech around
    it). If every part aligns, the text matches and the whole alignment stands (the narrower beams
    had only lost its path: a search error); if a part fails, the split result is kept, with the
    phone loop and its warning where the text does not match.
    """
    out = list(results)
    for k, (piece, result) in enumerate(zip(pieces, results, strict=True)):
        strained = result.method == "align" and result.wide_beam
        if not piece.words or not (result.method == "phone_loop" or strained) or depth <= 0 or not piece.transcript_lm:
            continue
        if cancel is not None:
            cancel.check()
        duration = len(piece.pcm) / 2 / ANALYSIS_RATE
        fresh_features()  # as in a worker: the parts' timing must not depend on where the pieces ran
        recognized = recognize_piece(piece).words
        cuts = _cut_at_anchors(piece.words, [(w, s - piece.offset, e - piece.offset) for w, s, e in recognized],
                               duration, duration / 2)
        if len(cuts) < 2:
            continue
        subs = [_Piece(piece.offset + s, piece.pcm[round(s * ANALYSIS_RATE) * 2:round(e * ANALYSIS_RATE) * 2], ws,
                       piece.prons, transcript_lm=piece.transcript_lm, transcript_dict=piece.transcript_dict,
                       narrow=True, first=first)
                for (s, e, ws), first in zip(cuts, _firsts(cuts, piece.first), strict=True)]
        joined = _concat_results(_repair(subs, [run_piece(sp) for sp in subs], cancel, depth=depth - 1))
        if strained and joined.method == "align":
            continue
        out[k] = joined
    return out


def _firsts(cuts: list[tuple[float, float, list[str]]], start: int) -> list[int]:
    """Index of each cut's first word in the whole line, the first cut's being ``start``."""
    return [start + sum(len(ws) for _, _, ws in cuts[:k]) for k in range(len(cuts))]


def _concat_results(results: list[_PieceResult]) -> _PieceResult:
    """Join consecutive piece results into one (word indices re-based)."""
    words: list[tuple[str, float, float]] = []
    phones: list[tuple[str, float, float, int]] = []
    warnings: list[str] = []
    methods = []
    for r in results:
        base = len(words)
        words.extend(r.words)
        phones.extend((n, s, e, base + wi if wi >= 0 else -1) for n, s, e, wi in r.phones)
        warnings.extend(r.warnings)
        methods.append(r.method)
    method = "align" if all(m == "align" for m in methods) else "align+phone_loop"
    return _PieceResult(words, phones, method, warnings, wide_beam=any(r.wide_beam for r in results),
                        missing=[m for r in results for m in r.missing])


def _edit_distance_matrix(a: list[str], b: list[str]) -> np.ndarray:
    """Levenshtein cost matrix (len(a)+1, len(b)+1), one numpy pass per row (int32)."""
    vocab: dict[str, int] = {}
    ia = np.array([vocab.setdefault(w, len(vocab)) for w in a], dtype=np.int64)
    ib = np.array([vocab.setdefault(w, len(vocab)) for w in b], dtype=np.int64)
    m = len(b)
    cost = np.zeros((len(a) + 1, m + 1), dtype=np.int32)
    cost[0] = np.arange(m + 1)
    steps = np.arange(m + 1, dtype=np.int32)
    for i in range(1, len(a) + 1):
        prev = cost[i - 1]
        best = np.empty(m + 1, dtype=np.int32)
        best[0] = i
        best[1:] = np.minimum(prev[:-1] + (ib != ia[i - 1]), prev[1:] + 1)
        # insertions along the row: c[j] = min_k<=j (best[k] + j - k)
        cost[i] = np.minimum.accumulate(best - steps) + steps
    return cost


def _cut_at_anchors(
    words: list[str], recognized: list[tuple[str, float, float]], duration: float, max_chunk: float
) -> list[tuple[float, float, list[str]]]:
    """Cut a long clip and its transcript at the same places: pauses between recognized words.

    Transcript words are matched to recognized words (word-level edit distance). A cut goes in the
    middle of a pause between two consecutive transcript words that were both recognized, so
    words and audio are split at exactly the same point. Cuts are chosen greedily to keep pieces
    under ``max_chunk`` seconds where the speech allows it. Returns (start, end, words) per piece,
    covering [0, duration] in order.
    """
    n = len(words)
    cost = _edit_distance_matrix(words, [w for w, _, _ in recognized])
    match: list[tuple[float, float] | None] = [None] * n
    i, j = n, len(recognized)
    while i > 0 and j > 0:
        same = words[i - 1] == recognized[j - 1][0]
        if cost[i, j] == cost[i - 1, j - 1] + (0 if same else 1):
            if same:
                match[i - 1] = (recognized[j - 1][1], recognized[j - 1][2])
            i, j = i - 1, j - 1
        elif cost[i, j] == cost[i - 1, j] + 1:
            i -= 1
        else:
            j -= 1
    candidates: list[tuple[float, int]] = []  # (cut time, index of the last word before the cut)
    for k in range(n - 1):
        left, right = match[k], match[k + 1]
        if left is not None and right is not None and right[0] - left[1] >= MIN_CUT_PAUSE:
            candidates.append(((left[1] + right[0]) / 2.0, k))
    pieces: list[tuple[float, float, list[str]]] = []
    start_t, start_w = 0.0, 0
    for pos, (t, k) in enumerate(candidates):
        if t - start_t < 1.0 or k < start_w:
            continue
        following = next((c for c in candidates[pos + 1:] if c[1] >= start_w), None)
        # cut here if the next candidate would make the piece too long
        if following is None or following[0] - start_t > max_chunk:
            pieces.append((start_t, t, words[start_w:k + 1]))
            start_t, start_w = t, k + 1
    pieces.append((start_t, duration, words[start_w:]))
    return pieces


def _merge(
    results: list[_PieceResult],
    duration: float,
    warnings: list[str],
    sources: dict[str, str],
    *,
    recognized_mode: bool,
    prons: dict[str, list[str]] | None = None,
) -> Transcript:
    words: list[Word] = []
    phones: list[Phone] = []
    methods = []
    for r in results:
        base = len(words)
        methods.append(r.method)
        warnings.extend(r.warnings)
        for text, s, e in r.words:
            src = "recognized" if recognized_mode else sources.get(text, "dictionary")
            words.append(Word(text, s, e, 1.0, src))
        stressed = _stressed_phones(r, prons or {})
        for k, (arpa, s, e, wi) in enumerate(r.phones):
            name = stressed.get(k, arpa)
            ipa = "sil" if arpa == "SIL" else arpabet_to_ipa(name)
            stress = int(name[-1]) if name[-1:].isdigit() else -1
            phones.append(Phone(ipa, s, e, 1.0, base + wi if wi >= 0 else -1, stress))
    phones = tile_phones(phones, duration)
    method = max(set(methods), key=methods.count) if methods else "silence"
    if "phone_loop" in methods and method != "phone_loop":
        method += "+phone_loop"
    return Transcript(words, phones, duration, method, warnings, wide_beam=any(r.wide_beam for r in results))


def _stressed_phones(result: _PieceResult, prons: dict[str, list[str]]) -> dict[int, str]:
    """Phone index -> ARPAbet with stress digit, from the cmudict entry matching what was aligned.

    pocketsphinx phones carry no stress; the dictionary does (AH0 is a schwa, AH1 a full vowel).
    A word's stress is taken from the first cmudict pronunciation whose phones equal the aligned
    ones (or the pronunciation given for it, in ``prons``); words without such an entry keep
    unstressed-unknown phones.
    """
    by_word: dict[int, list[int]] = {}
    for k, (_, _, _, wi) in enumerate(result.phones):
        if wi >= 0:
            by_word.setdefault(wi, []).append(k)
    out: dict[int, str] = {}
    for wi, idx in by_word.items():
        aligned = [result.phones[k][0] for k in idx]
        word = result.words[wi][0]
        for variant in [*Lexicon.stressed_variants(word), *([prons[word]] if word in prons else [])]:
            if strip_stress(variant) == aligned:
                out.update(zip(idx, variant, strict=True))
                break
    return out
