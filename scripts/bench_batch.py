"""Batch throughput: N lines of 3-5 s real speech with 1 worker vs W workers (no transcripts: recognition).

    .venv/bin/python scripts/bench_batch.py [--lines 100] [--workers 1 2] [--formats json,csv]

Lines are real recordings (CMU ARCTIC clips of 3.5-4 s from ../shared/data/speech_clean and 3-5 s
windows cut from the MFA test corpus in tests/data/aligned), repeated with distinct names up to N.
Each run writes into a fresh output folder (nothing skipped). Prints seconds per run and speed-up.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lipsync_addon import batch  # noqa: E402

SHORT = sorted((REPO.parent / "shared" / "data" / "speech_clean").glob("*.wav"))
LONG = [REPO / "tests" / "data" / "aligned" / f"{n}.wav" for n in ("acoustic_corpus", "cold_corpus", "cold_corpus3")]


def make_lines(folder: Path, count: int, seed: int = 0) -> list[float]:
    """Write ``count`` WAV lines of 3-5 s into ``folder``; return their durations (s)."""
    rng = np.random.default_rng(seed)
    pieces: list[tuple[np.ndarray, int]] = []
    for path in SHORT:
        data, rate = sf.read(path, dtype="float32")
        if 3.0 <= len(data) / rate <= 5.0:
            pieces.append((data, rate))
    for path in LONG:
        data, rate = sf.read(path, dtype="float32")
        pos = 0
        while pos + 5 * rate <= len(data):
            length = int(rng.uniform(3.0, 5.0) * rate)
            pieces.append((data[pos : pos + length], rate))
            pos += length
    durations = []
    for i in range(count):
        data, rate = pieces[i % len(pieces)]
        sf.write(folder / f"line_{i:03d}.wav", data, rate)
        durations.append(len(data) / rate)
    return durations


def _burn(_: int) -> int:
    total = 0
    for i in range(6_000_000):
        total += i * i
    return total


def cpu_scaling(workers: int) -> float:
    """Speed-up of a pure-Python CPU loop on ``workers`` spawned processes vs one: what the machine allows."""
    import multiprocessing

    started = time.perf_counter()
    for k in range(2 * workers):
        _burn(k)
    serial = time.perf_counter() - started
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        pool.map(_burn, range(2 * workers))
    return serial / (time.perf_counter() - started)


def main() -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=100)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--formats", default="json,csv")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_batch_") as tmp:
        lines = Path(tmp) / "lines"
        lines.mkdir()
        durations = make_lines(lines, opts.lines)
        print(f"{len(durations)} lines, {min(durations):.2f}-{max(durations):.2f} s each, "
              f"{sum(durations):.1f} s of audio; {os.cpu_count()} CPU cores")
        times = {}
        for w in opts.workers:
            options = batch.BatchOptions(formats=opts.formats.split(","))
            started = time.perf_counter()
            summary = batch.run_batch(str(lines), str(Path(tmp) / f"out_{w}"), options, workers=w)
            times[w] = time.perf_counter() - started
            print(f"workers={w}: {times[w]:.1f} s ({summary.done} done, {summary.failed} failed), "
                  f"{sum(durations) / times[w]:.1f}x real time")
        base = times[opts.workers[0]]
        for w in opts.workers[1:]:
            print(f"speed-up {w} vs {opts.workers[0]} workers: {base / times[w]:.2f}x "
                  f"(machine ceiling: a pure CPU loop scales {cpu_scaling(w):.2f}x on {w} processes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
