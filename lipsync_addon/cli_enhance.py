"""``python -m lipsync_addon enhance in.wav -o out.wav [--preset standard] [--report r.json]`` (bpy-free).

The cleaned file keeps the input's rate, channel count and length, and is sample-aligned with it.
Wired into :mod:`lipsync_addon.cli` by ``add_parser(subparsers)``; exit codes as the CLI: 0 ok,
1 the input could not be processed (message on stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from .core.types import AudioError, LipSyncError


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``enhance`` sub-command (sets ``func``)."""
    from .core.enhance import DENOISERS, PRESETS

    en = subparsers.add_parser("enhance", help="clean a dialogue clip (denoise, hum, EQ, loudness); timing unchanged")
    en.add_argument("audio", help="input clip (WAV, FLAC, OGG, MP3, AIFF)")
    en.add_argument("-o", "--output", required=True, help="output file; format from the extension (.wav, .flac, .ogg)")
    en.add_argument("--preset", choices=PRESETS, default="standard", help="enhancement strength (default: standard)")
    en.add_argument("--denoise", choices=DENOISERS, help="noise reduction method (default: the preset's, 'auto')")
    en.add_argument("--dereverb", action="store_true",
                    help="reduce room echo (WPE de-reverberation; off in every preset, ~0.03x real time at 48 kHz)")
    en.add_argument("--no-highpass", action="store_true", help="keep DC and rumble")
    en.add_argument("--no-hum", action="store_true", help="skip hum detection/notches")
    en.add_argument("--no-eq", action="store_true", help="skip the speech EQ")
    en.add_argument("--no-loudness", action="store_true", help="keep the level (no loudness normalisation)")
    en.add_argument("--loudness", type=float, metavar="LUFS", help="integrated loudness target (default -16)")
    en.add_argument("--true-peak", type=float, metavar="DBTP", help="limiter ceiling (default -1 dBTP)")
    en.add_argument("--report", metavar="JSON", help="write SNR before/after, loudness, peak, steps applied")
    en.set_defaults(func=run_enhance)


def options_from_args(args: argparse.Namespace) -> dict[str, object]:
    """Preset overrides from the command line."""
    opts: dict[str, object] = {}
    if args.denoise:
        opts["denoise"] = args.denoise
    for flag, key in (("no_highpass", "highpass"), ("no_hum", "hum"), ("no_eq", "eq"), ("no_loudness", "loudness")):
        if getattr(args, flag):
            opts[key] = False
    if getattr(args, "dereverb", False):  # (a Namespace built by a caller may predate the option)
        opts["dereverb"] = True
    if args.loudness is not None:
        opts["loudness_lufs"] = args.loudness
    if args.true_peak is not None:
        opts["limiter_dbtp"] = args.true_peak
    return opts


def enhance_file(in_path: str, out_path: str, preset: str = "standard",
                 options: dict[str, object] | None = None) -> dict[str, object]:
    """Enhance an audio file into ``out_path`` (same rate/channels/length); returns the report dict."""
    import numpy as np
    import soundfile as sf

    from .core.audio import audio_from_samples, read_audio_file
    from .core.enhance import enhance_array

    data, rate = read_audio_file(in_path)  # any format the pipeline reads (libsndfile, then FFmpeg)
    audio_from_samples(data, rate, in_path)  # same checks and messages as the pipeline (no samples, too short)
    out_dir = os.path.dirname(os.path.abspath(out_path))
    if not os.path.isdir(out_dir):
        raise LipSyncError(f"Output folder does not exist: {out_dir}")
    if os.path.abspath(out_path) == os.path.abspath(in_path):
        raise LipSyncError("The output would overwrite the input: choose another output file.")
    y, report = enhance_array(data if data.shape[1] > 1 else data[:, 0], int(rate), preset, options=options)
    ext = os.path.splitext(out_path)[1].lower()
    subtype = "PCM_24" if ext in (".wav", ".flac", ".aif", ".aiff") else None
    try:
        sf.write(out_path, np.asarray(y), int(rate), subtype=subtype)
    except Exception as exc:  # soundfile: unknown extension, unsupported rate for the format, IO error
        raise AudioError(f"Cannot write '{out_path}': {exc}. Use .wav or .flac.") from exc
    out = report.to_dict()
    out["input"] = os.path.abspath(in_path)
    out["output"] = os.path.abspath(out_path)
    return out


def run_enhance(args: argparse.Namespace) -> int:
    """Run the ``enhance`` sub-command; returns the exit code."""
    try:
        report = enhance_file(args.audio, args.output, args.preset, options_from_args(args))
    except LipSyncError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.report:
        with open(args.report, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=1, ensure_ascii=False)
    for warning in report["warnings"]:  # type: ignore[union-attr]
        print(f"warning: {warning}", file=sys.stderr)
    snr_b, snr_a = report["snr_before_db"], report["snr_after_db"]
    print(f"enhanced: {args.output} ({report['denoiser']}; SNR {snr_b} -> {snr_a} dB; "
          f"{report['loudness_after_lufs']} LUFS; peak {report['peak_after_dbtp']} dBTP)", file=sys.stderr)
    return 0
