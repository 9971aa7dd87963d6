"""Alignment in every language: espeak-ng + DTW next to pocketsphinx, and plausibility elsewhere.

    .venv/bin/python scripts/eval_align_lang.py [--data DIR] [--multilang DIR] [--json out.json] [--dtw-only]
    .venv/bin/python scripts/eval_align_lang.py --long 20      # speed on a 309 s Spanish clip

1. English reference clips (``--data``, default tests/data/aligned): phone-boundary P/R/F1 at 20 ms
   and viseme-frame agreement for the espeak-ng + DTW aligner and for pocketsphinx, side by side
   (the scoring is scripts/eval_align.py's).
2. Every clip with a transcript in ``--multilang`` (default ../shared/data/speech_multilang):
   Japanese, Spanish, Swedish, English. No reference alignments exist, so plausibility:
   share of speech (energy VAD) covered by phones, phones shorter than 20 ms or longer than
   500 ms (silences excluded), word order preserved, warnings, and speed (x real time).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from eval_align import CLIPS, Score, read_reference, read_transcript, score, total  # noqa: E402

from lipsync_addon.core.audio import detect_speech, load_audio, to_analysis  # noqa: E402
from lipsync_addon.core.recognize.espeak_align import EspeakAligner, _params, tokenize  # noqa: E402
from lipsync_addon.core.recognize.pocketsphinx_backend import PocketSphinxRecognizer  # noqa: E402
from lipsync_addon.core.types import Audio, Transcript  # noqa: E402

#: clip stem prefix -> language (ISO 639-1) for ../shared/data/speech_multilang
LANGUAGES = {"common_voice_ja": "ja", "13697_": "es", "se10x": "sv", "61-70968": "en", "common_voice_en": "en"}
AUDIO_EXT = (".wav", ".flac", ".mp3", ".opus", ".ogg")


def language_of(stem: str) -> str:
    """Language code of a speech_multilang clip from its file name."""
    for prefix, lang in LANGUAGES.items():
        if stem.startswith(prefix):
            return lang
    return "en"


def plausibility(result: Transcript, samples: np.ndarray, rate: int, n_words: int) -> dict[str, float]:
    """Coverage of VAD speech by phones, too-short/too-long phone counts, word order.

    ``coverage`` uses the energy VAD's defaults (regions widened by 50 ms, pauses under 0.25 s
    bridged: the target's measure); ``core_coverage`` uses the VAD without margin and with pauses
    of 0.12 s kept (sound continuous with the words), which leaves out the quiet margins.
    """
    hop = 0.01
    t = np.arange(0, result.duration, hop) + hop / 2

    def mask(regions: list) -> np.ndarray:
        m = np.zeros(len(t), bool)
        for r in regions:
            m |= (t >= r.start) & (t < r.end)
        return m

    speech = mask(detect_speech(samples, rate))
    core = mask(detect_speech(samples, rate, min_pause=0.12, margin=0.0))
    covered = np.zeros(len(t), bool)
    speech_phones = [p for p in result.phones if not p.is_silence]
    for p in speech_phones:
        covered |= (t >= p.start) & (t < p.end)
    durs = np.array([p.end - p.start for p in speech_phones]) if speech_phones else np.zeros(0)
    starts = [w.start for w in result.words]
    return {
        "coverage": float((speech & covered).sum() / max(1, speech.sum())),
        "core_coverage": float((core & covered).sum() / max(1, core.sum())),
        "phones": float(len(speech_phones)),
        "short": float((durs < 0.02 - 1e-6).sum()),
        "long": float((durs > 0.5 + 1e-6).sum()),
        "words": float(len(result.words)),
        "words_in": float(n_words),
        "order_ok": float(all(a <= b for a, b in itertools.pairwise(starts))),
    }


def english_side_by_side(data: Path) -> dict[str, dict[str, Score]]:
    """Score espeak-ng+DTW and pocketsphinx on the English reference clips."""
    out: dict[str, dict[str, Score]] = {"espeak-ng+dtw": {}, "pocketsphinx": {}}
    times: dict[str, float] = {"espeak-ng+dtw": 0.0, "pocketsphinx": 0.0}
    audio_total = 0.0
    backends = {"espeak-ng+dtw": EspeakAligner("en"), "pocketsphinx": PocketSphinxRecognizer(jobs=1)}
    for audio_name, tg, tier, text_spec in CLIPS:
        if not (data / audio_name).exists():
            continue
        audio = to_analysis(load_audio(data / audio_name))
        audio_total += audio.duration
        ref = read_reference(data / tg, tier)
        text = read_transcript(data, text_spec)
        for name, rec in backends.items():
            t0 = time.perf_counter()
            hyp = rec.transcribe(audio, text)
            times[name] += time.perf_counter() - t0
            out[name][audio_name] = score(ref, hyp.phones, audio.duration)
    print(f"\n== English reference clips ({audio_total:.1f} s of audio)")
    print(f"{'clip':24s} {'backend':14s} {'P@20':>6s} {'R@20':>6s} {'F1@20':>6s} {'viseme':>7s}")
    for clip in [*out["pocketsphinx"], "ALL (pooled)"]:
        for name, clips in out.items():
            s = total(clips) if clip == "ALL (pooled)" else clips[clip]
            print(f"{clip:24s} {name:14s} {s.precision:6.3f} {s.recall:6.3f} {s.f1:6.3f} {s.agreement:7.3f}")
    for name, t in times.items():
        print(f"speed {name}: {t / max(audio_total, 1e-9):.3f} x real time")
    return out


def multilang(folder: Path) -> dict[str, dict[str, object]]:
    """Plausibility of espeak-ng+DTW on every clip with a .lab transcript in ``folder``."""
    report: dict[str, dict[str, object]] = {}
    print(f"\n== {folder} (espeak-ng+dtw, plausibility)")
    print(f"{'clip':40s} {'lang':4s} {'cover':>6s} {'core':>6s} {'phones':>6s} {'<20ms':>5s} {'>500ms':>6s} "
          f"{'words':>7s} {'order':>5s} {'xRT':>6s}")
    for lab in sorted(folder.glob("*.lab")):
        audio_path = next((lab.with_suffix(e) for e in AUDIO_EXT if lab.with_suffix(e).exists()), None)
        if audio_path is None:
            continue
        lang = language_of(lab.stem)
        text = lab.read_text(encoding="utf-8").strip()
        audio = to_analysis(load_audio(audio_path))
        t0 = time.perf_counter()
        res = EspeakAligner(lang).transcribe(audio, text)
        rt = (time.perf_counter() - t0) / max(audio.duration, 1e-9)
        plaus = plausibility(res, audio.samples, audio.rate, len(tokenize(text, lang)))
        print(f"{lab.stem[:40]:40s} {lang:4s} {plaus['coverage']:6.3f} {plaus['core_coverage']:6.3f} "
              f"{plaus['phones']:6.0f} "
              f"{plaus['short']:5.0f} {plaus['long']:6.0f} {plaus['words']:3.0f}/{plaus['words_in']:<3.0f} "
              f"{plaus['order_ok']:5.0f} {rt:6.3f}")
        for w in res.warnings:
            print(f"    warning: {w}")
        report[lab.stem] = {"language": lang, **plaus, "x_realtime": rt, "warnings": res.warnings}
    return report


def long_clip_speed(repeats: int) -> None:
    """Time the espeak-ng path (DTW only, then with the HMM refinement) on a long Spanish clip."""
    stem = ROOT / "tests" / "data" / "lang" / "13697_11991_000000"
    line = to_analysis(load_audio(stem.with_suffix(".opus")))
    text = stem.with_suffix(".lab").read_text(encoding="utf-8").strip()
    gap = np.zeros(int(0.6 * line.rate), np.float32)
    audio = Audio(np.concatenate([np.concatenate([line.samples, gap])] * repeats), line.rate)
    cfg = _params()
    keep = cfg["hmm_refine"]
    for refine in (False, True):
        cfg["hmm_refine"] = refine
        t0 = time.perf_counter()
        res = EspeakAligner("es").transcribe(audio, " ".join([text] * repeats))
        dt = time.perf_counter() - t0
        print(f"{'DTW + HMM' if refine else 'DTW only':10s} {audio.duration:.0f} s of audio: {dt:.1f} s, "
              f"{dt / audio.duration:.3f} x real time, {len(res.words)} words")
    cfg["hmm_refine"] = keep


def main() -> int:
    """Print both tables (and optionally write JSON)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(ROOT / "tests" / "data" / "aligned"))
    ap.add_argument("--multilang", default=str(ROOT.parent / "shared" / "data" / "speech_multilang"))
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--dtw-only", action="store_true",
                    help="espeak-ng path without the HMM refinement (the DTW stage alone, for comparison)")
    ap.add_argument("--long", type=int, default=0, metavar="N",
                    help="only time a long Spanish clip: tests/data/lang's MLS line N times with 0.6 s gaps")
    args = ap.parse_args()
    if args.dtw_only:
        _params()["hmm_refine"] = False
    if args.long:
        long_clip_speed(args.long)
        return 0
    eng = english_side_by_side(Path(args.data))
    ml = multilang(Path(args.multilang)) if Path(args.multilang).is_dir() else {}
    if args.json:
        out = {
            "english": {b: {k: {"f1": v.f1, "precision": v.precision, "recall": v.recall,
                                "viseme_agreement": v.agreement} for k, v in {**s, "ALL": total(s)}.items()}
                        for b, s in eng.items()},
            "multilang": ml,
        }
        Path(args.json).write_text(json.dumps(out, indent=1, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
