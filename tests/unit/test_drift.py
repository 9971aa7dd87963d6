"""Clock drift between two recordings of real speech: measured, corrected, refused when not measurable."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from lipsync_addon.core.drift import correct_drift, drift_warning, estimate_drift_arrays
from lipsync_addon.core.offset import estimate_offset_arrays

ROOT = Path(__file__).resolve().parents[2]
ALIGNED = ROOT / "tests" / "data" / "aligned"
RATE = 16000


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    """77 s of real speech (three MFA corpus clips back to back), 16 kHz."""
    names = ("acoustic_corpus", "cold_corpus", "cold_corpus3")
    return np.concatenate([sf.read(ALIGNED / f"{n}.wav", dtype="float32")[0] for n in names])


def _recorded_with_drift(reference: np.ndarray, start_s: float, length_s: float, ppm: float) -> np.ndarray:
    """The reference from ``start_s`` as a recorder whose clock runs ``ppm`` fast would capture it."""
    seg = reference[round(start_s * RATE): round((start_s + length_s) * RATE)]
    ratio = Fraction(1.0 + ppm * 1e-6).limit_denominator(100000)
    return resample_poly(seg, ratio.numerator, ratio.denominator).astype(np.float32)


@pytest.mark.parametrize("ppm", [200.0, -120.0, 0.0])
def test_drift_is_measured_to_a_few_ppm(reference: np.ndarray, ppm: float) -> None:
    rng = np.random.default_rng(0)
    clip = _recorded_with_drift(reference, 4.0, 66.0, ppm) * 0.6
    clip = clip + 0.003 * rng.standard_normal(len(clip)).astype(np.float32)  # another mic's noise floor
    result = estimate_drift_arrays(reference, RATE, clip, RATE)
    assert result.measurable and len(result.windows) >= 12
    # a clock running fast records the performance long: drift = -ppm by the module's convention
    assert result.drift_ppm == pytest.approx(-ppm, abs=5.0)
    assert result.offset == pytest.approx(4.0, abs=0.001)
    assert result.residual_ms < 1.0
    if abs(ppm) == 200.0:  # 13 ms of slip smears the whole-clip peak: the offset comes from a 4 s anchor
        whole = estimate_offset_arrays(reference, RATE, clip, RATE)
        assert whole.offset == pytest.approx(4.0, abs=0.002)
        assert any("does not line up sharply" in w for w in whole.warnings)
    message = drift_warning(result, fps=24.0)
    # a warning once the end slips a quarter frame: 200 ppm x 66 s = 13 ms = 0.32 frames; 120 ppm: 0.19 frames
    assert (message != "") == (abs(ppm) == 200.0)
    if ppm:
        # corrected, the clip follows the reference to the end
        fixed = correct_drift(clip, result.drift_ppm)
        again = estimate_drift_arrays(reference, RATE, fixed, RATE)
        assert abs(again.drift_ppm) < 5.0 and abs(again.slip_ms) < 0.35  # within the measurement error


def test_short_clips_are_not_measured_and_edits_are_flagged(reference: np.ndarray) -> None:
    short = estimate_drift_arrays(reference, RATE, reference[RATE * 10: RATE * 25], RATE)
    assert not short.measurable and short.drift_ppm == 0.0 and "under 30 s" in short.warnings[0]
    assert drift_warning(short, 24.0) == ""
    # an edited clip: 40 s, then the same take resumed 1.5 s later -> no straight line
    edited = np.concatenate([reference[RATE * 2: RATE * 32], reference[RATE * 33 + RATE // 2: RATE * 63]])
    result = estimate_drift_arrays(reference, RATE, edited, RATE)
    assert any("edited" in w for w in result.warnings)


def test_cli_offset_drift_and_fix(reference: np.ndarray, tmp_path: Path) -> None:
    ref_path, clip_path, fixed_path = tmp_path / "camera.wav", tmp_path / "recorder.flac", tmp_path / "fixed.wav"
    sf.write(ref_path, reference, RATE)
    sf.write(clip_path, _recorded_with_drift(reference, 2.5, 60.0, 150.0), RATE)
    proc = subprocess.run(
        [sys.executable, "-m", "lipsync_addon", "offset", str(ref_path), str(clip_path),
         "--fix-drift", str(fixed_path)],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    offset_ms = float(proc.stdout.split("(")[1].split(" ms")[0])
    assert abs(offset_ms - 2500.0) < 1.0  # the whole clip smears (drift): anchored on its loudest 4 s
    assert "drift -1" in proc.stdout and f"wrote {fixed_path}" in proc.stdout  # -150 ppm
    fixed, rate = sf.read(fixed_path, dtype="float32")
    assert rate == RATE and abs(len(fixed) / RATE - 60.0) < 0.005  # back to the reference's 60 s
