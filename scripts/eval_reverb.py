"""Alignment on reverberant speech, with and without room-echo reduction (WPE, ``--dereverb``).

    .venv/bin/python scripts/eval_reverb.py [--json out.json]   # ~2 min

The 6 reference clips of ``scripts/eval_align.py`` (real speech, reference phone alignments) are
convolved with synthetic room impulse responses: a direct path and an exponentially decaying noise
tail (the statistical room model) for reverberation times (RT60) of 0.3, 0.5 and 0.9 s at
direct-to-reverberant ratios of 0 dB (a distant microphone) and 6 dB (a room microphone). Each clip
is aligned with its transcript as the pipeline does it, on the reverberant signal ("raw") and on its
WPE output ("dereverb"). Prints pooled phone-boundary F1 at 20 ms / 10 ms viseme agreement, and the
WPE's time as a fraction of real time. A figures script, not a test.
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

from eval_align import CLIPS, Score, read_reference, read_transcript, score, total  # noqa: E402

from lipsync_addon.core.audio import load_audio, to_analysis  # noqa: E402
from lipsync_addon.core.enhance.dereverb import wpe  # noqa: E402
from lipsync_addon.core.recognize.pocketsphinx_backend import PocketSphinxRecognizer  # noqa: E402
from lipsync_addon.core.types import Audio  # noqa: E402

DATA = ROOT / "tests" / "data" / "aligned"
#: (RT60 s, direct-to-reverberant ratio dB); (0, None) is the dry clip
ROOMS = [(0.0, None), (0.3, 6.0), (0.5, 6.0), (0.9, 6.0), (0.3, 0.0), (0.5, 0.0), (0.9, 0.0)]


def room_response(rt60: float, drr_db: float, rate: int, seed: int) -> np.ndarray:
    """A synthetic room impulse response: a unit direct path, then Gaussian noise decaying by 60 dB in
    ``rt60`` s (from 2 ms on), scaled so the direct path is ``drr_db`` over the tail; unit energy."""
    rng = np.random.default_rng(seed)
    n = int(rt60 * 1.2 * rate)
    t = np.arange(n) / rate
    h = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    h[: int(0.002 * rate)] = 0.0
    h[0] = np.sqrt(np.sum(h**2) * 10.0 ** (drr_db / 10.0))
    return h / np.sqrt(np.sum(h**2))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the figures as JSON")
    parser.add_argument("--data", default=str(DATA))
    args = parser.parse_args()
    data = Path(args.data)
    recognizer = PocketSphinxRecognizer(jobs=1)
    clips = [(c, to_analysis(load_audio(data / c[0]))) for c in CLIPS if (data / c[0]).exists()]
    rows: list[dict[str, object]] = []
    print("| room (RT60 / DRR) | raw F1 / viseme | dereverb F1 / viseme | WPE time (x real time) |")
    print("|---|---|---|---|")
    for rt60, drr in ROOMS:
        scores: dict[str, list[Score]] = {"raw": [], "dereverb": []}
        wpe_seconds = audio_seconds = 0.0
        for k, ((_name, tg, tier, spec), audio) in enumerate(clips):
            x = audio.samples.astype(np.float64)
            if rt60 > 0:
                x = np.convolve(x, room_response(rt60, float(drr), audio.rate, seed=k))[: len(x)]
                x = x / (np.max(np.abs(x)) + 1e-9) * 0.5
            started = time.perf_counter()
            cleaned = wpe(x, audio.rate)
            wpe_seconds += time.perf_counter() - started
            audio_seconds += audio.duration
            ref = read_reference(data / tg, tier)
            text = read_transcript(data, spec)
            for mode, signal in (("raw", x.astype(np.float32)), ("dereverb", cleaned)):
                hyp = recognizer.transcribe(Audio(signal, audio.rate), text).phones
                scores[mode].append(score(ref, hyp, audio.duration))
        raw, der = total(dict(enumerate(scores["raw"]))), total(dict(enumerate(scores["dereverb"])))
        room = "dry" if rt60 == 0 else f"{rt60:.1f} s / {drr:.0f} dB"
        factor = wpe_seconds / max(audio_seconds, 1e-9)
        print(f"| {room} | {raw.f1:.3f} / {raw.agreement:.3f} | {der.f1:.3f} / {der.agreement:.3f} | {factor:.4f} |",
              flush=True)
        rows.append({"rt60_s": rt60, "drr_db": drr, "raw_f1": raw.f1, "raw_viseme": raw.agreement,
                     "dereverb_f1": der.f1, "dereverb_viseme": der.agreement, "wpe_real_time_factor": factor})
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
