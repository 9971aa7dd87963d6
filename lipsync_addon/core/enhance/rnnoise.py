"""RNNoise (the neural denoiser shipped in the ``pyrnnoise`` wheel) run sample-aligned.

RNNoise works on 48 kHz audio in 480-sample frames and delays its output by
:data:`RNNOISE_DELAY` samples (measured, see ``presets.json`` and the alignment test). We resample to
48 kHz with a zero-phase polyphase filter, run the frames, drop the delay, and resample back, so
the output lines up with the input to the sample. Long clips are cut into pieces that run on all
cores (ctypes releases the GIL), each piece warmed up on the audio before it and cross-faded.

The shared library is loaded straight from the installed package with ctypes (the package's own
Python wrapper pulls in PyAV and matplotlib, which we do not need).
"""

from __future__ import annotations

import ctypes
import glob
import importlib.util
import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..audio import resample, resample_span
from ..types import CancelToken, LipSyncError

#: RNNoise's own rate and frame size (samples).
RNNOISE_RATE = 48000
RNNOISE_FRAME = 480
#: Output delay of rnnoise_process_frame at 48 kHz, samples (measured by cross-correlation).
RNNOISE_DELAY = 960
#: Piece length for parallel processing, warm-up before each piece and cross-fade, seconds.
_PIECE_S = 20.0
_WARMUP_S = 1.0
_XFADE_S = 0.02

_lib_lock = threading.Lock()
_lib: ctypes.CDLL | None = None


class EnhanceError(LipSyncError):
    """Audio enhancement cannot run (missing denoiser library, bad preset or option)."""


def _package_folder() -> str | None:
    """Folder of the installed ``pyrnnoise`` package (not imported), or None.

    The wheel keeps its files under ``pyrnnoise-<version>.data/purelib/``. pip moves them into
    site-packages; Blender 4.2's extension installer leaves them there (4.5 moves them), so the
    package is also looked for in that folder on every ``sys.path`` entry.
    """
    import sys

    spec = importlib.util.find_spec("pyrnnoise")
    if spec is not None and spec.submodule_search_locations:
        return next(iter(spec.submodule_search_locations))
    for entry in sys.path:
        for data in sorted(glob.glob(os.path.join(entry, "pyrnnoise-*.data", "purelib", "pyrnnoise"))):
            if os.path.isdir(data):
                return data
    return None


def _library() -> ctypes.CDLL:
    global _lib
    with _lib_lock:
        if _lib is not None:
            return _lib
        folder = _package_folder()
        if folder is None:
            raise EnhanceError(
                "The neural denoiser (RNNoise) is not installed: run scripts/setup.sh, or "
                "'pip install pyrnnoise==0.4.5', or choose the 'wiener' or 'spectral' denoiser."
            )
        names = {"linux": "librnnoise.so", "darwin": "librnnoise.dylib", "win32": "rnnoise.dll"}
        import sys

        name = names.get(sys.platform, "librnnoise.so")
        path = os.path.join(folder, name)
        try:
            lib = ctypes.CDLL(path)
        except OSError as exc:
            raise EnhanceError(f"Cannot load the RNNoise library {path}: {exc}") from exc
        lib.rnnoise_create.argtypes = [ctypes.c_void_p]
        lib.rnnoise_create.restype = ctypes.c_void_p
        lib.rnnoise_destroy.argtypes = [ctypes.c_void_p]
        lib.rnnoise_destroy.restype = None
        lib.rnnoise_get_frame_size.restype = ctypes.c_int
        # plain addresses (ints) for the frame buffers: no pointer object built per frame
        lib.rnnoise_process_frame.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        lib.rnnoise_process_frame.restype = ctypes.c_float
        if lib.rnnoise_get_frame_size() != RNNOISE_FRAME:
            raise EnhanceError("Unexpected RNNoise frame size; reinstall pyrnnoise==0.4.5.")
        _lib = lib
        return lib


def available() -> bool:
    """True when the RNNoise library can be loaded."""
    try:
        _library()
    except EnhanceError:
        return False
    return True


def _run_frames(x48: np.ndarray, cancel: CancelToken | None) -> tuple[np.ndarray, np.ndarray]:
    """RNNoise over a 48 kHz float signal in [-1, 1]; returns (aligned output, speech prob per frame)."""
    lib = _library()
    n = len(x48)
    n_frames = (n + RNNOISE_DELAY) // RNNOISE_FRAME + 1
    buf = np.zeros(n_frames * RNNOISE_FRAME, dtype=np.float32)
    buf[:n] = x48 * 32768.0  # RNNoise expects the int16 range
    out = np.empty_like(buf)
    probs = np.empty(n_frames, dtype=np.float32)
    state = lib.rnnoise_create(None)
    process = lib.rnnoise_process_frame
    step = RNNOISE_FRAME * 4
    ins = range(buf.ctypes.data, buf.ctypes.data + n_frames * step, step)
    outs = range(out.ctypes.data, out.ctypes.data + n_frames * step, step)
    try:
        for first in range(0, n_frames, 2000):  # cancel checked every 20 s of audio
            if cancel is not None:
                cancel.check()
            last = min(n_frames, first + 2000)
            probs[first:last] = [process(state, o, i) for o, i in zip(outs[first:last], ins[first:last], strict=True)]
    finally:
        lib.rnnoise_destroy(state)
    return out[RNNOISE_DELAY:RNNOISE_DELAY + n] / 32768.0, probs


def rnnoise_denoise(
    samples: np.ndarray, rate: int, *, cancel: CancelToken | None = None, workers: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Denoise mono ``samples`` (float, rate Hz) with RNNoise, output sample-aligned with the input.

    Returns:
        (denoised float32 samples, same length and rate; per-10-ms speech probability in [0, 1]).
    """
    x_in = samples.astype(np.float32)
    n = round(len(x_in) * RNNOISE_RATE / rate)  # length at 48 kHz (as resample gives)
    piece, warm, xf = int(_PIECE_S * RNNOISE_RATE), int(_WARMUP_S * RNNOISE_RATE), int(_XFADE_S * RNNOISE_RATE)
    n_workers = workers or max(1, os.cpu_count() or 1)
    if (n_workers == 1 and n <= piece * 1.5) or n <= 4 * warm:
        y48, probs = _run_frames(resample(x_in, rate, RNNOISE_RATE), cancel)
        y = resample(y48, RNNOISE_RATE, rate)
    else:
        # equal pieces, a multiple of the worker count, none longer than _PIECE_S; each worker
        # resamples its own stretch (exactly the samples a whole-clip resampling gives)
        n_pieces = n_workers * max(1, int(np.ceil(n / (n_workers * piece))))
        size = int(np.ceil(n / n_pieces / RNNOISE_FRAME)) * RNNOISE_FRAME
        starts = list(range(0, n, size))
        bounds = [(s, starts[i + 1] if i + 1 < len(starts) else n) for i, s in enumerate(starts)]

        def job(se: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
            s, e = se
            a, b = max(0, s - warm), min(n, e + xf)
            y, p = _run_frames(resample_span(x_in, rate, RNNOISE_RATE, a, b), cancel)
            return y[s - a:], p[(s - a) // RNNOISE_FRAME:]

        n_threads = min(n_workers, len(bounds))
        with ThreadPoolExecutor(max_workers=n_threads) as pool:
            results = list(pool.map(job, bounds))
            y48 = np.zeros(n, dtype=np.float32)
            ramp = np.linspace(0.0, 1.0, xf, dtype=np.float32)
            prob_parts = []
            for (s, e), (y, p) in zip(bounds, results, strict=True):
                if s == 0:
                    y48[s:s + len(y)] = y
                else:
                    k = min(xf, len(y))
                    y48[s:s + k] = y48[s:s + k] * (1.0 - ramp[:k]) + y[:k] * ramp[:k]
                    y48[s + k:s + len(y)] = y[k:]
                prob_parts.append(p[: (e - s) // RNNOISE_FRAME])
            probs = np.concatenate(prob_parts)
            # back to the clip's rate, in as many stretches as threads
            m = round(n * rate / RNNOISE_RATE)
            cuts = np.linspace(0, m, n_threads + 1).astype(int)
            y = np.concatenate(list(pool.map(lambda ab: resample_span(y48, RNNOISE_RATE, rate, *ab),
                                             itertools.pairwise(cuts))))
    out = np.zeros(len(samples), dtype=np.float32)
    m = min(len(out), len(y))
    out[:m] = y[:m]
    return out, probs
