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
import os
import threading

import numpy as np

from ..audio import resample
from ..types import CancelToken, LipSyncError
from .pieces import fit_length, run_in_pieces

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
    n_workers = workers or max(1, os.cpu_count() or 1)
    if (n_workers == 1 and n <= _PIECE_S * RNNOISE_RATE * 1.5) or n <= 4 * _WARMUP_S * RNNOISE_RATE:
        y48, probs = _run_frames(resample(x_in, rate, RNNOISE_RATE), cancel)
        y = resample(y48, RNNOISE_RATE, rate)
    else:
        y, parts = run_in_pieces(x_in, rate, RNNOISE_RATE, lambda x48: _run_frames(x48, cancel), workers=n_workers,
                                 piece_s=_PIECE_S, warmup_s=_WARMUP_S, xfade_s=_XFADE_S, frame=RNNOISE_FRAME)
        probs = np.concatenate([p[lead // RNNOISE_FRAME:][: (e - s) // RNNOISE_FRAME] for s, e, lead, p in parts])
    return fit_length(y, len(samples)), probs
