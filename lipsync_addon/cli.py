"""Command line: ``python -m lipsync_addon analyze | enhance | offset | retake | batch ...``.

``analyze line.wav [--text line.txt] -o cues.json`` (this module), ``enhance in.wav -o out.wav``
(:mod:`lipsync_addon.cli_enhance`), ``offset REF CLIP`` and ``retake GUIDE TAKE -o out.wav``
(:mod:`lipsync_addon.cli_sync`), ``batch DIR`` (:mod:`lipsync_addon.cli_batch`).

bpy-free: runs the same pipeline as the Blender operator and writes the timing as JSON (our
versioned cue format, or Rhubarb-compatible ``mouthCues``). Exit codes: 0 ok, 1 the input could
not be processed (message on stderr), 2 bad command line, 130 cancelled.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Sequence

from .core.transcript_file import read_script_file
from .core.types import (
    DEFAULT_BREATH,
    DEFAULT_SMOOTHING,
    DEFAULT_STRENGTH,
    Cancelled,
    CancelToken,
    FaceConfig,
    LipSyncError,
    PipelineConfig,
)


def _progress_printer(mode: str):  # type: ignore[no-untyped-def]
    last = [-1.0, time.monotonic()]

    def report(fraction: float, stage: str) -> None:
        if mode == "json":
            print(json.dumps({"type": "progress", "fraction": round(fraction, 3), "stage": stage}),
                  file=sys.stderr, flush=True)
        elif mode == "text" and (fraction - last[0] >= 0.05 or fraction >= 1.0):
            last[0] = fraction
            print(f"\r{fraction * 100:5.1f}%  {stage:<30}", end="" if fraction < 1.0 else "\n",
                  file=sys.stderr, flush=True)

    return report


#: Face layers ``--face-layers`` can name (docs/face.md); the expression has its own option.
FACE_LAYERS = ("blink", "brows", "head", "gaze")


def face_config(level: str, layers: str, expression: str, seed: int) -> FaceConfig:
    """The FaceConfig for ``--face LEVEL --face-layers a,b --expression NAME --face-seed N``.

    ``level`` "off" turns the layers off (an expression still plays, at the natural level).
    Raises LipSyncError for an unknown layer name.
    """
    chosen = {x.strip() for x in layers.split(",") if x.strip()}
    unknown = chosen - set(FACE_LAYERS)
    if unknown:
        raise LipSyncError(f"Unknown face layer(s): {', '.join(sorted(unknown))}. Use {', '.join(FACE_LAYERS)}.")
    on = level != "off"
    return FaceConfig(
        blink=on and "blink" in chosen, brows=on and "brows" in chosen, head=on and "head" in chosen,
        gaze=on and "gaze" in chosen, expression=expression, level=level if on else "natural", seed=seed,
    )


def _face_layers_arg(text: str) -> str:
    """argparse type of ``--face-layers``: a bad layer name is a command-line error (exit 2)."""
    try:
        face_config("natural", text, "neutral", 0)
    except LipSyncError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser for all sub-commands."""
    parser = argparse.ArgumentParser(prog="python -m lipsync_addon", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    an = sub.add_parser("analyze", help="audio (+ transcript) -> lip-sync cues JSON")
    an.add_argument("audio", help="dialogue clip (WAV, FLAC, OGG, MP3; M4A, video, ... with ffmpeg installed)")
    text = an.add_mutually_exclusive_group()
    text.add_argument("--text", metavar="FILE", help="transcript: text or .srt/.vtt subtitles (improves accuracy)")
    text.add_argument("--transcript", metavar="TEXT", help="transcript given inline")
    an.add_argument("--speaker", metavar="NAME", default="",
                    help="with a script or subtitles naming their speakers (ANNA: ..., <v Anna>): animate only "
                    "this speaker's lines; the others' speech is rest for this mouth (docs/speakers.md)")
    an.add_argument("--dict", metavar="FILE", default="",
                    help="pronunciation dictionary: how names and invented words are said, one per line "
                    "('Xalatath Z AA1 L AH0 T AE2 TH' or 'Hermione = her my oh nee'; docs/pronunciations.md)")
    an.add_argument("--viseme-set", default="oculus",
                    help="viseme set for the curves: oculus, arkit, vrm, vroid, vrchat, rhubarb, preston_blair")
    an.add_argument("--lang", default="en", help="language, ISO 639 code (en, en-gb, es, ja, ...; docs/languages.md)")
    an.add_argument("--backend", choices=("auto", "pocketsphinx", "espeak", "vosk"), default="auto",
                    help="speech backend (auto: pocketsphinx for English, espeak-ng+DTW with a transcript, else Vosk)")
    an.add_argument("--vosk-model", metavar="DIR", default="",
                    help="Vosk model folder (recognition without a transcript)")
    an.add_argument("--mapping", metavar="JSON", help="custom viseme -> channel mapping file")
    an.add_argument("--fps", type=float, default=24.0, help="curve sample rate, frames per second")
    an.add_argument("--strength", type=float, default=DEFAULT_STRENGTH, help="amplitude, 0..2")
    an.add_argument("--smoothing", type=float, default=DEFAULT_SMOOTHING,
                    help="coarticulation smoothing, 0 crisp .. 1 very smooth")
    an.add_argument("--breath", type=float, default=DEFAULT_BREATH,
                    help="lips part to inhale before a phrase after a pause, 0 off .. 1 (default)")
    an.add_argument("--jobs", type=int, default=0, help="worker processes for long clips (0 = all cores)")
    an.add_argument("--format", choices=("json", "rhubarb"), default="json", help="output format")
    an.add_argument("--textgrid", metavar="FILE", help="also write word/phone alignment as a Praat TextGrid")
    an.add_argument("--subtitles", metavar="FILE",
                    help="also write the transcript's lines timed by the alignment as subtitles (.srt, or .vtt), "
                    "speakers kept")
    an.add_argument("-o", "--output", help="output file (default: stdout)")
    an.add_argument("--progress", choices=("none", "text", "json"), default="none",
                    help="progress on stderr; 'json' prints one JSON object per line")
    an.add_argument("--enhance", choices=("off", "light", "standard", "strong"), default="off",
                    help="clean the audio before analysis (timing unchanged; helps on noisy dialogue)")
    an.add_argument("--dereverb", action="store_true",
                    help="reduce room echo (WPE) before the analysis: dialogue recorded in a reverberant room")
    an.add_argument("--face", choices=("off", "subtle", "natural", "expressive"), default="off",
                    help="also write procedural blinks, brows, head motion and gaze (face_curves, docs/face.md)")
    an.add_argument("--face-layers", type=_face_layers_arg, default=",".join(FACE_LAYERS), metavar="LAYERS",
                    help=f"comma-separated layers used with --face (default: all of {','.join(FACE_LAYERS)})")
    an.add_argument("--expression", choices=("neutral", "smile", "serious"), default="neutral",
                    help="hold a smile or a serious face (channel smile / serious in face_curves; "
                    "works with --face off too, at the natural level)")
    an.add_argument("--face-seed", type=int, default=0, help="seed of the face motion (same seed, same motion)")
    an.set_defaults(func=analyze)
    from . import cli_batch, cli_enhance, cli_sync

    cli_enhance.add_parser(sub)
    cli_sync.add_parser(sub)
    cli_batch.add_parser(sub)
    return parser


def analyze(args: argparse.Namespace) -> int:
    """Run the ``analyze`` sub-command; returns the exit code."""
    from .core import pipeline
    from .core.export import cues
    from .core.visemes import load_custom_mapping

    transcript = args.transcript or ""
    if args.text:
        transcript = read_script_file(args.text)  # the pipeline reads subtitles and speaker labels
    if args.subtitles and not transcript.strip():
        raise LipSyncError("--subtitles needs the transcript (--text FILE or --transcript): its lines are the cues.")
    if args.speaker and not transcript.strip():
        raise LipSyncError("--speaker needs the script: give --text FILE (or --transcript) with the speakers' lines.")
    custom = load_custom_mapping(args.mapping) if args.mapping else {}
    from .core import pronunciations

    user_prons = pronunciations.read(args.dict) if args.dict else {}
    config = PipelineConfig(
        transcript=transcript,
        speaker=args.speaker,
        pronunciations=user_prons,
        language=args.lang,
        backend=args.backend,
        vosk_model=args.vosk_model,
        viseme_set=args.viseme_set,
        custom_mapping=custom,
        fps=args.fps,
        strength=args.strength,
        smoothing=args.smoothing,
        breath=args.breath,
        jobs=args.jobs,
        enhance=args.enhance,
        dereverb=args.dereverb,
        face=face_config(args.face, args.face_layers, args.expression, args.face_seed),
    )
    if not (0.0 < config.fps <= 1000.0):
        raise LipSyncError(f"--fps must be between 0 and 1000, got {config.fps}")
    cancel = CancelToken()
    signal.signal(signal.SIGINT, lambda *_: cancel.cancel())
    result = pipeline.run(args.audio, config, progress=_progress_printer(args.progress), cancel=cancel)
    payload = cues.to_rhubarb_dict(result) if args.format == "rhubarb" else cues.to_cue_dict(result)
    if args.output:
        out_dir = os.path.dirname(os.path.abspath(args.output))
        if not os.path.isdir(out_dir):
            raise LipSyncError(f"Output folder does not exist: {out_dir}")
        try:
            cues.write_json(payload, args.output)
        except OSError as exc:
            raise LipSyncError(f"Cannot write '{args.output}': {exc.strerror}") from exc
    else:
        json.dump(payload, sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
    if args.subtitles:
        from .core.export.subtitles import write_subtitles

        write_subtitles(result.lines, args.subtitles, result.provenance.get("language", "en"))
    if args.textgrid:
        from .core.textgrid import Interval, Tier, write_textgrid

        tr = result.transcript
        write_textgrid(args.textgrid, [
            Tier("words", "IntervalTier", [Interval(w.start, w.end, w.text) for w in tr.words]),
            Tier("phones", "IntervalTier",
                 [Interval(p.start, p.end, "" if p.is_silence else p.ipa) for p in tr.phones]),
        ], result.duration)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m lipsync_addon``."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except Cancelled as exc:
        print(f"cancelled: {exc}", file=sys.stderr)
        return 130
    except LipSyncError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
