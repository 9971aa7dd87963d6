"""Procedural face layers on 77 s of real speech with MFA reference alignments (stress from ARPAbet)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lipsync_addon.core import pipeline
from lipsync_addon.core.animate import procedural as P
from lipsync_addon.core.textgrid import read_textgrid
from lipsync_addon.core.types import FaceConfig, LipSyncError, Phone, PipelineConfig, Transcript, Word

ALIGNED = Path(__file__).resolve().parents[1] / "data" / "aligned"
CLIPS = ("acoustic_corpus", "cold_corpus", "cold_corpus3")
ALL = FaceConfig(blink=True, brows=True, head=True)


def load(names=CLIPS) -> tuple[np.ndarray, Transcript]:
    """The clips concatenated, with their MFA words and phones shifted onto one timeline."""
    samples, words, phones, offset = [], [], [], 0.0
    for name in names:
        x, rate = sf.read(ALIGNED / f"{name}.wav", dtype="float32")
        assert rate == 16000
        tiers = read_textgrid(ALIGNED / f"{name}.TextGrid")
        words += [Word(i.text, i.start + offset, i.end + offset) for i in tiers["words"].intervals if i.text]
        for i in tiers["phones"].intervals:
            stress = int(i.text[-1]) if i.text[-1:].isdigit() else -1
            phones.append(Phone(i.text.rstrip("012") or "sil", i.start + offset, i.end + offset, stress=stress))
        samples.append(x)
        offset += len(x) / rate
    return np.concatenate(samples), Transcript(words, phones, offset)


@pytest.fixture(scope="module")
def prosody() -> P.Prosody:
    x, transcript = load()
    return P.analyze_prosody(x, 16000, transcript)


def test_prosody_on_real_speech(prosody):
    assert 75 < prosody.duration < 79
    voiced = np.isfinite(prosody.pitch_st)
    assert 0.2 < voiced.mean() < 0.7
    hz = 100 * 2 ** (prosody.pitch_st[voiced] / 12)
    assert 80 < np.median(hz) < 200  # adult male speaker
    assert len(prosody.stresses) > 100 and len(prosody.pauses) > 10 and len(prosody.phrase_ends) > 10


def test_questions_final_rise_not_line_fit(prosody):
    c = P.constants()["prosody"]
    t = np.arange(200) * 0.01
    fall = np.linspace(4.0, -4.0, 200)  # a statement: falls into its end at 2.0 s
    rise = np.where(t < 1.8, np.linspace(4.0, -4.0, 200), -4.0 + (t - 1.8) * 40.0)  # low, then +8 st
    assert P._final_rises(t, fall, [2.0], c) == []
    assert P._final_rises(t, rise, [2.0], c) == [2.0]
    # an octave error (pitch doubled on a weak last frame) is not a rise once cleaned
    jumpy = fall.copy()
    jumpy[-6:] += 12.0
    assert P._final_rises(t, P._without_octave_jumps(jumpy), [2.0], c) == []
    # real declarative speech (77 s, MFA alignments): 1 "question" of 19 phrase ends (7 with the line fit)
    assert len(prosody.questions) <= 0.2 * len(prosody.phrase_ends), (prosody.questions, prosody.phrase_ends)


def test_pitch_of_a_pure_tone():
    t = np.arange(16000) / 16000
    f0, _ = P.estimate_pitch(
        0.5 * np.sin(2 * np.pi * 150 * t), 16000, hop_s=0.01, window_s=0.04, f0_min=70, f0_max=400, threshold=0.45
    )
    assert np.nanmedian(f0[5:-5]) == pytest.approx(150, rel=0.01)


def test_same_seed_same_curves_other_seed_differs(prosody):
    a = P.face_curves(prosody, ALL, fps=24)
    b = P.face_curves(prosody, ALL, fps=24)
    c = P.face_curves(prosody, ALL, fps=24, seed=7)
    assert a.channels.keys() == set(P.LAYER_CHANNELS["blink"] + P.LAYER_CHANNELS["brows"] + P.ROTATION_CHANNELS)
    for name in a.channels:
        np.testing.assert_array_equal(a.channels[name], b.channels[name])
    assert any(not np.array_equal(a.channels[n], c.channels[n]) for n in a.channels)


def test_blink_rate_and_duration(prosody):
    rates, durations, mid_word = [], [], 0
    speaking = prosody.speaking.mean()
    for seed in range(20):
        events = P.blink_events(prosody, 17.0, np.random.default_rng(seed))
        rates.append(len(events) / prosody.duration * 60)
        durations += [d for _, d in events]
        mid_word += sum(prosody.speaking[int(s / prosody.hop)] for s, _ in events)
        gaps = np.diff([s for s, _ in events])
        assert gaps.min() >= 0.8  # never a double flutter
    assert 15.0 <= np.mean(rates) <= 20.0
    assert min(durations) >= 0.1 and max(durations) <= 0.4
    assert mid_word / len(durations) < 0.7 * speaking  # rarer mid-word than time spent in words


def test_blink_shape_closes_fast_opens_slow(prosody):
    curves = P.face_curves(prosody, FaceConfig(blink=True), fps=240)
    v = curves.channels["eye_blink_L"]
    assert v.max() == pytest.approx(1.0, abs=0.02) and v.min() == 0.0
    rises, falls = np.diff(v).clip(0), (-np.diff(v)).clip(0)
    assert rises.max() > 1.5 * falls.max()


@pytest.mark.parametrize("level", P.LEVELS)
def test_values_in_range_and_head_limits(prosody, level):
    curves = P.face_curves(prosody, FaceConfig(True, True, True, level=level, head_strength=2.0), fps=30)
    head = P.constants()["head"]
    for name, v in curves.channels.items():
        assert np.isfinite(v).all()
        if name in P.ROTATION_CHANNELS:
            vel, acc = np.diff(v) * 30, np.diff(v, 2) * 900
            scale = max(P.constants()["levels"][level]["head"] * 2.0, 1.0)
            assert np.abs(vel).max() <= head["max_velocity_rad_s"] * scale + 1e-6
            assert np.abs(acc).max() <= head["max_acceleration_rad_s2"] * scale + 1e-6
            assert np.abs(v).max() < 0.35  # a few degrees, never a head spin
            assert np.ptp(v) > 0.005
        else:
            assert v.min() >= 0.0 and v.max() <= 1.0
    subtle = P.face_curves(prosody, FaceConfig(brows=True, level="subtle"), fps=30).channels["brow_up"]
    loud = P.face_curves(prosody, FaceConfig(brows=True, level="expressive"), fps=30).channels["brow_up"]
    assert loud.sum() > subtle.sum() > 0


def test_head_settles_in_long_silence():
    x, transcript = load(("cold_corpus",))
    silent = np.concatenate([x, np.zeros(16000 * 8, dtype=np.float32)])
    transcript.duration += 8
    curves = P.face_curves(P.analyze_prosody(silent, 16000, transcript), FaceConfig(head=True), fps=24)
    speech, tail = curves.times < 25, curves.times > 30
    for name in P.ROTATION_CHANNELS:
        v = curves.channels[name]
        assert np.std(np.diff(v[tail])) < 0.5 * np.std(np.diff(v[speech]))


def test_shape_key_targets_only_what_the_rig_has(prosody):
    curves = P.face_curves(prosody, FaceConfig(blink=True, brows=True), fps=24)
    mapped, owner = P.map_face_to_shape_keys(curves, ["jawOpen", "eyeBlink_L", "eyeBlink_R", "browDown_L"])
    assert set(mapped) == {"eyeBlink_L", "eyeBlink_R", "browDown_L"}
    assert owner == {"eyeBlink_L": "blink", "eyeBlink_R": "blink", "browDown_L": "brows"}
    vrm, _ = P.map_face_to_shape_keys(curves, ["Fcl_EYE_Close", "Fcl_BRW_Surprised"])
    assert set(vrm) == {"Fcl_EYE_Close", "Fcl_BRW_Surprised"}
    assert P.map_face_to_shape_keys(curves, ["viseme_aa"])[0] == {}
    assert P.find_head_bone(["spine", "mixamorig:Neck", "mixamorig:Head"]) == "mixamorig:Head"
    assert P.find_head_bone(["root", "J_Bip_C_Neck"]) == "J_Bip_C_Neck"
    assert P.find_head_bone(["root"]) == ""


def test_pipeline_merges_face_channels():
    names = ["jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "eyeBlink_L", "eyeBlink_R", "browInnerUp"]
    result = pipeline.run(
        str(ALIGNED / "cold_corpus.wav"),
        PipelineConfig(transcript=(ALIGNED / "cold_corpus.lab").read_text().strip(), channel_names=names,
                       viseme_set="auto", face=ALL),
    )  # fmt: skip
    assert result.face_channels["blink"] == ["eyeBlink_L", "eyeBlink_R"]
    assert result.face_curves is not None and "head_pitch" in result.face_curves.channels
    assert result.curves.channels["eyeBlink_L"].max() > 0.9
    assert len(result.curves.channels["eyeBlink_L"]) == len(result.curves.times)
    with pytest.raises(LipSyncError, match="level"):
        P.face_curves(P.analyze_prosody(np.zeros(1600), 16000, Transcript()), FaceConfig(level="wild"), fps=24)
