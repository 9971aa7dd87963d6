"""DeepFilterNet3 (neural speech enhancement, Schröter et al. 2023) run offline with numpy, sample-aligned.

The released DeepFilterNet3 networks (``models/deepfilternet3``: the operator graph and the weights
converted unchanged from the project's ONNX export by ``scripts/convert_deepfilternet.py``) run on the
whole clip at once through a small interpreter for the 22 ONNX operators they use, so the add-on
needs no inference runtime (onnxruntime, torch) and works wherever numpy does, macOS included.

Signal path (48 kHz, 20 ms Vorbis-windowed frames, 10 ms hop):
1. STFT; features: 32 ERB-band levels (dB, running-mean normalised) and the first 96 bins
   (0-4.8 kHz) as unit-normalised complex values, both with a 1 s exponential normaliser;
2. the encoder and two decoders give per-frame ERB gains and, for the first 96 bins, a 5-tap
   complex "deep filter" over frames t-2..t+2; the networks look 2 frames (20 ms) ahead, which
   offline processing simply reads from the future frames (no added delay);
3. inverse STFT with overlap-add; the output is trimmed by the STFT's own 10 ms, so it lines up
   with the input to the sample (the alignment test proves it by cross-correlation).

The result matches DeepFilterNet's own real-time runtime (libDF over tract) to float rounding on
real noisy speech (relative error 1e-6; ``tests/unit/test_deepfilter.py`` checks it against a fixture
libDF made). Clips over 12 s are cut into pieces processed on all cores (``pieces.run_in_pieces``)
with 2 s of warm-up each (the normalisers' time constant is 1 s) and 20 ms cross-fades; each
thread holds BLAS to one thread meanwhile (threadpoolctl).

Speed on this 2-core machine: ~25x real time on one core, ~40x on two (RNNoise: ~75x).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..audio import resample
from ..types import CancelToken
from .pieces import fit_length, run_in_pieces
from .rnnoise import EnhanceError

#: DeepFilterNet3's rate (Hz), FFT size and hop (samples), bands (config.ini of the release).
DF_RATE = 48000
_FFT = 960
_HOP = 480
_NB_ERB = 32
_NB_DF = 96
_DF_ORDER = 5
#: Frames the networks look ahead (conv_lookahead) and the deep filter's future taps (df_lookahead).
_CONV_LOOKAHEAD = 2
_DF_LOOKAHEAD = 2
#: Exponential normaliser factor per 10 ms hop (tau = 1 s, rounded as the release rounds it).
_ALPHA = 0.99
#: Initial states of the normalisers (dB for the ERB levels, magnitude for the complex bins).
_MEAN_NORM_INIT = (-60.0, -90.0)
_UNIT_NORM_INIT = (0.001, 0.0001)
#: Piece length, warm-up before each piece and cross-fade for parallel processing, seconds. 10 s pieces
#: run as fast as 20 s ones (39-47x real time on 2 cores, 120 s clip, noisy runs) with a peak RSS of
#: ~510 MB instead of ~900 MB.
_PIECE_S = 10.0
_WARMUP_S = 2.0
_XFADE_S = 0.02
#: Clips up to this long (s) run in one pass; longer ones in pieces on every core.
_MIN_SPLIT_S = 12.0
#: Frames per block of the convolutions (bounds the stacked taps to ~16 MB on a 20 s piece's largest layer).
_CONV_BLOCK = 128


def model_folder() -> Path | None:
    """Folder with ``graph.json`` and ``weights.npz``: the add-on's own ``models/`` (installed
    extension) or the repository's ``models/`` (development checkout); None when neither has it."""
    here = Path(__file__).resolve()
    for base in (here.parents[2], here.parents[3]):  # lipsync_addon/, repository root
        folder = base / "models" / "deepfilternet3"
        if (folder / "graph.json").is_file() and (folder / "weights.npz").is_file():
            return folder
    return None


def available() -> bool:
    """True when the DeepFilterNet3 weights are installed."""
    return model_folder() is not None


# --------------------------------------------------------------------------------------------------
# A minimal ONNX interpreter (opset 12, float32): exactly the operators these graphs use.


def _slice(x: np.ndarray, starts: np.ndarray, ends: np.ndarray, axes: np.ndarray | None = None,
           steps: np.ndarray | None = None) -> np.ndarray:
    index = [slice(None)] * x.ndim
    axes_list = range(len(starts)) if axes is None else [int(a) for a in axes]
    steps_list = [1] * len(starts) if steps is None else [int(s) for s in steps]
    for a, s, e, st in zip(axes_list, starts, ends, steps_list, strict=True):
        index[a] = slice(int(s), int(e), st)  # Python clamps out-of-range bounds as ONNX does
    return x[tuple(index)]


def _pad(x: np.ndarray, pads: np.ndarray, value: np.ndarray | None = None) -> np.ndarray:
    nd = x.ndim
    begin, end = [int(p) for p in pads[:nd]], [int(p) for p in pads[nd:]]
    fill = 0.0 if value is None or value.size == 0 else float(value.reshape(-1)[0])
    crop = tuple(slice(max(0, -b), x.shape[i] - max(0, -e) or None) for i, (b, e) in enumerate(zip(begin, end,
                                                                                                 strict=True)))
    x = x[crop]
    width = [(max(0, b), max(0, e)) for b, e in zip(begin, end, strict=True)]
    return np.pad(x, width, mode="constant", constant_values=fill) if any(w != (0, 0) for w in width) else x


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, attrs: dict[str, Any]) -> np.ndarray:
    """2-D grouped convolution, NCHW (N = batch, C = channels, H = frames, W = bands)."""
    g = int(attrs.get("group", 1))
    kt, kf = w.shape[2], w.shape[3]
    st, sf = attrs.get("strides", [1, 1])
    pt0, pf0, pt1, pf1 = attrs.get("pads", [0, 0, 0, 0])
    if attrs.get("dilations", [1, 1]) != [1, 1]:
        raise EnhanceError("DeepFilterNet graph: dilated convolutions are not supported.")
    x = np.pad(x, ((0, 0), (0, 0), (pt0, pt1), (pf0, pf1)))
    nb, c, t, f = x.shape
    t_out, f_out = (t - kt) // st + 1, (f - kf) // sf + 1
    m = w.shape[0]
    cg, mg = c // g, m // g
    xg = x.reshape(nb, g, cg, t, f)
    wcol = w.reshape(g, mg, cg * kt * kf)
    out = np.empty((nb, g, mg, t_out, f_out), dtype=np.float32)
    for t0 in range(0, t_out, _CONV_BLOCK):  # blocks of frames bound the memory of the stacked taps
        t1 = min(t_out, t0 + _CONV_BLOCK)
        patches = [xg[..., t0 * st + i: (t1 - 1) * st + i + 1: st, j: j + (f_out - 1) * sf + 1: sf]
                   for i in range(kt) for j in range(kf)]
        if cg == 1:  # depthwise, or one input channel per group: broadcast products
            acc = wcol[:, :, 0, None, None] * patches[0]
            for k in range(1, len(patches)):
                acc += wcol[:, :, k, None, None] * patches[k]
            out[..., t0:t1, :] = acc
        else:  # every tap stacked under the channels (im2col), one matrix product per group
            cols = np.stack(patches, axis=3).reshape(nb, g, cg * kt * kf, (t1 - t0) * f_out)
            out[..., t0:t1, :] = np.matmul(wcol, cols).reshape(nb, g, mg, t1 - t0, f_out)
    out = out.reshape(nb, m, t_out, f_out)
    if b is not None:
        out += b.reshape(1, -1, 1, 1)
    return out


def _conv_transpose(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, attrs: dict[str, Any]) -> np.ndarray:
    """2-D grouped transposed convolution, NCHW, weights (C_in, C_out / group, kH, kW)."""
    g = int(attrs.get("group", 1))
    st, sf = attrs.get("strides", [1, 1])
    pt0, pf0, pt1, pf1 = attrs.get("pads", [0, 0, 0, 0])
    ot, of = attrs.get("output_padding", [0, 0])
    nb, c, t, f = x.shape
    kt, kf = w.shape[2], w.shape[3]
    m = w.shape[1] * g
    full_t, full_f = (t - 1) * st + kt + ot, (f - 1) * sf + kf + of
    out = np.zeros((nb, g, m // g, full_t, full_f), dtype=np.float32)
    xg = x.reshape(nb, g, c // g, t, f)
    wg = w.reshape(g, c // g, m // g, kt, kf)
    for i in range(kt):
        for j in range(kf):
            contrib = np.einsum("gcm,ngctf->ngmtf", wg[:, :, :, i, j], xg, optimize=True)
            out[..., i: i + (t - 1) * st + 1: st, j: j + (f - 1) * sf + 1: sf] += contrib
    out = out.reshape(nb, m, full_t, full_f)[:, :, pt0: full_t - pt1, pf0: full_f - pf1]
    if b is not None:
        out = out + b.reshape(1, -1, 1, 1)
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (0.5 * (np.tanh(0.5 * x) + 1.0)).astype(np.float32)


def _gru(args: list[Any], attrs: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """ONNX GRU (inputs X, W, R, B, sequence_lens, initial_h), forward, gates z, r, h,
    ``linear_before_reset`` = 1."""
    x, w, r, b, _lens, h0 = (list(args) + [None] * 6)[:6]
    if int(attrs.get("linear_before_reset", 0)) != 1 or attrs.get("direction", "forward") != "forward":
        raise EnhanceError("DeepFilterNet graph: unsupported GRU variant.")
    hid = int(attrs["hidden_size"])
    t_len, batch = x.shape[0], x.shape[1]
    bias = np.zeros(6 * hid, np.float32) if b is None else b[0]
    xw = x @ w[0].T + bias[: 3 * hid]  # (T, B, 3H): every input projection at once
    rt = np.ascontiguousarray(r[0].T)
    rb = bias[3 * hid:]
    h = np.zeros((batch, hid), np.float32) if h0 is None else h0[0].astype(np.float32)
    ys = np.empty((t_len, batch, hid), dtype=np.float32)
    for k in range(t_len):
        hr = h @ rt + rb
        zr = xw[k, :, : 2 * hid] + hr[:, : 2 * hid]
        zr = 0.5 * (np.tanh(0.5 * zr) + 1.0)
        z, rg = zr[:, :hid], zr[:, hid:]
        n = np.tanh(xw[k, :, 2 * hid:] + rg * hr[:, 2 * hid:])
        h = (1.0 - z) * n + z * h
        ys[k] = h
    return ys[:, None], h[None]


def _einsum(eq: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if eq == "btgi,gih->btgh":  # grouped linear layer: one matmul per group
        bt, tt, g, i = a.shape
        out = np.matmul(a.reshape(bt * tt, g, i).transpose(1, 0, 2), b)  # (g, bt*tt, h)
        return out.transpose(1, 0, 2).reshape(bt, tt, g, -1)
    return np.einsum(eq, a, b, optimize=True)


class _Graph:
    """One network: nodes run in their stored (topological) order."""

    def __init__(self, spec: dict[str, Any], tensors: dict[str, np.ndarray], prefix: str) -> None:
        self.inputs: list[str] = spec["inputs"]
        self.outputs: list[str] = spec["outputs"]
        self.nodes: list[dict[str, Any]] = spec["nodes"]
        self.consts = {name: tensors[f"{prefix}/{name}"] for name in spec["initializers"]}
        for node in self.nodes:
            for key, value in node["attrs"].items():
                if isinstance(value, dict) and "tensor" in value:
                    node["attrs"][key] = tensors[value["tensor"]]
        unknown = {n["op"] for n in self.nodes} - set(_OPS)
        if unknown:
            raise EnhanceError(f"DeepFilterNet graph uses unsupported operators: {sorted(unknown)}")
        # intermediate tensors are dropped after their last use (activations are tens of MB each)
        last_use = {name: k for k, node in enumerate(self.nodes) for name in node["inputs"] if name}
        keep = set(self.outputs) | set(self.consts)
        self.drop = [[name for name in {*node["inputs"]} if name and last_use.get(name) == k and name not in keep]
                     for k, node in enumerate(self.nodes)]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        env: dict[str, np.ndarray] = dict(self.consts)
        env.update(feeds)
        for node, drop in zip(self.nodes, self.drop, strict=True):
            args = [env[name] if name else None for name in node["inputs"]]
            result = _OPS[node["op"]](args, node["attrs"])
            outs = result if isinstance(result, tuple) else (result,)
            for name, value in zip(node["outputs"], outs, strict=False):
                if name:
                    env[name] = value
            for name in drop:
                del env[name]
        return {name: env[name] for name in self.outputs}


def _cast(args: list[Any], a: dict[str, Any]) -> np.ndarray:
    to = {1: np.float32, 6: np.int32, 7: np.int64, 9: np.bool_, 11: np.float64}[int(a["to"])]
    return np.asarray(args[0]).astype(to)


def _reshape(args: list[Any], _a: dict[str, Any]) -> np.ndarray:
    x, shape = args[0], [int(s) for s in args[1]]
    shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return x.reshape(shape)


def _optional(args: list[Any], k: int) -> Any:
    return args[k] if len(args) > k else None


_OPS: dict[str, Any] = {
    "Constant": lambda _args, a: np.asarray(a["value"]),
    "ConstantOfShape": lambda args, a: np.full([int(s) for s in args[0]], np.asarray(a["value"]).reshape(-1)[0],
                                               dtype=np.asarray(a["value"]).dtype),
    "Shape": lambda args, _a: np.array(np.shape(args[0]), dtype=np.int64),
    "Gather": lambda args, a: np.take(args[0], args[1], axis=int(a.get("axis", 0))),
    "Unsqueeze": lambda args, a: np.expand_dims(args[0], tuple(int(v) for v in a["axes"])),
    "Squeeze": lambda args, a: np.squeeze(args[0], axis=tuple(int(v) for v in a["axes"])),
    "Concat": lambda args, a: np.concatenate([np.atleast_1d(v) for v in args], axis=int(a["axis"])),
    "Reshape": _reshape,
    "Slice": lambda args, _a: _slice(*args),
    "Transpose": lambda args, a: np.transpose(args[0], a.get("perm")),
    "Cast": _cast,
    "Pad": lambda args, _a: _pad(args[0], args[1], _optional(args, 2)),
    "Conv": lambda args, a: _conv(args[0], args[1], _optional(args, 2), a),
    "ConvTranspose": lambda args, a: _conv_transpose(args[0], args[1], _optional(args, 2), a),
    "Relu": lambda args, _a: np.maximum(args[0], 0.0),
    "Sigmoid": lambda args, _a: _sigmoid(args[0]),
    "Tanh": lambda args, _a: np.tanh(args[0]),
    "Add": lambda args, _a: args[0] + args[1],
    "Mul": lambda args, _a: args[0] * args[1],
    "MatMul": lambda args, _a: np.matmul(args[0], args[1]),
    "Einsum": lambda args, a: _einsum(a["equation"], args[0], args[1]),
    "GRU": _gru,
}


_model_lock = threading.Lock()
_model: dict[str, _Graph] | None = None


def _networks() -> dict[str, _Graph]:
    global _model
    with _model_lock:
        if _model is None:
            folder = model_folder()
            if folder is None:
                raise EnhanceError("The DeepFilterNet3 weights (models/deepfilternet3) are missing: reinstall the "
                                   "add-on, or choose the 'rnnoise' or 'wiener' denoiser.")
            spec = json.loads((folder / "graph.json").read_text(encoding="utf-8"))
            with np.load(folder / "weights.npz") as npz:
                tensors = {k: npz[k] for k in npz.files}
            _model = {net: _Graph(g, tensors, net) for net, g in spec["graphs"].items()}
        return _model


# --------------------------------------------------------------------------------------------------
# Features and filtering


def _erb_widths() -> np.ndarray:
    """Bins per ERB band (32 bands over the 481 bins; at least 2 bins per band)."""
    def to_erb(hz: float) -> float:
        return 9.265 * float(np.log1p(hz / (24.7 * 9.265)))

    def to_hz(erb: float) -> float:
        return 24.7 * 9.265 * (float(np.exp(erb / 9.265)) - 1.0)

    n_freqs, width_hz = _FFT // 2 + 1, DF_RATE / _FFT
    low, high = to_erb(0.0), to_erb(DF_RATE / 2)
    step = (high - low) / _NB_ERB
    widths, prev, over = [], 0, 0
    for i in range(1, _NB_ERB + 1):
        edge = int(np.round(to_hz(low + i * step) / width_hz))
        nb = edge - prev - over
        over = 2 - nb if nb < 2 else 0
        widths.append(max(nb, 2))
        prev = edge
    widths[-1] += 1
    widths[-1] -= max(0, sum(widths) - n_freqs)
    return np.array(widths)


_WIDTHS = _erb_widths()
_BAND = np.repeat(np.arange(_NB_ERB), _WIDTHS)
_n = np.arange(_FFT)
_WINDOW = np.sin(0.5 * np.pi * np.sin(np.pi * (_n + 0.5) / _FFT) ** 2)  # Vorbis window (power complementary)
_WNORM = 2.0 * _HOP / _FFT**2


def _running_mean(v: np.ndarray, init: np.ndarray) -> np.ndarray:
    """s[t] = v[t] (1 - alpha) + s[t-1] alpha along axis 1 (frames), starting from ``init``."""
    from scipy.signal import lfilter

    zi = np.broadcast_to(_ALPHA * init, (v.shape[0], 1, v.shape[2]))
    return lfilter([1.0 - _ALPHA], [1.0, -_ALPHA], v, axis=1, zi=zi)[0]


def _enhance48(x: np.ndarray) -> np.ndarray:
    """DeepFilterNet3 over a 48 kHz float signal (n,) or a batch of equally long ones (B, n); output
    of the same shape, sample-aligned. A batch runs the recurrent layers once for all its signals."""
    xs = np.atleast_2d(x)
    nb, n = xs.shape
    frames = -(-n // _HOP) + _CONV_LOOKAHEAD + _DF_LOOKAHEAD + 1
    padded = np.zeros((nb, _FFT - _HOP + frames * _HOP))
    padded[:, _FFT - _HOP: _FFT - _HOP + n] = xs
    idx = np.arange(frames)[:, None] * _HOP + _n[None, :]
    spec = np.fft.rfft(padded[:, idx] * _WINDOW, axis=2) * _WNORM  # (B, T, 481)

    power = np.zeros((_NB_ERB, nb, frames))
    np.add.at(power, _BAND, (spec.real**2 + spec.imag**2).transpose(2, 0, 1))
    level = 10.0 * np.log10(power.transpose(1, 2, 0) / _WIDTHS + 1e-10)
    feat_erb = (level - _running_mean(level, np.linspace(*_MEAN_NORM_INIT, _NB_ERB))) / 40.0
    low = spec[:, :, :_NB_DF]
    unit = low / np.sqrt(_running_mean(np.abs(low), np.linspace(*_UNIT_NORM_INIT, _NB_DF)))
    feat_spec = np.stack([unit.real, unit.imag], axis=1)

    nets = _networks()
    enc = nets["enc"].run({"feat_erb": feat_erb[:, None].astype(np.float32),
                           "feat_spec": feat_spec.astype(np.float32)})
    gains = nets["erb_dec"].run({k: enc[k] for k in ("emb", "e3", "e2", "e1", "e0")})["m"][:, 0]  # (B, T, 32)
    coefs = nets["df_dec"].run({"emb": enc["emb"], "c0": enc["c0"]})["coefs"]  # (B, T, 96, 10)
    coefs = coefs[..., 0::2] + 1j * coefs[..., 1::2]

    def ahead(a: np.ndarray, k: int) -> np.ndarray:
        """a[:, t + k] for every frame t (zeros past either end)."""
        out = np.zeros_like(a)
        if k >= 0:
            out[:, : frames - k] = a[:, k:]
        else:
            out[:, -k:] = a[:, : frames + k]
        return out

    out_spec = spec * ahead(gains, _CONV_LOOKAHEAD)[:, :, _BAND]
    c = ahead(coefs, _CONV_LOOKAHEAD)
    filtered = np.zeros((nb, frames, _NB_DF), dtype=complex)
    for k in range(_DF_ORDER):  # taps over frames t-2 .. t+2 of the unmasked spectrum
        filtered += c[..., k] * ahead(low, k - (_DF_ORDER - 1 - _DF_LOOKAHEAD))
    out_spec[:, :, :_NB_DF] = filtered

    wave = np.fft.irfft(out_spec, n=_FFT, axis=2) * _FFT * _WINDOW
    y = np.zeros((nb, (frames + 1) * _HOP))
    y[:, : frames * _HOP] += wave[:, :, :_HOP].reshape(nb, -1)
    y[:, _HOP: (frames + 1) * _HOP] += wave[:, :, _HOP:].reshape(nb, -1)
    out = y[:, _FFT - _HOP: _FFT - _HOP + n].astype(np.float32)
    return out if x.ndim == 2 else out[0]


def deepfilter_denoise(samples: np.ndarray, rate: int, *, cancel: CancelToken | None = None,
                       workers: int = 0) -> np.ndarray:
    """Denoise mono ``samples`` (float, ``rate`` Hz) with DeepFilterNet3; same length and rate, aligned.

    Clips longer than 12 s run in pieces (at most 10 s, as many as threads or a multiple) on ``workers``
    threads (0 = every core), each with 2 s of warm-up before it and a 20 ms cross-fade; with one
    worker, clips up to 15 s run in one pass.
    """
    _networks()  # load once, before the threads
    x_in = samples.astype(np.float32)
    n_workers = workers or max(1, os.cpu_count() or 1)
    limit = _one_blas_thread() if n_workers > 1 else contextlib.nullcontext()
    if limit is None:  # threadpoolctl missing: several threads would each run a multi-threaded BLAS
        n_workers, limit = 1, contextlib.nullcontext()
    with limit:
        return _denoise(x_in, rate, n_workers, cancel)


def _one_blas_thread() -> Any:
    """A context that holds BLAS to one thread per caller (threadpoolctl), or None without it.

    Two worker threads each running a BLAS that starts two threads of its own ran at 15x real time
    instead of 37x (2 cores)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(limits=1, user_api="blas")


def _denoise(x_in: np.ndarray, rate: int, n_workers: int, cancel: CancelToken | None) -> np.ndarray:
    """:func:`deepfilter_denoise` past its set-up: whole clip, or pieces on ``n_workers`` threads."""
    n = round(len(x_in) * DF_RATE / rate)  # length at 48 kHz (as resample gives)
    if (n_workers == 1 and n <= _PIECE_S * DF_RATE * 1.5) or n <= _MIN_SPLIT_S * DF_RATE:
        if cancel is not None:
            cancel.check()
        y = resample(_enhance48(resample(x_in, rate, DF_RATE)), DF_RATE, rate)
    else:
        def process(x48: np.ndarray) -> tuple[np.ndarray, None]:
            if cancel is not None:
                cancel.check()
            return _enhance48(x48), None

        y, _ = run_in_pieces(x_in, rate, DF_RATE, process, workers=n_workers, piece_s=_PIECE_S,
                             warmup_s=_WARMUP_S, xfade_s=_XFADE_S, frame=_HOP)
    return fit_length(y, len(x_in))
