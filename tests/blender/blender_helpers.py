"""Shared helpers for the Blender tests (imported by conftest and test modules)."""

from __future__ import annotations

import sys
from pathlib import Path

import bpy

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DATA = REPO / "tests" / "data"
#: CMU ARCTIC aew a0001 (3.9 s, 16 kHz): "Author of the danger trail, Philip Steels, etc."
SPEECH = DATA / "cmu_arctic_us_aew_a0001.wav"
SPEECH_TEXT = "Author of the danger trail, Philip Steels, etc."
ARKIT_GLB = DATA / "rigs" / "ict_face_arkit.glb"

#: Shape-key names per preset, as the issue and the rigs in the wild spell them.
PRESET_SHAPE_KEYS: dict[str, list[str]] = {
    "oculus": [
        f"viseme_{v}" for v in ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "I", "O", "U")
    ],
    "arkit": [
        "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthStretch_L", "mouthStretch_R",
        "mouthRollLower", "mouthRollUpper", "mouthPress_L", "mouthPress_R", "mouthLowerDown_L",
        "mouthLowerDown_R", "mouthUpperUp_L", "mouthUpperUp_R", "mouthSmile_L", "mouthSmile_R",
    ],
    "vrm": ["aa", "ih", "ou", "ee", "oh", "blink"],
    "vroid": ["Fcl_MTH_A", "Fcl_MTH_I", "Fcl_MTH_U", "Fcl_MTH_E", "Fcl_MTH_O", "Fcl_EYE_Close"],
    "vrchat": [
        f"vrc.v_{v}" for v in ("sil", "pp", "ff", "th", "dd", "kk", "ch", "ss", "nn", "rr", "aa", "e", "ih", "oh", "ou")
    ],
    "rhubarb": ["A", "B", "C", "D", "E", "F", "G", "H", "X"],
    "preston_blair": ["AI", "E", "O", "U", "etc", "L", "WQ", "MBP", "FV", "rest"],
    "simple": ["MouthOpen"],
}  # fmt: skip


def make_mesh(name: str, shape_keys: list[str], *, link: bool = True):
    """A small UV sphere with a Basis and one displaced shape key per name."""
    mesh = bpy.data.meshes.new(name)
    import bmesh

    bm = bmesh.new()
    bmesh.ops.create_uvsphere(bm, u_segments=12, v_segments=8, radius=1.0)
    bm.to_mesh(mesh)
    bm.free()
    obj = bpy.data.objects.new(name, mesh)
    if link:
        bpy.context.scene.collection.objects.link(obj)
    if shape_keys:
        obj.shape_key_add(name="Basis", from_mix=False)
        for i, key_name in enumerate(shape_keys):
            block = obj.shape_key_add(name=key_name, from_mix=False)
            for j, point in enumerate(block.data):
                if j % (i + 2) == 0:
                    point.co.z += 0.05
    return obj


def fcurve_snapshot(action, datablock) -> dict[str, list[tuple[float, float]]]:
    """data_path -> keyframe (frame, value) list of ``action``'s channels for ``datablock``."""
    from lipsync_addon.blender import compat

    return {
        fc.data_path: [tuple(round(c, 5) for c in kp.co) for kp in fc.keyframe_points]
        for fc in compat.action_fcurves(action, datablock)
    }


def scene_snapshot(scene) -> dict:
    """Everything a failed or cancelled generate must leave unchanged."""
    from lipsync_addon.blender import compat

    editor = scene.sequence_editor
    strips = sorted(
        (s.name, s.channel, compat.strip_start(s)) for s in (compat.all_strips(editor) if editor is not None else [])
    )
    return {
        "actions": sorted(a.name for a in bpy.data.actions),
        "strips": strips,
        "frame_end": scene.frame_end,
        "objects": sorted(o.name for o in bpy.data.objects),
        "key_actions": sorted(
            (k.name, k.animation_data.action.name if k.animation_data and k.animation_data.action else "")
            for k in bpy.data.shape_keys
        ),
    }
