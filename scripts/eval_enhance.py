"""Enhancement quality on real speech mixed with real noise, and its effect on alignment.

    .venv/bin/python scripts/eval_enhance.py [--speech DIR] [--noise FILE] [--no-align] [--json out.json]

Quality: every clean utterance in --speech (default ../shared/data/speech_clean, 16 kHz) is mixed with
--noise (default ../shared/data/noise/exercise_bike.wav, random excerpt, seeded) at 0, 5 and 10 dB
SNR, and also left clean. Each method's output is scored against the clean speech with PESQ-WB
(ITU-T P.862.2), STOI and SNR (dB, after optimal scaling). Methods: the noisy input, our presets
light/standard/strong, RNNoise alone, DeepFilterNet3 alone, noisereduce 3.0.3 with default settings.
Alignment: the clips with reference word alignments (tests/data/aligned) mixed at 5 dB and 0 dB;
pocketsphinx forced alignment with the transcript on the noisy and on the enhanced audio; mean
absolute word-start error (ms) of the aligned words against the reference TextGrid, how many words
were aligned, how many of the others espeak-ng + DTW timed instead (``recognize.gap_fill``; the rest
fell back to the phone loop) and their error, and the share of all words within 50 ms.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lipsync_addon.core.audio import resample  # noqa: E402
from lipsync_addon.core.enhance import enhance_array  # noqa: E402
from lipsync_addon.core.enhance.deepfilter import deepfilter_denoise  # noqa: E402
from lipsync_addon.core.enhance.rnnoise import rnnoise_denoise  # noqa: E402

SNRS = (0.0, 5.0, 10.0)
RATE = 16000


def mix(clean: np.ndarray, noise: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """``clean`` plus a random excerpt of ``noise`` scaled to ``snr_db`` (power over the whole clip)."""
    off = int(rng.integers(0, len(noise) - len(clean)))
    nz = noise[off: off + len(clean)]
    return clean + nz * np.sqrt(np.mean(clean**2) / np.mean(nz**2) / 10 ** (snr_db / 10))


def scaled_snr(clean: np.ndarray, out: np.ndarray) -> float:
    """SNR (dB) of ``out`` against ``clean`` after the least-squares gain (levels do not count)."""
    g = float(np.dot(out, clean) / max(np.dot(clean, clean), 1e-20))
    err = out - g * clean
    return float(10 * np.log10(max(np.sum((g * clean) ** 2), 1e-20) / max(np.sum(err**2), 1e-20)))


def methods() -> dict[str, object]:
    import noisereduce

    return {
        "noisy input": lambda x: x,
        "ours: light": lambda x: enhance_array(x, RATE, "light")[0],
        "ours: standard": lambda x: enhance_array(x, RATE, "standard")[0],
        "ours: strong": lambda x: enhance_array(x, RATE, "strong")[0],
        "RNNoise alone": lambda x: rnnoise_denoise(x, RATE)[0],
        "DeepFilterNet3 alone": lambda x: deepfilter_denoise(x, RATE),
        "noisereduce (defaults)": lambda x: noisereduce.reduce_noise(y=x, sr=RATE),
    }


def quality(speech_dir: Path, noise_path: Path) -> dict[str, dict[str, list[float]]]:
    """{method: {condition: [pesq, stoi, snr] means}} over the clean utterances."""
    from pesq import pesq
    from pystoi import stoi

    noise, nr = sf.read(noise_path, dtype="float64")
    noise = noise if noise.ndim == 1 else noise.mean(axis=1)
    if nr != RATE:
        noise = resample(noise, nr, RATE).astype(np.float64)
    rng = np.random.default_rng(0)
    funcs = methods()
    scores: dict[str, dict[str, list[list[float]]]] = {m: {} for m in funcs}
    for path in sorted(speech_dir.glob("*.wav")):
        clean, r = sf.read(path, dtype="float64")
        clean = clean if clean.ndim == 1 else clean.mean(axis=1)
        if r != RATE:
            clean = resample(clean, r, RATE).astype(np.float64)
        for snr in (*SNRS, None):
            x = clean if snr is None else mix(clean, noise, snr, rng)
            cond = "clean" if snr is None else f"{snr:.0f} dB"
            for name, fn in funcs.items():
                y = np.asarray(fn(x), dtype=np.float64)  # type: ignore[operator]
                row = [pesq(RATE, clean, y, "wb"), stoi(clean, y, RATE), scaled_snr(clean, y)]
                scores[name].setdefault(cond, []).append(row)
    return {m: {c: list(np.mean(v, axis=0)) for c, v in conds.items()} for m, conds in scores.items()}


def _norm(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def word_start_errors(ref: list, hyp: list) -> list[float]:
    """|start difference| in ms for reference words matched in order to hypothesis words of the same text."""
    out, j = [], 0
    for r in ref:
        k = j
        while k < len(hyp) and _norm(hyp[k].text) != _norm(r.text):
            k += 1
        if k < len(hyp) and k - j <= 3:
            out.append(abs(hyp[k].start - r.start) * 1000.0)
            j = k + 1
    return out


def alignment(noise_path: Path) -> dict[str, dict[str, dict[str, float]]]:
    """Forced alignment on noisy vs enhanced audio, per signal and condition: mean absolute word-start
    error (ms) of the words that were aligned, how many reference words were aligned at all (the others
    fell back to the phone loop, which times phones, not words) and the share of all reference words
    that start within 50 ms of the reference (unaligned words count as misses)."""
    from eval_align import read_transcript  # scripts/ sibling

    from lipsync_addon.core.audio import load_audio, to_analysis
    from lipsync_addon.core.recognize.pocketsphinx_backend import PocketSphinxRecognizer
    from lipsync_addon.core.textgrid import read_textgrid
    from lipsync_addon.core.types import Audio

    data = ROOT / "tests" / "data" / "aligned"
    clips = [("acoustic_corpus.wav", "acoustic_corpus.TextGrid", "words", "acoustic_corpus.lab"),
             ("cold_corpus.wav", "cold_corpus.TextGrid", "words", "cold_corpus.lab"),
             ("cold_corpus3.wav", "cold_corpus3.TextGrid", "words", "cold_corpus3.lab")]
    noise, nr = sf.read(noise_path, dtype="float64")
    noise = resample(noise, nr, RATE).astype(np.float64) if nr != RATE else noise
    rec = PocketSphinxRecognizer(jobs=1)
    rng = np.random.default_rng(1)
    errs: dict[str, dict[str, list[float]]] = {}
    n_ref: dict[str, int] = {}
    dtw: dict[str, dict[str, list[float]]] = {}  # words pocketsphinx could not place, timed by espeak-ng + DTW
    for wav, tg, tier, lab in clips:
        if not (data / wav).exists():
            continue
        clean = to_analysis(load_audio(data / wav)).samples.astype(np.float64)
        ref = [iv for iv in read_textgrid(data / tg)[tier].intervals if iv.text.strip()]
        text = read_transcript(data, lab)
        long_noise = np.tile(noise, int(np.ceil(len(clean) / len(noise))) + 1)
        for snr in (None, 5.0, 0.0):
            noisy = clean if snr is None else mix(clean, long_noise, snr, rng)
            cond = "clean" if snr is None else f"{snr:.0f} dB"
            n_ref[cond] = n_ref.get(cond, 0) + len(ref)
            for kind, sig in (("input", noisy), ("enhanced (standard)", enhance_array(noisy, RATE, "standard")[0])):
                words = rec.transcribe(Audio(np.asarray(sig, np.float32), RATE), text).words
                aligned = [w for w in words if w.pronunciation_source != "dtw"]
                errs.setdefault(kind, {}).setdefault(cond, []).extend(word_start_errors(ref, aligned))
                dtw.setdefault(kind, {}).setdefault(cond, []).extend(
                    word_start_errors(ref, [w for w in words if w.pronunciation_source == "dtw"]))
    return {k: {c: {"mean_ms": float(np.mean(v)) if v else float("nan"), "aligned": len(v), "words": n_ref[c],
                    "dtw": len(dtw[k][c]), "dtw_mean_ms": float(np.mean(dtw[k][c])) if dtw[k][c] else float("nan"),
                    "within_50ms": float(np.sum(np.asarray(v + dtw[k][c]) <= 50.0) / n_ref[c])}
                for c, v in conds.items()}
            for k, conds in errs.items()}


def speed(noise_path: Path, speech_dir: Path, seconds: float = 120.0) -> dict[str, float]:
    """Real-time factor (audio seconds per processing second) of each preset on a noisy clip."""
    noise, _ = sf.read(noise_path, dtype="float64")
    clean = np.concatenate([sf.read(p, dtype="float64")[0] for p in sorted(speech_dir.glob("*.wav"))])
    n = int(seconds * RATE)
    x = np.tile(clean, n // len(clean) + 1)[:n]
    nz = np.tile(noise, n // len(noise) + 1)[:n]
    x = x + nz * np.sqrt(np.mean(x**2) / np.mean(nz**2) / 10 ** 0.5)  # 5 dB SNR
    out = {}
    for preset in ("light", "standard", "strong"):
        t = time.perf_counter()
        enhance_array(x, RATE, preset)
        out[preset] = seconds / (time.perf_counter() - t)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--speech", type=Path, default=ROOT.parent / "shared" / "data" / "speech_clean")
    ap.add_argument("--noise", type=Path, default=ROOT.parent / "shared" / "data" / "noise" / "exercise_bike.wav")
    ap.add_argument("--no-align", action="store_true", help="skip the alignment part (slow)")
    ap.add_argument("--json", type=Path, help="also write all figures as JSON")
    args = ap.parse_args()
    q = quality(args.speech, args.noise)
    conds = [f"{s:.0f} dB" for s in SNRS] + ["clean"]
    print("| method | " + " | ".join(conds) + " | mean 0/5/10 dB |")
    print("|---|" + "---|" * (len(conds) + 1))
    for m, by in q.items():
        cells = [f"{by[c][0]:.2f} / {by[c][1]:.3f} / {by[c][2]:.1f}" for c in conds]
        mean = np.mean([by[c] for c in conds[:3]], axis=0)
        print(f"| {m} | " + " | ".join(cells) + f" | **{mean[0]:.2f} / {mean[1]:.3f}** |")
    print("(cells: PESQ-WB / STOI / SNR dB)")
    result: dict[str, object] = {"quality": q}
    sp = speed(args.noise, args.speech)
    print("speed (x real time, 16 kHz, 120 s noisy clip): " + ", ".join(f"{k} {v:.0f}x" for k, v in sp.items()))
    result["speed"] = sp
    if not args.no_align:
        sys.path.insert(0, str(ROOT / "scripts"))
        al = alignment(args.noise)
        print("| word starts: mean abs error of the aligned words (ms), words aligned; words timed by DTW "
              "instead, their error (ms); share of all words within 50 ms | "
              + " | ".join(next(iter(al.values()))) + " |")
        print("|---|" + "---|" * len(next(iter(al.values()))))
        for kind, by in al.items():
            print(f"| {kind} | " + " | ".join(f"{v['mean_ms']:.1f} ms, {v['aligned']}/{v['words']}; {v['dtw']}, "
                                              f"{v['dtw_mean_ms']:.0f} ms; {v['within_50ms']:.2f}"
                                              for v in by.values()) + " |")
        result["alignment"] = al
    if args.json:
        args.json.write_text(json.dumps(result, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
