"""Retake / ADR alignment on real speech: two real takes of the same line (reference word
boundaries from MFA TextGrids), known time maps, pitch kept by WSOLA, bad input, CLI."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from lipsync_addon import cli_sync
from lipsync_addon.core.retake import RetakeError, align_retake_arrays, retake_files, warp_take, wsola
from lipsync_addon.core.textgrid import read_textgrid

DATA = Path(__file__).resolve().parents[1] / "data"
ALIGNED = DATA / "aligned"
RATE = 16000

#: the same words said twice by the same speaker in two sessions (cold_corpus / cold_corpus3):
#: (guide span s, take span s, words)
RETAKES = [
    ((1.60, 3.69), (1.25, 3.28), "so this is the sick corpus"),
    ((3.99, 4.97), (7.16, 8.56), "i have a cold so"),
    ((7.86, 9.05), (10.68, 11.80), "acoustic corpus"),
]


def _words(name: str, a: float, b: float) -> list[tuple[str, float, float]]:
    tg = read_textgrid(ALIGNED / f"{name}.TextGrid")
    return [(i.text, i.start - a, i.end - a) for i in tg["words"].intervals
            if i.text and i.start >= a - 1e-6 and i.end <= b + 1e-6]


@pytest.fixture(scope="module")
def arctic() -> np.ndarray:
    x, rate = sf.read(DATA / "cmu_arctic_us_aew_a0001.wav", dtype="float32")
    assert rate == RATE
    return x


def f0_median(x: np.ndarray, rate: int) -> float:
    """Median F0 (Hz) of voiced 40 ms frames by autocorrelation (70-300 Hz)."""
    n, hop = round(0.04 * rate), round(0.01 * rate)
    lo, hi = rate // 300, rate // 70
    out = []
    level = np.sqrt(np.mean(x**2))
    for s in range(0, len(x) - n, hop):
        fr = x[s : s + n] - x[s : s + n].mean()
        if np.sqrt(np.mean(fr**2)) < level:
            continue
        ac = np.correlate(fr, fr, "full")[n - 1 :]
        k = lo + int(np.argmax(ac[lo:hi]))
        if ac[k] > 0.5 * ac[0]:
            out.append(rate / k)
    return float(np.median(out))


@pytest.mark.parametrize(("guide_span", "take_span", "text"), RETAKES)
def test_real_retake_word_boundaries_follow_the_guide(guide_span, take_span, text) -> None:
    g, rate = sf.read(ALIGNED / "cold_corpus.wav", dtype="float32")
    t, _ = sf.read(ALIGNED / "cold_corpus3.wav", dtype="float32")
    g = g[round(guide_span[0] * rate) : round(guide_span[1] * rate)]
    t = t[round(take_span[0] * rate) : round(take_span[1] * rate)]
    wg, wt = _words("cold_corpus", *guide_span), _words("cold_corpus3", *take_span)
    assert [w[0] for w in wg] == [w[0] for w in wt] == text.split()
    al = align_retake_arrays(g, rate, t, rate)
    assert al.cost < 0.8 and not al.warnings
    starts_g = np.array([w[1] for w in wg])
    starts_t = np.array([w[1] for w in wt])
    before = np.abs(starts_t - starts_g).mean()
    after = np.abs(al.path.guide_time_at(starts_t) - starts_g).mean()
    # "i have a cold so": the guide pauses 160 ms before "cold", the take does not; a boundary next
    # to a pause present in one take only cannot land on both sides of it (see docs/sync.md)
    assert after < 0.75 * before and after < 0.06, (before, after)
    warped = warp_take(t, rate, al)
    assert len(warped) == len(g)
    # the path is monotonic and spans both clips
    assert np.all(np.diff(al.path.take_times) >= 0) and np.all(np.diff(al.path.guide_times) > 0)
    assert al.path.take_times[-1] == pytest.approx(len(t) / rate)


def test_known_nonuniform_time_map(arctic) -> None:
    """Take = the clip warped by a known, non-uniform map (slow start, fast middle): the DTW path
    recovers the map within a few frames."""
    dur = len(arctic) / RATE
    out_t = np.linspace(0, dur * 1.1, 300)
    in_t = np.clip(dur * (out_t / out_t[-1] + 0.06 * np.sin(4 * np.pi * out_t / out_t[-1])), 0, dur)
    in_t = np.maximum.accumulate(in_t)
    take = wsola(arctic, RATE, out_t, in_t, out_t[-1])
    al = align_retake_arrays(arctic, RATE, take, RATE)
    truth = np.interp(al.path.guide_times, in_t, out_t)
    err = np.abs(al.path.take_times - truth)
    assert np.median(err) < 0.008 and np.percentile(err, 95) < 0.025, (np.median(err), np.percentile(err, 95))


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed (scripts/setup.sh)")
def test_independent_time_stretch_ffmpeg_atempo(tmp_path, arctic) -> None:
    """Take stretched by another program (ffmpeg atempo 0.8, its own WSOLA-type method)."""
    slow = tmp_path / "slow.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(DATA / "cmu_arctic_us_aew_a0001.wav"),
                    "-af", "atempo=0.8", str(slow)], check=True)
    take, rate = sf.read(slow, dtype="float32")
    al = align_retake_arrays(arctic, RATE, take, rate)
    err = np.abs(al.path.take_times - al.path.guide_times / 0.8)
    assert np.median(err) < 0.025 and np.percentile(err, 95) < 0.04, (np.median(err), np.percentile(err, 95))


@pytest.mark.parametrize("factor", [0.75, 1.3])
def test_wsola_keeps_pitch_and_length(arctic, factor) -> None:
    dur = len(arctic) / RATE
    y = wsola(arctic, RATE, np.array([0.0, dur * factor]), np.array([0.0, dur]), dur * factor)
    assert len(y) == round(dur * factor * RATE)
    f_in, f_out = f0_median(arctic, RATE), f0_median(y, RATE)
    assert abs(f_out / f_in - 1) < 0.03, (f_in, f_out)
    # plain resampling to the same length changes the pitch by the factor: the test can tell
    r = resample_poly(arctic, round(factor * 100), 100)
    assert abs(f0_median(r, RATE) / f_in - 1 / factor) < 0.05


def test_multichannel_48k_take_keeps_rate_and_channels(tmp_path, arctic) -> None:
    dur = len(arctic) / RATE
    take = wsola(arctic, RATE, np.array([0.0, dur * 1.2]), np.array([0.0, dur]), dur * 1.2)
    take48 = resample_poly(take, 3, 1).astype(np.float32)
    stereo = np.column_stack([take48, 0.5 * take48])
    guide_p, take_p, out_p, path_p = (tmp_path / n for n in ("guide.wav", "take.flac", "out.wav", "path.json"))
    sf.write(guide_p, arctic, RATE)
    sf.write(take_p, stereo, 48000)
    al = retake_files(guide_p, take_p, out_p, path_json=path_p)
    y, rate = sf.read(out_p, dtype="float32", always_2d=True)
    assert rate == 48000 and y.shape[1] == 2
    assert y.shape[0] == round(dur * 48000)
    ch = y[:, 1] / 0.5
    assert np.corrcoef(y[:, 0], ch)[0, 1] > 0.999  # same warp on both channels
    data = json.loads(path_p.read_text())
    assert len(data["path"]["guide_s"]) == len(data["path"]["take_s"]) > 100
    assert data["take_duration_s"] == pytest.approx(al.take_duration, abs=1e-3)


def test_bad_input(tmp_path, arctic) -> None:
    with pytest.raises(RetakeError, match="silent"):
        align_retake_arrays(arctic, RATE, np.zeros(RATE * 3, np.float32), RATE)
    with pytest.raises(RetakeError, match="too short"):
        align_retake_arrays(arctic, RATE, arctic[: RATE // 10], RATE)
    with pytest.raises(RetakeError, match="differ in length"):
        align_retake_arrays(arctic[: RATE], RATE, np.tile(arctic, 3), RATE)
    other, _ = sf.read(DATA / "aligned" / "acoustic_corpus.wav", dtype="float32")
    al = align_retake_arrays(arctic, RATE, other[RATE * 3 : RATE * 7], RATE)  # a different line
    assert any("poorly" in w for w in al.warnings)
    g = tmp_path / "g.wav"
    sf.write(g, arctic, RATE)
    with pytest.raises(RetakeError, match="overwrite"):
        retake_files(g, g, g)
    with pytest.raises(RetakeError, match="does not exist"):
        retake_files(g, DATA / "cmu_arctic_us_aew_a0001.wav", tmp_path / "no" / "out.wav")


def test_cli_retake(tmp_path, arctic, capsys) -> None:
    dur = len(arctic) / RATE
    take = wsola(arctic, RATE, np.array([0.0, dur * 0.9]), np.array([0.0, dur]), dur * 0.9)
    guide_p, take_p, out_p, path_p = (tmp_path / n for n in ("guide.wav", "take.wav", "w.wav", "p.json"))
    sf.write(guide_p, arctic, RATE)
    sf.write(take_p, take, RATE)
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    cli_sync.add_parser(sub)
    args = parser.parse_args(["retake", str(guide_p), str(take_p), "-o", str(out_p), "--path", str(path_p)])
    assert args.func(args) == 0
    assert "warped:" in capsys.readouterr().out
    assert sf.info(out_p).frames == len(arctic) and path_p.exists()
    args = parser.parse_args(["retake", str(guide_p), str(tmp_path / "none.wav"), "-o", str(out_p)])
    assert args.func(args) == 1
    assert "not found" in capsys.readouterr().err
