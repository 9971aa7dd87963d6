"""Cue export: versioned JSON round trip and Rhubarb-compatible mouth cues."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from lipsync_addon.core.animate import coarticulate, map_to_channels
from lipsync_addon.core.export import rhubarb_cues, to_cue_dict, to_rhubarb_dict, write_json
from lipsync_addon.core.phonemes import arpabet_to_ipa
from lipsync_addon.core.textgrid import read_textgrid
from lipsync_addon.core.types import (
    CUE_FORMAT_VERSION,
    LipSyncError,
    LipSyncResult,
    Phone,
    Transcript,
    VisemeSegment,
    Word,
)
from lipsync_addon.core.visemes import phones_to_visemes, resolve_mapping

DATA = Path(__file__).resolve().parents[1] / "data" / "aligned"
SHAPES = set("ABCDEFGHX")


def _result(name: str = "acoustic_corpus", fps: float = 24.0, viseme_set: str = "oculus") -> LipSyncResult:
    tiers = read_textgrid(DATA / f"{name}.TextGrid")
    phones = [
        Phone(arpabet_to_ipa(i.text) if i.text.strip() else "sil", i.start, i.end) for i in tiers["phones"].intervals
    ]
    words = [Word(i.text, i.start, i.end) for i in tiers["words"].intervals if i.text.strip()]
    duration = max(i.end for i in tiers["phones"].intervals)
    segs = phones_to_visemes(phones)
    vc = coarticulate(segs, duration, fps=fps, strength=1.0, smoothing=0.5)
    set_name, mapping = resolve_mapping(viseme_set, [])
    return LipSyncResult(
        audio_path=str(DATA / f"{name}.wav"),
        duration=duration,
        transcript=Transcript(words=words, phones=phones, duration=duration, method="align"),
        visemes=segs,
        viseme_set=set_name,
        mapping=mapping,
        curves=map_to_channels(vc, mapping),
        viseme_curves=vc,
        warnings=["word 'corpus' pronounced by letter-to-sound"],
        provenance={"backend": "reference", "fps": np.float32(24.0), "path": Path("/tmp/x")},
    )


def test_cue_json_round_trip(tmp_path: Path) -> None:
    result = _result()
    cue = to_cue_dict(result)
    path = tmp_path / "sous-dossier" / "répliques_ü.json"
    write_json(cue, str(path))
    raw = path.read_bytes()
    back = json.loads(raw.decode("utf-8"))
    assert back == json.loads(json.dumps(cue))
    assert back["format"] == "lipsync-cues" and back["version"] == CUE_FORMAT_VERSION
    meta = back["metadata"]
    assert meta["viseme_set"] == "oculus" and meta["fps"] == 24.0 and meta["method"] == "align"
    assert meta["duration"] == pytest.approx(result.duration, abs=1e-4)
    assert meta["provenance"]["backend"] == "reference" and meta["provenance"]["path"] == "/tmp/x"
    assert len(back["words"]) == len(result.transcript.words)
    assert {"ipa", "start", "end", "confidence", "word_index", "stress"} == set(back["phones"][0])
    assert "ɪ" in {p["ipa"] for p in back["phones"]}  # IPA kept as text, not escaped away
    assert "ɪ".encode() in raw  # ensure_ascii=False
    assert back["visemes"][0]["viseme"] in {"sil", "TH"}
    curves = back["curves"]
    n = len(curves["times"])
    assert n == len(result.curves.times)
    assert "mouth_open" in curves["channels"] and "viseme_PP" in curves["channels"]
    for values in curves["channels"].values():
        assert len(values) == n
        assert all(0.0 <= v <= 1.0 for v in values)
        assert all(round(v, 4) == v for v in values[:200])
    assert set(back["viseme_curves"]["channels"]) >= {"sil", "PP", "aa", "mouth_open"}
    assert back["warnings"] == result.warnings
    assert back["mapping"]["PP"] == {"viseme_PP": 1.0}


def test_write_json_reports_unwritable_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(LipSyncError, match="Cannot write"):
        write_json({"a": 1}, str(blocker / "inside.json"))


def _check_cues(cues: list[dict], duration: float) -> None:
    assert cues[0]["start"] == 0.0
    assert cues[-1]["end"] == round(duration, 2)
    for a, b in itertools.pairwise(cues):
        assert a["end"] == b["start"]  # contiguous
        assert a["value"] != b["value"]  # merged
    for c in cues:
        assert c["value"] in SHAPES
        assert c["end"] > c["start"]


@pytest.mark.parametrize("name", ["acoustic_corpus", "cold_corpus", "cold_corpus3"])
def test_rhubarb_cues_are_contiguous_and_cover_the_clip(name: str) -> None:
    result = _result(name)
    out = to_rhubarb_dict(result)
    assert set(out) == {"metadata", "mouthCues"}
    assert out["metadata"]["soundFile"].endswith(f"{name}.wav")
    assert out["metadata"]["duration"] == round(result.duration, 2)
    cues = out["mouthCues"]
    _check_cues(cues, result.duration)
    values = {c["value"] for c in cues}
    assert {"A", "X"} <= values and len(values) >= 6
    # shortest shape: only closures (A) and contact (G) may be kept shorter, and never below one cs
    short = [c for c in cues[1:-1] if c["end"] - c["start"] < 0.07 - 0.011]
    assert all(c["value"] in {"A", "G"} for c in short), short
    json.loads(json.dumps(out))


def test_rhubarb_rules_on_hand_built_segments() -> None:
    segs = [
        VisemeSegment("aa", 0.5, 0.7, "ɑ"),
        VisemeSegment("PP", 0.7, 0.71, "p"),  # 10 ms closure: kept, lengthened
        VisemeSegment("aa", 0.71, 0.9, "ɑ"),
        VisemeSegment("nn", 0.9, 1.0, "l"),  # L -> H
        VisemeSegment("sil", 1.0, 1.1, ""),  # 0.1 s pause: hold the previous shape
        VisemeSegment("U", 1.1, 1.3, "u"),
        VisemeSegment("E", 1.3, 1.32, "ɛ"),  # 20 ms vowel: absorbed
        VisemeSegment("U", 1.32, 1.5, "u"),
        VisemeSegment("sil", 1.5, 2.2, ""),  # long pause: X
        VisemeSegment("aa", 2.2, 2.5, "æ"),  # AE -> C
    ]
    cues = rhubarb_cues(segs, 3.0)
    as_dicts = [{"start": s, "end": e, "value": v} for s, e, v in cues]
    _check_cues(as_dicts, 3.0)
    values = [v for _, _, v in cues]
    assert values == ["X", "D", "A", "D", "H", "F", "X", "C", "X"]
    closure = next(c for c in cues if c[2] == "A")
    assert closure[1] - closure[0] == pytest.approx(0.07)
    hold = next(c for c in cues if c[2] == "H")
    assert hold[1] == pytest.approx(1.1)  # held through the short pause


def test_rhubarb_on_empty_result_is_one_idle_cue() -> None:
    assert rhubarb_cues([], 1.234) == [(0.0, 1.23, "X")]
    assert rhubarb_cues([VisemeSegment("sil", 0, 2)], 2.0) == [(0.0, 2.0, "X")]


def test_write_json_gives_normal_file_permissions(tmp_path) -> None:
    import os
    import stat

    from lipsync_addon.core.export.cues import write_json

    path = tmp_path / "cues.json"
    write_json({"a": 1}, str(path))
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    path.chmod(0o640)
    write_json({"a": 2}, str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
