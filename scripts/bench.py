"""Benchmark: analysis speed, peak memory and bake time. Prints a table (figures, not a test).

    .venv/bin/python scripts/bench.py [--repeat 1] [--bake-minutes 10] [--bake-fps 60]

1. Analysis real-time factor (wall seconds of ``pipeline.run`` / seconds of audio) on a
   >= 60 s real speech clip made by concatenating the transcribed real recordings in
   ../shared/data/speech_aligned_en (with 0.5 s of silence between them), with the
   concatenated transcript and without a transcript (recognition). Each mode runs in
   a fresh process so its peak memory (``resource.getrusage`` max RSS) is its own.
2. Bake time: ``lipsync_addon.blender.bake.bake_curves`` writing 15 channels of
   10 minutes at 60 fps (36,000 samples each, smooth random curves, worst case for
   key reduction) onto a mesh with 15 shape keys, through the bpy wheel.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SPEECH_DIR = REPO.parent / "shared" / "data" / "speech_aligned_en"
CLIPS = ("acoustic_corpus", "cold_corpus", "cold_corpus3")
GAP_SECONDS = 0.5
RATE = 16000

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def clean_transcript(text: str) -> str:
    """Drop annotation tokens such as ``<VOCNOISE>`` and ``[adif]`` from a corpus transcript."""
    return " ".join(re.sub(r"<[^>]*>|\[[^\]]*\]", " ", text).split())


def build_long_clip(folder: Path) -> tuple[Path, Path, float]:
    """Write the concatenated clip (16 kHz mono WAV) and transcript into ``folder``.

    Returns ``(wav_path, text_path, duration_seconds)``.
    """
    import soundfile as sf

    from lipsync_addon.core.audio import load_audio, to_analysis

    pieces, texts = [], []
    gap = np.zeros(int(GAP_SECONDS * RATE), dtype=np.float32)
    for name in CLIPS:
        audio = to_analysis(load_audio(str(SPEECH_DIR / f"{name}.wav")))  # mono, 16 kHz
        pieces += [audio.samples.astype(np.float32), gap]
        texts.append(clean_transcript((SPEECH_DIR / f"{name}.lab").read_text(encoding="utf-8")))
    samples = np.concatenate(pieces)
    wav, txt = folder / "bench_speech.wav", folder / "bench_speech.txt"
    sf.write(str(wav), samples, RATE, subtype="PCM_16")
    txt.write_text(" ".join(texts), encoding="utf-8")
    return wav, txt, len(samples) / RATE


def time_face(wav: Path, text_file: Path) -> dict:
    """Seconds for prosody analysis and for the face curves (natural level, 24 fps) on the clip."""
    from lipsync_addon.core.animate import procedural
    from lipsync_addon.core.audio import load_audio, to_analysis
    from lipsync_addon.core.recognize import get_recognizer
    from lipsync_addon.core.types import FaceConfig

    audio = to_analysis(load_audio(str(wav)))
    transcript = get_recognizer("en").transcribe(audio, text_file.read_text(encoding="utf-8"))
    t0 = time.perf_counter()
    prosody = procedural.analyze_prosody(audio.samples, audio.rate, transcript)
    t1 = time.perf_counter()
    procedural.face_curves(prosody, FaceConfig(blink=True, brows=True, head=True), fps=24.0)
    t2 = time.perf_counter()
    return {"prosody": t1 - t0, "curves": t2 - t1}


def child_analyze(wav: str, text_file: str, jobs: int = 0, again: bool = False) -> dict:
    """(Child process.) Time one ``pipeline.run``; report seconds, method and peak RSS (MiB).

    ``again``: time a second run with other animation settings after a first one, both with
    ``reuse_analysis`` (what the Blender add-on does when Generate is pressed again).
    """
    from dataclasses import replace

    # scipy.signal is loaded before the clock starts, as importing the pipeline did until 2026-11-25 (it
    # now loads on first use, so Blender starts faster): the figure is analysis time, not start-up
    import scipy.signal  # noqa: F401

    from lipsync_addon.core import pipeline
    from lipsync_addon.core.types import PipelineConfig

    text = Path(text_file).read_text(encoding="utf-8") if text_file else ""
    config = PipelineConfig(transcript=text, viseme_set="oculus", fps=24.0, jobs=jobs, reuse_analysis=again)
    if again:
        pipeline.run(wav, config)
        config = replace(config, strength=0.7, smoothing=0.6, viseme_set="arkit")
    t0 = time.perf_counter()
    result = pipeline.run(wav, config)
    elapsed = time.perf_counter() - t0
    if again and not result.provenance.get("analysis_reused"):
        raise SystemExit("the second run did not reuse the analysis")
    return {
        "seconds": elapsed,
        "duration": result.duration,
        "method": result.transcript.method,
        "words": len(result.transcript.words),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


def smooth_random_curves(n: int, channels: int, fps: float, seed: int = 0) -> np.ndarray:
    """``channels`` x ``n`` smooth random curves in [0, 1] (about 4 Hz content at ``fps``)."""
    rng = np.random.default_rng(seed)
    raw = rng.random((channels, n))
    width = max(1, int(fps / 8))
    kernel = np.hanning(2 * width + 1)
    kernel /= kernel.sum()
    out = np.stack([np.convolve(row, kernel, mode="same") for row in raw])
    out = (out - out.min(axis=1, keepdims=True)) / np.ptp(out, axis=1, keepdims=True)
    return out.clip(0.0, 1.0)


def child_bake(minutes: float, fps: float, channels: int = 15) -> dict:
    """(Child process.) Time ``bake_curves`` for ``minutes`` of ``channels`` curves at ``fps``."""
    import bpy

    from lipsync_addon.blender import bake
    from lipsync_addon.core.types import Curves

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = int(fps), 1.0
    mesh = bpy.data.meshes.new("BenchMesh")
    mesh.from_pydata([(0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0)], [], [(0, 1, 2, 3)])
    obj = bpy.data.objects.new("BenchMesh", mesh)
    scene.collection.objects.link(obj)
    obj.shape_key_add(name="Basis")
    names = [f"viseme_{i:02d}" for i in range(channels)]
    for name in names:
        obj.shape_key_add(name=name)
    n = round(minutes * 60.0 * fps)
    values = smooth_random_curves(n, channels, fps)
    curves = Curves(times=np.arange(n) / fps, rate=fps, channels=dict(zip(names, values, strict=True)))
    t0 = time.perf_counter()
    report = bake.bake_curves(obj, curves, start_frame=1, fps=fps, clip="bench", scene=scene)
    elapsed = time.perf_counter() - t0
    t1 = time.perf_counter()
    report2 = bake.bake_curves(obj, curves, start_frame=1, fps=fps, clip="bench", scene=scene, reduce=False)
    elapsed_full = time.perf_counter() - t1
    return {
        "seconds": elapsed, "keys": report.keys_written, "samples": n * channels,
        "seconds_no_reduce": elapsed_full, "keys_no_reduce": report2.keys_written,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


def _run_child(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), *args],
                          capture_output=True, text=True, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"bench child {args[:2]} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=1, help="analysis runs per mode (best is reported)")
    parser.add_argument("--bake-minutes", type=float, default=10.0, help="length of the baked curves (minutes)")
    parser.add_argument("--bake-fps", type=float, default=60.0, help="bake frame rate (frames per second)")
    parser.add_argument("--skip-bake", action="store_true")
    parser.add_argument("--face", action="store_true",
                        help="also time the procedural face layers (prosody + blink/brow/head curves)")
    parser.add_argument("--compare-jobs", action="store_true",
                        help="also run the analysis with 1 worker (shows what the second core brings)")
    parser.add_argument("--again", action="store_true",
                        help="also time Generate pressed again with other animation settings (analysis reused)")
    parser.add_argument("--child", choices=("analyze", "bake"), help=argparse.SUPPRESS)
    parser.add_argument("--wav", default="", help=argparse.SUPPRESS)
    parser.add_argument("--text-file", default="", help=argparse.SUPPRESS)
    parser.add_argument("--jobs", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "analyze":
        print(json.dumps(child_analyze(args.wav, args.text_file, args.jobs, args.again)))
        return 0
    if args.child == "bake":
        print(json.dumps(child_bake(args.bake_minutes, args.bake_fps)))
        return 0

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="lipsync_bench_") as tmp:
        wav, txt, duration = build_long_clip(Path(tmp))
        print(f"clip: {duration:.1f} s ({' + '.join(CLIPS)}, 16 kHz)")
        modes = [("analysis, with transcript", str(txt), 0, False), ("analysis, no transcript", "", 0, False)]
        if args.compare_jobs:
            modes += [("analysis, with transcript, 1 worker", str(txt), 1, False),
                      ("analysis, no transcript, 1 worker", "", 1, False)]
        if args.again:
            modes += [("generate again, other animation settings (with transcript)", str(txt), 0, True)]
        for label, text_file, jobs, again in modes:
            runs = [_run_child(["--child", "analyze", "--wav", str(wav), "--text-file", text_file,
                                "--jobs", str(jobs), *(["--again"] if again else [])])
                    for _ in range(max(1, args.repeat))]
            best = min(runs, key=lambda r: r["seconds"])
            rows.append((label, f"{best['seconds']:.2f} s", f"{best['seconds'] / duration:.3f}x real time",
                         f"{max(r['peak_rss_mib'] for r in runs):.0f} MiB",
                         f"method={best['method']}, {best['words']} words"))
        if args.face:
            f = time_face(wav, txt)
            rows.append(("face: prosody", f"{f['prosody']:.2f} s", f"{f['prosody'] / duration:.3f}x real time", "",
                         "energy, pitch, pauses, stress"))
            rows.append(("face: blink/brow/head curves", f"{f['curves']:.3f} s", "", "", "natural level, 24 fps"))
    if not args.skip_bake:
        b = _run_child(["--child", "bake", "--bake-minutes", str(args.bake_minutes),
                        "--bake-fps", str(args.bake_fps)])
        what = f"{args.bake_minutes:g} min @ {args.bake_fps:g} fps x 15 ch"
        rows.append((f"bake {what}", f"{b['seconds']:.2f} s", "", f"{b['peak_rss_mib']:.0f} MiB",
                     f"{b['keys']} keys of {b['samples']} samples (key reduction on)"))
        rows.append((f"bake {what}, no reduction", f"{b['seconds_no_reduce']:.2f} s", "", "",
                     f"{b['keys_no_reduce']} keys"))
    header = ("what", "wall time", "real-time factor", "peak RSS", "notes")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
