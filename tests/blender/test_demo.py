"""The demo: the procedural head's visemes, and the demo command end to end (no render).

Real bpy wheel, real speech (demo/acoustic_corpus.flac); the demo runs in a child
process because it resets Blender's state (factory settings) and saves a .blend.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

import demo_head  # noqa: E402

OPEN_VISEMES = ("viseme_aa", "viseme_E", "viseme_I", "viseme_O", "viseme_U")
BILABIALS = {"p", "b", "m"}
#: Lip gap (Blender units, head about 2.6 tall) below which the lips count as closed.
CLOSED = 0.01


def _gaps(head) -> dict[str, float]:
    keys = head.data.shape_keys.key_blocks
    out = {}
    for name in ["Basis", *demo_head.OCULUS_VISEMES]:
        for k in keys:
            k.value = 0.0
        if name != "Basis":
            keys[name].value = 1.0
        out[name] = demo_head.lip_gap(head)
    return out


def test_demo_head_has_the_oculus_visemes_and_lips_that_close(scene):
    head = demo_head.build_demo_head(scene)
    keys = head.data.shape_keys.key_blocks
    assert [k.name for k in keys] == ["Basis", *demo_head.OCULUS_VISEMES, *demo_head.FACE_KEYS]
    n = len(head.data.vertices)
    basis = np.empty(n * 3, dtype=np.float32)
    keys["Basis"].data.foreach_get("co", basis)
    for k in keys[1:]:
        co = np.empty(n * 3, dtype=np.float32)
        k.data.foreach_get("co", co)
        assert np.isfinite(co).all(), k.name
        moved = np.abs(co - basis).max()
        if k.name == "viseme_sil":
            assert moved == 0.0  # rest pose = basis (lips lightly closed)
        else:
            assert moved > 0.01, f"{k.name} moves nothing"
    gaps = _gaps(head)
    # The face keys leave the mouth alone; the rig deforms the mesh with head and eye bones.
    for name in demo_head.FACE_KEYS:
        for k in keys:
            k.value = 0.0
        keys[name].value = 1.0
        assert abs(demo_head.lip_gap(head)) < 1e-6, name
    arm = head.parent
    assert arm is not None and arm.type == "ARMATURE"
    assert {"head", "eye.L", "eye.R"} <= {b.name for b in arm.data.bones}
    assert {g.name for g in head.vertex_groups} == {"head", "eye.L", "eye.R"}
    # Rest and P/B/M: the upper and lower lip edges coincide (the mouth is really shut).
    assert abs(gaps["Basis"]) < 1e-6
    assert abs(gaps["viseme_PP"]) < 1e-6
    # Open vowels open the mouth; "aa" the most.
    for name in OPEN_VISEMES:
        assert gaps[name] > 0.08, (name, gaps[name])
    assert max(gaps, key=gaps.get) == "viseme_aa"
    assert gaps["viseme_aa"] > 0.2
    # Lips never cross (no negative gap) in any single viseme.
    assert min(gaps.values()) > -1e-6


CHECK_BLEND = r"""
import json, sys
import bpy
sys.path.insert(0, sys.argv[-3])
import demo_head
bpy.ops.wm.open_mainfile(filepath=sys.argv[-2])
cues = json.load(open(sys.argv[-1], encoding="utf-8"))
scene = bpy.context.scene
head = bpy.data.objects["DemoHead"]
fps = scene.render.fps / scene.render.fps_base
dg = bpy.context.evaluated_depsgraph_get()
gaps = {}
for f in range(scene.frame_start, scene.frame_end + 1):
    scene.frame_set(f)
    gaps[f] = demo_head.lip_gap(head, dg)
bilabial = []
for p in cues["phones"]:
    if p["ipa"] in ("p", "b", "m"):
        lo = int(p["start"] * fps) + 1 - 1
        hi = int(p["end"] * fps) + 1 + 1
        bilabial.append(min(gaps.get(f, 1.0) for f in range(lo, hi + 1)))
se = scene.sequence_editor
strips = list(getattr(se, "strips", None) or getattr(se, "sequences", [])) if se else []
anim = head.data.shape_keys.animation_data
blink = list(anim.action.get("lipsync_channels", [])) if anim and anim.action else []
rig = head.parent
rig_anim = rig.animation_data
head_rot = []
for f in range(scene.frame_start, scene.frame_end + 1, 6):
    scene.frame_set(f)
    head_rot.append(list(rig.pose.bones["head"].matrix_basis.to_quaternion()))
print(json.dumps({
    "rig_layers": sorted(rig_anim.action["lipsync_layers"].keys()) if rig_anim else [],
    "rig_action": rig_anim.action.name if rig_anim and rig_anim.action else "",
    "head_rot_spread": max(max(q[i] for q in head_rot) - min(q[i] for q in head_rot) for i in range(1, 4)),
    "owned_channels": [str(c) for c in blink],
    "frame_end": scene.frame_end, "fps": fps, "max_gap": max(gaps.values()),
    "bilabial_min_gaps": bilabial, "sound_strips": [s.type for s in strips],
    "has_audio": bool(getattr(bpy.app.build_options, "audaspace", False)),
    "action": anim.action.name if anim and anim.action else "",
}))
"""


@pytest.mark.slow
def test_demo_command_without_render(tmp_path):
    out = tmp_path / "out dir é"  # non-ASCII path on purpose
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "demo.py"), "--out", str(out), "--no-render"],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "rendering skipped (--no-render)" in proc.stdout
    blend, cues_path = out / "demo.blend", out / "demo_cues.json"
    assert blend.is_file() and cues_path.is_file()
    assert not (out / "demo.mp4").exists()

    cues = json.loads(cues_path.read_text(encoding="utf-8"))
    assert cues["metadata"]["viseme_set"] == "oculus"
    channels = cues["curves"]["channels"]
    assert "mouth_open" in channels
    assert set(demo_head.OCULUS_VISEMES) <= set(channels)
    assert len(cues["words"]) >= 50  # the bundled transcript has 59 words
    mouth = np.asarray(channels["mouth_open"])
    assert mouth.min() >= 0.0 and mouth.max() <= 1.0 and mouth.max() > 0.3

    check = subprocess.run(
        [sys.executable, "-c", CHECK_BLEND, str(SCRIPTS), str(blend), str(cues_path)],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert check.returncode == 0, check.stderr[-2000:]
    info = json.loads(check.stdout.strip().splitlines()[-1])
    assert info["action"].startswith("LipSync_DemoHead")
    # the clip is in the sequencer, where this Blender build has audio (the bpy 4.2 wheel has none)
    assert info["sound_strips"] == (["SOUND"] if info["has_audio"] else [])
    assert info["frame_end"] >= int(26.7 * 24)  # the timeline covers the clip
    # The mouth opens while speaking ...
    assert info["max_gap"] > 0.1
    # ... and the lips really close (within a frame) on every P/B/M of the clip.
    assert len(info["bilabial_min_gaps"]) >= 8
    assert max(info["bilabial_min_gaps"]) < CLOSED, info["bilabial_min_gaps"]
    # Face motion: blinks and brows on the shape keys, head motion in the rig's own action.
    assert any("eyeBlink_L" in c for c in info["owned_channels"]), info["owned_channels"]
    assert any("brow" in c for c in info["owned_channels"]), info["owned_channels"]
    assert info["rig_action"].startswith("LipSync_DemoHeadRig")
    assert 0.005 < info["head_rot_spread"] < 0.2  # the head moves, gently
    assert info["rig_layers"] == ["gaze", "head"]  # and the eyes look around (eye.L / eye.R)
