"""Audio input: formats, rates, channels, bit depths, bad files, resampling, VAD."""

from __future__ import annotations

import itertools
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lipsync_addon.core import audio as audio_module
from lipsync_addon.core.audio import (
    add_decoder,
    detect_speech,
    load_audio,
    read_audio_file,
    remove_decoder,
    resample,
    split_at_pauses,
    to_analysis,
    to_int16,
)
from lipsync_addon.core.types import ANALYSIS_RATE, AudioError

DATA = Path(__file__).resolve().parents[1] / "data" / "aligned"
SPEECH = DATA / "bobby.wav"  # real speech, 48 kHz
M4A = DATA.parent / "formats" / "bobby.m4a"  # the same speech as AAC in an MP4 container
VIDEO = DATA.parent / "video" / "bbaf2n.mpg"  # real GRID video: MPEG-1 + MP2 sound, 44.1 kHz stereo
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="the ffmpeg program is not installed")


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


def _lag(a: np.ndarray, b: np.ndarray, span: int = 20000) -> int:
    """Samples by which ``a`` lags ``b`` (cross-correlation peak over the first ``span`` samples)."""
    n = min(len(a), len(b), span)
    c = np.correlate(a[:n].astype(np.float64), b[:n].astype(np.float64), "full")
    return int(np.argmax(c)) - (n - 1)


@pytest.fixture
def no_added_decoders(monkeypatch) -> None:
    """No decoder added by the Blender layer (the Blender tests, in the same process, register the add-on)."""
    monkeypatch.setattr(audio_module, "_DECODERS", {})


@needs_ffmpeg
def test_aac_and_a_videos_sound_track_are_read_through_ffmpeg(speech, no_added_decoders) -> None:
    """Formats libsndfile cannot read (AAC/M4A, video containers) go through the ffmpeg program,
    sample-aligned with the original."""
    data, rate = speech
    a = load_audio(M4A)
    assert a.rate == rate and a.source_channels == 1
    assert abs(a.duration - len(data) / rate) < 0.025  # AAC pads to whole 1024-sample frames
    assert _lag(a.samples, data) == 0
    n = min(len(a.samples), len(data))
    assert np.corrcoef(a.samples[:n], data[:n])[0, 1] > 0.99
    v = load_audio(VIDEO)
    assert v.rate == 44100 and v.source_channels == 2 and 2.5 < v.duration < 3.5
    assert detect_speech(v.samples, v.rate)


@needs_ffmpeg
def test_a_video_without_sound_says_so(tmp_path: Path, no_added_decoders) -> None:
    silent_video = tmp_path / "picture only.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc=duration=1:size=64x48:rate=24",
                    "-c:v", "mpeg4", str(silent_video)], check=True, timeout=60)
    with pytest.raises(AudioError, match=r"'picture only\.mp4' has no sound track"):
        load_audio(silent_video)


def test_without_ffmpeg_the_message_says_how_to_read_other_formats(monkeypatch, no_added_decoders) -> None:
    monkeypatch.setattr(audio_module.shutil, "which", lambda name: None)
    with pytest.raises(AudioError) as info:
        load_audio(M4A)
    message = str(info.value)
    assert "bobby.m4a" in message and "ffmpeg program is not installed" in message
    assert "Supported formats: WAV" in message and "AAC/M4A" in message and "Blender" in message


def test_added_decoders_come_before_ffmpeg_and_can_be_removed(monkeypatch, speech, no_added_decoders) -> None:
    """The Blender layer adds Blender's own FFmpeg this way; a decoder that fails passes the file on."""
    data, rate = speech
    calls: list[str] = []

    def failing(path: str) -> tuple[np.ndarray, int]:
        calls.append("failing")
        raise OSError("cannot open")

    def fake(path: str) -> tuple[np.ndarray, int]:
        calls.append(path)
        return np.stack([data, data], axis=1), rate

    monkeypatch.setattr(audio_module.shutil, "which", lambda name: None)  # ffmpeg cannot be what decodes it
    add_decoder("failing", failing)
    add_decoder("test", fake)
    try:
        got, got_rate = read_audio_file(M4A)
        assert calls == ["failing", str(M4A)] and got_rate == rate and got.shape == (len(data), 2)
        assert np.allclose(load_audio(M4A).samples, np.clip(data, -1, 1))
    finally:
        remove_decoder("failing")
        remove_decoder("test")
    with pytest.raises(AudioError, match="not installed"):
        read_audio_file(M4A)
