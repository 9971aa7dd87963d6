"""Audio input: any common file -> mono float32 at the analysis rate, plus pause detection.

Reads whatever libsndfile reads (WAV, FLAC, OGG/Vorbis, Opus, MP3 with libsndfile >= 1.1, AIFF, ...),
any sample rate, any channel count, 8-32-bit integer and float. Other formats and the sound track of
video files (AAC/M4A, MP4, MOV, MKV, WMA, ...) go through FFmpeg: inside Blender its own (the
Blender layer registers it with :func:`add_decoder`, so whatever Blender plays can be lip-synced),
else the ``ffmpeg`` program when it is installed. Analysis works on mono 16 kHz; playback in
Blender keeps the original file.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from math import gcd

import numpy as np

from .types import ANALYSIS_RATE, Audio, AudioError

#: File formats libsndfile reads here, on every platform.
SUPPORTED_FORMATS = "WAV, FLAC, OGG (Vorbis/Opus), MP3, AIFF"
#: What FFmpeg adds (Blender's own inside Blender, else the ffmpeg program when installed).
FFMPEG_FORMATS = "AAC/M4A, WMA, video files (MP4, MOV, MKV, AVI, ...) and most others"

#: What :func:`decode_with_ffmpeg` says about a file without sound (e.g. a video with no audio track).
NO_AUDIO_STREAM = "the file has no audio stream"
#: A decoder for files libsndfile cannot read: path -> (samples (frames, channels) float32, rate Hz).
Decoder = Callable[[str], tuple[np.ndarray, int]]
#: Extra decoders by name, tried in the order added, after libsndfile and before the ffmpeg program.
_DECODERS: dict[str, Decoder] = {}


def add_decoder(name: str, decoder: Decoder) -> None:
    """Let :func:`read_audio_file` (and so the whole pipeline) use ``decoder`` for files libsndfile
    cannot read. The Blender layer adds Blender's own FFmpeg here. Adding a name again replaces it."""
    _DECODERS[name] = decoder


def remove_decoder(name: str) -> None:
    """Forget a decoder added with :func:`add_decoder` (no error if it is not there)."""
    _DECODERS.pop(name, None)


def decode_with_ffmpeg(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """Decode the first audio stream of any file the ``ffmpeg`` program reads (video containers, AAC, ...).

    Returns (samples (frames, channels) float32, rate Hz) at the stream's own rate. The decoded
    audio starts at the stream's first sample (no padding for a container start time).

    Raises:
        AudioError: ffmpeg not installed, file unreadable, or no audio stream (:data:`NO_AUDIO_STREAM`);
            the message is the reason alone (:func:`read_audio_file` names the file).
    """
    import soundfile as sf

    exe = shutil.which("ffmpeg")
    if not exe:
        raise AudioError("the ffmpeg program is not installed")
    path = os.fspath(path)
    with tempfile.TemporaryDirectory(prefix="lipsync_ff_") as tmp:
        out = os.path.join(tmp, "track.wav")
        cmd = [exe, "-nostdin", "-v", "error", "-i", path, "-map", "0:a:0", "-vn", "-c:a", "pcm_f32le",
               "-rf64", "auto", out]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
        if proc.returncode != 0 or not os.path.exists(out) or os.path.getsize(out) <= 44:
            detail = (proc.stderr or "").strip().splitlines()
            reason = detail[-1] if detail else "no output"
            if "matches no streams" in (proc.stderr or ""):
                reason = NO_AUDIO_STREAM
            raise AudioError(reason)
        data, rate = sf.read(out, dtype="float32", always_2d=True)
    return data, int(rate)


def read_audio_file(path: str | os.PathLike[str], what: str = "audio file") -> tuple[np.ndarray, int]:
    """Samples of an audio file, or of a video's first sound track, keeping its channels and rate.

    libsndfile first; then the decoders added with :func:`add_decoder` (Blender's FFmpeg inside
    Blender); then the ``ffmpeg`` program if it is installed.

    Returns:
        (samples (frames, channels) float32, rate Hz).

    Raises:
        AudioError: missing, empty or folder; no samples; or no reader decodes it (the message says
            what each one said and which formats work).
    """
    import soundfile as sf

    path = check_input_file(path, what)
    try:
        data, rate = sf.read(path, dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises LibsndfileError/RuntimeError/TypeError
        tried = [f"libsndfile: {exc}"]
    else:
        if data.shape[0] == 0:
            raise AudioError(f"Audio file has no samples: {path}")
        return data, int(rate)
    for name, decoder in [*_DECODERS.items(), ("ffmpeg", decode_with_ffmpeg)]:
        try:
            data, rate = decoder(path)
        except Exception as exc:  # a decoder's own errors (aud.error, AudioError, OSError, ...)
            tried.append(f"{name}: {str(exc).replace(chr(10), ' ')}")
            continue
        data = np.asarray(data, dtype=np.float32)
        data = data.reshape(len(data), -1) if data.ndim != 2 else data
        if data.shape[0] > 0 and rate > 0:
            return data, int(rate)
        tried.append(f"{name}: no samples")
    name = os.path.basename(path)
    if any(NO_AUDIO_STREAM in t for t in tried):
        raise AudioError(f"'{name}' has no sound track (a video without audio?). Pick the dialogue clip, or a "
                         "video with its sound.")
    raise AudioError(
        f"Cannot read '{name}' as audio ({'; '.join(tried)}). Supported formats: "
        f"{SUPPORTED_FORMATS}; through FFmpeg (Blender's own inside Blender, else the ffmpeg program) also "
        f"{FFMPEG_FORMATS}. Otherwise convert the clip to WAV."
    )


#: Shortest clip we analyse, seconds.
MIN_DURATION = 0.05


def load_audio(path: str | os.PathLike[str]) -> Audio:
    """Load an audio file (or a video's sound track) as mono float32 at its own sample rate.

    Args:
        path: file path (any characters).

    Returns:
        Audio with ``samples`` in [-1, 1], ``rate`` = file rate (Hz), source info filled in.

    Raises:
        AudioError: missing, empty, corrupt, non-audio or zero-length file (message names the
            supported formats).
    """
    path = os.fspath(path)
    data, rate = read_audio_file(path)
    return audio_from_samples(data, rate, path)


def audio_from_samples(data: np.ndarray, rate: int, path: str | os.PathLike[str]) -> Audio:
    """Mono :class:`Audio` from decoded ``data`` (frames, channels) at ``rate`` Hz read from ``path``,
    with :func:`load_audio`'s checks (no samples, too short) and clean-up (non-finite values, range).

    Raises:
        AudioError: no samples, or shorter than :data:`MIN_DURATION`.
    """
    path = os.fspath(path)
    if data.shape[0] == 0 or rate <= 0:
        raise AudioError(f"Audio file has no samples: {path}")
    channels = int(data.shape[1])
    mono = data.mean(axis=1, dtype=np.float64).astype(np.float32) if channels > 1 else data[:, 0].copy()
    if not np.all(np.isfinite(mono)):
        mono = np.nan_to_num(mono, nan=0.0, posinf=1.0, neginf=-1.0)
    duration = len(mono) / rate
    if duration < MIN_DURATION:
        raise AudioError(
            f"Audio clip is too short to analyse ({duration * 1000:.0f} ms; at least "
            f"{MIN_DURATION * 1000:.0f} ms needed): {path}"
        )
    return Audio(
        samples=np.clip(mono, -1.0, 1.0),
        rate=int(rate),
        source_path=os.path.abspath(path),
        source_rate=int(rate),
        source_channels=channels,
    )


def check_input_file(path: str | os.PathLike[str], what: str = "audio file") -> str:
    """Return ``path`` as a string if it names a non-empty file; else raise AudioError saying why."""
    path = os.fspath(path)
    if not path:
        raise AudioError(f"No {what} was given. Pick a dialogue clip ({SUPPORTED_FORMATS}).")
    if not os.path.exists(path):
        raise AudioError(f"{what[0].upper()}{what[1:]} not found: {path}")
    if os.path.isdir(path):
        raise AudioError(f"Expected {'an' if what[0] in 'aeiou' else 'a'} {what} but got a folder: {path}")
    if os.path.getsize(path) == 0:
        raise AudioError(f"{what[0].upper()}{what[1:]} is empty (0 bytes): {path}")
    return path


def resample(samples: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """Resample mono float samples from ``rate`` to ``target_rate`` (Hz) with a polyphase filter.

    Exact rational resampling (scipy.signal.resample_poly, Kaiser window) so timing is preserved:
    output length = round(len * target / rate).
    """
    if rate == target_rate:
        return samples.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    g = gcd(int(rate), int(target_rate))
    up, down = int(target_rate) // g, int(rate) // g
    out = resample_poly(samples.astype(np.float64), up, down, window=("kaiser", 5.0))
    n = round(len(samples) * target_rate / rate)
    return out[:n].astype(np.float32)


def resample_span(samples: np.ndarray, rate: int, target_rate: int, start: int, stop: int) -> np.ndarray:
    """``resample(samples, rate, target_rate)[start:stop]`` computed from the input it depends on only.

    The polyphase filter reaches ``10 * max(up, down)`` samples of the up-sampled signal each side, so
    a stretch of the input with that much context (cut on a multiple of ``down`` to keep the filter
    phase) gives the same samples as resampling the whole clip: pieces can be resampled in parallel.
    """
    if rate == target_rate:
        return samples[start:stop].astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    g = gcd(int(rate), int(target_rate))
    up, down = int(target_rate) // g, int(rate) // g
    ctx = (10 * max(up, down)) // up + 2  # input samples each side that reach an output sample
    i0 = max(0, start * down // up - ctx)
    i0 -= i0 % down
    i1 = min(len(samples), -(-stop * down // up) + ctx)
    seg = resample_poly(samples[i0:i1].astype(np.float64), up, down, window=("kaiser", 5.0))
    off = i0 * up // down
    return seg[start - off: stop - off].astype(np.float32)


def to_analysis(audio: Audio) -> Audio:
    """Return ``audio`` as mono float32 at :data:`ANALYSIS_RATE` (16 kHz)."""
    if audio.rate == ANALYSIS_RATE:
        return audio
    return Audio(
        samples=resample(audio.samples, audio.rate, ANALYSIS_RATE),
        rate=ANALYSIS_RATE,
        source_path=audio.source_path,
        source_rate=audio.source_rate or audio.rate,
        source_channels=audio.source_channels,
    )


def to_int16(samples: np.ndarray) -> np.ndarray:
    """Float [-1, 1] -> int16 with rounding (truncation adds a DC bias that hurts recognition)."""
    return np.clip(np.rint(samples * 32767.0), -32768, 32767).astype(np.int16)


@dataclass
class SpeechRegion:
    """A span of probable speech, seconds."""

    start: float
    end: float


def frame_energy_db(samples: np.ndarray, rate: int, *, hop: float = 0.01, win: float = 0.025) -> np.ndarray:
    """Short-time energy in dB per hop (default 10 ms hop, 25 ms window)."""
    hop_n = max(1, round(hop * rate))
    win_n = max(hop_n, round(win * rate))
    n_frames = max(1, 1 + (len(samples) - win_n) // hop_n) if len(samples) >= win_n else 1
    padded = np.pad(samples.astype(np.float64), (0, max(0, (n_frames - 1) * hop_n + win_n - len(samples))))
    idx = np.arange(win_n)[None, :] + hop_n * np.arange(n_frames)[:, None]
    frames = padded[idx]
    frames = frames - frames.mean(axis=1, keepdims=True)
    energy = (frames**2).mean(axis=1)
    return 10.0 * np.log10(energy + 1e-12)


def detect_speech(
    samples: np.ndarray,
    rate: int,
    *,
    min_pause: float = 0.25,
    min_speech: float = 0.08,
    margin: float = 0.05,
) -> list[SpeechRegion]:
    """Energy-based voice activity: regions likely to contain speech, in seconds.

    The threshold adapts to the clip: between the noise floor (10th percentile of frame energy)
    and the speech level (95th percentile). Pauses shorter than ``min_pause`` seconds are bridged;
    regions shorter than ``min_speech`` are dropped; each region is widened by ``margin`` seconds.
    Returns [] for silence-only clips.
    """
    hop = 0.01
    db = frame_energy_db(samples, rate, hop=hop)
    if db.size == 0:
        return []
    floor, peak = np.percentile(db, 10), np.percentile(db, 95)
    if peak < -60.0 or peak - floor < 6.0:
        return []  # digital silence or a flat signal (steady noise/hum)
    threshold = floor + 0.3 * (peak - floor)
    active = db > threshold
    regions: list[list[float]] = []
    start = None
    for i, a in enumerate(active):
        if a and start is None:
            start = i
        elif not a and start is not None:
            regions.append([start * hop, i * hop])
            start = None
    if start is not None:
        regions.append([start * hop, len(active) * hop])
    merged: list[list[float]] = []
    for r in regions:
        if merged and r[0] - merged[-1][1] < min_pause:
            merged[-1][1] = r[1]
        else:
            merged.append(r)
    duration = len(samples) / rate
    out = []
    for s, e in merged:
        if e - s >= min_speech:
            out.append(SpeechRegion(max(0.0, s - margin), min(duration, e + margin)))
    return out


def split_at_pauses(
    samples: np.ndarray,
    rate: int,
    *,
    max_chunk: float = 30.0,
    min_pause: float = 0.3,
) -> list[tuple[float, float]]:
    """Cut a long clip into chunks of at most ~``max_chunk`` seconds, cutting in the middle of pauses.

    Returns (start, end) in seconds covering the whole clip without gaps or overlap.
    Cuts are placed in the longest pause inside each window; if a window has no pause,
    the lowest-energy 10 ms frame is used.
    """
    duration = len(samples) / rate
    if duration <= max_chunk:
        return [(0.0, duration)]
    hop = 0.01
    db = frame_energy_db(samples, rate, hop=hop)
    regions = detect_speech(samples, rate, min_pause=min_pause)
    # pause midpoints with their lengths
    pauses: list[tuple[float, float]] = []
    prev_end = 0.0
    for r in regions:
        if r.start - prev_end >= min_pause:
            pauses.append(((prev_end + r.start) / 2.0, r.start - prev_end))
        prev_end = r.end
    cuts = [0.0]
    while duration - cuts[-1] > max_chunk:
        lo, hi = cuts[-1] + max_chunk * 0.5, cuts[-1] + max_chunk
        inside = [p for p in pauses if lo <= p[0] <= hi]
        if inside:
            cut = max(inside, key=lambda p: p[1])[0]
        else:
            a, b = int(lo / hop), min(int(hi / hop), len(db))
            cut = (a + int(np.argmin(db[a:b]))) * hop if b > a else hi
        cuts.append(cut)
    cuts.append(duration)
    return list(itertools.pairwise(cuts))
