"""Render docs/images/face_channels.png: waveform + face channels over cold_corpus (numpy + zlib PNG, no matplotlib).

Run from the repo root: .venv/bin/python scripts/plot_face.py
Rows: waveform, eye_blink_L, brow_up, brow_down (0..1), head_pitch, head_yaw, head_roll (+-0.12 rad),
eye_yaw, eye_pitch (+-0.25 rad), smile (0..1).
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests" / "unit"), str(REPO)]

from test_procedural import load  # noqa: E402

from lipsync_addon.core.animate import procedural  # noqa: E402
from lipsync_addon.core.types import FaceConfig  # noqa: E402

WIDTH, ROW = 1400, 90
#: radians at the row edge of the signed channels
FULL_SCALE = {"head_pitch": 0.12, "head_yaw": 0.12, "head_roll": 0.12, "eye_yaw": 0.25, "eye_pitch": 0.25}
CHANNELS = (
    "eye_blink_L",
    "brow_up",
    "brow_down",
    "head_pitch",
    "head_yaw",
    "head_roll",
    "eye_yaw",
    "eye_pitch",
    "smile",
)
COLORS = [
    (40, 40, 40),
    (30, 90, 200),
    (200, 120, 20),
    (150, 40, 40),
    (20, 140, 60),
    (120, 60, 160),
    (60, 140, 160),
    (180, 60, 120),
    (90, 90, 30),
    (210, 90, 60),
]


def png_bytes(img: np.ndarray) -> bytes:
    """An RGB uint8 image (h, w, 3) as PNG bytes."""
    h, w, _ = img.shape

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + img[j].tobytes() for j in range(h))
    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def main() -> None:
    x, transcript = load(("cold_corpus",))
    prosody = procedural.analyze_prosody(x, 16000, transcript)
    face = FaceConfig(blink=True, brows=True, head=True, gaze=True, expression="smile")
    curves = procedural.face_curves(prosody, face, fps=100)
    img = np.full((ROW * (len(CHANNELS) + 1), WIDTH, 3), 255, np.uint8)
    peak = float(np.abs(x).max()) + 1e-9
    for i, seg in enumerate(np.array_split(np.abs(x), WIDTH)):
        a = int(seg.max() / peak * (ROW / 2 - 4))
        img[ROW // 2 - a : ROW // 2 + a + 1, i] = COLORS[0]
    for r, name in enumerate(CHANNELS, start=1):
        top, v = r * ROW, curves.channels[name]
        img[top - 1, :] = 200
        vv = np.interp(np.linspace(0, len(v) - 1, WIDTH), np.arange(len(v)), v)
        if name in FULL_SCALE:
            y = (0.5 - vv / (2 * FULL_SCALE[name])) * (ROW - 8) + 4
            img[top + ROW // 2, ::4] = 180
        else:
            y = (1 - vv) * (ROW - 8) + 4
        y = np.clip(y, 0, ROW - 1).astype(int)
        for i in range(WIDTH):
            lo, hi = sorted((y[i], y[i - 1] if i else y[i]))
            img[top + lo : top + hi + 2, i] = COLORS[r]
    out = REPO / "docs" / "images" / "face_channels.png"
    out.write_bytes(png_bytes(img))
    print(out, img.shape)


if __name__ == "__main__":
    main()
