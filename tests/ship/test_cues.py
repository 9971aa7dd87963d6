"""Engine cue files from a real pipeline result: Rhubarb TSV, Oculus and Azure viseme-ID events, CSV."""

from __future__ import annotations

import csv
import io
import itertools
import json

import numpy as np
import pytest
from conftest import SPEECH, SPEECH_TEXT

from lipsync_addon.core import pipeline
from lipsync_addon.core.export import engines
from lipsync_addon.core.export.cues import rhubarb_cues
from lipsync_addon.core.types import LipSyncError, PipelineConfig


@pytest.fixture(scope="module")
def result():
    return pipeline.run(str(SPEECH), PipelineConfig(transcript=SPEECH_TEXT, viseme_set="oculus", fps=30.0))


def test_rhubarb_tsv_matches_rhubarb_cues(result):
    lines = engines.rhubarb_tsv(result).splitlines()
    rows = [(float(a), b) for a, b in (ln.split("\t") for ln in lines)]
    cues = rhubarb_cues(result.visemes, result.duration)
    assert [r[1] for r in rows[: len(cues)]] == [c[2] for c in cues]
    assert rows[0] == (0.0, "X") and rows[-1][1] == "X"
    assert rows[-1][0] == pytest.approx(result.duration, abs=0.01)
    assert all(b[0] > a[0] for a, b in itertools.pairwise(rows))
    assert {r[1] for r in rows} <= set("ABCDEFGHX") and "A" in {r[1] for r in rows}  # P in 'Philip' closes


def test_oculus_events_follow_the_dominant_viseme(result):
    doc = engines.oculus_events(result)
    assert doc["visemes"][:2] == ["sil", "PP"] and len(doc["visemes"]) == 15
    events = doc["events"]
    assert events[0]["time"] == 0.0 and len(events) > 10
    times = [e["time"] for e in events]
    assert times == sorted(times) and len(set(times)) == len(times)
    vc = result.viseme_curves
    for e in events:
        assert 0 <= e["visemeId"] <= 14 and len(e["weights"]) == 15
        assert e["weight"] == max(e["weights"]) or e["visemeId"] == 0
        assert vc.times[e["frame"]] == pytest.approx(e["time"], abs=1e-4)
    assert all(a["visemeId"] != b["visemeId"] for a, b in itertools.pairwise(events))
    # every bilabial phone (p, b, m) has a PP event (id 1) within its span (+ 1 frame)
    for p in result.transcript.phones:
        if p.ipa in {"p", "b", "m"}:
            assert any(e["visemeId"] == 1 and p.start - 0.05 <= e["time"] <= p.end + 0.05 for e in events), p


def test_azure_events_use_phone_ids(result):
    events = engines.azure_events(result)
    offsets = [e["AudioOffset"] for e in events]
    assert offsets[0] == 0 and offsets == sorted(offsets)
    assert events[-1]["VisemeId"] == 0
    assert all(0 <= e["VisemeId"] <= 21 for e in events)
    by_phone = {e["Phone"]: e["VisemeId"] for e in events if e["Phone"]}
    assert by_phone.get("p") == 21 and by_phone.get("f") == 18 and by_phone.get("θ") == 19
    for e in events:
        assert e["AudioOffset"] == round(e["OffsetMs"] * 10_000)
    assert engines.azure_viseme_id("iː") == 6  # length mark dropped
    assert engines.azure_viseme_id("x", "kk") == 20  # unknown phone: via its canonical viseme


@pytest.mark.parametrize("fps", [24.0, 60.0, 29.97])
def test_csv_resamples_curves(result, fps):
    rows = list(csv.reader(io.StringIO(engines.frame_weights_csv(result, fps))))
    header, body = rows[0], rows[1:]
    assert header[:2] == ["frame", "time"] and "mouth_open" in header and "viseme_PP" in header
    assert len(body) == int(np.floor(result.duration * fps + 1e-9)) + 1
    col = header.index("viseme_aa")
    times = np.array([float(r[1]) for r in body])
    np.testing.assert_allclose(times, np.arange(len(body)) / fps, atol=1e-4)
    want = np.interp(np.arange(len(body)) / fps, result.curves.times, result.curves.channels["viseme_aa"])
    np.testing.assert_allclose([float(r[col]) for r in body], want, atol=1.5e-4)  # 4 decimals


def test_write_every_format(result, tmp_path):
    for fmt, (suffix, _) in engines.FORMATS.items():
        path = tmp_path / f"line{suffix}"
        engines.write_cue_file(result, fmt, str(path), csv_fps=30.0)
        text = path.read_text(encoding="utf-8")
        if suffix.endswith(".json"):
            json.loads(text)
        assert text.strip()
    with pytest.raises(LipSyncError, match="Unknown cue format"):
        engines.write_cue_file(result, "xml", str(tmp_path / "x.xml"))
    (tmp_path / "file").write_text("")
    with pytest.raises(LipSyncError, match="Cannot write"):
        engines.write_cue_file(result, "csv", str(tmp_path / "file" / "x.csv"))
    with pytest.raises(LipSyncError, match="between 0 and 1000"):
        engines.frame_weights_csv(result, 0.0)
