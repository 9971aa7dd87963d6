"""The pipeline and the bpy-free CLI end to end on real speech."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lipsync_addon.core import pipeline
from lipsync_addon.core.types import Audio, AudioError, Cancelled, CancelToken, PipelineConfig, RigError

ROOT = Path(__file__).resolve().parents[2]
BOBBY = ROOT / "tests" / "data" / "aligned" / "bobby.wav"


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lipsync_addon", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, check=False)


def test_pipeline_produces_curves_for_a_detected_rig() -> None:
    names = ["Basis", "viseme_sil", "viseme_PP", "viseme_FF", "viseme_TH", "viseme_DD", "viseme_kk", "viseme_CH",
             "viseme_SS", "viseme_nn", "viseme_RR", "viseme_aa", "viseme_E", "viseme_I", "viseme_O", "viseme_U"]
    stages: list[str] = []
    result = pipeline.run(str(BOBBY), PipelineConfig(transcript="Bobby ripped the ledger", channel_names=names,
                                                     fps=30.0), progress=lambda f, s: stages.append(s))
    assert result.viseme_set == "oculus"
    curves = result.curves
    assert "mouth_open" in curves.channels and "viseme_PP" in curves.channels
    assert curves.rate == 30.0 and np.allclose(np.diff(curves.times), 1 / 30.0)
    for values in curves.channels.values():
        assert values.shape == curves.times.shape
        assert values.min() >= 0.0 and values.max() <= 1.0
    # "bobby": the lips close for the first b (a bilabial) -> PP reaches full closure
    assert curves.channels["viseme_PP"].max() > 0.99
    assert stages[-1] == "done"
    assert result.provenance["backend"] == "pocketsphinx"


def test_pipeline_bad_inputs_raise_user_errors(tmp_path: Path) -> None:
    with pytest.raises(AudioError):
        pipeline.run(str(tmp_path / "missing.wav"), PipelineConfig(viseme_set="oculus"))
    with pytest.raises(RigError):
        pipeline.run(str(BOBBY), PipelineConfig(channel_names=["Basis", "Smile", "Frown"]))
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        pipeline.run(str(BOBBY), PipelineConfig(viseme_set="oculus"), cancel=token)


@pytest.mark.parametrize("rate", [8000, 96000])
def test_pipeline_extreme_rates_and_channels(tmp_path: Path, rate: int) -> None:
    data, src = sf.read(BOBBY, dtype="float32")
    from lipsync_addon.core.audio import resample

    x = resample(data, src, rate)
    path = tmp_path / f"ünï {rate}.wav"
    sf.write(path, np.stack([x, x * 0.5, x * 0.2], axis=1), rate, subtype="PCM_24")
    result = pipeline.run(str(path), PipelineConfig(transcript="Bobby ripped the ledger", viseme_set="arkit"))
    assert [w.text for w in result.transcript.words] == ["bobby", "ripped", "the", "ledger"]
    assert abs(result.duration - len(x) / rate) < 1e-3


def test_cli_writes_versioned_json_and_textgrid(tmp_path: Path) -> None:
    text = tmp_path / "line.txt"
    text.write_text("Bobby ripped the ledger\n", encoding="utf-8")
    out = tmp_path / "cues ü.json"
    tg = tmp_path / "a.TextGrid"
    proc = cli("analyze", str(BOBBY), "--text", str(text), "--fps", "24", "-o", str(out),
               "--textgrid", str(tg), "--progress", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["version"] and [w["text"] for w in data["words"]] == ["bobby", "ripped", "the", "ledger"]
    assert "mouth_open" in data["curves"]["channels"]
    progress = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    assert progress and progress[-1]["fraction"] == 1.0
    from lipsync_addon.core.textgrid import read_textgrid

    tiers = read_textgrid(tg)
    assert [iv.text for iv in tiers["words"].intervals] == ["bobby", "ripped", "the", "ledger"]


def test_cli_breath_setting_reaches_the_curves(tmp_path: Path) -> None:
    """A line after 0.6 s of silence: by default the lips part before the first word, --breath 0 keeps
    the mouth at rest until it (the pipeline's PipelineConfig.breath, through the CLI)."""
    data, rate = sf.read(BOBBY, dtype="float32")
    clip = tmp_path / "late.wav"
    sf.write(clip, np.concatenate([np.zeros(int(0.6 * rate), np.float32), data]), rate)
    outs = {}
    for breath in ("1", "0"):
        out = tmp_path / f"b{breath}.json"
        proc = cli("analyze", str(clip), "--transcript", "Bobby ripped the ledger", "--viseme-set", "oculus",
                   "--fps", "50", "--breath", breath, "-o", str(out))
        assert proc.returncode == 0, proc.stderr
        outs[breath] = json.loads(out.read_text(encoding="utf-8"))
    first = outs["1"]["words"][0]["start"]
    times = np.asarray(outs["1"]["curves"]["times"])
    before = (times > first - 0.3) & (times < first - 0.2)
    opened = np.asarray(outs["1"]["curves"]["channels"]["mouth_open"])[before]
    shut = np.asarray(outs["0"]["curves"]["channels"]["mouth_open"])[before]
    assert opened.min() > 0.12 and shut.max() < 0.02


def test_cli_rhubarb_format_without_transcript(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    proc = cli("analyze", str(BOBBY), "--format", "rhubarb", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    cues = json.loads(out.read_text(encoding="utf-8"))["mouthCues"]
    assert cues and {c["value"] for c in cues} <= set("ABCDEFGHX")
    assert cues[0]["start"] == 0.0


def test_cli_errors_are_messages_not_tracebacks(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("not audio", encoding="utf-8")
    proc = cli("analyze", str(bad))
    assert proc.returncode == 1
    assert "error:" in proc.stderr and "Traceback" not in proc.stderr and "WAV" in proc.stderr
    proc = cli("analyze", str(BOBBY), "-o", str(tmp_path / "no" / "such" / "dir" / "x.json"))
    assert proc.returncode == 1 and "does not exist" in proc.stderr
    proc = cli("analyze")
    assert proc.returncode == 2


@pytest.mark.parametrize("kind", ["noise", "music"])
def test_noise_or_music_without_speech_gives_a_result_not_a_crash(tmp_path: Path, kind: str) -> None:
    rate = 16000
    t = np.arange(rate * 3) / rate
    rng = np.random.default_rng(7)
    if kind == "noise":  # bursts of noise with gaps, like a door or handling noise
        x = rng.standard_normal(len(t)) * (np.sin(2 * np.pi * 1.5 * t) > 0.3) * 0.3
    else:  # a few sustained chords
        x = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) * (1 + 0.5 * np.sin(2 * np.pi * t))
    path = tmp_path / f"{kind}.wav"
    sf.write(path, x.astype(np.float32), rate)
    for text in ("", "hello there"):
        result = pipeline.run(str(path), PipelineConfig(transcript=text, viseme_set="oculus"))
        assert result.curves.channels["mouth_open"].shape == result.curves.times.shape
        assert np.all(np.isfinite(result.curves.channels["mouth_open"]))


def test_cli_has_every_sub_command_and_enhance_runs(tmp_path: Path) -> None:
    proc = cli("--help")
    assert proc.returncode == 0 and all(c in proc.stdout for c in ("analyze", "enhance", "batch"))
    out = tmp_path / "clean.wav"
    proc = cli("enhance", str(BOBBY), "-o", str(out), "--preset", "light")
    assert proc.returncode == 0, proc.stderr
    assert sf.info(str(out)).frames == sf.info(str(BOBBY)).frames


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="the ffmpeg program is not installed")
def test_cli_takes_aac_clips_and_videos_timed_like_the_wav(tmp_path: Path) -> None:
    """An M4A (AAC) copy of the clip, read through ffmpeg, gives the same words at the same times."""
    m4a = ROOT / "tests" / "data" / "formats" / "bobby.m4a"
    words = {}
    for name, clip in (("wav", BOBBY), ("m4a", m4a)):
        out = tmp_path / f"{name}.json"
        proc = cli("analyze", str(clip), "--transcript", "Bobby ripped the ledger", "-o", str(out))
        assert proc.returncode == 0, proc.stderr
        words[name] = json.loads(out.read_text(encoding="utf-8"))["words"]
    assert [w["text"] for w in words["m4a"]] == [w["text"] for w in words["wav"]]
    for a, b in zip(words["m4a"], words["wav"], strict=True):
        assert abs(a["start"] - b["start"]) <= 0.02 and abs(a["end"] - b["end"]) <= 0.02
    cleaned = tmp_path / "from m4a.wav"
    proc = cli("enhance", str(m4a), "-o", str(cleaned), "--preset", "light")
    assert proc.returncode == 0, proc.stderr
    assert abs(sf.info(str(cleaned)).frames - sf.info(str(BOBBY)).frames) <= 1024  # AAC's last frame
    video = ROOT / "tests" / "data" / "video" / "bbaf2n.mpg"
    out = tmp_path / "video.json"
    proc = cli("analyze", str(video), "--transcript", "bin blue at f two now", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert [w["text"] for w in json.loads(out.read_text(encoding="utf-8"))["words"]][:2] == ["bin", "blue"]


def test_pipeline_enhance_option_analyses_the_cleaned_signal(tmp_path: Path) -> None:
    from lipsync_addon.core.audio import load_audio, resample

    speech = load_audio(BOBBY)
    x = resample(speech.samples, speech.rate, 16000)
    noise, nrate = sf.read(ROOT / "tests" / "data" / "noise_exercise_bike_12s.flac", dtype="float32")
    noise = resample(noise if noise.ndim == 1 else noise.mean(axis=1), nrate, 16000)[: len(x)]
    gain = np.sqrt(np.mean(x**2) / np.mean(noise**2)) / 10 ** (5 / 20)  # 5 dB SNR
    path = tmp_path / "noisy.wav"
    sf.write(path, x + gain * noise, 16000)
    config = PipelineConfig(transcript="Bobby ripped the ledger", viseme_set="oculus", enhance="standard")
    result = pipeline.run(str(path), config)
    assert "enhance" in result.provenance and result.provenance["enhance"]["preset"] == "standard"
    assert [w.text for w in result.transcript.words] == ["bobby", "ripped", "the", "ledger"]
    assert abs(result.duration - len(x) / 16000) < 1e-3  # timing unchanged


def test_noisy_clip_is_timed_on_a_denoised_copy_without_enhance(tmp_path: Path) -> None:
    from lipsync_addon.core.audio import detect_speech, load_audio, resample

    clip = ROOT / "tests" / "data" / "aligned" / "cold_corpus3.wav"  # 24.6 s of conversational speech
    x = load_audio(clip).samples
    noise, nrate = sf.read(ROOT / "tests" / "data" / "noise_exercise_bike_12s.flac", dtype="float32")
    noise = resample(noise if noise.ndim == 1 else noise.mean(axis=1), nrate, 16000)
    noise = np.tile(noise, len(x) // len(noise) + 1)[: len(x)]
    gain = np.sqrt(np.mean(x**2) / np.mean(noise**2)) / 10 ** (10 / 20)  # 10 dB SNR
    assert not detect_speech(x + gain * noise, 16000)  # the energy VAD alone hears no speech here
    noisy, only_noise = tmp_path / "noisy.wav", tmp_path / "noise.wav"
    sf.write(noisy, x + gain * noise, 16000)
    sf.write(only_noise, gain * noise, 16000)
    text = (ROOT / "tests" / "data" / "aligned" / "cold_corpus3.lab").read_text(encoding="utf-8")
    config = PipelineConfig(transcript=text, viseme_set="oculus")  # enhance off
    result = pipeline.run(str(noisy), config)
    assert result.transcript.method == "align" and len(result.transcript.words) >= 50
    assert any("very noisy" in w for w in result.warnings)
    assert result.curves.channels["mouth_open"].max() > 0.3  # the mouth moves
    # without a transcript the clip is not second-guessed: noise alone stays "no speech", mouth at rest,
    # and so does the noisy line (the denoiser is no speech detector); both get a hint what to do
    for path in (only_noise, noisy):
        result = pipeline.run(str(path), PipelineConfig(viseme_set="oculus"))
        assert result.transcript.method == "silence" and result.curves.channels["mouth_open"].max() == 0.0
        assert any("give the line's transcript" in w and "Enhance Audio" in w for w in result.warnings)
    # a quiet room tone without a transcript gets no such hint
    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, (gain * noise * 10 ** (-50 / 20)).astype(np.float32), 16000)
    result = pipeline.run(str(quiet), PipelineConfig(viseme_set="oculus"))
    assert not any("give the line's transcript" in w for w in result.warnings)
    # noise alone with a transcript: the user says there is a line; it is placed, but flagged
    result = pipeline.run(str(only_noise), config)
    assert any("may not match" in w or "may be missing words" in w or "Alignment failed" in w
               for w in result.warnings), result.warnings


def _cold_corpus3_in_bike_noise(snr_db: float) -> tuple[np.ndarray, str, Callable[[list], object]]:
    """cold_corpus3 (24.6 s) with the real exercise-bike noise at ``snr_db``: (16 kHz samples, its transcript,
    a function scoring phones against its reference alignment with scripts/eval_align.py)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import eval_align as ea

    from lipsync_addon.core.audio import load_audio, resample

    aligned = ROOT / "tests" / "data" / "aligned"
    x = load_audio(aligned / "cold_corpus3.wav").samples
    noise, nrate = sf.read(ROOT / "tests" / "data" / "noise_exercise_bike_12s.flac", dtype="float32")
    noise = resample(noise if noise.ndim == 1 else noise.mean(axis=1), nrate, 16000)
    noise = np.tile(noise, len(x) // len(noise) + 1)[: len(x)]
    y = (x + noise * np.sqrt(np.mean(x**2) / np.mean(noise**2) / 10 ** (snr_db / 10))).astype(np.float32)
    ref = ea.read_reference(aligned / "cold_corpus3.TextGrid", "phones")
    return y, (aligned / "cold_corpus3.lab").read_text(encoding="utf-8"), lambda phones: ea.score(
        ref, phones, len(x) / 16000)


def test_a_line_that_only_aligns_with_the_widest_search_is_tried_on_a_denoised_copy() -> None:
    """pocketsphinx on a 25 s line with bike noise at 20 dB: every word aligns on the raw audio, but only
    with every beam at its widest (``Transcript.wide_beam``); the denoised copy aligns without that and
    times the line better (measured F1 0.699 -> 0.756, viseme agreement 0.717 -> 0.777)."""
    y, text, score = _cold_corpus3_in_bike_noise(20.0)
    scores, results = {}, {}
    for fallback in (False, True):
        config = PipelineConfig(transcript=text, viseme_set="oculus", denoise_fallback=fallback)
        results[fallback] = result = pipeline.run(Audio(y, 16000), config)
        scores[fallback] = score(result.transcript.phones)
        assert result.transcript.method == "align" and len(result.transcript.words) >= 55
    assert results[False].transcript.wide_beam and not results[True].transcript.wide_beam
    assert any("Alignment needed a widened search in places" in w and "denoised copy aligned better" in w
               for w in results[True].warnings), results[True].warnings
    assert scores[True].f1 >= scores[False].f1 + 0.03 and scores[True].agreement >= scores[False].agreement + 0.03


def test_a_clean_line_that_needed_the_widest_search_is_not_aligned_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """A clean recording whose line only aligned with the widest search (a search error: its parts confirm
    the text, tests/unit/test_recognize.py) is not aligned a second time on a "denoised" copy the chain
    would leave as it is (it denoises only below its clean-recording SNR)."""
    from lipsync_addon.core.audio import load_audio
    from lipsync_addon.core.recognize.pocketsphinx_backend import PocketSphinxRecognizer
    from lipsync_addon.core.textgrid import read_textgrid

    aligned = ROOT / "tests" / "data" / "aligned"
    first, second = load_audio(aligned / "acoustic_corpus.wav"), load_audio(aligned / "cold_corpus.wav")
    y = np.concatenate([first.samples[round(24.817 * 16000):], np.zeros(4800, np.float32),
                        second.samples[:round(20.96 * 16000)]])
    said = [iv.text for iv in read_textgrid(aligned / "cold_corpus.TextGrid")["words"].intervals
            if iv.text.strip() and iv.start < 20.96]
    calls = []
    original = PocketSphinxRecognizer.transcribe
    monkeypatch.setattr(PocketSphinxRecognizer, "transcribe",
                        lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    result = pipeline.run(Audio(y, 16000), PipelineConfig(transcript=" ".join(["thanks", *said]), viseme_set="oculus"))
    assert result.transcript.wide_beam and result.transcript.method == "align"
    assert len(calls) == 1 and not any("denoised copy" in w for w in result.warnings)


def test_espeak_path_retries_on_a_denoised_copy_when_the_phone_models_cannot_confirm() -> None:
    """The other languages' path (espeak-ng + DTW + HMM) on a 25 s line with bike noise at 20 dB: the
    HMMs align under half of the words on the raw audio (method "align+dtw"), all of them on the
    denoised copy (measured F1 0.536 -> 0.714 against the reference, scripts/eval_noisy_align.py)."""
    from lipsync_addon.core.recognize import espeak

    if not espeak.available():
        pytest.skip("espeak-ng (espeakng-loader) is not installed")
    y, text, score = _cold_corpus3_in_bike_noise(20.0)
    scores = {}
    for fallback in (False, True):
        config = PipelineConfig(transcript=text, viseme_set="oculus", backend="espeak", denoise_fallback=fallback)
        result = pipeline.run(Audio(y, 16000), config)
        scores[fallback] = score(result.transcript.phones)
        assert result.transcript.method == ("align" if fallback else "align+dtw")
    assert any("denoised copy aligned better (the phone models confirm" in w for w in result.warnings)
    assert scores[True].f1 >= scores[False].f1 + 0.1 and scores[True].agreement >= scores[False].agreement + 0.1


def test_cli_offset_finds_a_known_shift(tmp_path: Path) -> None:
    data, rate = sf.read(BOBBY, dtype="float32")
    shift = 4800  # 0.1 s at 48 kHz
    clip = tmp_path / "clip.wav"
    sf.write(clip, data[shift:], rate)
    out = tmp_path / "offset.json"
    proc = cli("offset", str(BOBBY), str(clip), "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    found = json.loads(out.read_text(encoding="utf-8"))
    assert abs(found["offset"] - shift / rate) < 0.001


def test_cli_face_motion_is_written_with_signed_head_rotation(tmp_path: Path) -> None:
    clip = ROOT / "tests" / "data" / "aligned" / "acoustic_corpus.wav"
    out = tmp_path / "face.json"
    proc = cli("analyze", str(clip), "--face", "natural", "--face-seed", "3", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    face = json.loads(out.read_text(encoding="utf-8"))["face_curves"]["channels"]
    blinks = np.asarray(face["eye_blink_L"])
    assert blinks.max() > 0.9  # at least one full blink in 27 s
    head = np.concatenate([np.asarray(face[k]) for k in ("head_pitch", "head_yaw", "head_roll")])
    assert head.min() < 0.0 < head.max()  # radians, not clipped to [0, 1]
    eyes = np.concatenate([np.asarray(face[k]) for k in ("eye_yaw", "eye_pitch")])  # --face includes gaze
    assert eyes.min() < 0.0 < eyes.max()
    assert "smile" not in face and "serious" not in face  # expression is neutral unless asked for


def test_cli_face_layers_and_expression(tmp_path: Path) -> None:
    clip = ROOT / "tests" / "data" / "aligned" / "cold_corpus.wav"
    text = clip.with_suffix(".lab")
    out = tmp_path / "face.json"
    proc = cli("analyze", str(clip), "--text", str(text), "--face", "subtle", "--face-layers", "blink,gaze",
               "--expression", "smile", "-o", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    face = json.loads(out.read_text(encoding="utf-8"))["face_curves"]["channels"]
    assert set(face) == {"eye_blink_L", "eye_blink_R", "eye_yaw", "eye_pitch", "smile"}
    assert 0.2 < np.median(face["smile"]) < 0.7
    bad = cli("analyze", str(clip), "--face", "natural", "--face-layers", "blink,nose", "-o", str(out))
    assert bad.returncode == 2 and "nose" in bad.stderr and "gaze" in bad.stderr


def test_denoised_copy_without_rnnoise_uses_deepfilternet_then_wiener(monkeypatch) -> None:
    """As in the macOS extension zips (no pyrnnoise): DeepFilterNet3 makes the copy (measured: it aligns
    better than the Wiener filter, docs/enhance.md); the Wiener filter only without its weights."""
    from lipsync_addon.core.audio import load_audio, resample
    from lipsync_addon.core.enhance import deepfilter, rnnoise
    from lipsync_addon.core.types import CancelToken

    def missing() -> None:
        raise rnnoise.EnhanceError("RNNoise is not installed here")

    monkeypatch.setattr(rnnoise, "_library", missing)
    assert not rnnoise.available()
    speech = load_audio(BOBBY)
    x = resample(speech.samples, speech.rate, 16000)
    noise, nrate = sf.read(ROOT / "tests" / "data" / "noise_exercise_bike_12s.flac", dtype="float32")
    noise = resample(noise if noise.ndim == 1 else noise.mean(axis=1), nrate, 16000)[: len(x)]
    x = np.concatenate([np.zeros(8000, np.float32), x])  # 0.5 s of noise alone, then the line
    noise = np.tile(noise, 2)[: len(x)]
    noisy = (x + noise * np.sqrt(np.mean(x**2) / np.mean(noise**2)) / 10 ** (5 / 20)).astype(np.float32)

    def speech_over_noise_db(y: np.ndarray) -> float:
        return float(10 * np.log10(np.mean(y[8000:] ** 2) / np.mean(y[800:7200] ** 2)))

    used = []
    real = deepfilter.deepfilter_denoise
    monkeypatch.setattr(deepfilter, "deepfilter_denoise", lambda *a, **k: used.append(1) or real(*a, **k))
    cleaned = pipeline._denoised_copy(noisy, 16000, CancelToken())
    assert used and cleaned is not None and cleaned.shape == noisy.shape and np.isfinite(cleaned).all()
    assert speech_over_noise_db(cleaned) > speech_over_noise_db(noisy) + 6.0

    monkeypatch.setattr(deepfilter, "model_folder", lambda: None)  # no weights either: the Wiener chain
    used.clear()
    cleaned = pipeline._denoised_copy(noisy, 16000, CancelToken())
    assert not used and cleaned is not None and np.isfinite(cleaned).all()
    assert speech_over_noise_db(cleaned) > speech_over_noise_db(noisy) + 6.0


def test_transcript_annotations_are_not_aligned_as_words() -> None:
    """Real speech whose transcription marks a cut-off word ``[adif]`` and a cough ``<VOCNOISE>``
    (MFA reference: silence from 16.87 to 18.37 s, the cough inside). Before, both were aligned as
    words with letter-to-sound phones: "vocnoise" moved the mouth over the pause, "[adif]" pulled
    "bunch" 80 ms early."""
    data = ROOT / "tests" / "data" / "aligned"
    text = (data / "cold_corpus3.lab").read_text(encoding="utf-8")
    assert "<VOCNOISE>" in text and "[adif]" in text
    names = ["viseme_" + v for v in "sil PP FF TH DD kk CH SS nn RR aa E I O U".split()]
    result = pipeline.run(str(data / "cold_corpus3.wav"), PipelineConfig(transcript=text, channel_names=names))
    words = result.transcript.words
    assert not {"vocnoise", "adif"} & {w.text.lower() for w in words}
    assert [w.text for w in words].count("bunch") == 1
    bunch = next(w for w in words if w.text == "bunch")
    assert abs(bunch.start - 13.06) <= 0.02
    speech = [p for p in result.transcript.phones if not p.is_silence and p.end > 16.95 and p.start < 18.30]
    assert speech == []
    assert any("[adif]" in w and "<VOCNOISE>" in w for w in result.warnings)
    only = pipeline.run(str(BOBBY), PipelineConfig(transcript="[laughs] (sighs)", channel_names=names))
    assert only.transcript.method != "align" and [w.text for w in only.transcript.words]  # recognized
    assert any("holds only directions or sounds ([laughs], (sighs))" in w for w in only.warnings)


def test_the_denoised_copy_is_judged_by_the_words_the_alignment_placed_not_dtw(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Words timed by espeak-ng + DTW (``pronunciation_source`` "dtw") stand in where the alignment failed;
    they do not count as aligned when the raw and the denoised timing are compared. Here the raw line has
    4 aligned + 6 DTW words, the copy 5 aligned words and the phone loop elsewhere: the copy wins."""
    from lipsync_addon.core.types import Phone, Transcript, Word

    def line(method: str, sources: list[str]) -> Transcript:
        words = [Word(f"w{i}", i * 0.3, i * 0.3 + 0.2, pronunciation_source=s) for i, s in enumerate(sources)]
        return Transcript(words, [Phone("sil", 0.0, 3.0)], 3.0, method, [])

    raw = line("align+dtw", ["dictionary"] * 4 + ["dtw"] * 6)
    copy = line("align+phone_loop", ["dictionary"] * 5)
    audio = Audio(np.zeros(48000, np.float32), 16000)
    monkeypatch.setattr(pipeline, "_denoised_copy", lambda samples, *a, **k: samples + 0.001)

    class Recognizer:
        def transcribe(self, *_a: object, **_k: object) -> Transcript:
            return copy

    used, got = pipeline._retry_denoised(audio, raw, Recognizer(), "text", token=CancelToken(),
                                         progress=lambda *_: None)
    assert got is copy and used is not audio
    assert any("5 words aligned instead of 4" in w for w in got.warnings)
    # counted with its DTW words the raw line would have "won" (10 > 5): the copy as good as raw is not taken
    copy_as_good = line("align+phone_loop", ["dictionary"] * 4)
    copy = copy_as_good
    used, got = pipeline._retry_denoised(audio, raw, Recognizer(), "text", token=CancelToken(),
                                         progress=lambda *_: None)
    assert got is raw and used is audio
