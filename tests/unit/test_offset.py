"""Offset detection (GCC-PHAT) on real speech: known integer/fractional shifts, rates, noise, gains,
segments, a video's own sound track, and refusal of pairs that do not match."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from lipsync_addon import cli_sync
from lipsync_addon.core.offset import OffsetError, estimate_offset, estimate_offset_arrays, read_any, settings
from lipsync_addon.core.types import AudioError

DATA = Path(__file__).resolve().parents[1] / "data"
RATE = 16000

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed (scripts/setup.sh)")


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    x, rate = sf.read(DATA / "aligned" / "acoustic_corpus.wav", dtype="float32")
    assert rate == RATE
    return x


@pytest.fixture(scope="module")
def noise() -> np.ndarray:
    x, rate = sf.read(DATA / "noise_exercise_bike_12s.flac", dtype="float32")
    assert rate == RATE
    return x


def add_noise(x: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    nz = np.resize(noise, len(x))
    return (x + nz * np.sqrt(np.mean(x**2) / np.mean(nz**2) / 10 ** (snr_db / 10))).astype(np.float32)


@pytest.mark.parametrize(("start", "length", "snr", "gain"), [
    (0.0, 10.0, None, 1.0),
    (5.3, 10.0, 0.0, 0.3),      # a segment, in noise as loud as the speech, at a third of the level
    (12.71, 4.0, 5.0, 3.0),    # louder, short
    (20.0, 6.72, None, 0.05),  # the tail, very quiet
])
def test_segment_of_reference_found_to_the_sample(speech, noise, start, length, snr, gain) -> None:
    a = round(start * RATE)
    clip = speech[a : a + round(length * RATE)] * gain
    if snr is not None:
        clip = add_noise(clip, noise, snr)
    res = estimate_offset_arrays(speech, RATE, clip, RATE)
    assert abs(res.offset - a / RATE) < 0.1e-3
    assert res.confidence >= 0.5
    assert res.peak_ratio >= settings()["min_peak_ratio"]


@pytest.mark.parametrize("shift_48k", [1, 2, 5, 3001, -1502])
def test_fractional_sample_offsets(speech, shift_48k) -> None:
    """Clip recorded at 48 kHz, shifted by whole 48 kHz samples = thirds of a 16 kHz sample."""
    ref = speech[: 12 * RATE]
    up = resample_poly(ref.astype(np.float64), 3, 1).astype(np.float32)  # same sound at 48 kHz
    # clip[t] = ref[t + d]: offset +d
    clip = up[shift_48k:] if shift_48k >= 0 else np.concatenate([np.zeros(-shift_48k, np.float32), up])
    clip = clip[2 * 48000 : 10 * 48000]  # a segment, so the edges of the resampler do not help
    truth = (shift_48k + 2 * 48000) / 48000
    res = estimate_offset_arrays(ref, RATE, clip, 48000)
    assert abs(res.offset - truth) < 0.02e-3, (res.offset - truth) * 1e6  # 20 us = 1/3 sample at 16 kHz
    par = estimate_offset_arrays(ref, RATE, clip, 48000, method="parabolic")
    assert abs(par.offset - truth) < 0.05e-3


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 96000])
def test_other_rates_and_noise(speech, noise, rate) -> None:
    a = round(7.25 * RATE)
    clip = add_noise(speech[a : a + 8 * RATE], noise, 10.0)
    clip_r = resample_poly(clip.astype(np.float64), rate, RATE).astype(np.float32) if rate != RATE else clip
    res = estimate_offset_arrays(speech, RATE, clip_r, rate)
    assert abs(res.offset - 7.25) < 0.1e-3
    if rate < RATE:
        assert any("Low sample rate" in w for w in res.warnings)


def test_multichannel_clip_and_reference(speech) -> None:
    a = 3 * RATE + 7
    clip = speech[a : a + 6 * RATE]
    stereo = np.column_stack([clip * 0.8, -0.1 * clip + 0.001])
    ref = np.column_stack([speech, speech * 0.5])
    res = estimate_offset_arrays(ref, RATE, stereo, RATE)
    assert abs(res.offset - a / RATE) < 0.1e-3


def test_clip_starting_before_the_reference_is_negative(speech) -> None:
    ref = speech[4 * RATE : 14 * RATE]
    clip = speech[2 * RATE : 8 * RATE]
    res = estimate_offset_arrays(ref, RATE, clip, RATE)
    assert res.offset == pytest.approx(-2.0, abs=0.1e-3)
    assert any("overlaps" in w for w in res.warnings)
    assert res.frame(25.0, start_frame=100) == pytest.approx(50.0, abs=0.01)


def test_files_and_max_offset(tmp_path, speech) -> None:
    ref_p, clip_p = tmp_path / "ref.flac", tmp_path / "clip.wav"
    sf.write(ref_p, speech, RATE)
    sf.write(clip_p, speech[RATE * 9 : RATE * 14], RATE, subtype="PCM_16")
    res = estimate_offset(ref_p, clip_p)
    assert abs(res.offset - 9.0) < 0.1e-3
    with pytest.raises(OffsetError, match="does not match"):
        estimate_offset(ref_p, clip_p, max_offset=3.0)  # the true offset is outside the search


@needs_ffmpeg
@pytest.mark.parametrize("shift", [12345, -777])
def test_video_sound_track_against_shifted_wav(tmp_path, shift) -> None:
    """GRID video (MPEG-1 + MP2 audio, 44.1 kHz stereo) as the reference; a WAV extracted from it
    with ffmpeg, shifted by a known number of samples and re-encoded at 16 bit, as the clip."""
    video = DATA / "video" / "bbaf2n.mpg"
    wav = tmp_path / "track.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(video), "-vn", "-ac", "1", str(wav)], check=True)
    x, rate = sf.read(wav, dtype="float32")
    assert rate == 44100
    clip = np.concatenate([np.zeros(shift, np.float32), x]) if shift > 0 else x[-shift:]
    clip_p = tmp_path / "clip.wav"
    sf.write(clip_p, clip, rate, subtype="PCM_16")
    res = estimate_offset(video, clip_p)
    assert abs(res.offset - (-shift / rate)) < 0.1e-3, res
    # 25 fps: the frame to put the strip at
    assert res.frame(25.0) == pytest.approx(-shift / rate * 25, abs=0.01)
    mono, r = read_any(video)
    assert r == 44100 and mono.ndim == 1


def test_mismatched_recordings_are_refused(speech) -> None:
    other, rate = sf.read(DATA / "aligned" / "cold_corpus.wav", dtype="float32")
    with pytest.raises(OffsetError, match="does not match"):
        estimate_offset_arrays(speech, RATE, other[: 10 * rate], rate)
    res = estimate_offset_arrays(speech, RATE, other[: 10 * rate], rate, refuse=False)
    assert res.confidence < 0.5 and any("does not match" in w for w in res.warnings)


def test_noise_against_speech_is_refused(speech, noise) -> None:
    with pytest.raises(OffsetError, match="does not match"):
        estimate_offset_arrays(speech, RATE, noise, RATE)


def test_silence_short_and_bad_files(tmp_path, speech) -> None:
    with pytest.raises(OffsetError, match="silent"):
        estimate_offset_arrays(speech, RATE, np.zeros(RATE * 3, np.float32), RATE)
    with pytest.raises(OffsetError, match="too short"):
        estimate_offset_arrays(speech, RATE, speech[: RATE // 10], RATE)
    with pytest.raises(AudioError, match="not found"):
        estimate_offset(tmp_path / "missing.wav", tmp_path / "missing2.wav")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioError, match="empty"):
        read_any(empty)
    no_samples = tmp_path / "zero.wav"
    sf.write(no_samples, np.zeros(0, np.float32), RATE)
    with pytest.raises(AudioError, match="no samples"):
        read_any(no_samples)
    junk = tmp_path / "notes.wav"
    junk.write_text("this is not audio at all\n" * 20)
    with pytest.raises(AudioError):
        read_any(junk)


@pytest.mark.slow
def test_one_hour_reference(speech) -> None:
    """1 h reference (speech placed in seeded noise): two-stage search, still to the sample."""
    rng = np.random.default_rng(0)
    ref = (rng.standard_normal(3600 * RATE, dtype=np.float32) * 0.01)
    pos = round(2400.123 * RATE)
    ref[pos : pos + len(speech)] += speech
    clip = ref[pos - 2 * RATE : pos + len(speech)] * 0.5
    res = estimate_offset_arrays(ref, RATE, clip, RATE)
    assert abs(res.offset - (pos - 2 * RATE) / RATE) < 0.1e-3


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    cli_sync.add_parser(sub)
    return parser.parse_args(argv)


def test_cli_offset(tmp_path, speech, capsys) -> None:
    ref_p, clip_p, other_p = tmp_path / "ref.wav", tmp_path / "clip.wav", tmp_path / "other.wav"
    sf.write(ref_p, speech, RATE)
    sf.write(clip_p, speech[RATE * 2 : RATE * 8], RATE)
    other, rate = sf.read(DATA / "cmu_arctic_us_aew_a0001.wav", dtype="float32")
    sf.write(other_p, other, rate)
    out = tmp_path / "o.json"
    args = _parse(["offset", str(ref_p), str(clip_p), "--json", str(out), "--fps", "24"])
    assert args.func(args) == 0
    data = json.loads(out.read_text())
    assert data["offset"] == pytest.approx(2.0, abs=1e-4) and data["frame"] == pytest.approx(48.0, abs=0.01)
    assert "offset +2.0000" in capsys.readouterr().out
    args = _parse(["offset", str(ref_p), str(other_p)])
    assert args.func(args) == 1
    assert "does not match" in capsys.readouterr().err
