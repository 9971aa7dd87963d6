"""Headless lip sync of one clip onto one object, saved to a .blend: the batch command line.

The logic behind ``scripts/batch_lipsync.py``; it lives in the add-on so that an installed extension
runs it without the repository (docs/blender.md, "Headless"):

    blender -b scene.blend --python-expr \
        "import sys, bl_ext.user_default.lipsync.blender.batch_script as b; sys.exit(b.main())" \
        -- --object Head --audio line.wav [--text line.txt] --out out.blend

Options and exit codes: :func:`parse_args` and ``scripts/batch_lipsync.py``. Exit codes: 0 done,
1 lip-sync error (message on stderr, nothing saved), 2 bad command line, 3 internal error (a bug;
traceback on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BUG = 3
#: Face layers --face-layers can name (docs/face.md); the expression has its own option.
FACE_LAYERS = ("blink", "brows", "head", "gaze")


def script_args(argv: list[str]) -> list[str]:
    """The script's own arguments: after ``--`` inside Blender, else everything after the script."""
    if "--" in argv:
        return argv[argv.index("--") + 1 :]
    return argv[1:]


def parse_args(args: list[str]) -> argparse.Namespace:
    """Parse the command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="batch_lipsync", description="Lip-sync a dialogue clip onto an object's shape keys."
    )
    parser.add_argument("--blend", help="the .blend to open (default: the file Blender already opened)")
    parser.add_argument("--object", required=True,
                        help="name of the mesh with mouth shape keys, or of the armature (bone mouth)")
    parser.add_argument("--audio", required=True,
                        help="dialogue clip (WAV, FLAC, OGG, MP3, M4A, or anything else Blender plays)")
    parser.add_argument("--text", help="the line's transcript: a .txt file, or .srt/.vtt subtitles")
    parser.add_argument("--transcript", help="the transcript itself (instead of --text)")
    parser.add_argument("--speaker", default="",
                        help="with a script or subtitles that name their speakers (ANNA: ..., <v Anna>): animate "
                        "only this speaker's lines (docs/speakers.md)")
    parser.add_argument("--line-markers", action="store_true",
                        help="put a timeline marker at the start of each line of the transcript")
    parser.add_argument("--dict", default="",
                        help="pronunciation dictionary for names and invented words (docs/pronunciations.md)")
    parser.add_argument("--viseme-set", default="auto", help="auto (detect from shape-key names) or a preset name")
    parser.add_argument("--start-frame", type=int, default=None, help="frame where the clip starts")
    parser.add_argument("--sync-to", metavar="REF",
                        help="place the clip in sync with this reference recording or video (GCC-PHAT offset); "
                        "the reference starts at its strip's frame, or the scene start")
    parser.add_argument("--scene", default=None, help="scene name (default: the active scene)")
    parser.add_argument("--strength", type=float, default=None,
                        help="mouth motion amplitude, 0..2 (default: the add-on's)")
    parser.add_argument("--smoothing", type=float, default=None,
                        help="0 = crisp, 1 = very smooth (default: the add-on's)")
    parser.add_argument("--breath", type=float, default=None,
                        help="lips part to inhale before a phrase after a pause, 0 off .. 1 (default: the add-on's)")
    parser.add_argument("--mapping", help="custom mapping JSON {viseme: {shape key: weight}}")
    parser.add_argument("--lang", default="en", help="ISO 639 code of the dialogue (docs/languages.md)")
    parser.add_argument("--vosk-model", default="", help="Vosk model folder (other languages, no transcript)")
    parser.add_argument("--enhance", choices=("off", "light", "standard", "strong"), default="off",
                        help="clean the dialogue first; the cleaned <clip>_enhanced.wav (next to the saved "
                        ".blend) becomes the sound strip, the original stays muted (default: off)")
    parser.add_argument("--dereverb", action="store_true",
                        help="reduce room echo before the analysis (and in the --enhance sound): reverberant rooms")
    parser.add_argument("--face", choices=("off", "subtle", "natural", "expressive"), default="off",
                        help="procedural face motion level (docs/face.md); layers: --face-layers")
    parser.add_argument("--face-layers", default=",".join(FACE_LAYERS),
                        help=f"comma-separated face layers used with --face (default: all of {','.join(FACE_LAYERS)})")
    parser.add_argument("--expression", choices=("neutral", "smile", "serious"), default="neutral",
                        help="hold a smile or a serious face (also with --face off, at the natural level)")
    parser.add_argument("--face-seed", type=int, default=0, help="seed of the face motion")
    parser.add_argument("--pose-action", default="",
                        help="bone mouth: action whose pose markers are named after visemes (docs/bones.md)")
    parser.add_argument("--pose-prefix", default="",
                        help="bone mouth: the poses are actions / pose assets named <prefix><viseme>")
    parser.add_argument("--jaw", action=argparse.BooleanOptionalAction, default=None,
                        help="bone mouth: open the jaw bone with the mouth (default: on for armatures)")
    parser.add_argument("--jaw-angle", type=float, default=None,
                        help="bone mouth: jaw rotation in radians when the mouth is fully open (default 0.3)")
    parser.add_argument("--no-sound-strip", action="store_true", help="do not add the clip to the sequencer")
    parser.add_argument("--out", help="where to save the result .blend")
    parser.add_argument("--in-place", action="store_true", help="save over the opened .blend instead of --out")
    parser.add_argument("--cues", help="also write the cue JSON (words, phones, visemes, curves) here")
    parser.add_argument("--glb", help="also export the object with its animation as GLB (morph-target weights)")
    parser.add_argument("--fbx", help="also export the object with its animation as FBX (blend-shape animation)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    opts = parser.parse_args(args)
    if not opts.out and not opts.in_place and not opts.glb and not opts.fbx:
        parser.error("give --out FILE.blend (or --in-place to overwrite the opened file, or --glb/--fbx)")
    if opts.text and opts.transcript:
        parser.error("give either --text FILE or --transcript TEXT, not both")
    unknown = {x.strip() for x in opts.face_layers.split(",") if x.strip()} - set(FACE_LAYERS)
    if unknown:
        parser.error(f"unknown face layer(s): {', '.join(sorted(unknown))} (use {', '.join(FACE_LAYERS)})")
    return opts


def _face_config(opts: argparse.Namespace) -> Any:
    """The FaceConfig asked for on the command line (layers off with --face off; --expression still applies)."""
    from ..core.types import FaceConfig

    if opts.face == "off":
        return FaceConfig(expression=opts.expression, seed=opts.face_seed)
    layers = {x.strip() for x in opts.face_layers.split(",") if x.strip()}
    return FaceConfig(blink="blink" in layers, brows="brows" in layers, head="head" in layers, gaze="gaze" in layers,
                      expression=opts.expression, level=opts.face, seed=opts.face_seed)


def _bone_options(opts: argparse.Namespace) -> Any:
    """The bone-mouth options: on for a mesh with shape keys when a pose source or --jaw is given."""
    from .bones import BoneOptions

    options = BoneOptions(
        enabled=bool(opts.pose_action or opts.pose_prefix or opts.jaw),
        pose_action=opts.pose_action,
        pose_prefix=opts.pose_prefix,
        jaw=opts.jaw is not False,
    )
    if opts.jaw_angle is not None:
        options.jaw_angle = opts.jaw_angle
    return options


def main(argv: list[str] | None = None) -> int:
    """Run the batch job on ``argv`` (default ``sys.argv``); return the process exit code.

    Registers the add-on for the run when it is not registered yet (the bpy wheel, a checkout) and
    unregisters it afterwards; an enabled add-on (the installed extension) is used as it is.
    """
    try:
        opts = parse_args(script_args(sys.argv if argv is None else argv))
    except SystemExit as exc:  # argparse: --help (code 0) or a usage error
        return EXIT_OK if not exc.code else EXIT_USAGE
    import bpy

    from .. import register, unregister
    from ..core.types import LipSyncError
    from . import api

    registered_here = not hasattr(bpy.types, "LIPSYNC_OT_generate")
    if registered_here:
        register()
    try:
        return _run(opts, bpy, api, LipSyncError)
    finally:
        # Unregister what we registered: the bpy 4.2 wheel crashes at exit with classes still registered.
        if registered_here:
            unregister()


def _run(opts: argparse.Namespace, bpy: Any, api: Any, LipSyncError: type[Exception]) -> int:
    """Open, generate, save; return the exit code."""
    try:
        if opts.blend:
            blend = Path(opts.blend)
            if not blend.is_file():
                raise LipSyncError(f"The .blend file '{opts.blend}' does not exist.")
            bpy.ops.wm.open_mainfile(filepath=str(blend.resolve()))
        if opts.in_place and not bpy.data.filepath:
            raise LipSyncError("--in-place needs an opened .blend file; use --out instead.")
        cues = None
        if opts.cues:
            try:
                from ..core.export import cues
            except ImportError as exc:
                raise LipSyncError(f"Cue export is not available in this build ({exc}); drop --cues.") from exc
        transcript = opts.transcript or ""
        if opts.text:
            transcript = api.read_script_file(opts.text)
        mapping = api.load_custom_mapping(opts.mapping) if opts.mapping else None
        start_frame = opts.start_frame
        if opts.sync_to and start_frame is None:
            start_frame, offset = api.sync_start_frame(opts.sync_to, opts.audio, scene_name=opts.scene)
            if not opts.quiet:
                print(f"lipsync: clip is {offset.offset * 1000:.1f} ms into the reference -> frame {start_frame}",
                      flush=True)
            for warning in offset.warnings:
                print(f"warning: {warning}", file=sys.stderr)

        def progress(fraction: float, stage: str) -> None:
            if not opts.quiet:
                print(f"lipsync: {fraction * 100:5.1f}% {stage}", flush=True)

        started = time.perf_counter()
        exported: list[str] = []
        report = api.generate(
            opts.object,
            str(Path(opts.audio).resolve()) if not opts.audio.startswith("//") else opts.audio,
            transcript=transcript,
            speaker=opts.speaker,
            pronunciations=api.read_pronunciations(opts.dict) if opts.dict else None,
            line_markers=opts.line_markers,
            viseme_set=opts.viseme_set,
            start_frame=start_frame,
            **{k: v for k, v in (("strength", opts.strength), ("smoothing", opts.smoothing),
                                 ("breath", opts.breath)) if v is not None},
            scene_name=opts.scene,
            add_sound_strip=not opts.no_sound_strip,
            custom_mapping=mapping,
            enhance=opts.enhance,
            dereverb=opts.dereverb,
            language=opts.lang,
            vosk_model=opts.vosk_model,
            face=_face_config(opts),
            bones=_bone_options(opts),
            progress=progress,
        )
        if opts.cues:
            cues.write_json(cues.to_cue_dict(report.result), opts.cues)
        if opts.glb or opts.fbx:
            from . import export

            for path, fmt in ((opts.glb, "GLB"), (opts.fbx, "FBX")):
                if path:
                    exported.append(export.export_animation(path, [report.object_name], file_format=fmt).filepath)
        out = ""
        if opts.out or opts.in_place:
            out = bpy.data.filepath if opts.in_place else str(Path(opts.out).resolve())
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            try:
                bpy.ops.wm.save_as_mainfile(filepath=out)
            except RuntimeError as exc:
                raise LipSyncError(f"Could not save '{out}': {exc}") from exc
    except LipSyncError as exc:
        print(f"lipsync: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except Exception:  # a bug, not bad input: keep the traceback for the report
        traceback.print_exc()
        print("lipsync: internal error (a bug, please report it with the traceback above)", file=sys.stderr)
        return EXIT_BUG
    summary = {
        "object": report.object_name,
        "action": report.action_name,
        "viseme_set": report.viseme_set,
        "channels": len(report.channels),
        "armature_action": report.armature_action_name,
        "bone_channels": len(report.bone_channels),
        "frame_start": report.frame_start,
        "frame_end": report.frame_end,
        "strip": report.strip_name,
        "enhanced": report.enhanced_path,
        "seconds": round(time.perf_counter() - started, 2),
        "saved": out,
        "exported": exported,
        "warnings": report.warnings,
    }
    print("lipsync: done " + json.dumps(summary, ensure_ascii=False), flush=True)
    return EXIT_OK
