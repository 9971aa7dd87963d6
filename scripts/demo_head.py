"""Build the stylized demo head procedurally (bpy only, no assets).

The head is one mesh object holding the skin, lips with real thickness, a dark
mouth cavity, upper and lower teeth, a tongue, eyes with upper lids and ears. Its first 15 shape keys
are the Oculus / Ready Player Me visemes (``viseme_sil`` ... ``viseme_U``), made
by moving lip, jaw and tongue vertices with a few articulatory controls (jaw
rotation, lip raise/drop, spread, rounding, pressing, lower-lip tuck, tongue).
The mouth line is a real split in the surface: in the basis pose (and in
``viseme_PP``) the upper and lower lip edges coincide, so the lips really close.
Seven ARKit-named face keys follow (eyeBlink_L/R, browInnerUp, browOuterUp_L/R,
browDown_L/R), and an armature (head and eye bones) deforms the mesh, so the
procedural face layers (blinks, brows, head motion, gaze) have something to drive.

Units: Blender units; the head is about 2.6 units tall, facing -Y, with the
mouth line at ``MOUTH_Z``. Usage::

    import bpy
    from demo_head import build_demo_head
    head = build_demo_head(bpy.context.scene)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import bpy
import numpy as np

#: The Oculus / Ready Player Me viseme shape keys, in their canonical order.
OCULUS_VISEMES = (
    "viseme_sil", "viseme_PP", "viseme_FF", "viseme_TH", "viseme_DD", "viseme_kk", "viseme_CH",
    "viseme_SS", "viseme_nn", "viseme_RR", "viseme_aa", "viseme_E", "viseme_I", "viseme_O", "viseme_U",
)

# Head proportions (Blender units).
RX, RY, RZ = 0.92, 1.0, 1.22  # ellipsoid radii: width, depth, height
MOUTH_Z = -0.50  # height of the lip line
MOUTH_HALF_WIDTH = 0.30  # half-width of the lip split (corner to center)
JAW_PIVOT = (0.15, 0.05)  # (y, z) of the jaw hinge axis (parallel to X, near the ears)
JAW_MAX_DEG = 16.0  # jaw rotation at jaw = 1
LIP_DEPTH = 0.07  # how far the inner lip flange goes back into the mouth
LID_RADII = (0.15, 0.148, 0.145)  # upper eyelid shell, outside the eyeball (0.135, 0.12, 0.13) and the iris
LID_OPEN = math.radians(52.0)  # colatitude of the open lid's edge (the iris top shows below it)
LID_CLOSED = math.radians(128.0)  # colatitude of the closed lid's edge (past the equator)
LID_HALF_WIDTH = math.radians(80.0)  # the lid wraps the front of the eye by +-80 degrees
BROW_Z, BROW_X = 0.40, 0.30  # centre height and |x| of the painted brows

# Articulatory controls per viseme. Keys (all default 0):
# jaw: jaw rotation (0..1 of JAW_MAX_DEG); up: upper-lip raise; down: extra lower-lip drop;
# wide: corner spread; round: rounding + protrusion; press: lip compression;
# tuck: lower lip up/back under the upper teeth; tfwd/tup: tongue forward / up.
VISEME_CONTROLS: dict[str, dict[str, float]] = {
    "viseme_sil": {},
    "viseme_PP": {"press": 1.0},
    "viseme_FF": {"jaw": 0.1, "up": 0.9, "tuck": 1.0, "wide": 0.25},
    "viseme_TH": {"jaw": 0.28, "up": 0.3, "down": 0.2, "tfwd": 1.0, "tup": 0.2},
    "viseme_DD": {"jaw": 0.25, "up": 0.3, "down": 0.2, "wide": 0.2, "tup": 0.8},
    "viseme_kk": {"jaw": 0.38, "up": 0.3, "down": 0.3, "wide": 0.15},
    "viseme_CH": {"jaw": 0.14, "up": 0.6, "down": 0.6, "round": 0.55, "tup": 0.4},
    "viseme_SS": {"jaw": 0.08, "up": 0.45, "down": 0.45, "wide": 0.55},
    "viseme_nn": {"jaw": 0.22, "up": 0.2, "down": 0.15, "wide": 0.1, "tup": 0.9},
    "viseme_RR": {"jaw": 0.2, "up": 0.35, "down": 0.3, "round": 0.45},
    "viseme_aa": {"jaw": 1.0, "up": 0.35, "down": 0.3, "wide": 0.1},
    "viseme_E": {"jaw": 0.5, "up": 0.45, "down": 0.35, "wide": 0.6},
    "viseme_I": {"jaw": 0.3, "up": 0.45, "down": 0.4, "wide": 0.85},
    "viseme_O": {"jaw": 0.62, "up": 0.5, "down": 0.45, "round": 0.8},
    "viseme_U": {"jaw": 0.25, "up": 0.4, "down": 0.35, "round": 1.0},
}

#: Face keys (ARKit names, so the procedural face layers find them), made by :func:`_face_key_shapes`.
FACE_KEYS = ("eyeBlink_L", "eyeBlink_R", "browInnerUp", "browOuterUp_L", "browOuterUp_R", "browDown_L", "browDown_R")

# Material palette: name -> RGBA (Workbench "Material" colour mode shows diffuse_color).
PALETTE = {
    "skin": (0.93, 0.69, 0.55, 1.0),
    "lips": (0.78, 0.33, 0.33, 1.0),
    "lip_inner": (0.55, 0.16, 0.18, 1.0),
    "cavity": (0.12, 0.03, 0.04, 1.0),
    "teeth": (0.96, 0.95, 0.90, 1.0),
    "tongue": (0.85, 0.38, 0.42, 1.0),
    "eye_white": (0.97, 0.97, 0.97, 1.0),
    "iris": (0.18, 0.36, 0.55, 1.0),
    "pupil": (0.02, 0.02, 0.03, 1.0),
    "hair": (0.20, 0.12, 0.08, 1.0),
    "brows": (0.18, 0.10, 0.06, 1.0),
}


@dataclass
class _Part:
    """Geometry of one part before it is merged into the mesh."""

    verts: np.ndarray  # (n, 3) float
    faces: list[tuple[int, ...]]
    face_materials: list[str]
    side: np.ndarray  # (n,) +1 upper lip / upper teeth, -1 lower lip / jaw, 0 free
    kind: str  # "skin", "lip_inner", "cavity", "upper_teeth", "lower_teeth", "tongue", "static"
    group: str = ""  # "eye.L"/"eye.R" (eyeball, follows the eye bone), "lid.L"/"lid.R" (upper eyelid)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _head_surface(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Head surface point for longitude ``u`` (rad, -pi/2 = front) and colatitude ``v`` (rad)."""
    x = RX * np.sin(v) * np.cos(u)
    y = RY * np.sin(v) * np.sin(u)
    z = RZ * np.cos(v)
    # Narrower jaw and chin, fuller cranium.
    low = np.clip(-z / RZ, 0.0, 1.0)
    x = x * (1.0 - 0.30 * low**1.5)
    y = np.where(y < 0, y * (1.0 - 0.12 * low**2), y * (1.0 - 0.35 * low))
    # Slightly flatter face front.
    front = np.clip(-y / RY, 0.0, 1.0)
    y = y * (1.0 - 0.06 * front**4)
    # Nose, lips and chin bumps push the front surface forward (-Y).
    nose = 0.20 * np.exp(-((x / 0.11) ** 2) - ((z + 0.14) / 0.16) ** 2) * front**6
    nose_tip = 0.07 * np.exp(-((x / 0.08) ** 2) - ((z + 0.25) / 0.06) ** 2) * front**6
    mouth_w = np.exp(-((x / (MOUTH_HALF_WIDTH * 1.15)) ** 4))
    upper_lip = 0.075 * mouth_w * np.exp(-(((z - MOUTH_Z - 0.035) / 0.045) ** 2)) * front**6
    lower_lip = 0.07 * mouth_w * np.exp(-(((z - MOUTH_Z + 0.05) / 0.05) ** 2)) * front**6
    chin = 0.06 * np.exp(-((x / 0.2) ** 2) - ((z + 0.86) / 0.12) ** 2) * front**4
    brow = 0.05 * np.exp(-((z - 0.40) / 0.08) ** 2) * np.exp(-((np.abs(x) - 0.30) / 0.2) ** 2) * front**4
    sockets = -0.05 * np.exp(-((np.abs(x) - 0.31) / 0.12) ** 2 - ((z - 0.24) / 0.10) ** 2) * front**4
    y = y - nose - nose_tip - upper_lip - lower_lip - chin - brow - sockets
    return np.stack([x, y, z], axis=-1)


def _surface_y(x: float, z: float) -> float:
    """Front surface depth (y) of the head at (x, z), by a coarse search (units)."""
    us = np.linspace(-math.pi / 2 - 0.8, -math.pi / 2 + 0.8, 801)
    vs = np.linspace(0.2, math.pi - 0.2, 801)
    uu, vv = np.meshgrid(us, vs)
    pts = _head_surface(uu, vv)
    d = (pts[..., 0] - x) ** 2 + (pts[..., 2] - z) ** 2
    i = np.unravel_index(np.argmin(d), d.shape)
    return float(pts[i][1])


def _build_skin(nu: int = 128, nv: int = 96) -> tuple[_Part, int, np.ndarray, np.ndarray, list[int], int]:
    """Head surface as a lat-long grid with a split along the lip line."""
    # Colatitudes: uniform, plus one row exactly at the mouth line.
    v_mouth = math.acos(MOUTH_Z / RZ)
    vs = np.linspace(0.0, math.pi, nv + 1)[1:-1]
    i_mouth = int(np.argmin(np.abs(vs - v_mouth)))
    vs[i_mouth] = v_mouth
    us = -math.pi / 2 + np.linspace(-math.pi, math.pi, nu, endpoint=False)
    uu, vv = np.meshgrid(us, vs)  # (rows, cols)
    grid = _head_surface(uu, vv)
    # Pinch the rows around the lip line towards the corners, so the lip band
    # (two rows above and below the line) tapers like real lips. Monotonic in z.
    gx, gy, gz = grid[..., 0], grid[..., 1], grid[..., 2]
    taper = np.sqrt(np.clip(1.0 - (gx / (MOUTH_HALF_WIDTH * 1.12)) ** 2, 0.0, 1.0))
    beyond = np.exp(-((np.clip(np.abs(gx) - MOUTH_HALF_WIDTH, 0.0, None) / 0.12) ** 2))
    pinch = (1.0 - np.maximum(taper, 0.3)) * beyond * (gy < 0)
    dz = gz - MOUTH_Z
    grid[..., 2] = MOUTH_Z + dz * (1.0 - pinch * np.exp(-((dz / 0.16) ** 2)))
    rows, cols = grid.shape[:2]
    verts = [*grid.reshape(-1, 3)]
    side = [0.0] * len(verts)
    # Correct the mouth row height (the surface function bends z only through v).
    index = np.arange(rows * cols).reshape(rows, cols)
    lower_index = index.copy()  # vertex ids used by faces *below* the mouth row
    mouth_cols = [c for c in range(cols) if abs(grid[i_mouth, c, 0]) < MOUTH_HALF_WIDTH and grid[i_mouth, c, 1] < 0]
    for c in mouth_cols:
        side[index[i_mouth, c]] = 1.0
        verts.append(grid[i_mouth, c].copy())
        side.append(-1.0)
        lower_index[i_mouth, c] = len(verts) - 1
    faces: list[tuple[int, ...]] = []
    for r in range(rows - 1):
        top = index[r] if r != i_mouth else lower_index[r]
        bottom = index[r + 1]
        for c in range(cols):
            c2 = (c + 1) % cols
            faces.append((top[c], bottom[c], bottom[c2], top[c2]))
    north = len(verts)
    verts.append(np.array([0.0, 0.0, RZ]))
    side.append(0.0)
    south = len(verts)
    verts.append(np.array([0.0, 0.0, -RZ]))
    side.append(0.0)
    for c in range(cols):
        c2 = (c + 1) % cols
        faces.append((north, index[0, c], index[0, c2]))
        faces.append((south, index[rows - 1, c2], index[rows - 1, c]))
    v = np.array(verts, dtype=float)
    # Materials by face: lips band (rows next to the lip line), hair cap, brows, skin.
    mats = []
    lip_rows = range(i_mouth - 3, i_mouth + 3)  # face row r spans grid rows r and r + 1
    for fi, f in enumerate(faces):
        cx, cy, cz = v[list(f)].mean(axis=0)
        row = fi // cols if fi < (rows - 1) * cols else -99
        if cy < 0 and row in lip_rows and abs(cx) < MOUTH_HALF_WIDTH * 1.12:
            mats.append("lips")
        elif cz > 0.55 - 1.2 * max(0.0, cy + 0.1):
            mats.append("hair")
        elif cy < 0 and 0.36 < cz < 0.44 and 0.14 < abs(cx) < 0.46 + 0.1 * (cz - 0.4):
            mats.append("brows")
        else:
            mats.append("skin")
    # Inner lip flange: each lip edge gets a strip going back into the mouth.
    part = _Part(v, faces, mats, np.array(side), "skin")
    return part, i_mouth, index, lower_index, mouth_cols, cols


def _add_lip_flange(skin: _Part, i_mouth: int, index: np.ndarray, lower_index: np.ndarray,
                    mouth_cols: list[int], cols: int) -> None:
    """Add strips behind the lip edges to ``skin``, so an open mouth shows lips with thickness."""
    c0, c1 = mouth_cols[0] - 1, mouth_cols[-1] + 1  # shared corner columns
    verts, side, faces, mats = [], [], [], []
    base = len(skin.verts)
    for row_index, s in ((index, 1.0), (lower_index, -1.0)):
        chain = [index[i_mouth, c0 % cols], *[row_index[i_mouth, c] for c in mouth_cols], index[i_mouth, c1 % cols]]
        inner = []
        for k, vid in enumerate(chain):
            p = skin.verts[vid].copy()
            at_corner = k in (0, len(chain) - 1)
            p[1] += LIP_DEPTH * (0.3 if at_corner else 1.0)
            p[2] += -s * 0.012 * (0.0 if at_corner else 1.0)
            verts.append(p)
            side.append(0.0 if at_corner else s)
            inner.append(base + len(verts) - 1)
        for k in range(len(chain) - 1):
            a, b, ia, ib = chain[k], chain[k + 1], inner[k], inner[k + 1]
            faces.append((a, b, ib, ia) if s > 0 else (a, ia, ib, b))
            mats.append("lip_inner")
    skin.verts = np.concatenate([skin.verts, np.array(verts)])
    skin.side = np.concatenate([skin.side, np.array(side)])
    skin.faces += faces
    skin.face_materials += mats


def _ellipsoid(center, radii, material: str, kind: str, side: float = 0.0, nu: int = 24, nv: int = 16) -> _Part:
    us = np.linspace(0, 2 * math.pi, nu, endpoint=False)
    vs = np.linspace(0, math.pi, nv + 1)[1:-1]
    uu, vv = np.meshgrid(us, vs)
    pts = np.stack([np.sin(vv) * np.cos(uu), np.sin(vv) * np.sin(uu), np.cos(vv)], axis=-1)
    pts = pts.reshape(-1, 3) * np.asarray(radii) + np.asarray(center)
    rows = len(vs)
    pole = np.array([0.0, 0.0, radii[2]])
    verts = [*pts, np.asarray(center) + pole, np.asarray(center) - pole]
    n_top, n_bot = len(verts) - 2, len(verts) - 1
    faces = []
    for r in range(rows - 1):
        for c in range(nu):
            c2 = (c + 1) % nu
            faces.append((r * nu + c, r * nu + c2, (r + 1) * nu + c2, (r + 1) * nu + c))
    for c in range(nu):
        c2 = (c + 1) % nu
        faces.append((n_top, c2, c))
        faces.append((n_bot, (rows - 1) * nu + c, (rows - 1) * nu + c2))
    return _Part(np.array(verts), faces, [material] * len(faces), np.full(len(verts), side), kind)


def _arch(front_y: float, z_top: float, z_bottom: float, radius: float, material: str, kind: str,
          side: float, half_angle: float = 1.0, n: int = 16, thickness: float = 0.05) -> _Part:
    """A curved slab (teeth row) following an arc of ``radius`` whose front is at ``front_y``."""
    cy = front_y + radius
    verts, faces = [], []
    for k in range(n + 1):
        a = -half_angle + 2 * half_angle * k / n
        for rr in (radius, radius - thickness):
            for z in (z_top, z_bottom):
                verts.append((rr * math.sin(a), cy - rr * math.cos(a), z))
    for k in range(n):
        o, p = 4 * k, 4 * (k + 1)
        faces += [(o, o + 1, p + 1, p), (o + 2, p + 2, p + 3, o + 3)]
        faces += [(o, p, p + 2, o + 2), (o + 1, o + 3, p + 3, p + 1)]
    faces += [(0, 2, 3, 1), (4 * n, 4 * n + 1, 4 * n + 3, 4 * n + 2)]
    return _Part(np.array(verts, dtype=float), faces, [material] * len(faces), np.full(len(verts), side), kind)


def _parts() -> list[_Part]:
    skin, i_mouth, index, lower_index, mouth_cols, cols = _build_skin()
    _add_lip_flange(skin, i_mouth, index, lower_index, mouth_cols, cols)
    lip_y = _surface_y(0.0, MOUTH_Z)
    teeth_y = lip_y + LIP_DEPTH + 0.015
    parts = [
        skin,
        _ellipsoid((0.0, lip_y + 0.42, MOUTH_Z - 0.05), (0.42, 0.32, 0.2), "cavity", "cavity"),
        _arch(teeth_y, MOUTH_Z + 0.07, MOUTH_Z - 0.022, 0.30, "teeth", "upper_teeth", 1.0),
        _arch(teeth_y + 0.012, MOUTH_Z - 0.03, MOUTH_Z - 0.10, 0.28, "teeth", "lower_teeth", -1.0),
        _ellipsoid((0.0, teeth_y + 0.17, MOUTH_Z - 0.07), (0.15, 0.16, 0.045), "tongue", "tongue", -1.0, 16, 10),
    ]
    for sx in (-1.0, 1.0):
        ex, ey, ez = eye_center(sx)
        eye = "eye.L" if sx > 0 else "eye.R"  # the character's left eye is at +X (it faces -Y)
        iris_c, pupil_c = (ex * 0.97, ey - 0.105, ez - 0.005), (ex * 0.97, ey - 0.128, ez - 0.005)
        for part in (
            _ellipsoid((ex, ey, ez), (0.135, 0.12, 0.13), "eye_white", "static"),
            _ellipsoid(iris_c, (0.07, 0.03, 0.07), "iris", "static", 0.0, 16, 10),
            _ellipsoid(pupil_c, (0.035, 0.012, 0.035), "pupil", "static", 0.0, 12, 8),
        ):
            part.group = eye
            parts.append(part)
        parts.append(_eyelid((ex, ey, ez), "lid.L" if sx > 0 else "lid.R"))
        parts.append(_ellipsoid((RX * 0.98 * sx, 0.05, 0.0), (0.07, 0.17, 0.26), "skin", "static", 0.0, 16, 10))
    return parts


def eye_center(sx: float) -> tuple[float, float, float]:
    """Centre of the eyeball on side ``sx`` (+1 = the character's left, at +X), in units."""
    ex, ez = 0.31 * sx, 0.22
    return ex, _surface_y(ex, ez) + 0.09, ez


def _eyelid(center: tuple[float, float, float], group: str, nu: int = 20, nv: int = 8) -> _Part:
    """Upper eyelid: a skin shell just outside the eyeball covering its top (colatitude 0..LID_OPEN).

    The blink shape key stretches it down to LID_CLOSED (past the eye's equator).
    """
    radii = np.array(LID_RADII)
    us = np.linspace(-math.pi / 2 - LID_HALF_WIDTH, -math.pi / 2 + LID_HALF_WIDTH, nu + 1)  # around the front (-Y)
    vs = np.linspace(0.0, LID_OPEN, nv + 1)[1:]
    verts = [np.asarray(center) + radii * np.array([0.0, 0.0, 1.0])]
    for v in vs:
        for u in us:
            verts.append(np.asarray(center) + radii * np.array([math.sin(v) * math.cos(u), math.sin(v) * math.sin(u),
                                                                 math.cos(v)]))
    faces: list[tuple[int, ...]] = [(0, 1 + c + 1, 1 + c) for c in range(nu)]
    for r in range(nv - 1):
        for c in range(nu):
            a = 1 + r * (nu + 1) + c
            faces.append((a, a + 1, a + nu + 2, a + nu + 1))
    part = _Part(np.array(verts), faces, ["skin"] * len(faces), np.zeros(len(verts)), "static")
    part.group = group
    return part


def _close_lid(co: np.ndarray, center: tuple[float, float, float]) -> np.ndarray:
    """Lid vertices ``co`` with their colatitude stretched from LID_OPEN to LID_CLOSED (a closed eye)."""
    rel = (co - np.asarray(center)) / np.asarray(LID_RADII)
    v = np.arccos(np.clip(rel[:, 2], -1.0, 1.0))
    u = np.arctan2(rel[:, 1], rel[:, 0])
    v2 = v * (LID_CLOSED / LID_OPEN)
    out = np.stack([np.sin(v2) * np.cos(u), np.sin(v2) * np.sin(u), np.cos(v2)], axis=1)
    return np.asarray(center) + out * np.asarray(LID_RADII)


def _merge(
    parts: list[_Part],
) -> tuple[np.ndarray, list[tuple[int, ...]], list[str], np.ndarray, np.ndarray, np.ndarray]:
    verts, faces, mats, sides, kinds, groups = [], [], [], [], [], []
    offset = 0
    for p in parts:
        verts.append(p.verts)
        faces += [tuple(int(i) + offset for i in f) for f in p.faces]
        mats += p.face_materials
        sides.append(p.side)
        kinds += [p.kind] * len(p.verts)
        groups += [p.group] * len(p.verts)
        offset += len(p.verts)
    return np.concatenate(verts), faces, mats, np.concatenate(sides), np.array(kinds), np.array(groups)


def _deform(basis: np.ndarray, side: np.ndarray, kinds: np.ndarray, ctl: dict[str, float]) -> np.ndarray:
    """Positions of ``basis`` vertices under the articulatory controls ``ctl`` (units)."""
    x, y, z = basis[:, 0].copy(), basis[:, 1].copy(), basis[:, 2].copy()
    g = lambda key: float(ctl.get(key, 0.0))  # noqa: E731
    mouthish = np.isin(kinds, ("skin", "lip_inner"))
    front = _smoothstep((0.1 - y) / 0.5)
    dz_m = z - MOUTH_Z
    ax = np.abs(x)
    # Lateral profile of the lips: 1 at the centre, 0 beyond the corners.
    center = np.cos(0.5 * math.pi * np.clip(ax / (MOUTH_HALF_WIDTH * 1.05), 0, 1)) ** 1.2
    near_line = np.exp(-((dz_m / 0.11) ** 2))
    region = np.exp(-((ax / (MOUTH_HALF_WIDTH * 1.5)) ** 4)) * np.exp(-((dz_m / 0.22) ** 2)) * front
    upper = np.where(side != 0, side > 0, dz_m > 0)
    lower = np.where(side != 0, side < 0, dz_m < 0)

    out = basis.copy()
    # Lip compression (PP): the lip band thins towards the line and moves back against the teeth.
    p = g("press")
    if p:
        band = np.exp(-((dz_m / 0.1) ** 2)) * np.exp(-((ax / (MOUTH_HALF_WIDTH * 1.2)) ** 4)) * front * mouthish
        out[:, 2] -= p * 0.35 * dz_m * band
        out[:, 1] += p * 0.025 * band
        out[:, 0] += p * 0.03 * np.sign(x) * band * np.clip(ax / MOUTH_HALF_WIDTH, 0, 1)
    # Spread (E, I, SS): corners move out and slightly back.
    w = g("wide")
    if w:
        spread = np.clip(ax / MOUTH_HALF_WIDTH, 0, 1.6) * region * mouthish
        out[:, 0] += w * 0.09 * np.sign(x) * spread
        out[:, 1] += w * 0.03 * spread
    # Rounding (O, U, CH, RR): lips move forward and the mouth narrows.
    r = g("round")
    if r:
        rnd = region * mouthish
        out[:, 0] -= r * 0.42 * x * rnd * np.clip(ax / MOUTH_HALF_WIDTH, 0.35, 1.2)
        out[:, 1] -= r * 0.10 * rnd * np.exp(-((dz_m / 0.12) ** 2))
    # Upper-lip raise, extra lower-lip drop; rounded shapes open more evenly across the width.
    profile = center ** (1.0 - 0.6 * min(r, 1.0))
    up = g("up")
    if up:
        out[:, 2] += up * 0.05 * profile * near_line * upper * mouthish * front
    down = g("down")
    if down:
        out[:, 2] -= down * 0.045 * profile * near_line * lower * mouthish * front
    # Lower lip tuck (FF): the lower lip rolls up and back under the upper teeth.
    t = g("tuck")
    if t:
        lip_low = lower * mouthish * np.exp(-(((dz_m + 0.03) / 0.08) ** 2)) * center**0.3 * front
        out[:, 1] += t * 0.035 * lip_low
        out[:, 2] += t * 0.012 * lip_low
    # Tongue.
    tongue = kinds == "tongue"
    if tongue.any():
        ty = basis[tongue, 1]
        tip = _smoothstep((ty.max() - ty) / (ty.max() - ty.min()))  # 1 at the tip, 0 at the root
        out[tongue, 1] -= g("tfwd") * 0.16 * tip
        out[tongue, 2] += (g("tup") * 0.06 + g("tfwd") * 0.03) * tip
    # Jaw rotation about the hinge axis (parallel to X).
    j = g("jaw")
    if j:
        width = 0.04 + 0.5 * np.clip(ax - MOUTH_HALF_WIDTH, 0, None)
        wj = _smoothstep((MOUTH_Z - z) / width + 0.5)
        wj = np.where(side < 0, 1.0, np.where(side > 0, 0.0, wj)) * front
        wj = np.where(np.isin(kinds, ("lower_teeth", "tongue")), 1.0, wj)
        wj = np.where(kinds == "upper_teeth", 0.0, wj)
        wj = np.where(kinds == "cavity", _smoothstep((MOUTH_Z + 0.02 - z) / 0.12), wj)
        wj = np.where(kinds == "static", 0.0, wj)
        ang = math.radians(JAW_MAX_DEG) * j * wj
        py, pz = JAW_PIVOT
        ry, rz = out[:, 1] - py, out[:, 2] - pz
        out[:, 1] = py + ry * np.cos(ang) - rz * np.sin(ang)
        out[:, 2] = pz + ry * np.sin(ang) + rz * np.cos(ang)
    return out


def _face_key_shapes(verts: np.ndarray, kinds: np.ndarray, groups: np.ndarray) -> dict[str, np.ndarray]:
    """Vertex positions of each :data:`FACE_KEYS` shape (units): lids closed, brows up/down."""
    out: dict[str, np.ndarray] = {}
    for key, sx in (("eyeBlink_L", 1.0), ("eyeBlink_R", -1.0)):
        co = verts.copy()
        lid = groups == ("lid.L" if sx > 0 else "lid.R")
        co[lid] = _close_lid(verts[lid], eye_center(sx))
        out[key] = co
    x, y, z = verts[:, 0], verts[:, 1], verts[:, 2]
    skin = (kinds == "skin") & (groups == "") & (y < 0)
    band = np.exp(-(((z - BROW_Z) / 0.13) ** 2)) * skin  # the brow and the forehead just around it
    ax = np.abs(x)
    inner = np.exp(-(((ax - (BROW_X - 0.1)) / 0.12) ** 2)) * band
    outer = np.exp(-(((ax - (BROW_X + 0.1)) / 0.12) ** 2)) * band
    co = verts.copy()
    co[:, 2] += 0.055 * inner
    out["browInnerUp"] = co
    for side, sx in (("L", 1.0), ("R", -1.0)):
        this = (x * sx > 0).astype(float)
        co = verts.copy()
        co[:, 2] += 0.05 * outer * this
        out[f"browOuterUp_{side}"] = co
        whole = np.exp(-(((ax - BROW_X) / 0.16) ** 2)) * band * this
        co = verts.copy()
        co[:, 2] -= 0.035 * whole
        co[:, 0] -= sx * 0.02 * whole  # brows draw together in a furrow
        co[:, 1] -= 0.01 * whole
        out[f"browDown_{side}"] = co
    return {name: out[name] for name in FACE_KEYS}


def _add_rig(scene: bpy.types.Scene, obj: bpy.types.Object, name: str, groups: np.ndarray) -> bpy.types.Object:
    """Armature ``<name>Rig`` (head from the neck up, eye bones pointing forward) deforming ``obj``."""
    arm = bpy.data.objects.new(name + "Rig", bpy.data.armatures.new(name + "Rig"))
    scene.collection.objects.link(arm)
    previous = bpy.context.view_layer.objects.active
    bpy.context.view_layer.objects.active = arm
    bpy.ops.object.mode_set(mode="EDIT")
    head = arm.data.edit_bones.new("head")
    head.head, head.tail = (0.0, 0.0, -1.05), (0.0, 0.0, 0.6)  # pivot in the neck: nods turn about it
    for bone, sx in (("eye.L", 1.0), ("eye.R", -1.0)):
        ex, ey, ez = eye_center(sx)
        eb = arm.data.edit_bones.new(bone)
        eb.head, eb.tail, eb.parent = (ex, ey, ez), (ex, ey - 0.2, ez), head
    bpy.ops.object.mode_set(mode="OBJECT")
    bpy.context.view_layer.objects.active = previous
    arm.hide_render = True
    obj.parent = arm
    everything = np.arange(len(groups))
    for bone in ("head", "eye.L", "eye.R"):
        members = everything[groups == bone] if bone != "head" else everything[~np.isin(groups, ("eye.L", "eye.R"))]
        obj.vertex_groups.new(name=bone).add(members.tolist(), 1.0, "REPLACE")
    obj.modifiers.new("Armature", "ARMATURE").object = arm
    return arm


def _material(name: str) -> bpy.types.Material:
    mat = bpy.data.materials.get("demo_" + name) or bpy.data.materials.new("demo_" + name)
    mat.diffuse_color = PALETTE[name]
    mat.roughness = 0.6
    return mat


def lip_gap(obj: bpy.types.Object, depsgraph: bpy.types.Depsgraph | None = None) -> float:
    """Vertical distance (units) between the upper and lower lip edge at the mouth centre.

    Measured on the evaluated mesh (current shape-key values); 0 means the lips touch.
    """
    depsgraph = depsgraph or bpy.context.evaluated_depsgraph_get()
    evaluated = obj.evaluated_get(depsgraph)
    mesh = evaluated.to_mesh()
    try:
        up = mesh.vertices[int(obj["demo_lip_upper"])].co
        low = mesh.vertices[int(obj["demo_lip_lower"])].co
        return float(up.z - low.z)
    finally:
        evaluated.to_mesh_clear()


def build_demo_head(scene: bpy.types.Scene, *, name: str = "DemoHead", rig: bool = True) -> bpy.types.Object:
    """Build the demo head in ``scene`` (plus camera, light and Workbench settings).

    Returns the head mesh object, which has a ``Basis`` key, the 15 Oculus
    viseme shape keys and the ARKit-named face keys in :data:`FACE_KEYS` (blinks, brows).
    With ``rig`` the mesh is parented to an armature ``<name>Rig`` (bones ``head``, ``eye.L``,
    ``eye.R``; Armature modifier), so head motion and gaze can be keyed. Custom properties
    ``demo_lip_upper`` / ``demo_lip_lower`` hold the vertex indices of the lip edges at the mouth
    centre (see :func:`lip_gap`).
    Existing objects are left alone; a camera and a sun light are added and the
    camera becomes the scene camera. Render settings: Workbench, 480x480 pixels.
    """
    parts = _parts()
    verts, faces, mats, side, kinds, groups = _merge(parts)
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(verts.tolist(), [], faces)
    material_names = list(PALETTE)
    for m in material_names:
        mesh.materials.append(_material(m))
    mesh.polygons.foreach_set("material_index", [material_names.index(m) for m in mats])
    mesh.polygons.foreach_set("use_smooth", [True] * len(faces))
    mesh.update()
    obj = bpy.data.objects.new(name, mesh)
    scene.collection.objects.link(obj)
    obj.location = (0.0, 0.0, 0.0)

    obj.shape_key_add(name="Basis", from_mix=False)
    for viseme in OCULUS_VISEMES:
        key = obj.shape_key_add(name=viseme, from_mix=False)
        co = _deform(verts, side, kinds, VISEME_CONTROLS[viseme])
        key.data.foreach_set("co", co.astype(np.float32).ravel())
        key.slider_min, key.slider_max = 0.0, 1.0
    for key_name, co in _face_key_shapes(verts, kinds, groups).items():
        key = obj.shape_key_add(name=key_name, from_mix=False)
        key.data.foreach_set("co", co.astype(np.float32).ravel())
        key.slider_min, key.slider_max = 0.0, 1.0
    mesh.shape_keys.use_relative = True
    if rig:
        _add_rig(scene, obj, name, groups)
    # Remember the two lip-line vertices at the mouth centre (upper and lower edge), so
    # tests and the demo can measure the lip gap.
    on_line = (kinds == "skin") & (np.abs(verts[:, 2] - MOUTH_Z) < 1e-9)
    for label, s in (("upper", 1.0), ("lower", -1.0)):
        cand = np.flatnonzero(on_line & (side == s))
        best = cand[np.lexsort((verts[cand, 1], np.abs(verts[cand, 0])))[0]]
        obj[f"demo_lip_{label}"] = int(best)

    _setup_camera_and_light(scene)
    _setup_workbench(scene)
    return obj


def _setup_camera_and_light(scene: bpy.types.Scene) -> None:
    cam_data = bpy.data.cameras.new("DemoCamera")
    cam_data.lens = 85.0
    cam = bpy.data.objects.new("DemoCamera", cam_data)
    scene.collection.objects.link(cam)
    target = np.array([0.0, 0.0, -0.12])
    cam.location = (1.25, -6.7, 0.5)
    direction = target - np.array(cam.location)
    yaw = math.atan2(-direction[0], direction[1])
    pitch = math.atan2(direction[2], math.hypot(direction[0], direction[1]))
    cam.rotation_euler = (math.pi / 2 + pitch, 0.0, yaw)
    scene.camera = cam
    sun = bpy.data.objects.new("DemoSun", bpy.data.lights.new("DemoSun", type="SUN"))
    sun.rotation_euler = (math.radians(50), math.radians(10), math.radians(-30))
    scene.collection.objects.link(sun)


def _setup_workbench(scene: bpy.types.Scene) -> None:
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.render.resolution_x = 480
    scene.render.resolution_y = 480
    scene.render.resolution_percentage = 100
    shading = scene.display.shading
    shading.light = "STUDIO"
    shading.color_type = "MATERIAL"
    shading.show_cavity = True
    shading.cavity_type = "WORLD"
    shading.show_specular_highlight = True
    shading.show_object_outline = False
    scene.display.render_aa = "5"  # 5 AA samples: clean edges at half the cost of 8
    world = scene.world or bpy.data.worlds.new("DemoWorld")
    scene.world = world
    world.color = (0.30, 0.36, 0.42)
    scene.view_settings.view_transform = "Standard"
