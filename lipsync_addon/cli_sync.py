"""``python -m lipsync_addon offset REF CLIP`` and ``... retake GUIDE TAKE -o warped.wav`` (bpy-free).

- ``offset``: where CLIP starts on REF's timeline (REF may be a video: its sound track is decoded
  with ffmpeg), by GCC-PHAT; prints seconds, milliseconds, the frame at ``--fps`` and a
  confidence; refuses (exit 1, message on stderr) when the two do not match. Clips of 30 s and
  more (and any clip with ``--drift``) are also measured for clock drift (ppm, ms of slip), and the
  offset printed is then the start of the line fitted through the whole take; ``--fix-drift OUT``
  writes the clip resampled so it stays in sync to the end.
- ``retake``: time-warps TAKE (a re-recorded / dubbed line) to follow GUIDE's timing (MFCC DTW +
  WSOLA, pitch unchanged); writes the warped take and, with ``--path``, the warp path as JSON.

Wired into :mod:`lipsync_addon.cli` by ``add_parser(subparsers)``; exit codes: 0 ok, 1 the inputs
could not be processed or do not match (message on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys

from .core.types import LipSyncError

#: Clips overlapping the reference this long (seconds) are always checked for clock drift.
DRIFT_CHECK_S = 30.0


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``offset`` and ``retake`` sub-commands (each sets ``func``)."""
    off = subparsers.add_parser("offset", help="offset of a clip against a reference recording or video (GCC-PHAT)")
    off.add_argument("reference", help="reference: audio file or video with a sound track")
    off.add_argument("clip", help="clip to place on the reference's timeline")
    off.add_argument("--json", metavar="OUT", help="write the result (offset_s, confidence, ...) as JSON")
    off.add_argument("--fps", type=float, default=0.0, help="also print the frame at this frame rate")
    off.add_argument("--start-frame", type=float, default=0.0, help="frame where the reference starts (default 0)")
    off.add_argument("--max-offset", type=float, metavar="S", help="search only |offset| <= S seconds")
    off.add_argument("--force", action="store_true", help="report the best guess even when the two do not match")
    off.add_argument("--drift", action="store_true", help="also measure clock drift between the two (clips >= 30 s)")
    off.add_argument("--fix-drift", metavar="OUT",
                     help="write the clip resampled to cancel the measured drift (.wav/.flac; implies --drift)")
    off.set_defaults(func=run_offset)

    rt = subparsers.add_parser("retake", help="time-warp a retake/ADR take to a guide track's timing (DTW + WSOLA)")
    rt.add_argument("guide", help="guide track (the timing to follow): audio file or video")
    rt.add_argument("take", help="re-recorded or dubbed take of the same line")
    rt.add_argument("-o", "--output", required=True, help="warped take (.wav or .flac; take's rate and channels)")
    rt.add_argument("--path", metavar="JSON", help="write the warp path (guide_s <-> take_s) and the summary")
    rt.set_defaults(func=run_retake)


def run_offset(args: argparse.Namespace) -> int:
    """Run ``offset``; returns the exit code."""
    from .core.offset import estimate_offset

    try:
        res = estimate_offset(args.reference, args.clip, max_offset=args.max_offset, refuse=not args.force)
    except LipSyncError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    drift = None
    long_clip = res.overlap >= DRIFT_CHECK_S
    if args.drift or args.fix_drift or long_clip:
        try:
            drift = _drift(args)
        except LipSyncError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if drift.measurable:
            res.offset = drift.offset  # the start of the line fitted through the take (drift-proof)
    out = res.to_dict()
    if drift is not None:
        out["drift"] = drift.to_dict()
    if args.fps > 0:
        out["fps"] = args.fps
        out["frame"] = round(res.frame(args.fps, args.start_frame), 4)
    if args.json:
        try:
            with open(args.json, "w", encoding="utf-8") as fh:
                json.dump(out, fh, indent=1)
        except OSError as exc:
            print(f"error: cannot write {args.json}: {exc}", file=sys.stderr)
            return 1
    for w in res.warnings:
        print(f"warning: {w}", file=sys.stderr)
    line = f"offset {res.offset:+.6f} s ({res.offset * 1000:+.3f} ms), confidence {res.confidence:.2f}"
    if args.fps > 0:
        line += f", frame {out['frame']:.3f} at {args.fps:g} fps"
    print(line)
    if drift is not None:
        for w in drift.warnings:
            print(f"warning: {w}", file=sys.stderr)
        if drift.measurable:
            print(f"drift {drift.drift_ppm:+.2f} ppm: the clip's end slips {drift.slip_ms:+.2f} ms over "
                  f"{drift.duration:.1f} s ({len(drift.windows)} windows, residual {drift.residual_ms:.2f} ms)")
        if args.fix_drift:
            print(f"wrote {args.fix_drift} (drift corrected: {drift.drift_ppm:+.2f} ppm)")
    return 0


def _drift(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """Measure the drift (and with ``--fix-drift`` write the corrected clip); returns the DriftResult."""
    import soundfile as sf

    from .core.drift import correct_drift, estimate_drift_arrays
    from .core.offset import read_any
    from .core.types import AudioError

    ref, ref_rate = read_any(args.reference)
    clip, clip_rate = read_any(args.clip)
    drift = estimate_drift_arrays(ref, ref_rate, clip, clip_rate)
    if args.fix_drift:
        fixed = correct_drift(clip, drift.drift_ppm if drift.measurable else 0.0)
        try:
            sf.write(args.fix_drift, fixed, clip_rate, subtype="PCM_24" if args.fix_drift.lower().endswith((
                ".wav", ".flac")) else None)
        except (OSError, RuntimeError, sf.LibsndfileError) as exc:
            raise AudioError(f"Cannot write {args.fix_drift}: {exc}") from exc
    return drift


def run_retake(args: argparse.Namespace) -> int:
    """Run ``retake``; returns the exit code."""
    from .core.retake import retake_files

    try:
        al = retake_files(args.guide, args.take, args.output, path_json=args.path)
    except LipSyncError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for w in al.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"warped: {args.output} ({al.take_duration:.3f} s take -> {al.guide_duration:.3f} s guide timing; "
          f"largest shift {al.max_shift * 1000:.0f} ms; DTW cost {al.cost:.2f})")
    return 0
