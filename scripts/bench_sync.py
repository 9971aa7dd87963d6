"""Measure offset detection (GCC-PHAT) and retake alignment (DTW + WSOLA) on real recordings.

    .venv/bin/python scripts/bench_sync.py            # all sections
    .venv/bin/python scripts/bench_sync.py offset thresholds retake speed drift

Prints markdown tables (docs/benchmarks.md, "Offset detection and retake alignment").
Data: ../shared/data (or tests/data copies). Needs ffmpeg for the video and atempo rows.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lipsync_addon.core.offset import estimate_offset, estimate_offset_arrays, read_any  # noqa: E402
from lipsync_addon.core.retake import align_retake_arrays, warp_take, wsola  # noqa: E402
from lipsync_addon.core.textgrid import read_textgrid  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
TESTS = ROOT / "tests" / "data"
RATE = 16000


def _speech_files() -> list[str]:
    pats = ["speech_clean/*.wav", "speech_aligned_en/*.wav", "speech_aligned_en/*.flac",
            "speech_multilang/*.wav", "speech_multilang/*.mp3", "speech_multilang/*.opus", "speech_multilang/*.flac",
            "video/*.mpg"]
    return sorted(f for p in pats for f in glob.glob(str(SHARED / p)))


def _noise() -> np.ndarray:
    x, _ = sf.read(SHARED / "noise" / "exercise_bike.wav", dtype="float32")
    return x


def _mix(x: np.ndarray, noise: np.ndarray, snr: float, rng: np.random.Generator) -> np.ndarray:
    a = int(rng.integers(0, len(noise) - len(x))) if len(noise) > len(x) else 0
    nz = np.resize(noise[a:], len(x))
    return (x + nz * np.sqrt(np.mean(x**2) / np.mean(nz**2) / 10 ** (snr / 10))).astype(np.float32)


def bench_offset() -> None:
    """Error (us) on the 3 long real recordings, 5 random segments each, per condition."""
    rng = np.random.default_rng(7)
    noise = _noise()
    longs = [SHARED / "speech_aligned_en" / f"{n}.wav" for n in ("acoustic_corpus", "cold_corpus", "cold_corpus3")]
    rows = []
    conds = [("same rate, segment", {}), ("gain x0.1, 10 dB noise", {"gain": 0.1, "snr": 10}),
             ("0 dB noise", {"snr": 0}), ("-5 dB noise", {"snr": -5}),
             ("clip at 48 kHz (1/3-sample offsets)", {"rate": 48000}), ("clip at 44.1 kHz", {"rate": 44100}),
             ("clip at 8 kHz", {"rate": 8000}), ("clip at 96 kHz", {"rate": 96000})]
    for name, c in conds:
        for method in ("bandlimited", "parabolic"):
            errs, confs = [], []
            for f in longs:
                x, _ = sf.read(f, dtype="float32")
                r = c.get("rate", RATE)
                g = int(np.gcd(r, RATE))
                xr = resample_poly(x.astype(np.float64), r // g, RATE // g).astype(np.float32) if r != RATE else x
                for _ in range(5):
                    a = int(rng.integers(0, len(xr) - 6 * r))
                    clip = xr[a : a + 5 * r] * c.get("gain", 1.0)
                    if "snr" in c:
                        clip = _mix(clip, resample_poly(noise, r, RATE).astype(np.float32) if r != RATE else noise,
                                    c["snr"], rng)
                    res = estimate_offset_arrays(x, RATE, clip, r, method=method, refuse=False)
                    errs.append(abs(res.offset - a / r) * 1e6)
                    confs.append(res.confidence)
            rows.append((name, method, np.mean(errs), np.max(errs), np.min(confs)))
    print("\n### Offset error on real speech (3 recordings x 5 random 5 s segments)\n")
    print("| condition | peak interpolation | mean error (us) | max error (us) | lowest confidence |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:.1f} | {r[3]:.1f} | {r[4]:.2f} |")
    if shutil.which("ffmpeg"):
        print("\n| video reference (GRID .mpg, MP2 44.1 kHz) vs WAV extracted and shifted | error (us) | confidence |")
        print("|---|---|---|")
        with tempfile.TemporaryDirectory() as tmp:
            for v in sorted(glob.glob(str(SHARED / "video" / "*.mpg"))):
                wav = os.path.join(tmp, "t.wav")
                subprocess.run(["ffmpeg", "-nostdin", "-y", "-v", "error", "-i", v, "-vn", "-ac", "1", wav], check=True)
                x, r = sf.read(wav, dtype="float32")
                for shift in (12345, -777, 3):
                    clip = np.concatenate([np.zeros(shift, np.float32), x]) if shift > 0 else x[-shift:]
                    cp = os.path.join(tmp, "c.wav")
                    sf.write(cp, clip, r, subtype="PCM_16")
                    res = estimate_offset(v, cp)
                    print(f"| {Path(v).name} shift {shift} samples | {abs(res.offset + shift / r) * 1e6:.1f} | "
                          f"{res.confidence:.2f} |")


def bench_thresholds() -> None:
    """Second-peak ratio on every pair of different real recordings vs matching pairs in noise."""
    files = [*_speech_files(), str(SHARED / "noise" / "exercise_bike.wav")]
    sig = {f: read_any(f) for f in files}
    nm = []
    for a, b in itertools.combinations(files, 2):
        (x, ra), (y, rb) = sig[a], sig[b]
        res = estimate_offset_arrays(x, ra, y, rb, refuse=False)
        nm.append((res.peak_ratio, res.psr))
    rng = np.random.default_rng(1)
    noise = _noise()
    match: dict[int, list[tuple[float, float]]] = {}
    for f in files[:-1]:
        x, r0 = sig[f]
        x = resample_poly(x, RATE, r0).astype(np.float32) if r0 != RATE else x
        for snr in (10, 0, -5, -10):
            a = int(rng.integers(0, len(x) // 4))
            c = x[a : min(len(x), a + max(RATE, len(x) // 2))]
            res = estimate_offset_arrays(x, RATE, _mix(c, noise, snr, rng) * 0.5, RATE, refuse=False)
            match.setdefault(snr, []).append((res.peak_ratio, res.psr))
    print(f"\n### Refusal threshold ({len(files)} real recordings)\n")
    print("| pairs | n | second-peak ratio min / median / max | PSR min / median / max |")
    print("|---|---|---|---|")
    arr = np.array(nm)
    print(f"| different recordings | {len(nm)} | {arr[:, 0].min():.2f} / {np.median(arr[:, 0]):.2f} / "
          f"{arr[:, 0].max():.2f} | {arr[:, 1].min():.1f} / {np.median(arr[:, 1]):.1f} / {arr[:, 1].max():.1f} |")
    for snr, v in match.items():
        m = np.array(v)
        print(f"| same recording, segment in {snr} dB noise | {len(v)} | {m[:, 0].min():.2f} / {np.median(m[:, 0]):.2f}"
              f" / {m[:, 0].max():.2f} | {m[:, 1].min():.1f} / {np.median(m[:, 1]):.1f} / {m[:, 1].max():.1f} |")


def _tg_words(name: str, a: float, b: float) -> list[tuple[str, float, float]]:
    tg = read_textgrid(SHARED / "speech_aligned_en" / f"{name}.TextGrid")
    return [(i.text, i.start - a, i.end - a) for i in tg["words"].intervals
            if i.text and i.start >= a - 1e-6 and i.end <= b + 1e-6]


def _sphinx_starts(x: np.ndarray, rate: int, text: str) -> np.ndarray:
    from lipsync_addon.core.audio import resample
    from lipsync_addon.core.recognize.pocketsphinx_backend import PocketSphinxRecognizer
    from lipsync_addon.core.types import Audio

    y = resample(x.astype(np.float32), rate, RATE)
    tr = PocketSphinxRecognizer(jobs=1).transcribe(Audio(samples=y, rate=RATE), text)
    return np.array([w.start for w in tr.words])


def bench_retake() -> None:
    """Word-start error of a real second take against the guide, before and after warping."""
    pairs = [((1.60, 3.69), (1.25, 3.28), "so this is the sick corpus"),
             ((3.99, 4.97), (7.16, 8.56), "i have a cold so"),
             ((7.86, 9.05), (10.68, 11.80), "acoustic corpus")]
    g_all, rate = sf.read(SHARED / "speech_aligned_en" / "cold_corpus.wav", dtype="float32")
    t_all, _ = sf.read(SHARED / "speech_aligned_en" / "cold_corpus3.wav", dtype="float32")
    print("\n### Retake alignment: a real second take of the same words (cold_corpus -> cold_corpus3)\n")
    print("| words | DTW cost | word starts, MFA reference: before -> after (mean ms) | "
          "pocketsphinx on guide vs take: before -> warped take (mean / max ms) |")
    print("|---|---|---|---|")
    for gs, ts, text in pairs:
        g = g_all[round(gs[0] * rate) : round(gs[1] * rate)]
        t = t_all[round(ts[0] * rate) : round(ts[1] * rate)]
        wg, wt = _tg_words("cold_corpus", *gs), _tg_words("cold_corpus3", *ts)
        al = align_retake_arrays(g, rate, t, rate)
        sg, st = np.array([w[1] for w in wg]), np.array([w[1] for w in wt])
        before, after = np.abs(st - sg).mean() * 1000, np.abs(al.path.guide_time_at(st) - sg).mean() * 1000
        warped = warp_take(t, rate, al)
        pg, pt, pw = _sphinx_starts(g, rate, text), _sphinx_starts(t, rate, text), _sphinx_starts(warped, rate, text)
        eb, ea = np.abs(pt - pg) * 1000, np.abs(pw - pg) * 1000
        print(f"| {text} | {al.cost:.2f} | {before:.0f} -> {after:.0f} | {eb.mean():.0f} / {eb.max():.0f} -> "
              f"{ea.mean():.0f} / {ea.max():.0f} |")
    x, _ = sf.read(SHARED / "speech_clean" / "cmu_arctic_us_aew_a0001.wav", dtype="float32")
    dur = len(x) / RATE
    print("\n| known time map (aew_a0001) | path error median / p95 / max (ms) |")
    print("|---|---|")
    out_t = np.linspace(0, dur * 1.1, 300)
    bend = 0.06 * np.sin(4 * np.pi * out_t / out_t[-1])
    in_t = np.maximum.accumulate(np.clip(dur * (out_t / out_t[-1] + bend), 0, dur))
    maps = {"non-uniform (WSOLA, x0.8-x1.5 local tempo)": (out_t, in_t)}
    for f in (0.8, 1.25):
        maps[f"uniform x{1 / f:.2f} tempo (WSOLA)"] = (np.array([0, dur * f]), np.array([0, dur]))
    for name, (ot, it) in maps.items():
        take = wsola(x, RATE, ot, it, ot[-1])
        al = align_retake_arrays(x, RATE, take, RATE)
        e = np.abs(al.path.take_times - np.interp(al.path.guide_times, it, ot)) * 1000
        print(f"| {name} | {np.median(e):.1f} / {np.percentile(e, 95):.1f} / {e.max():.1f} |")
    if shutil.which("ffmpeg"):
        with tempfile.TemporaryDirectory() as tmp:
            p = os.path.join(tmp, "s.wav")
            src = str(SHARED / "speech_clean" / "cmu_arctic_us_aew_a0001.wav")
            subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", src, "-af", "atempo=0.8", p], check=True)
            take, _ = sf.read(p, dtype="float32")
            al = align_retake_arrays(x, RATE, take, RATE)
            e = (al.path.take_times - al.path.guide_times / 0.8) * 1000
            print(f"| uniform x0.8 tempo (ffmpeg atempo, independent) | {np.median(np.abs(e)):.1f} / "
                  f"{np.percentile(np.abs(e), 95):.1f} / {np.abs(e).max():.1f} (signed median {np.median(e):+.1f}) |")


def bench_speed() -> None:
    """Seconds per call (best of 3) for offset and retake at several lengths."""
    x, _ = sf.read(SHARED / "speech_aligned_en" / "acoustic_corpus.wav", dtype="float32")
    rng = np.random.default_rng(0)
    print("\n### Speed (this machine, best of 3)\n")
    print("| task | input | seconds | x real time |")
    print("|---|---|---|---|")
    for dur in (10, 60, 600, 3600):
        ref = (rng.standard_normal(dur * RATE).astype(np.float32) * 0.01)
        n = min(len(x), len(ref))
        ref[:n] += x[:n]
        clip = ref[RATE : min(n, RATE + 20 * RATE)]
        best = min(_timed(lambda r=ref, c=clip: estimate_offset_arrays(r, RATE, c, RATE)) for _ in range(3))
        print(f"| offset | {dur} s reference, {len(clip) / RATE:.0f} s clip | {best:.3f} | {dur / best:.0f} |")
    for dur in (4, 25, 120):
        g = np.resize(x, dur * RATE)
        t = wsola(g, RATE, np.array([0, dur * 1.1]), np.array([0, dur]), dur * 1.1)
        best_a = min(_timed(lambda g=g, t=t: align_retake_arrays(g, RATE, t, RATE)) for _ in range(3))
        al = align_retake_arrays(g, RATE, t, RATE)
        best_w = min(_timed(lambda t=t, al=al: warp_take(t, RATE, al)) for _ in range(3))
        t48 = resample_poly(t, 3, 1).astype(np.float32)
        best_w48 = min(_timed(lambda t=t48, al=al: warp_take(t, 48000, al)) for _ in range(3))
        print(f"| retake: DTW | {dur} s guide, 16 kHz | {best_a:.3f} | {dur / best_a:.0f} |")
        print(f"| retake: WSOLA | {dur} s, 16 kHz / 48 kHz take | {best_w:.3f} / {best_w48:.3f} | "
              f"{dur / best_w:.0f} / {dur / best_w48:.0f} |")


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench_drift() -> None:
    """Clock drift: a 66 s take re-recorded by a device whose clock runs fast or slow, in noise."""
    from fractions import Fraction

    from lipsync_addon.core.drift import correct_drift, estimate_drift_arrays

    names = ("acoustic_corpus", "cold_corpus", "cold_corpus3")
    ref = np.concatenate([sf.read(TESTS / "aligned" / f"{n}.wav", dtype="float32")[0] for n in names])
    print("\n### Clock drift (77 s reference; the clip = 66 s of it from 4 s, re-recorded at -50 dBFS noise)\n")
    print("| true drift (ppm) | offset error, whole clip (ms) | measured drift (ppm) | start offset error (ms) "
          "| slip after --fix-drift (ms) | time (s) |")
    print("|---|---|---|---|---|---|")
    for ppm in (-300, -120, -50, 0, 50, 100, 200, 250, 300):
        ratio = Fraction(1.0 + ppm * 1e-6).limit_denominator(100000)
        clip = resample_poly(ref[4 * RATE: 70 * RATE], ratio.numerator, ratio.denominator).astype(np.float32) * 0.6
        clip += 0.003 * np.random.default_rng(0).standard_normal(len(clip)).astype(np.float32)
        try:
            whole = f"{(estimate_offset_arrays(ref, RATE, clip, RATE).offset - 4.0) * 1000:+.2f}"
        except Exception as exc:  # a refusal is a result here: it goes in the table
            whole = f"refused ({type(exc).__name__})"
        started = time.perf_counter()
        try:
            drift = estimate_drift_arrays(ref, RATE, clip, RATE)
        except Exception as exc:  # a refusal is a result here: it goes in the table
            print(f"| {ppm:+d} | {whole} | refused ({type(exc).__name__}) | | | |")
            continue
        took = time.perf_counter() - started
        again = estimate_drift_arrays(ref, RATE, correct_drift(clip, drift.drift_ppm), RATE)
        print(f"| {ppm:+d} | {whole} | {-drift.drift_ppm:+.1f} | {(drift.offset - 4.0) * 1000:+.3f} | "
              f"{again.slip_ms:+.2f} | {took:.2f} |")


SECTIONS = {"offset": bench_offset, "thresholds": bench_thresholds, "retake": bench_retake, "speed": bench_speed,
            "drift": bench_drift}

if __name__ == "__main__":
    for name in sys.argv[1:] or list(SECTIONS):
        SECTIONS[name]()
