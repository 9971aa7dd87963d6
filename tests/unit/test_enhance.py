"""Audio enhancement on real speech + real noise: timing never moves, each step does its job, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from lipsync_addon import cli, cli_enhance
from lipsync_addon.core.enhance import DENOISERS, PRESETS, EnhanceError, enhance, enhance_array, estimate_snr, filters
from lipsync_addon.core.types import Audio, AudioError, LipSyncError

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def clean() -> np.ndarray:
    x, rate = sf.read(DATA / "cmu_arctic_us_aew_a0001.wav", dtype="float64")
    assert rate == 16000
    return x


@pytest.fixture(scope="module")
def noise() -> np.ndarray:
    x, rate = sf.read(DATA / "noise_exercise_bike_12s.flac", dtype="float64")
    assert rate == 16000
    return x


def mix(clean: np.ndarray, noise: np.ndarray, snr_db: float, offset: int = 0) -> np.ndarray:
    nz = noise[offset: offset + len(clean)]
    return clean + nz * np.sqrt(np.mean(clean**2) / np.mean(nz**2) / 10 ** (snr_db / 10))


def xcorr_lag(a: np.ndarray, b: np.ndarray) -> int:
    """Lag (samples) of the cross-correlation peak of a against b; 0 = aligned."""
    n = len(a) + len(b)
    c = np.fft.irfft(np.fft.rfft(a, n) * np.conj(np.fft.rfft(b, n)), n)
    lag = int(np.argmax(c))
    return lag - n if lag > n // 2 else lag


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_never_move_timing(preset: str, clean: np.ndarray, noise: np.ndarray) -> None:
    noisy = mix(clean, noise, 5.0)
    out, report = enhance_array(noisy, 16000, preset)
    assert out.shape == noisy.shape and out.dtype == np.float32
    assert xcorr_lag(out, clean) == 0
    assert xcorr_lag(out, noisy) == 0
    assert report.preset == preset


@pytest.mark.parametrize("method", [m for m in DENOISERS if m != "auto"])
@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000])
def test_every_denoiser_at_every_rate_is_sample_aligned(method: str, rate: int, clean: np.ndarray,
                                                       noise: np.ndarray) -> None:
    up = resample_poly(mix(clean, noise, 10.0), rate, 16000) if rate != 16000 else mix(clean, noise, 10.0)
    ref = resample_poly(clean, rate, 16000) if rate != 16000 else clean
    out, _ = enhance_array(up, rate, "standard", options={"denoise": method})
    assert len(out) == len(up)
    assert xcorr_lag(out, ref) == 0


def test_noisy_speech_gets_better(clean: np.ndarray, noise: np.ndarray) -> None:
    from pesq import pesq
    from pystoi import stoi

    for snr in (0.0, 5.0, 10.0):
        noisy = mix(clean, noise, snr, offset=16000 * 3)
        out, report = enhance_array(noisy, 16000, "standard")
        assert report.denoiser == "hybrid"
        assert pesq(16000, clean, out, "wb") > pesq(16000, clean, noisy, "wb") + 0.1
        assert stoi(clean, out, 16000) > stoi(clean, noisy, 16000)
        assert report.snr_after_db > report.snr_before_db + 5.0


def test_clean_recording_is_left_alone(clean: np.ndarray) -> None:
    from pesq import pesq

    out, report = enhance_array(clean, 16000, "standard")
    assert report.denoiser == "none"
    assert pesq(16000, clean, out, "wb") >= pesq(16000, clean, clean, "wb") - 0.05


def test_loudness_and_true_peak(clean: np.ndarray, noise: np.ndarray) -> None:
    for gain in (0.2, 0.8):
        out, report = enhance_array(mix(clean, noise, 10.0) * gain, 16000, "standard")
        assert abs(filters.integrated_loudness(out, 16000) - (-16.0)) < 1.0
        assert filters.true_peak(out, 16000) <= -1.0 + 0.05
        assert report.peak_after_dbtp is not None
    out, report = enhance_array(clean * 0.01, 16000, "standard")  # ~ -61 LUFS: gain capped at +24 dB
    assert any("gain limited" in w for w in report.warnings)


def test_hum_is_detected_and_notched(clean: np.ndarray) -> None:
    t = np.arange(len(clean)) / 16000
    for base in (50.0, 60.0):
        hum = sum(0.02 / k * np.sin(2 * np.pi * base * k * t + k) for k in (1, 2, 3, 4))
        out, report = enhance_array(clean + hum, 16000, "light", options={"denoise": "none", "loudness": False})
        assert report.hum_hz == base
        spec_in = np.abs(np.fft.rfft(clean + hum))
        spec_out = np.abs(np.fft.rfft(out))
        f = np.fft.rfftfreq(len(clean), 1 / 16000)
        for k in (1, 2, 3):
            i = np.argmin(np.abs(f - base * k))
            assert spec_out[i - 1: i + 2].max() < spec_in[i - 1: i + 2].max() * 0.1  # > 20 dB down
    _, report = enhance_array(clean, 16000, "standard")
    assert report.hum_hz == 0.0


def test_heavy_dc_and_clipping(clean: np.ndarray) -> None:
    out, report = enhance_array(clean * 0.5 + 0.4, 16000, "standard")
    assert abs(float(out.mean())) < 1e-3
    assert xcorr_lag(out, clean) == 0
    clipped = np.clip(clean * 8.0, -1.0, 1.0)
    out, report = enhance_array(clipped, 16000, "standard")
    assert any("clipped" in w for w in report.warnings)
    assert np.all(np.isfinite(out)) and np.abs(out).max() <= 1.0


def test_silence_noise_only_short_multichannel(clean: np.ndarray, noise: np.ndarray) -> None:
    out, report = enhance_array(np.zeros(16000), 16000, "standard")
    assert not out.any() and "silence" in report.warnings[0]
    out, report = enhance_array(noise[:16000 * 3] * 0.1, 16000, "standard")
    assert any("No speech" in w for w in report.warnings)
    # noise is reduced, never raised to dialogue level
    assert filters.integrated_loudness(out, 16000) < filters.integrated_loudness(noise[:48000] * 0.1, 16000)
    short = clean[8000:8000 + 4800]  # 0.3 s
    out, report = enhance_array(short, 16000, "standard")
    assert len(out) == len(short) and any("short" in w for w in report.warnings)
    stereo = np.stack([mix(clean, noise, 5.0), 0.5 * mix(clean, noise, 5.0, 777), clean], axis=1)
    out, report = enhance_array(stereo, 16000, "standard")
    assert out.shape == stereo.shape and report.channels == 3
    for c in range(3):
        assert xcorr_lag(out[:, c], clean) == 0


def test_audio_api_one_line_and_96k(clean: np.ndarray, noise: np.ndarray) -> None:
    x96 = resample_poly(mix(clean, noise, 5.0), 6, 1).astype(np.float32)
    audio = Audio(samples=x96, rate=96000, source_path="x.wav", source_rate=96000)
    out = enhance(audio, "standard")
    assert out.rate == 96000 and len(out.samples) == len(x96) and out.source_path == "x.wav"
    assert xcorr_lag(out.samples, x96) == 0


def test_bad_options_have_clear_messages(clean: np.ndarray) -> None:
    with pytest.raises(EnhanceError, match="Unknown enhancement preset"):
        enhance_array(clean, 16000, "ultra")
    with pytest.raises(EnhanceError, match="Unknown denoiser"):
        enhance_array(clean, 16000, options={"denoise": "magic"})
    with pytest.raises(EnhanceError, match="Unknown enhancement option"):
        enhance_array(clean, 16000, options={"reverb": True})


def test_snr_estimate_tracks_mixing_snr(clean: np.ndarray, noise: np.ndarray) -> None:
    estimates = [estimate_snr(mix(clean, noise, s), 16000) for s in (0.0, 10.0, 20.0)]
    assert estimates[0] < estimates[1] < estimates[2]
    assert abs(estimates[1] - 10.0) < 4.0


@pytest.mark.slow
def test_ten_minute_clip(clean: np.ndarray, noise: np.ndarray) -> None:
    reps = int(np.ceil(600 * 16000 / len(noise)))
    long_noisy = (np.tile(noise, reps)[: 600 * 16000] * 1.0
                  + np.tile(np.r_[clean, np.zeros(8000)], 200)[: 600 * 16000].astype(np.float64))
    out, report = enhance_array(long_noisy, 16000, "standard")
    assert len(out) == len(long_noisy)
    assert xcorr_lag(out[-160000:], long_noisy[-160000:]) == 0
    assert report.denoiser == "hybrid"


def test_cli_enhance_file(tmp_path: Path, clean: np.ndarray, noise: np.ndarray) -> None:
    src = tmp_path / "in.wav"
    stereo = np.stack([mix(clean, noise, 5.0), mix(clean, noise, 5.0, 99)], 1)
    sf.write(src, stereo, 16000, subtype="PCM_16")
    out, rep = tmp_path / "out.wav", tmp_path / "r.json"
    args = cli_enhance.__dict__["argparse"].Namespace(
        audio=str(src), output=str(out), preset="standard", denoise=None, no_highpass=False, no_hum=False,
        no_eq=False, no_loudness=False, loudness=-18.0, true_peak=None, report=str(rep))
    assert cli_enhance.run_enhance(args) == 0
    data, rate = sf.read(out, always_2d=True)
    assert rate == 16000 and data.shape == stereo.shape
    report = json.loads(rep.read_text())
    assert {"snr_before_db", "snr_after_db", "loudness_after_lufs", "peak_after_dbtp", "steps"} <= set(report)
    assert [s["step"] for s in report["steps"]] == ["highpass", "hum", "dereverb", "denoise", "eq", "loudness",
                                                    "limiter"]
    assert report["snr_after_db"] > report["snr_before_db"]
    assert cli.main(["enhance", str(src), "-o", str(tmp_path / "o2.flac"), "--preset", "light"]) == 0
    with pytest.raises(AudioError, match="not found"):
        cli_enhance.enhance_file(str(tmp_path / "missing.wav"), str(out))
    with pytest.raises(LipSyncError, match="Output folder"):
        cli_enhance.enhance_file(str(src), str(tmp_path / "nope" / "o.wav"))
    assert cli.main(["enhance", str(tmp_path / "missing.wav"), "-o", str(out)]) == 1
