"""The demo: a procedural head lip-synced to a bundled real speech clip.

    .venv/bin/python scripts/demo.py [--out out] [--no-render] [--preview-seconds S] [--still PATH]

The preview covers the first 10 s by default (about 40 s of headless rendering on
2 cores); ``--preview-seconds 0`` renders the whole 26.7 s clip.

Steps: build the demo head (``scripts/demo_head.py``), run lip sync on
``demo/acoustic_corpus.flac`` with its transcript (and ``demo/pronunciations.txt`` for the
transcript's "yknow") through the add-on's Python API
(``lipsync_addon.blender.api.generate``, the same door as the operator), then write

- ``<out>/demo.blend``     the scene: head with baked viseme keys, blinks, brows and head motion + the sound strip,
- ``<out>/demo_cues.json`` the cue JSON (words, phones, visemes, curves incl. ``mouth_open``),
- ``<out>/demo.mp4``       a 480x480 Workbench preview with the audio (PNG frames + ffmpeg),
- ``<out>/demo_still.png`` one frame with the mouth open mid-word (``--still`` copies it elsewhere).

Rendering runs in a child process, so a machine without OpenGL/EGL or ffmpeg
still gets the .blend and the cues, with a message saying what is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEMO_AUDIO = REPO / "demo" / "acoustic_corpus.flac"
DEMO_TRANSCRIPT = REPO / "demo" / "acoustic_corpus.lab"
#: how the speaker says the transcript's "yknow" (docs/pronunciations.md)
DEMO_PRONUNCIATIONS = REPO / "demo" / "pronunciations.txt"
DEMO_FPS = 24
HEAD_NAME = "DemoHead"
#: Face motion layers keyed in the demo (docs/face.md).
DEMO_FACE_LEVEL = "natural"
# Visemes whose peaks make a good still (open vowels).
OPEN_VISEMES = ("viseme_aa", "viseme_O", "viseme_E")

for _p in (str(REPO), str(REPO / "scripts")):
    if _p not in sys.path:
        sys.path.insert(0, _p)


def _log(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def demo_face() -> object:
    """The demo's face motion settings: every layer, natural level, seed 0."""
    from lipsync_addon.core.types import FaceConfig

    return FaceConfig(blink=True, brows=True, head=True, gaze=True, level=DEMO_FACE_LEVEL, seed=0)


def build_scene(fps: int = DEMO_FPS) -> object:
    """Reset Blender to an empty scene at ``fps`` frames per second and build the head; returns it."""
    import bpy
    import demo_head

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.name = "Demo"
    scene.render.fps = fps
    scene.render.fps_base = 1.0
    scene.frame_start = 1
    scene.frame_end = 1
    return demo_head.build_demo_head(scene, name=HEAD_NAME)


def pick_still_time(result: object) -> float:
    """Time (seconds) of a good still: the strongest open-vowel pose inside a word, early in the clip."""
    import numpy as np

    curves = result.viseme_curves if result.viseme_curves.channels else result.curves
    times = np.asarray(result.curves.times)
    mouth = np.asarray(result.curves.channels["mouth_open"])
    score = mouth.copy()
    for name in OPEN_VISEMES:
        for key in (name, name.removeprefix("viseme_")):
            if key in curves.channels and len(curves.channels[key]) == len(score):
                score = score + 0.5 * np.asarray(curves.channels[key])
    in_word = np.zeros(len(times), dtype=bool)
    for word in result.transcript.words:
        in_word |= (times > word.start + 0.03) & (times < word.end - 0.03)
    score = np.where(in_word, score, -1.0)
    # Prefer the first seconds of the clip, which every preview contains.
    early = times <= min(times[-1], 8.0)
    index = int(np.argmax(np.where(early, score, -1.0)))
    return float(times[index])


def run_demo(out: Path, *, render: bool, preview_seconds: float | None, still: Path | None) -> int:
    """Build, lip-sync, save and (optionally) render. Returns a process exit code."""
    import bpy

    from lipsync_addon.blender import api
    from lipsync_addon.core.export.cues import to_cue_dict, write_json

    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    head = build_scene()
    _log(f"built '{head.name}' with {len(head.data.shape_keys.key_blocks) - 1} shape keys and a head/eye rig")
    transcript = DEMO_TRANSCRIPT.read_text(encoding="utf-8").strip()

    def progress(fraction: float, stage: str) -> None:
        _log(f"{fraction * 100:5.1f}%  {stage}")

    t1 = time.perf_counter()
    report = api.generate(
        head.name, str(DEMO_AUDIO), transcript=transcript, start_frame=1, progress=progress, face=demo_face(),
        pronunciations=api.read_pronunciations(str(DEMO_PRONUNCIATIONS)),
    )
    t2 = time.perf_counter()
    result = report.result
    _log(
        f"lip sync: {result.duration:.1f} s of audio analysed in {t2 - t1:.1f} s, "
        f"viseme set '{report.viseme_set}', {len(result.transcript.words)} words, "
        f"{report.keys_written} keys on {len(report.channels)} shape keys (action '{report.action_name}')"
    )
    _log(
        "face motion: " + ", ".join(f"{layer}: {len(names)} channels" for layer, names in report.face_channels.items())
        + (f"; head bone '{report.head_bone}' (action '{report.head_action_name}')" if report.head_bone else "")
        + (f"; eye bones {', '.join(report.gaze_bones)}" if report.gaze_bones else "")
    )
    for warning in report.warnings:
        _log(f"warning: {warning}")

    scene = bpy.context.scene
    still_time = pick_still_time(result)
    still_frame = 1 + round(still_time * DEMO_FPS)
    scene["demo_still_frame"] = still_frame
    scene.frame_set(1)
    blend_path = out / "demo.blend"
    cues_path = out / "demo_cues.json"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend_path), check_existing=False)
    write_json(to_cue_dict(result), str(cues_path))
    _log(f"wrote {blend_path} and {cues_path} ({time.perf_counter() - t0:.1f} s so far)")

    if not render:
        _log("rendering skipped (--no-render)")
        return 0
    end_frame = int(report.frame_end)
    if preview_seconds:
        end_frame = min(end_frame, 1 + round(preview_seconds * DEMO_FPS))
    return render_preview(blend_path, out, end_frame=end_frame, still_frame=still_frame, still=still)


def render_preview(blend_path: Path, out: Path, *, end_frame: int, still_frame: int, still: Path | None) -> int:
    """Render frames 1..end_frame and the still in a child process, then mux the video with ffmpeg."""
    frames_dir = out / "frames"
    shutil.rmtree(frames_dir, ignore_errors=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--render-child", str(blend_path),
           "--out", str(out), "--end-frame", str(end_frame), "--still-frame", str(still_frame)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not (out / "demo_still.png").exists():
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-8:])
        _log(
            "rendering skipped: Blender could not render headless here (Workbench needs OpenGL through "
            "EGL: on Debian/Ubuntu install libegl1 libgl1 libgles2 (Mesa)). The .blend and cues were written.\n"
            + tail
        )
        return 0
    n_frames = len(list(frames_dir.glob("frame_*.png")))
    _log(f"rendered {n_frames} frames + still in {time.perf_counter() - t0:.1f} s")
    if still is not None:
        still.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / "demo_still.png", still)
        _log(f"still copied to {still}")
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        _log(f"video skipped: ffmpeg is not installed (apt-get install ffmpeg); frames are in {frames_dir}")
        return 0
    video = out / "demo.mp4"
    duration = n_frames / DEMO_FPS
    base = [ffmpeg, "-y", "-loglevel", "error", "-framerate", str(DEMO_FPS), "-i", str(frames_dir / "frame_%04d.png"),
            "-i", str(DEMO_AUDIO), "-t", f"{duration:.3f}", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k"]
    for codec in (["-c:v", "libx264", "-crf", "23", "-preset", "fast"], ["-c:v", "mpeg4", "-q:v", "4"]):
        proc = subprocess.run([*base, *codec, str(video)], capture_output=True, text=True, check=False)
        if proc.returncode == 0:
            _log(f"wrote {video} ({duration:.1f} s, {video.stat().st_size // 1024} KB)")
            return 0
    _log(f"video skipped: ffmpeg failed: {proc.stderr.strip()[-400:]}; frames are in {frames_dir}")
    return 0


def render_child(blend_path: Path, out: Path, end_frame: int, still_frame: int) -> int:
    """(Child process.) Open the demo .blend and render the preview frames and the still (PNG)."""
    import bpy

    bpy.ops.wm.open_mainfile(filepath=str(blend_path))
    scene = bpy.context.scene
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGB"
    scene.render.image_settings.compression = 15  # fast zlib level: frames are temporary
    scene.frame_start = 1
    scene.frame_end = end_frame
    scene.render.filepath = str(out / "frames" / "frame_####")
    bpy.ops.render.render(animation=True)
    scene.frame_set(still_frame)
    scene.render.image_settings.compression = 100  # the still may be committed: keep it small
    scene.render.filepath = str(out / "demo_still.png")
    bpy.ops.render.render(write_still=True)
    info = {"still_frame": still_frame, "end_frame": end_frame}
    (out / "render_info.json").write_text(json.dumps(info), encoding="utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "out", help="output folder (default: out/)")
    parser.add_argument("--no-render", action="store_true", help="skip the preview video and still")
    parser.add_argument("--preview-seconds", type=float, default=10.0,
                        help="render the first S seconds of the clip (default 10; 0 = the whole clip)")
    parser.add_argument("--still", type=Path, default=None,
                        help="also copy the still to this path (e.g. docs/images/demo_still.png)")
    parser.add_argument("--render-child", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--end-frame", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--still-frame", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    out = args.out.resolve()
    if args.render_child is not None:
        return render_child(args.render_child, out, args.end_frame, args.still_frame)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    from lipsync_addon.core.types import LipSyncError

    try:
        return run_demo(out, render=not args.no_render, preview_seconds=args.preview_seconds, still=args.still)
    except LipSyncError as exc:
        _log(f"error: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
