"""Audio input: formats, rates, channels, bit depths, bad files, resampling, VAD."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lipsync_addon.core.audio import (
    detect_speech,
    load_audio,
    resample,
    split_at_pauses,
    to_analysis,
    to_int16,
)
from lipsync_addon.core.types import ANALYSIS_RATE, AudioError

DATA = Path(__file__).resolve().parents[1] / "data" / "aligned"
SPEECH = DATA / "bobby.wav"  # real speech, 48 kHz


@pytest.fixture(scope="module")
def speech() -> tuple[np.ndarray, int]:
    data, rate = sf.read(SPEECH, dtype="float32")
    return data, rate


@pytest.mark.parametrize(
    ("fmt", "subtype", "ext"),
    [
        ("WAV", "PCM_U8", "wav"),
        ("WAV", "PCM_16", "wav"),
        ("WAV", "PCM_24", "wav"),
        ("WAV", "PCM_32", "wav"),
        ("WAV", "FLOAT", "wav"),
        ("FLAC", "PCM_16", "flac"),
        ("OGG", "VORBIS", "ogg"),
        ("MP3", "MPEG_LAYER_III", "mp3"),
    ],
)
def test_reads_common_formats(tmp_path: Path, speech, fmt: str, subtype: str, ext: str) -> None:
    data, rate = speech
    path = tmp_path / f"clip.{ext}"
    sf.write(path, data, rate, format=fmt, subtype=subtype)
    audio = load_audio(path)
    assert audio.rate == rate
    assert abs(audio.duration - len(data) / rate) < 0.06  # mp3/ogg may pad a frame
    assert audio.samples.dtype == np.float32
    assert np.max(np.abs(audio.samples)) > 0.1


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 96000])
def test_any_rate_resamples_to_16k_keeping_duration(tmp_path: Path, speech, rate: int) -> None:
    data, src_rate = speech
    data = resample(data, src_rate, rate)
    path = tmp_path / "r.wav"
    sf.write(path, data, rate)
    a = to_analysis(load_audio(path))
    assert a.rate == ANALYSIS_RATE
    assert abs(a.duration - len(data) / rate) < 1e-3
    assert a.source_rate == rate


def test_resample_preserves_timing_of_a_click() -> None:
    x = np.zeros(48000, dtype=np.float32)
    x[24000] = 1.0  # click at 0.5 s
    y = resample(x, 48000, 16000)
    assert len(y) == 16000
    assert abs(int(np.argmax(np.abs(y))) - 8000) <= 1


def test_resample_tone_frequency_is_kept() -> None:
    t = np.arange(44100) / 44100
    y = resample(np.sin(2 * np.pi * 440 * t).astype(np.float32), 44100, 16000)
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spectrum) * 16000 / len(y) - 440) < 2


def test_multichannel_is_mixed_to_mono(tmp_path: Path, speech) -> None:
    data, rate = speech
    stereo = np.stack([data, -data * 0.0 + data * 0.5, np.zeros_like(data), data], axis=1)
    path = tmp_path / "quad.wav"
    sf.write(path, stereo, rate)
    a = load_audio(path)
    assert a.source_channels == 4
    assert np.allclose(a.samples, data * 0.625, atol=1e-3)


def test_to_int16_rounds_instead_of_truncating() -> None:
    x = np.array([0.49 / 32767, -0.49 / 32767, 0.51 / 32767, 1.0, -1.0], dtype=np.float32)
    assert to_int16(x).tolist() == [0, 0, 1, 32767, -32767]


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "not found"),
        (b"", "empty"),
        (b"this is not audio at all, just text\n" * 20, "Supported formats"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 10, "Supported formats"),  # truncated header
    ],
)
def test_bad_files_give_clear_messages(tmp_path: Path, content: bytes | None, match: str) -> None:
    path = tmp_path / "clïp ünïcode.wav"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(AudioError, match=match):
        load_audio(path)


def test_zero_length_and_folder(tmp_path: Path) -> None:
    path = tmp_path / "zero.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError):
        load_audio(path)
    with pytest.raises(AudioError, match="folder"):
        load_audio(tmp_path)
    with pytest.raises(AudioError, match="No audio file"):
        load_audio("")


def test_vad_finds_speech_and_not_silence(speech) -> None:
    data, rate = speech
    regions = detect_speech(data, rate)
    assert regions, "speech expected"
    assert regions[0].start < 0.2 and regions[-1].end > 0.9
    assert detect_speech(np.zeros(rate, dtype=np.float32), rate) == []
    rng = np.random.default_rng(0)
    steady = (0.1 * rng.standard_normal(rate * 2)).astype(np.float32)
    assert detect_speech(steady, rate) == []


def test_split_at_pauses_covers_clip_and_cuts_in_pauses(speech) -> None:
    data, rate = speech
    gap = np.zeros(int(0.6 * rate), dtype=np.float32)
    long = np.concatenate([data, gap] * 12)  # ~22 s
    chunks = split_at_pauses(long, rate, max_chunk=5.0)
    assert chunks[0][0] == 0.0 and abs(chunks[-1][1] - len(long) / rate) < 1e-6
    for (_, e), (s, _) in itertools.pairwise(chunks):
        assert e == s
        assert abs(long[int(e * rate)]) < 1e-6  # cut inside a pause
    assert all(e - s <= 5.0 + 1e-6 for s, e in chunks)
