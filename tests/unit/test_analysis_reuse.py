"""The speech analysis is reused when only animation settings change (PipelineConfig.reuse_analysis)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lipsync_addon.core import pipeline
from lipsync_addon.core.audio import load_audio
from lipsync_addon.core.types import Audio, PipelineConfig, Transcript

ROOT = Path(__file__).resolve().parents[2]
SPEECH = ROOT / "tests" / "data" / "cmu_arctic_us_aew_a0001.wav"
TEXT = "Author of the danger trail, Philip Steels, etc."


@pytest.fixture(autouse=True)
def empty_cache():
    pipeline.clear_analysis_cache()
    yield
    pipeline.clear_analysis_cache()


def test_reuse_is_off_unless_asked() -> None:
    config = PipelineConfig(transcript=TEXT, viseme_set="oculus")
    for _ in range(2):
        assert "analysis_reused" not in pipeline.run(str(SPEECH), config).provenance


def test_only_animation_settings_changed_reuses_a_private_copy() -> None:
    config = PipelineConfig(transcript=TEXT, viseme_set="oculus", reuse_analysis=True)
    first = pipeline.run(str(SPEECH), config)
    first.transcript.phones.clear()  # what a caller does with its result does not reach the next one
    crisp = PipelineConfig(transcript=TEXT, viseme_set="arkit", smoothing=0.0, strength=1.5, reuse_analysis=True)
    again = pipeline.run(str(SPEECH), crisp)
    assert again.provenance["analysis_reused"] and again.transcript.phones
    assert again.provenance["config_hash"] != first.provenance["config_hash"]
    assert pipeline.config_hash(config) == pipeline.config_hash(PipelineConfig(transcript=TEXT, viseme_set="oculus"))
    # the same clip decoded again (any rate: the key is the analysed signal) reuses it too
    clip = load_audio(str(SPEECH))
    assert pipeline.run(Audio(clip.samples, clip.rate), config).provenance["analysis_reused"]
    # what the analysis depends on: the text, the language, the enhancement, the samples
    for changed in (PipelineConfig(transcript=TEXT + " Yes.", viseme_set="oculus", reuse_analysis=True),
                    PipelineConfig(transcript=TEXT, viseme_set="oculus", enhance="light", reuse_analysis=True)):
        assert "analysis_reused" not in pipeline.run(str(SPEECH), changed).provenance
    louder = Audio(clip.samples * 0.5, clip.rate)
    assert "analysis_reused" not in pipeline.run(louder, config).provenance


def test_cache_bounds() -> None:
    cache = pipeline._AnalysisCache(entries=2, max_seconds=10.0)

    def item(seconds: float) -> tuple:
        return Audio(np.zeros(int(seconds * 16000), np.float32), 16000), Transcript(duration=seconds), "", None

    cache.put("a", item(4.0))
    cache.put("b", item(4.0))
    assert cache.get("a") is not None  # (a is now the most recent)
    cache.put("c", item(4.0))  # over the count and the audio budget: b goes
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None
    cache.put("d", item(11.0))  # longer than the whole budget: not kept, nothing else dropped
    assert cache.get("d") is None and cache.get("a") is not None


def test_a_model_replaced_at_the_same_path_is_analysed_again(tmp_path: Path) -> None:
    """The key holds the Vosk model folder's file times and sizes, not only its path."""
    import os

    model = tmp_path / "vosk-model"
    (model / "am").mkdir(parents=True)
    (model / "am" / "final.mdl").write_bytes(b"one model")
    audio = Audio(np.zeros(1600, np.float32), 16000)
    config = PipelineConfig(language="ko", vosk_model=str(model))
    key = pipeline._analysis_key(audio, "", config)
    assert pipeline._analysis_key(audio, "", config) == key
    (model / "am" / "final.mdl").write_bytes(b"another model, same path")
    os.utime(model / "am" / "final.mdl", ns=(1, 1))
    assert pipeline._analysis_key(audio, "", config) != key
    assert pipeline._folder_stamp(str(tmp_path / "missing")) == [] and pipeline._folder_stamp("") == []
