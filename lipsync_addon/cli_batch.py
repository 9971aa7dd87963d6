"""``python -m lipsync_addon batch DIR``: lip-sync every line of a folder (see :mod:`lipsync_addon.batch`).

Wired into :mod:`lipsync_addon.cli` through :func:`add_parser`. Exit codes: 0 every line done or
already finished, 1 some lines failed (see the manifest) or the batch could not start, 2 bad
command line.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .core.types import DEFAULT_BREATH, DEFAULT_SMOOTHING, DEFAULT_STRENGTH, LipSyncError


def add_parser(subparsers: Any) -> None:
    """Add the ``batch`` sub-command to an argparse sub-parser collection."""
    from .core.export.engines import FORMATS

    p = subparsers.add_parser(
        "batch", help="lip-sync a folder of lines (line.wav + optional line.txt): cues, .blend/GLB/FBX",
        description="Process every audio file under DIR (with line.txt transcripts when present). Resumable: "
        "finished lines are skipped; OUT/manifest.json lists each line's status, warnings and errors.",
    )  # fmt: skip
    p.add_argument("input", metavar="DIR", help="folder of dialogue lines (searched recursively)")
    p.add_argument("-o", "--output", metavar="OUT", help="output folder (default: DIR/lipsync_out)")
    p.add_argument("--formats", default="json",
                   help=f"comma-separated cue formats: {', '.join(FORMATS)} (default: json)")
    p.add_argument("--csv-fps", type=float, default=30.0, help="frame rate of the csv format (default 30)")
    p.add_argument("--fps", type=float, default=30.0, help="curve sample rate of the cue files (default 30)")
    p.add_argument("--speaker", metavar="NAME", default="",
                   help="animate only this speaker's lines of transcripts that name their speakers (ANNA: ..., "
                   "<v Anna>); lines whose transcript does not name it fail (docs/speakers.md)")
    p.add_argument("--dict", metavar="FILE", default="",
                   help="pronunciation dictionary for names and invented words (docs/pronunciations.md)")
    p.add_argument("--lang", default="en",
                   help="language of the lines, ISO 639 code (en, es, ja, ...; docs/languages.md)")
    p.add_argument("--vosk-model", metavar="DIR", default="",
                   help="Vosk model folder: lines of another language without a transcript")
    p.add_argument("--dereverb", action="store_true",
                   help="reduce room echo before each line's analysis (lines recorded in a reverberant room)")
    p.add_argument("--viseme-set", default="", help="viseme set (default: oculus; auto-detected with --template)")
    p.add_argument("--strength", type=float, default=DEFAULT_STRENGTH, help="mouth motion amplitude, 0..2")
    p.add_argument("--smoothing", type=float, default=DEFAULT_SMOOTHING,
                   help="coarticulation smoothing, 0 crisp .. 1 very smooth")
    p.add_argument("--breath", type=float, default=DEFAULT_BREATH,
                   help="lips part to inhale before a phrase after a pause, 0 off .. 1 (default)")
    p.add_argument("--template", metavar="BLEND", help="bake each line into a copy of this .blend (needs bpy)")
    p.add_argument("--object", dest="object_name", default="", help="mesh of the template to animate")
    p.add_argument("--blend", action="store_true", help="template mode: save OUT/<line>.blend")
    p.add_argument("--glb", action="store_true", help="template mode: export OUT/<line>.glb")
    p.add_argument("--fbx", action="store_true", help="template mode: export OUT/<line>.fbx")
    p.add_argument("-j", "--workers", type=int, default=0, help="worker processes (0 = all cores, 1 = no pool)")
    p.add_argument("--backend", default="local",
                   help="local (worker processes here), dask (a local Dask cluster of --workers processes) "
                   "or a Dask scheduler address, e.g. tcp://farm-head:8786 (docs/batch.md)")
    p.add_argument("--force", action="store_true", help="re-process lines already finished")
    p.add_argument("--progress", choices=("bar", "json", "none"), default="bar", help="progress on stderr")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the ``batch`` sub-command; return the exit code."""
    import os

    from . import batch
    from .core import pronunciations

    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    options = batch.BatchOptions(
        formats=formats,
        viseme_set=args.viseme_set or ("auto" if args.template else "oculus"),
        fps=args.fps, csv_fps=args.csv_fps, strength=args.strength, smoothing=args.smoothing,
        breath=args.breath, template=args.template or "", object_name=args.object_name,
        glb=args.glb, fbx=args.fbx, blend=args.blend,
        pronunciations=pronunciations.read(args.dict) if args.dict else {}, speaker=args.speaker.strip(),
        language=args.lang.strip() or "en", vosk_model=args.vosk_model, dereverb=args.dereverb,
    )  # fmt: skip
    out_dir = args.output or os.path.join(args.input, "lipsync_out")
    if args.progress == "bar":
        progress = batch.text_progress()
    elif args.progress == "json":
        def progress(finished: int, total: int, res: batch.LineResult) -> None:
            print(json.dumps({"type": "progress", "finished": finished, "total": total, "line": res.name,
                              "status": res.status}), file=sys.stderr, flush=True)  # fmt: skip
    else:
        progress = None
    try:
        summary = batch.run_batch(args.input, out_dir, options, workers=args.workers, force=args.force,
                                  backend=args.backend, progress=progress)  # fmt: skip
    except LipSyncError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for res in summary.results:
        if res.status == "failed":
            print(f"failed: {res.name}: {res.error}", file=sys.stderr)
    print(f"batch: {summary.done} done, {summary.skipped} skipped, {summary.failed} failed in "
          f"{summary.seconds:.1f} s; manifest: {summary.manifest}", file=sys.stderr)  # fmt: skip
    return 1 if summary.failed else 0
