"""DeepFilterNet3 in numpy: the same output as DeepFilterNet's own runtime, aligned, in pieces, and useful."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lipsync_addon.core.enhance import EnhanceError, deepfilter, enhance_array, resolve_options
from lipsync_addon.core.enhance.deepfilter import _enhance48, deepfilter_denoise

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def clean() -> np.ndarray:
    return sf.read(DATA / "cmu_arctic_us_aew_a0001.wav", dtype="float64")[0]


@pytest.fixture(scope="module")
def noise() -> np.ndarray:
    return sf.read(DATA / "noise_exercise_bike_12s.flac", dtype="float64")[0]


def mix(clean: np.ndarray, noise: np.ndarray, snr_db: float, offset: int = 0) -> np.ndarray:
    nz = np.resize(noise[offset:], len(clean))
    return clean + nz * np.sqrt(np.mean(clean**2) / np.mean(nz**2) / 10 ** (snr_db / 10))


def test_matches_deepfilternets_own_runtime() -> None:
    """libDF (Rust, tract) on real speech in real noise, 48 kHz: scripts/convert_deepfilternet.py --reference."""
    ref = np.load(DATA / "deepfilter_reference.npz")
    out = _enhance48(ref["noisy"])
    err = out - ref["enhanced"]
    assert np.sqrt(np.mean(err**2) / np.mean(ref["enhanced"] ** 2)) < 1e-4
    # and it did something: the noisy input is far from the output
    assert np.sqrt(np.mean((ref["noisy"] - ref["enhanced"]) ** 2) / np.mean(ref["enhanced"] ** 2)) > 0.3
    # a batch of signals gives each one what it gets alone
    batch = _enhance48(np.stack([ref["noisy"], ref["noisy"][::-1]]))
    assert np.abs(batch[0] - out).max() < 1e-5
    assert np.abs(batch[1] - _enhance48(ref["noisy"][::-1].copy())).max() < 1e-5


def test_noisy_speech_gets_much_better(clean: np.ndarray, noise: np.ndarray) -> None:
    from pesq import pesq
    from pystoi import stoi

    for snr in (0.0, 5.0):
        noisy = mix(clean, noise, snr, offset=16000 * 3)
        out = deepfilter_denoise(noisy, 16000)
        assert out.shape == noisy.shape and out.dtype == np.float32
        assert pesq(16000, clean, out, "wb") > pesq(16000, clean, noisy, "wb") + 0.3
        assert stoi(clean, out, 16000) > stoi(clean, noisy, 16000) + 0.03


def test_strong_preset_uses_it_on_noisy_speech_only(clean: np.ndarray, noise: np.ndarray) -> None:
    _, report = enhance_array(mix(clean, noise, 5.0), 16000, "strong")
    assert report.denoiser == "deepfilter"
    assert report.snr_after_db > report.snr_before_db + 5.0
    _, report = enhance_array(clean, 16000, "strong")
    assert report.denoiser == "none"
    assert enhance_array(mix(clean, noise, 5.0), 16000, "standard")[1].denoiser == "hybrid"


def test_long_clip_in_pieces_is_as_good_as_the_whole_clip(clean: np.ndarray, noise: np.ndarray) -> None:
    """Pieces on two threads (2 s warm-up each, 20 ms cross-fades) against one pass over the clip.

    The networks' recurrent state never becomes exactly the same after a warm-up (measured: 0.5-7 %
    difference per second after a cut, i.e. -23 to -46 dB), so the two outputs are compared by how
    well each matches the clean speech, and by how close they are.
    """
    from lipsync_addon.core.audio import resample

    speech = np.tile(np.r_[clean, np.zeros(4000)], 14)[: 16000 * 46]
    noisy = mix(speech, noise, 5.0)
    whole = resample(_enhance48(resample(noisy.astype(np.float32), 16000, 48000)), 48000, 16000)[: len(noisy)]
    pieces = deepfilter_denoise(noisy, 16000, workers=2)

    def snr(y: np.ndarray) -> float:
        g = np.dot(y, speech) / np.dot(speech, speech)
        return float(10 * np.log10(np.sum((g * speech) ** 2) / np.sum((y - g * speech) ** 2)))

    assert snr(pieces) > snr(noisy) + 5.0
    assert abs(snr(pieces) - snr(whole)) < 0.3
    err = pieces - whole
    assert np.sqrt(np.mean(err**2) / np.mean(whole**2)) < 0.05


def test_without_threadpoolctl_it_runs_on_one_thread(monkeypatch: pytest.MonkeyPatch, clean: np.ndarray,
                                                      noise: np.ndarray) -> None:
    """Without threadpoolctl each thread's BLAS would start threads of its own (15x instead of 37x real
    time measured), so the pieces run one after the other, with the same output as one worker."""
    import sys

    noisy = mix(np.tile(clean, 6)[: 16000 * 20], noise, 5.0)
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # import fails
    assert deepfilter._one_blas_thread() is None
    threads: list[int] = []
    real = deepfilter.run_in_pieces
    monkeypatch.setattr(deepfilter, "run_in_pieces", lambda *a, **k: threads.append(k["workers"]) or real(*a, **k))
    out = deepfilter_denoise(noisy, 16000, workers=2)
    assert threads == [1]
    assert np.array_equal(out, deepfilter_denoise(noisy, 16000, workers=1))


def test_the_core_analyses_strong_on_rnnoise_output(clean: np.ndarray, noise: np.ndarray) -> None:
    """``enhance="strong"`` in the pipeline (CLI, API): the sound preset is DeepFilterNet3's, the analysed
    copy RNNoise's, which aligns better (docs/enhance.md); without RNNoise the analysis would use
    DeepFilterNet3 for every preset."""
    from lipsync_addon.core import pipeline
    from lipsync_addon.core.enhance import analysis_options, rnnoise
    from lipsync_addon.core.types import Audio, PipelineConfig

    if not rnnoise.available():
        pytest.skip("RNNoise is not installed here")
    assert analysis_options("strong") == {"neural_denoiser": "hybrid"} and analysis_options("standard") == {}
    config = PipelineConfig(transcript="author of the danger trail philip steels etc", enhance="strong",
                            viseme_set="oculus")
    result = pipeline.run(Audio(mix(clean, noise, 5.0).astype(np.float32), 16000), config)
    assert result.provenance["enhance"]["denoiser"] == "hybrid"
    assert len(result.transcript.words) == 8


def test_without_rnnoise_the_presets_use_deepfilternet_then_wiener(
        monkeypatch: pytest.MonkeyPatch, clean: np.ndarray, noise: np.ndarray) -> None:
    """As in the macOS extension zips (no pyrnnoise): the chain itself lets DeepFilterNet3 stand in, so
    the CLI's ``enhance``, the pipeline and Blender all get a result and a note; the Wiener filter only
    without the weights too. A denoiser the user names is used or refused, never swapped."""
    from lipsync_addon.core.enhance import analysis_options, enhance_array, installed_denoiser, rnnoise

    def missing() -> None:
        raise EnhanceError("RNNoise is not installed here")

    monkeypatch.setattr(rnnoise, "_library", missing)
    assert not rnnoise.available()
    assert analysis_options("standard") == {} and analysis_options("strong") == {}
    noisy = mix(clean, noise, 5.0).astype(np.float32)
    used: list[int] = []
    real = deepfilter.deepfilter_denoise
    monkeypatch.setattr(deepfilter, "deepfilter_denoise", lambda *a, **k: used.append(1) or real(*a, **k))
    out, report = enhance_array(noisy, 16000, "standard")
    assert report.denoiser == "deepfilter" and used and out.shape == noisy.shape
    assert any("RNNoise" in w and "DeepFilterNet3" in w for w in report.warnings)
    step = next(s for s in report.steps if s["step"] == "denoise")
    assert "stands in" in step["reason"]
    with pytest.raises(EnhanceError, match="RNNoise is not installed"):
        enhance_array(noisy, 16000, "standard", options={"denoise": "hybrid"})
    monkeypatch.setattr(deepfilter, "model_folder", lambda: None)
    monkeypatch.setattr(deepfilter, "_model", None)
    _, report = enhance_array(noisy, 16000, "light")
    assert report.denoiser == "wiener" and any("Wiener" in w for w in report.warnings)
    monkeypatch.undo()
    monkeypatch.setattr(deepfilter, "model_folder", lambda: None)
    monkeypatch.setattr(deepfilter, "_model", None)
    if rnnoise.available():  # weights missing, RNNoise there: strong falls back to RNNoise
        assert installed_denoiser("deepfilter")[0] == "hybrid"
    assert installed_denoiser("wiener") == ("wiener", "")


def test_missing_weights_have_a_clear_message(monkeypatch: pytest.MonkeyPatch, clean: np.ndarray) -> None:
    monkeypatch.setattr(deepfilter, "model_folder", lambda: None)
    monkeypatch.setattr(deepfilter, "_model", None)
    with pytest.raises(EnhanceError, match="DeepFilterNet3 weights"):
        deepfilter_denoise(clean, 16000)
    assert not deepfilter.available()


def test_unknown_neural_denoiser_is_refused() -> None:
    with pytest.raises(EnhanceError, match="neural denoiser 'demucs'"):
        resolve_options("standard", {"neural_denoiser": "demucs"})


def test_strong_blends_a_fifth_of_rnnoise_into_deepfilternet(
        monkeypatch: pytest.MonkeyPatch, clean: np.ndarray, noise: np.ndarray) -> None:
    """The strong preset's denoiser is 0.8 DeepFilterNet3 + 0.2 RNNoise (``deepfilter_blend``); without
    RNNoise it is DeepFilterNet3 alone. Other steps off, so the denoise step is the whole output."""
    from lipsync_addon.core.enhance import rnnoise
    from lipsync_addon.core.enhance.rnnoise import rnnoise_denoise

    if not rnnoise.available():
        pytest.skip("pyrnnoise is not installed")
    noisy = mix(clean, noise, 5.0, offset=16000 * 2)
    bare = {"highpass": False, "hum": False, "eq": False, "loudness": False, "limiter": False,
            "denoise_dry_db": -200.0, "denoise": "deepfilter"}
    out, report = enhance_array(noisy, 16000, "strong", options=bare)
    step = next(s for s in report.steps if s["step"] == "denoise")
    assert step["rnnoise_blend"] == 0.2
    expected = 0.8 * deepfilter_denoise(noisy, 16000) + 0.2 * rnnoise_denoise(noisy, 16000)[0]
    assert np.max(np.abs(out - expected)) < 1e-5
    alone, report = enhance_array(noisy, 16000, "strong", options={**bare, "deepfilter_blend": 0.0})
    assert "rnnoise_blend" not in next(s for s in report.steps if s["step"] == "denoise")
    assert np.max(np.abs(alone - deepfilter_denoise(noisy, 16000))) < 1e-5
    with pytest.raises(EnhanceError, match="deepfilter_blend"):
        resolve_options("strong", {"deepfilter_blend": 1.5})

    def missing() -> None:
        raise EnhanceError("RNNoise is not installed here")

    monkeypatch.setattr(rnnoise, "_library", missing)
    without, report = enhance_array(noisy, 16000, "strong", options=bare)
    assert "rnnoise_blend" not in next(s for s in report.steps if s["step"] == "denoise")
    assert np.max(np.abs(without - alone)) < 1e-6
