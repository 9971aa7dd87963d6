"""Does the mouth follow real mouths? Correlate our ``mouth_open`` with measured lip aperture.

    .venv/bin/python scripts/eval_sync.py [--video a.mpg --text "..."]... [--breath B] [--json out/eval_sync.json]

For each real talking-face clip (default: the two GRID clips in ../shared/data/video,
25 fps), this script

1. extracts the audio track with ffmpeg (16 kHz mono WAV in a temporary folder),
2. runs our pipeline at the video's frame rate, with the transcript and without it,
3. measures the lip aperture in every video frame with mediapipe's face mesh
   (0.10.21, which bundles its model): the distance between inner-lip landmarks
   13 and 14 divided by the distance between the outer eye corners 33 and 263
   (so head size and distance to the camera cancel out),
4. reports Pearson's r between aperture and our ``mouth_open`` at lag 0 and at the
   best lag within +-5 frames, plus a baseline: the audio loudness (RMS) envelope.
   The headline figure is r at lag 0 over the whole clip; "r@0 speech" is the same
   over the aligned speech span +-0.2 s only (same frames for every curve), which
   leaves out how far the speaker's lips happen to be parted at rest.

Lag convention: at lag L the curve value at frame k - L is compared with the video
at frame k; L > 0 means the curve runs L frames *ahead* of the real mouth.

mediapipe is an evaluation dependency only (requirements-eval.txt). If it cannot be
imported here, the face measurement runs in ``.venv-eval`` (a separate virtualenv:
``python3.11 -m venv .venv-eval && .venv-eval/bin/pip install -r requirements-eval.txt``)
through ``--face-only``. Nothing is cached in the repository.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
VIDEO_DIR = REPO.parent / "shared" / "data" / "video"
#: GRID transcripts (from the file names, see ../shared/data/README.md).
DEFAULT_CLIPS = {
    "bbaf2n.mpg": "bin blue at f two now",
    "id2_vcd_swwp2s.mpg": "set white with p two soon",
}
EVAL_PYTHON = REPO / ".venv-eval" / "bin" / "python"
MAX_LAG = 5  # frames
# mediapipe face-mesh landmark indices.
UPPER_INNER_LIP, LOWER_INNER_LIP = 13, 14
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


# --- face measurement (runs wherever mediapipe imports) ----------------------------------------


def measure_apertures(video_path: str) -> tuple[np.ndarray, float]:
    """Lip aperture per video frame (inner-lip gap / outer-eye-corner distance; NaN: no face).

    Returns ``(apertures, fps)`` with fps the video's frame rate in frames per second.
    """
    import cv2
    import mediapipe as mp

    cap = cv2.VideoCapture(video_path)
    if not cap.isOpened():
        raise RuntimeError(f"OpenCV cannot open {video_path}")
    fps = float(cap.get(cv2.CAP_PROP_FPS)) or 25.0
    values: list[float] = []
    with mp.solutions.face_mesh.FaceMesh(
        static_image_mode=False, max_num_faces=1, refine_landmarks=False,
        min_detection_confidence=0.5, min_tracking_confidence=0.5,
    ) as mesh:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            h, w = frame.shape[:2]
            res = mesh.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            if not res.multi_face_landmarks:
                values.append(float("nan"))
                continue
            lm = res.multi_face_landmarks[0].landmark

            def xy(i: int, lm=lm, w=w, h=h) -> np.ndarray:
                return np.array([lm[i].x * w, lm[i].y * h])

            gap = np.linalg.norm(xy(UPPER_INNER_LIP) - xy(LOWER_INNER_LIP))
            eyes = np.linalg.norm(xy(RIGHT_EYE_OUTER) - xy(LEFT_EYE_OUTER))
            values.append(float(gap / eyes) if eyes > 0 else float("nan"))
    cap.release()
    return np.asarray(values, dtype=float), fps


def _mediapipe_here() -> bool:
    try:
        import cv2  # noqa: F401
        import mediapipe  # noqa: F401
    except ImportError:
        return False
    return True


def apertures_for(video_path: str) -> tuple[np.ndarray, float]:
    """:func:`measure_apertures`, in this interpreter or in ``.venv-eval`` (subprocess)."""
    if _mediapipe_here():
        return measure_apertures(video_path)
    if not EVAL_PYTHON.exists():
        raise SystemExit(
            "mediapipe is not installed here and .venv-eval does not exist. Create it with:\n"
            "  python3.11 -m venv .venv-eval && .venv-eval/bin/pip install -r requirements-eval.txt"
        )
    proc = subprocess.run(
        [str(EVAL_PYTHON), str(Path(__file__).resolve()), "--face-only", video_path],
        capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"face measurement failed in .venv-eval:\n{proc.stderr[-2000:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return np.asarray([np.nan if v is None else v for v in data["apertures"]], dtype=float), float(data["fps"])


# --- audio side -----------------------------------------------------------------------------------


def extract_audio(video_path: str, wav_path: str, rate: int = 16000) -> None:
    """Decode the audio track of ``video_path`` to a mono WAV at ``rate`` Hz with ffmpeg."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise SystemExit("ffmpeg is required to extract the audio track (apt-get install ffmpeg).")
    subprocess.run([ffmpeg, "-y", "-loglevel", "error", "-i", video_path, "-vn", "-ac", "1", "-ar", str(rate),
                    "-c:a", "pcm_s16le", wav_path], check=True)


def rms_envelope(samples: np.ndarray, rate: int, fps: float, n_frames: int, window: float = 0.04) -> np.ndarray:
    """RMS loudness at each frame time k / fps (seconds), over a ``window``-second centred window."""
    half = round(window * rate / 2)
    out = np.zeros(n_frames)
    for k in range(n_frames):
        c = round(k / fps * rate)
        seg = samples[max(0, c - half): c + half]
        out[k] = float(np.sqrt(np.mean(seg.astype(np.float64) ** 2))) if len(seg) else 0.0
    return out


def pipeline_mouth_open(
    wav_path: str, fps: float, transcript: str, breath: float | None = None
) -> tuple[np.ndarray, str, tuple[float, float]]:
    """Our ``mouth_open`` curve (0..1) sampled at k / fps, the analysis method used, and the
    speech span (first word start, last word end) in seconds. ``breath``: None = the default."""
    from lipsync_addon.core import pipeline
    from lipsync_addon.core.types import PipelineConfig

    config = PipelineConfig(transcript=transcript, viseme_set="oculus", fps=fps)
    if breath is not None:
        config.breath = breath
    result = pipeline.run(wav_path, config)
    words = result.transcript.words
    span = (words[0].start, words[-1].end) if words else (0.0, result.duration)
    return np.asarray(result.curves.channels["mouth_open"], dtype=float), result.transcript.method, span


# --- statistics -----------------------------------------------------------------------------------


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation over the frames where both are finite (NaN if undefined)."""
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return float("nan")
    a, b = a[ok], b[ok]
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def lagged_r(video: np.ndarray, curve: np.ndarray, max_lag: int = MAX_LAG) -> dict[int, float]:
    """r between ``video[k]`` and ``curve[k - lag]`` for lag in [-max_lag, max_lag] (frames)."""
    n = min(len(video), len(curve))
    video, curve = video[:n], curve[:n]
    out = {}
    for lag in range(-max_lag, max_lag + 1):
        if lag >= 0:
            out[lag] = pearson(video[lag:], curve[: n - lag])
        else:
            out[lag] = pearson(video[: n + lag], curve[-lag:])
    return out


def summarize(rs: dict[int, float]) -> dict[str, float]:
    """r at lag 0, the best lag (frames) and r there."""
    best = max(rs, key=lambda k: -np.inf if np.isnan(rs[k]) else rs[k])
    return {"r_lag0": rs[0], "best_lag": int(best), "r_best": rs[best]}


#: Margin (seconds) kept around the speech span for the "speech only" figure.
SPAN_MARGIN = 0.2


# --- main -----------------------------------------------------------------------------------------


def evaluate_clip(video_path: str, transcript: str, tmp: Path, breath: float | None = None) -> dict:
    """All measurements for one clip (see the module docstring)."""
    import soundfile as sf

    aperture, fps = apertures_for(video_path)
    wav = tmp / (Path(video_path).stem + ".wav")
    extract_audio(video_path, str(wav))
    samples, rate = sf.read(str(wav), dtype="float32")
    n = len(aperture)
    curves = {"loudness_rms": rms_envelope(samples, rate, fps, n)}
    methods = {}
    span = (0.0, n / fps)
    for label, text in (("ours_transcript", transcript), ("ours_no_transcript", "")):
        curve, method, words_span = pipeline_mouth_open(str(wav), fps, text, breath)
        curves[label] = curve
        methods[label] = method
        if text:
            span = words_span
    # Frames within the aligned speech (+-SPAN_MARGIN): leaves out the speaker's own
    # rest-pose aperture before and after the line, the same frames for every curve.
    k0 = max(0, int(np.floor((span[0] - SPAN_MARGIN) * fps)))
    k1 = min(n, int(np.ceil((span[1] + SPAN_MARGIN) * fps)) + 1)
    row = {
        "clip": Path(video_path).name, "fps": fps, "frames": n,
        "face_frames": int(np.isfinite(aperture).sum()), "methods": methods, "scores": {},
    }
    row["speech_frames"] = [k0, k1]
    for label, curve in curves.items():
        row["scores"][label] = summarize(lagged_r(aperture, curve))
        row["scores"][label]["r_lag0_speech"] = pearson(aperture[k0:k1], curve[k0:k1])
    return row


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", action="append", default=None, help="video file (repeatable)")
    parser.add_argument("--text", action="append", default=None, help="transcript for each --video")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here")
    parser.add_argument("--breath", type=float, default=None,
                        help="breath before phrases, 0 (off) .. 1 (default: the pipeline's default)")
    parser.add_argument("--face-only", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.face_only:
        ap, fps = measure_apertures(args.face_only)
        print(json.dumps({"fps": fps, "apertures": [None if np.isnan(v) else v for v in ap.tolist()]}))
        return 0
    if args.video:
        texts = args.text or []
        if len(texts) != len(args.video):
            parser.error("give one --text per --video")
        clips = list(zip(args.video, texts, strict=True))
    else:
        clips = [(str(VIDEO_DIR / name), text) for name, text in DEFAULT_CLIPS.items()]

    rows = []
    with tempfile.TemporaryDirectory(prefix="eval_sync_") as tmp:
        for path, text in clips:
            rows.append(evaluate_clip(path, text, Path(tmp), args.breath))

    labels = ["ours_transcript", "ours_no_transcript", "loudness_rms"]
    print(f"{'clip':<22} {'curve':<20} {'r@lag0':>7} {'best lag':>8} {'r@best':>7} {'r@0 speech':>10}")
    for row in rows:
        for label in labels:
            s = row["scores"][label]
            print(f"{row['clip']:<22} {label:<20} {s['r_lag0']:7.3f} {s['best_lag']:8d} {s['r_best']:7.3f} "
                  f"{s['r_lag0_speech']:10.3f}")
    print("mean over clips:")
    means = {}
    for label in labels:
        means[label] = {key: float(np.mean([row["scores"][label][key] for row in rows]))
                        for key in ("r_lag0", "r_best", "r_lag0_speech")}
        m = means[label]
        print(f"{'':<22} {label:<20} {m['r_lag0']:7.3f} {'':>8} {m['r_best']:7.3f} {m['r_lag0_speech']:10.3f}")
    for row in rows:
        print(f"{row['clip']}: {row['frames']} frames at {row['fps']:g} fps, face found in {row['face_frames']}, "
              f"speech frames {row['speech_frames'][0]}-{row['speech_frames'][1] - 1}; analysis: {row['methods']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"clips": rows, "mean": means}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
