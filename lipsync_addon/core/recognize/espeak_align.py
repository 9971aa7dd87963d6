"""Transcript alignment for any language espeak-ng speaks: synthesize, DTW, carry phone times across.

1. The transcript is split into words (:func:`tokenize`; Japanese kanji are read to kana with
   pykakasi when it is installed, since espeak-ng's Japanese voice reads kana only).
2. espeak-ng speaks them (:func:`~lipsync_addon.core.recognize.espeak.synthesize`): audio plus the
   exact start of every phone (IPA) and the word it belongs to.
3. Both renditions become normalised MFCC frames (5 ms hop) and DTW aligns them
   (:mod:`~lipsync_addon.core.recognize.dtw`); every synthetic phone start is carried onto the real
   clip through the path.
4. Boundaries are refined locally: where espeak-ng's phone classes on both sides name an acoustic
   landmark (closure, voicing onset, frication onset/offset, nasal onset/offset), the boundary
   snaps to the strongest such band-energy change within ±40 ms (:func:`_landmark_refine`);
   otherwise to the largest spectral change within ±20 ms; both are pulled toward the DTW
   estimate. Pauses in the real audio become silences at word boundaries (also when the DTW
   stretched a word's first or last phone over the pause), pauses of the synthetic rendition that
   land on continuous real speech go to the neighbouring phones, and every phone lasts at least
   20 ms.
5. The phones are re-timed by a forced alignment in the bundled English HMMs (pocketsphinx),
   each IPA phone mapped to its nearest English model phone (:func:`hmm_refine`); words that do
   not align keep the times of steps 3-4.

Confidence per phone comes from the DTW cost inside it; words whose phones match badly are listed
in the warnings, and so are words espeak-ng could not pronounce in the chosen language.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ..audio import detect_speech, to_int16
from ..phonemes import english_model_phones, normalize_text, separate_words
from ..transcript_file import without_annotations
from ..types import (
    ANALYSIS_RATE,
    Audio,
    CancelToken,
    Phone,
    ProgressFn,
    Transcript,
    TranscriptError,
    Word,
    no_progress,
)
from . import espeak, transcript_check
from .dtw import FeatureParams, dtw_path, log_mel, map_times, mfcc
from .pocketsphinx_backend import ALIGN_BEAMS, _align, fresh_features
from .timeline import tile_phones


@cache
def _params() -> dict[str, Any]:
    return json.loads((Path(__file__).with_name("data") / "espeak_align.json").read_text(encoding="utf-8"))


@dataclass
class Token:
    """A transcript word: ``text`` as written (reported), ``spoken`` as given to espeak-ng."""

    text: str
    spoken: str


def _base_language(language: str) -> str:
    return (language or "en").strip().lower().replace("_", "-").split("-")[0]


def _japanese_tokens(text: str) -> list[Token]:
    try:
        import pykakasi
    except ImportError:
        return [Token(w, w) for w in _split_words(text)]
    out: list[Token] = []
    # pykakasi 2.3 repeats the segment before a line break ("...ていた\n" -> "ていた", "", "ていた"):
    # transcripts from files end with one, so line breaks and other whitespace become single spaces first
    for seg in pykakasi.kakasi().convert(re.sub(r"\s+", " ", text).strip()):
        orig = seg["orig"].strip()
        spoken = _strip_punct(seg["hira"]).strip()
        if orig and spoken:
            out.append(Token(orig, spoken))
    return out


def _strip_punct(word: str) -> str:
    return "".join(c for c in word if not unicodedata.category(c).startswith(("P", "S", "Z", "C")) or c in "'-")


#: Signs espeak-ng reads after a number: percent, per mille, currencies.
_MONEY = "%‰€$£¥₩₹"


def _split_words(text: str) -> list[str]:
    """Words of a transcript in a language written with spaces; numbers keep what espeak-ng reads
    in that language (``5:30``, ``3,50``, ``10%``, ``3,50€``)."""
    t = separate_words(unicodedata.normalize("NFKC", text).replace("\u2019", "'"))
    words = []
    for raw in t.split():
        if any(c.isdigit() for c in raw):
            w = "".join(c for c in raw if c.isalnum() or c in ".,:" + _MONEY).strip(".,:")
        elif words and raw.strip(".,:") and all(c in _MONEY for c in raw.strip(".,:")) and words[-1][-1:].isdigit():
            words[-1] += raw.strip(".,:")  # 3,50 € is read with its unit
            continue
        else:
            w = _strip_punct(raw).strip("'-")
        if w:
            words.append(w)
    return words


def tokenize(text: str, language: str) -> list[Token]:
    """Split a transcript into words for ``language`` (ISO 639 code).

    English numbers, symbols and abbreviations are spelled out by the English normaliser; other
    languages keep digits, which espeak-ng reads in that language. Punctuation is dropped.
    Japanese is segmented and read to hiragana with pykakasi when available. Directions and sound
    descriptions (``(laughs)``, ``（笑）``, ``[door creaks]``) are not spoken and are left out.
    """
    text = without_annotations(text)
    lang = _base_language(language)
    if lang == "en":
        return [Token(w, w) for w in normalize_text(text)]
    if lang == "ja":
        return _japanese_tokens(text)
    return [Token(w, w) for w in _split_words(text)]


def _refine(boundaries: np.ndarray, change: np.ndarray, hop: float, window: float, penalty: float) -> np.ndarray:
    """Move each boundary to the strongest spectral change within ±window s, pulled toward its estimate."""
    out = boundaries.copy()
    w = max(1, round(window / hop))
    n = len(change)
    scale = float(np.percentile(change, 90)) + 1e-9
    for k, b in enumerate(boundaries):
        c = round(b / hop)
        lo, hi = max(1, c - w), min(n - 1, c + w)
        if hi <= lo:
            continue
        idx = np.arange(lo, hi + 1)
        score = change[idx] / scale - penalty * np.abs(idx - b / hop) / w
        out[k] = idx[int(np.argmax(score))] * hop
    return out


def _spectral_change(samples: np.ndarray, rate: int, params: FeatureParams) -> np.ndarray:
    """Distance between the mean log-mel spectra of the 20 ms before and after each frame boundary."""
    before, after = _means_around(log_mel(samples, rate, params), max(1, round(0.02 / params.hop)))
    return np.sqrt(((after - before) ** 2).mean(axis=1))


def _means_around(frames: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per frame boundary i: the mean of rows [i-k, i) and of rows [i, i+k) of ``frames`` (clipped at the ends)."""
    csum = np.vstack([np.zeros((1, frames.shape[1])), np.cumsum(frames, axis=0)])
    n = len(frames)
    idx = np.arange(n)
    a0, a1 = np.clip(idx - k, 0, n), idx
    b0, b1 = idx, np.clip(idx + k, 0, n)
    before = (csum[a1] - csum[a0]) / np.maximum(1, a1 - a0)[:, None]
    after = (csum[b1] - csum[b0]) / np.maximum(1, b1 - b0)[:, None]
    return before, after


def phone_class(ipa: str) -> str:
    """Manner class of an IPA phone: "sil", "stop" (incl. affricates), "fric", "nasal" or "son".

    Language-independent: the class comes from the IPA symbol's first letter (espeak-ng gives
    every phone in IPA), e.g. "tʃ" -> stop, "ʃ" -> fric, "ŋ" -> nasal, "a", "l", "ɹ" -> son.
    """
    classes = _params()["phone_classes"]
    base = unicodedata.normalize("NFD", ipa or "")[:1]
    if not base:
        return "sil"
    for name, letters in classes.items():
        if base in letters:
            return name
    return "son"


def _band_energies(samples: np.ndarray, rate: int, params: FeatureParams, edges: list[float]) -> np.ndarray:
    """Log energy (natural log) of mel bands grouped by centre frequency: shape (frames, len(edges)-1)."""
    lm = log_mel(samples, rate, params)
    top = 2595.0 * np.log10(1.0 + min(params.fmax, rate / 2.0) / 700.0)
    mels = np.linspace(2595.0 * np.log10(1.0 + params.fmin / 700.0), top, params.n_mels + 2)[1:-1]
    centres = 700.0 * (10.0 ** (mels / 2595.0) - 1.0)  # Hz, as in dtw._mel_filterbank
    power = np.exp(lm)
    out = []
    for lo, hi in itertools.pairwise(edges):
        sel = (centres >= lo) & (centres < hi)
        out.append(np.log(power[:, sel].sum(axis=1) + 1e-10))
    return np.column_stack(out)


def _landmark_rise(bands: np.ndarray, hop: float, span: float) -> np.ndarray:
    """Per frame and band: mean log energy in the ``span`` s after minus the ``span`` s before."""
    before, after = _means_around(bands, max(1, round(span / hop)))
    return after - before


def _landmark_refine(  # noqa: PLR0917 (one private step with its inputs)
    boundaries: np.ndarray,
    classes: list[str],
    bands: np.ndarray,
    hop: float,
    window: float,
    penalty: float,
    span: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Snap boundaries to acoustic landmarks chosen by the phone classes on both sides.

    ``bands`` (frames, 3): log energy of a low (voicing), mid and high (frication) band. Each
    class pair ("son>stop", ...) has a template in the data JSON: which bands rise (+) and fall
    (-) at such a boundary. Sonorant -> stop or pause: broadband drop (closure); stop or pause ->
    sonorant: low band rise (voicing onset); sonorant -> fricative: low band falls, high band
    rises (and the reverse); vowel-like -> nasal: mid band falls (and the reverse). Within
    ±``window`` s of the estimate, the boundary goes to the frame whose energy change over
    ``span`` s projects most strongly onto the template, pulled toward the estimate by
    ``penalty`` (score units per window). Returns the new boundaries (s) and a mask of those that
    were snapped; pairs without a template (vowel -> vowel, ...) keep their time.
    """
    rise = _landmark_rise(bands, hop, span)
    templates = {tuple(k.split(">")): np.asarray(v, float) for k, v in _params()["landmark_templates"].items()}
    out = boundaries.copy()
    snapped = np.zeros(len(boundaries), bool)
    w = max(1, round(window / hop))
    n = len(rise)
    for k in range(1, len(boundaries)):
        tpl = templates.get((classes[k - 1], classes[k]))
        if tpl is None:
            continue
        v = tpl / np.linalg.norm(tpl)
        c = round(boundaries[k] / hop)
        lo, hi = max(1, c - w), min(n - 1, c + w)
        if hi <= lo:
            continue
        idx = np.arange(lo, hi + 1)
        proj = rise[idx] @ v
        if proj.max() <= 0:
            continue
        score = proj / (proj.max() + 1e-9) - penalty * np.abs(idx - boundaries[k] / hop) / w
        out[k] = idx[int(np.argmax(score))] * hop
        snapped[k] = True
    return out, snapped


def _speech_seconds(samples: np.ndarray, rate: int) -> float:
    """Seconds of speech (energy VAD, pauses of 0.15 s and more excluded)."""
    return float(sum(r.end - r.start for r in detect_speech(samples, rate, min_pause=0.15, margin=0.0)))


def _speech_frames(samples: np.ndarray, rate: int, n_frames: int, hop: float, cfg: dict[str, Any]) -> np.ndarray:
    """Indices of the frames to align: speech regions plus ``keep_pause`` seconds of each pause."""
    regions = detect_speech(samples, rate, min_pause=float(cfg["min_pause"]), margin=float(cfg["vad_margin"]))
    if not regions:
        return np.arange(n_frames)
    t = np.arange(n_frames) * hop
    keep = np.zeros(n_frames, bool)
    half = float(cfg["keep_pause"]) / 2.0
    for r in regions:
        keep |= (t >= r.start - half) & (t < r.end + half)
    return np.flatnonzero(keep) if keep.any() else np.arange(n_frames)


def _enforce_durations(starts: np.ndarray, end: float, min_dur: float) -> np.ndarray:
    """Push phone starts apart so every phone lasts at least ``min_dur`` (if the span allows)."""
    s = starts.astype(np.float64).copy()
    n = len(s)
    if n == 0:
        return s
    span_start = s[0]
    if end - span_start < n * min_dur:
        return span_start + (end - span_start) * np.arange(n) / n
    for k in range(1, n):
        s[k] = max(s[k], s[k - 1] + min_dur)
    s_end = end
    for k in range(n - 1, -1, -1):
        s[k] = min(s[k], s_end - min_dur)
        s_end = s[k]
    return s


def _pause_in_edge_phone(phones: list[Phone], speech: list[int], gs: float, ge: float, min_dur: float) -> None:
    """A pause (``gs``..``ge`` s) inside the first or last phone of a word is the word boundary.

    Speakers pause between words, not inside a phone, so when the DTW stretched a word's last
    phone over a pause, the phone ends where the pause starts and the next word starts where it
    ends (and the mirror case for a word's first phone). ``speech``: indices of speech phones.
    """
    for pos, i in enumerate(speech):
        p = phones[i]
        if not (p.start <= gs and p.end >= ge):
            continue
        nxt = phones[speech[pos + 1]] if pos + 1 < len(speech) else None
        prev = phones[speech[pos - 1]] if pos > 0 else None
        if nxt is not None and nxt.word_index != p.word_index and gs - p.start >= min_dur:
            p.end = gs
            nxt.start = ge
        elif prev is not None and prev.word_index != p.word_index and p.end - ge >= min_dur:
            prev.end = gs
            p.start = ge
        return


class EspeakAligner:
    """Aligns a transcript in any espeak-ng language to real speech (synthesis + DTW).

    Args:
        language: ISO 639 code ("es", "sv", "ja", "en-gb", ...) or an espeak-ng voice name.
        check_transcript: add the transcript checks' warnings (no speech, words missing, words that
            do not fit); off when the text is a recognizer's output (Vosk), not the user's.
    """

    name = "espeak-ng+dtw"

    def __init__(self, language: str = "en", *, check_transcript: bool = True) -> None:
        self.language = language
        #: warn when the text seems not to be what is said (off when the words come from a recognizer)
        self.check_transcript = check_transcript
        #: measures of the last alignment's transcript checks (None before the first alignment)
        self.last_fit: transcript_check.TranscriptFit | None = None
        #: how the last alignment's HMM refinement went (None when it did not run)
        self.last_hmm: HmmFit | None = None
        #: the user's pronunciations (:mod:`lipsync_addon.core.pronunciations`); respellings are spoken here
        self.pronunciations: dict[str, str] = {}

    def transcribe(
        self,
        audio: Audio,
        transcript: str = "",
        *,
        progress: ProgressFn = no_progress,
        cancel: CancelToken | None = None,
    ) -> Transcript:
        """Align ``transcript`` to ``audio`` (mono, 16 kHz); phones tile the clip (seconds).

        Raises:
            TranscriptError: the transcript has no words.
            EspeakError: espeak-ng is missing or does not know the language.
        """
        if audio.rate != ANALYSIS_RATE:
            raise ValueError(f"EspeakAligner needs {ANALYSIS_RATE} Hz audio, got {audio.rate} Hz")
        cfg = _params()
        self.last_hmm = None
        duration = audio.duration
        warnings: list[str] = []
        tokens = tokenize(transcript, self.language)
        tokens = self._respelled(tokens, warnings)
        if not tokens:
            raise TranscriptError(
                "The transcript has no words to align (empty or punctuation only). "
                "Give the line's text, or leave it empty to use speech recognition."
            )
        espeak.check_language(self.language)
        if not detect_speech(audio.samples, audio.rate):
            warnings.append("No speech found in the clip (silence or steady noise); the mouth stays at rest.")
            return Transcript([], [Phone("sil", 0.0, duration)], duration, "silence", warnings)
        progress(0.05, "synthesizing")
        spoken = [t.spoken for t in tokens]
        syn = espeak.synthesize(spoken, self.language)
        # speak at the speaker's rate: DTW then warps less
        real_speech = _speech_seconds(audio.samples, audio.rate)
        syn_speech = _speech_seconds(syn.samples, syn.rate)
        if cfg["match_rate"] and real_speech > 0 and syn_speech > 0:
            ratio = syn_speech / real_speech
            if abs(ratio - 1.0) > 0.1:
                syn = espeak.synthesize(spoken, self.language, wpm=round(espeak.DEFAULT_WPM * ratio))
        if cancel is not None:
            cancel.check()
        for w in syn.unspoken:
            warnings.append(
                f"espeak-ng could not pronounce '{w}' in language '{self.language}'; it gets no mouth shapes."
            )
        if syn.foreign:
            shown = ", ".join(syn.foreign[:8])
            warnings.append(
                f"Words read with another language's rules (not '{self.language}'): {shown}. "
                "Check the language setting or spell them out."
            )
        speech_phones = [p for p in syn.phones if p.ipa]
        if not speech_phones:
            raise TranscriptError(
                f"espeak-ng produced no phones for this transcript in '{self.language}'. "
                "Is the transcript in that language and script?"
            )
        hop = float(cfg["hop"])
        fp = FeatureParams(hop=hop, **cfg["features"])
        progress(0.2, "aligning")
        feats_real = mfcc(audio.samples, audio.rate, fp)
        sel_real = _speech_frames(audio.samples, audio.rate, len(feats_real), hop, cfg)
        path, feats_syn, real = self._align(syn, feats_real, sel_real, fp, cfg)
        if cancel is not None:
            cancel.check()
        progress(0.7, "refining")
        starts, end_all = real[:-1], float(real[-1])
        # local refinement of speech-to-speech boundaries
        change = _spectral_change(audio.samples, audio.rate, fp)
        refined = _refine(starts, change, hop, float(cfg["refine_window"]), float(cfg["refine_penalty"]))
        if cfg["landmarks"]:
            classes = [phone_class(p.ipa) for p in syn.phones]
            lm_b = _band_energies(audio.samples, audio.rate, fp, cfg["landmark_bands"])
            snapped_t, snapped = _landmark_refine(
                starts, classes, lm_b, hop, float(cfg["landmark_window"]), float(cfg["landmark_penalty"]),
                float(cfg["landmark_span"]),
            )
            refined = np.where(snapped, snapped_t, refined)
        starts = np.maximum.accumulate(np.clip(refined, 0.0, duration))
        # frame costs along the path -> confidence
        diff = feats_real[path[:, 0]] - feats_syn[path[:, 1]]
        local = np.sqrt((diff**2).sum(axis=1))
        frame_cost = np.full(len(feats_real), np.nan)
        np.fmax.at(frame_cost, path[:, 0], local)
        mean_cost = float(np.nanmean(frame_cost)) / np.sqrt(feats_real.shape[1])
        phones = self._build_phones(syn, starts, min(duration, end_all), frame_cost, hop, duration, cfg)
        phones = self._insert_pauses(phones, audio, cfg)
        phones = self._fill_speech(phones, audio, cfg)
        phones = tile_phones(phones, duration)
        if cfg["hmm_refine"]:
            progress(0.8, "refining with phone models")
            phones, self.last_hmm = hmm_refine(audio, phones, cfg, cancel)
            phones = self._long_pauses_at_word_edges(phones, audio, cfg)
            if cfg["hmm_onsets"]:
                phones = self._speech_before_onsets(phones, audio, cfg)
        words = self._words(tokens, phones)
        low = [w.text for w in words if w.confidence < float(cfg["low_confidence"])]
        dtw_mismatch = mean_cost > float(cfg["mismatch_cost"])
        if dtw_mismatch and self.check_transcript:
            warnings.append(
                f"The audio matches the transcript poorly (DTW cost {mean_cost:.2f}): is the transcript the "
                f"words spoken, and in language '{self.language}'?"
            )
        self.last_fit, fit_warnings = transcript_check.check(
            audio.samples, audio.rate, syn, frame_cost / np.sqrt(feats_real.shape[1]), hop, language=self.language
        )
        if self.check_transcript:
            warnings.extend(fit_warnings)
        method = "align"
        if self.last_hmm is not None and not fit_warnings and not dtw_mismatch:
            hmm = self.last_hmm
            poor = transcript_check.hmm_warnings(hmm.words, hmm.aligned, hmm.fit, self.last_fit.speech_span,
                                                 self.language)
            if self.check_transcript:
                warnings.extend(poor)
            if poor:
                method = "align+dtw"  # the phone models could not confirm the timing: mostly the DTW's
        if low:
            warnings.append("Low-confidence words (check their timing): " + ", ".join(low[:12]))
        progress(1.0, "aligned")
        return Transcript(words, phones, duration, method, warnings)

    # -- steps ---------------------------------------------------------------------------------------
    def _respelled(self, tokens: list[Token], warnings: list[str]) -> list[Token]:
        """``tokens`` with the user's respellings as what espeak-ng speaks; ARPAbet entries are for the
        English aligner, so a word that has one gets a warning instead."""
        if not self.pronunciations:
            return tokens
        from .. import pronunciations

        out, arpabet = [], []
        for tok in tokens:
            key = normalize_text(tok.text)
            entry = self.pronunciations.get(key[0]) if len(key) == 1 else None
            if entry is not None and pronunciations.is_respelling(entry):
                out.append(Token(tok.text, pronunciations.respelling(entry)))
                continue
            if entry is not None and tok.text not in arpabet:
                arpabet.append(tok.text)
            out.append(tok)
        if arpabet:
            warnings.append(
                f"ARPAbet pronunciations are used by the English aligner only: {', '.join(arpabet[:8])} kept "
                f"espeak-ng's '{self.language}' pronunciation. Write them as respellings ('word = sounds like') "
                "to change it."
            )
        return out

    @staticmethod
    def _align(
        syn: espeak.Synthesis, feats_real: np.ndarray, sel_real: np.ndarray, fp: FeatureParams, cfg: dict[str, Any]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """DTW of one rendition against the real features.

        Returns the path (real frame, synthetic frame), the synthetic features and the real-clip
        times (s) of every synthetic phone start followed by the end of the last phone.
        """
        hop, pad = fp.hop, float(cfg["pad"])
        npad = round(pad * ANALYSIS_RATE)
        synth = np.concatenate([np.zeros(npad, np.float32), syn.samples, np.zeros(npad, np.float32)])
        feats_syn = mfcc(synth, ANALYSIS_RATE, fp)
        # long pauses are squeezed out of both renditions before DTW (pauses do not match
        # anything in the other rendition); the path is mapped back to the full frame indices
        sel_syn = _speech_frames(synth, ANALYSIS_RATE, len(feats_syn), hop, cfg)
        path = dtw_path(
            feats_real[sel_real], feats_syn[sel_syn], max_cells=int(cfg["dtw_max_cells"]), radius=int(cfg["dtw_radius"])
        )
        path = np.column_stack([sel_real[path[:, 0]], sel_syn[path[:, 1]]])
        syn_starts = np.array([p.start + pad for p in syn.phones])
        real = map_times(path, np.append(syn_starts, syn.phones[-1].end + pad), hop)
        return path, feats_syn, real

    @staticmethod
    def _build_phones(  # noqa: PLR0917 (one private step with its inputs)
        syn: espeak.Synthesis,
        starts: np.ndarray,
        end_all: float,
        frame_cost: np.ndarray,
        hop: float,
        duration: float,
        cfg: dict[str, Any],
    ) -> list[Phone]:
        starts = _enforce_durations(starts, max(end_all, starts[-1] + 1e-3), float(cfg["min_phone"]))
        ends = np.append(starts[1:], max(end_all, starts[-1] + float(cfg["min_phone"])))
        finite = frame_cost[np.isfinite(frame_cost)]
        med = float(np.median(finite)) if finite.size else 1.0
        mad = float(np.median(np.abs(finite - med))) + 1e-6 if finite.size else 1.0
        out: list[Phone] = []
        for p, s0, e0 in zip(syn.phones, starts, ends, strict=True):
            s, e = float(min(s0, duration)), float(min(e0, duration))
            if e <= s:
                continue
            seg = frame_cost[int(s / hop) : max(int(s / hop) + 1, int(e / hop))]
            seg = seg[np.isfinite(seg)]
            c = float(seg.mean()) if seg.size else med
            conf = float(1.0 / (1.0 + np.exp((c - med) / (1.5 * mad) - 1.0)))
            ipa = p.ipa if p.ipa else "sil"
            out.append(Phone(ipa, s, e, round(conf, 3), p.word_index if p.ipa else -1, p.stress))
        return out

    @staticmethod
    def _insert_pauses(phones: list[Phone], audio: Audio, cfg: dict[str, Any]) -> list[Phone]:
        """Pauses in the real audio that contain a word boundary become silence there."""
        regions = detect_speech(audio.samples, audio.rate, min_pause=float(cfg["min_pause"]), margin=0.02)
        if not regions:
            return phones
        gaps = [(regions[k].end, regions[k + 1].start) for k in range(len(regions) - 1)]
        first, last = regions[0].start, regions[-1].end
        min_dur = float(cfg["min_phone"])
        out = [Phone(p.ipa, p.start, p.end, p.confidence, p.word_index, p.stress) for p in phones]
        speech = [i for i, p in enumerate(out) if not p.is_silence]
        if not speech:
            return out
        # leading / trailing silence the DTW stretched a phone over
        i0, i1 = speech[0], speech[-1]
        if out[i0].start < first and out[i0].end - first >= min_dur:
            out[i0].start = first
        if out[i1].end > last and last - out[i1].start >= min_dur:
            out[i1].end = last
        for gs, ge in gaps:
            matched = False
            for a, b in itertools.pairwise(speech):
                pa, pb = out[a], out[b]
                if pa.word_index == pb.word_index:
                    continue
                boundary = pb.start
                if not (gs - 0.05 <= boundary <= ge + 0.05):
                    continue
                if pa.end > gs and gs - pa.start >= min_dur:
                    pa.end = gs
                if pb.start < ge and pb.end - ge >= min_dur:
                    pb.start = ge
                matched = True
                break
            if not matched:
                _pause_in_edge_phone(out, speech, gs, ge, min_dur)
        return out

    @staticmethod
    def _long_pauses_at_word_edges(phones: list[Phone], audio: Audio, cfg: dict[str, Any]) -> list[Phone]:
        """After the HMM refinement: a clear pause (``hmm_pause_s`` or longer) inside a word's first or
        last phone becomes the word boundary (the English models sometimes stretch a weak fricative
        over a pause instead of inserting a silence; :func:`_pause_in_edge_phone`)."""
        regions = detect_speech(audio.samples, audio.rate, min_pause=float(cfg["hmm_pause_s"]), margin=0.02)
        out = [Phone(p.ipa, p.start, p.end, p.confidence, p.word_index, p.stress) for p in phones]
        speech = [i for i, p in enumerate(out) if not p.is_silence]
        for k in range(len(regions) - 1):
            _pause_in_edge_phone(out, speech, regions[k].end, regions[k + 1].start, float(cfg["min_phone"]))
        return tile_phones(out, audio.duration)

    @staticmethod
    def _speech_before_onsets(phones: list[Phone], audio: Audio, cfg: dict[str, Any]) -> list[Phone]:
        """After the HMM refinement: sound that runs without a pause into a word's first phone but
        lies in the silence before it belongs to that phone (the English models sometimes leave a
        weak or foreign onset, such as Swedish /ɧ/, as silence). Speech here is the energy VAD
        without margin, pauses under ``min_pause`` bridged; only a region that starts inside the
        silence and reaches past the onset counts, so a breath with a pause after it stays silence."""
        regions = detect_speech(audio.samples, audio.rate, min_pause=float(cfg["min_pause"]), margin=0.0)
        out = tile_phones(phones, audio.duration)
        min_dur = float(cfg["min_phone"])
        for sil, nxt in itertools.pairwise(out):
            if not sil.is_silence or nxt.is_silence:
                continue
            for r in regions:
                if sil.start + min_dur <= r.start < nxt.start - min_dur and r.end > nxt.start + min_dur:
                    sil.end = nxt.start = r.start
                    break
        return [p for p in out if p.end > p.start]

    @staticmethod
    def _fill_speech(phones: list[Phone], audio: Audio, cfg: dict[str, Any]) -> list[Phone]:
        """Give speech time that the DTW left silent back to the phones next to it.

        Speech here is the energy VAD without margin and with pauses shorter than ``min_pause``
        bridged. A silence between two speech phones that lies mostly inside speech (a pause of
        the synthetic rendition that the real speaker did not make) is split between them.
        Sound after a word's last phone is not given to it: a measured rule that extended the
        phone to the end of the speech region covered breath and hum on a hand-aligned clip
        (docs/languages.md).
        """
        regions = detect_speech(audio.samples, audio.rate, min_pause=float(cfg["min_pause"]), margin=0.0)
        if not regions:
            return phones
        out = tile_phones(phones, audio.duration)

        def in_speech(s: float, e: float) -> float:
            return sum(max(0.0, min(e, r.end) - max(s, r.start)) for r in regions)

        k = 1
        while k < len(out) - 1:
            p, prev, nxt = out[k], out[k - 1], out[k + 1]
            if p.is_silence and not prev.is_silence and not nxt.is_silence and in_speech(p.start, p.end) >= 0.5 * (
                p.end - p.start
            ):
                mid = (p.start + p.end) / 2.0
                prev.end, nxt.start = mid, mid
                del out[k]
                continue
            k += 1
        return [p for p in out if p.end > p.start]

    @staticmethod
    def _words(tokens: list[Token], phones: list[Phone]) -> list[Word]:
        words: list[Word] = []
        for i, tok in enumerate(tokens):
            mine = [p for p in phones if p.word_index == i]
            if not mine:
                continue
            conf = float(np.mean([p.confidence for p in mine]))
            words.append(Word(tok.text, mine[0].start, mine[-1].end, round(conf, 3), "espeak-ng"))
        # word_index on phones refers to tokens; renumber to positions in ``words``
        remap = {}
        k = 0
        for i in range(len(tokens)):
            if any(p.word_index == i for p in phones):
                remap[i] = k
                k += 1
        for p in phones:
            if p.word_index >= 0:
                p.word_index = remap.get(p.word_index, -1)
        return words


def _model_word(phones: list[Phone]) -> tuple[str, list[str], list[int]]:
    """One word's IPA phones as an English HMM dictionary entry: (name, ARPAbet phones, count per IPA phone)."""
    arpa: list[str] = []
    sizes: list[int] = []
    for p in phones:
        m = english_model_phones(p.ipa)
        arpa += m
        sizes.append(len(m))
    # the name is derived from the pronunciation: the decoder keeps added words, so a name must never change meaning
    return "ipa_" + hashlib.sha1(" ".join(arpa).encode()).hexdigest()[:16], arpa, sizes


def _hmm_pieces(phones: list[Phone], duration: float, max_piece: float, min_cut: float) -> list[tuple[float, float]]:
    """Cut the clip into pieces of at most ``max_piece`` s at pauses (>= ``min_cut`` s) between words."""
    cuts = [(p.start + p.end) / 2.0 for p in phones if p.is_silence and p.end - p.start >= min_cut]
    pieces: list[tuple[float, float]] = []
    start, last = 0.0, None
    for c in cuts:
        if c - start > max_piece and last is not None and last > start:
            pieces.append((start, last))
            start = last
        last = c
    if duration - start > max_piece and last is not None and last > start:
        pieces.append((start, last))
        start = last
    pieces.append((start, duration))
    return pieces


@dataclass
class HmmFit:
    """How the HMM refinement went: words it re-timed, and how well they fit the English models.

    Attributes:
        words: transcript words with phones (the DTW's).
        aligned: words the HMMs aligned (the others keep their DTW times).
        fit: median over aligned words of the acoustic score per frame relative to the best senone
            (as pocketsphinx's ``MISMATCH_FIT``); None when no word aligned.
    """

    words: int
    aligned: int
    fit: float | None


def hmm_refine(
    audio: Audio, phones: list[Phone], cfg: dict[str, Any], cancel: CancelToken | None = None
) -> tuple[list[Phone], HmmFit]:
    """Re-time the DTW phones with a forced alignment in the English acoustic model (pocketsphinx HMMs).

    Each word becomes a dictionary entry whose pronunciation is its IPA phones mapped to the nearest
    English model phones (:func:`~lipsync_addon.core.phonemes.english_model_phones`); the clip is
    aligned piece by piece, cut at pauses between words into pieces of at most ``hmm_max_piece`` s.
    A piece that does not align (typically a word spoken faster than its pronunciation's 30 ms per
    phone allows) is split at every pause of ``hmm_min_cut`` s or more and its parts are tried
    alone, so a failure stays local. The HMMs model spectra and durations better than a DTW
    against one synthetic rendition, also for other languages' phones (measured in
    docs/languages.md). Words whose piece never aligns, or whose phones do not come back one to one,
    keep their DTW times. Returns phones tiling the clip, and how the alignment went.
    """
    by_word: dict[int, list[Phone]] = {}
    for p in phones:
        if not p.is_silence and p.word_index >= 0:
            by_word.setdefault(p.word_index, []).append(p)
    if not by_word:
        return phones, HmmFit(0, 0, None)
    out = [Phone(p.ipa, p.start, p.end, p.confidence, p.word_index, p.stress) for p in phones if not p.is_silence]
    mine = {w: [q for q in out if q.word_index == w] for w in by_word}
    pcm = to_int16(audio.samples)
    fresh_features()  # the refinement times a line the same whatever the decoders heard before
    min_cut = float(cfg["hmm_min_cut"])
    todo = _hmm_pieces(phones, audio.duration, float(cfg["hmm_max_piece"]), min_cut)
    scores: list[float] = []
    while todo:
        if cancel is not None:
            cancel.check()
        s, e = todo.pop(0)
        words = [w for w, ps in sorted(by_word.items()) if s <= (ps[0].start + ps[-1].end) / 2.0 < e]
        if not words:
            continue
        inner = [p for p in phones if s < p.start and p.end < e]
        parts = [(max(a, s), b) for a, b in _hmm_pieces(inner, e, 0.0, min_cut)] if len(words) > 1 else []
        # a piece that can be split tries the narrow beam only: a wider one rarely rescues it, splitting does
        beams = ALIGN_BEAMS[:1] if len(parts) > 1 else ALIGN_BEAMS
        got = _hmm_piece(pcm, audio.rate, (s, e), words, by_word, mine, beams)
        if got is not None:
            scores += got
        elif len(parts) > 1:
            todo[:0] = parts
    fit = HmmFit(len(by_word), len(scores), float(np.median(scores)) if scores else None)
    return tile_phones(out, audio.duration), fit


def _hmm_piece(  # noqa: PLR0917 (one private step with its inputs)
    pcm: np.ndarray,
    rate: int,
    span: tuple[float, float],
    words: list[int],
    by_word: dict[int, list[Phone]],
    mine: dict[int, list[Phone]],
    beams: tuple[float, ...],
) -> list[float] | None:
    """Align ``words`` to the ``span`` (s) of ``pcm`` and write the times into ``mine``.

    Returns the acoustic scores (per frame, relative to the best senone) of the words re-timed, or
    None if the piece did not align.
    """
    s, e = span
    entries = [_model_word(by_word[w]) for w in words]
    prons = {name: arpa for name, arpa, _ in entries}
    result = _align(pcm[round(s * rate):round(e * rate)].tobytes(), [n for n, _, _ in entries], prons, s, beams,
                    wide=False)
    if result is None:
        return None
    got: dict[int, list[tuple[float, float]]] = {}
    for _, ps, pe, wi in result.phones:
        if wi >= 0:
            got.setdefault(wi, []).append((ps, pe))
    scores = []
    for k, w in enumerate(words):
        sizes = entries[k][2]
        times = got.get(k, [])
        if len(times) != sum(sizes) or len(mine[w]) != len(sizes) or k >= len(result.word_scores):
            continue
        j = 0
        for q, n in zip(mine[w], sizes, strict=True):
            q.start, q.end = times[j][0], times[j + n - 1][1]
            j += n
        scores.append(result.word_scores[k])
    return scores
