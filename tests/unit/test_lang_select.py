"""Language choice: backend selection, IPA chart -> viseme coverage, the pipeline in Spanish."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lipsync_addon.core.audio import load_audio, to_analysis
from lipsync_addon.core.recognize import espeak, get_recognizer
from lipsync_addon.core.recognize.languages import LanguageRecognizer
from lipsync_addon.core.recognize.pocketsphinx_backend import PocketSphinxRecognizer
from lipsync_addon.core.recognize.vosk_backend import VoskModelError, check_model_dir
from lipsync_addon.core.types import LipSyncError
from lipsync_addon.core.visemes.tables import _table, ipa_to_visemes

DATA = Path(__file__).resolve().parents[1] / "data"
needs_espeak = pytest.mark.skipif(not espeak.available(), reason="espeak-ng (espeakng-loader) is not installed")


def test_ipa_chart_maps_to_visemes_without_fallback() -> None:
    chart = json.loads((DATA / "ipa_chart.json").read_text(encoding="utf-8"))
    table = _table()
    fallback = [(table.fallback.viseme, table.fallback.weight)]
    for group in ("pulmonic", "clicks", "implosives", "ejectives", "other", "vowels", "affricates", "espeak"):
        for sym in chart[group].split():
            assert ipa_to_visemes(sym) != fallback, f"{group} {sym!r} falls back"
    for sym, vis in chart["expected"].items():
        assert ipa_to_visemes(sym)[0][0] == vis, sym


def test_english_defaults_to_pocketsphinx() -> None:
    assert isinstance(get_recognizer("en"), PocketSphinxRecognizer)
    assert isinstance(get_recognizer("en-US"), PocketSphinxRecognizer)


@needs_espeak
def test_other_languages_and_errors() -> None:
    assert isinstance(get_recognizer("es"), LanguageRecognizer)
    assert isinstance(get_recognizer("en", backend="espeak"), LanguageRecognizer)
    with pytest.raises(LipSyncError, match="does not know the language"):
        get_recognizer("xx")
    with pytest.raises(LipSyncError, match="Unknown speech backend"):
        get_recognizer("es", backend="whisper")
    with pytest.raises(LipSyncError, match="only ships an English model"):
        get_recognizer("es", backend="pocketsphinx")
    with pytest.raises(VoskModelError, match="not a Vosk model folder"):
        get_recognizer("es", vosk_model=str(DATA))
    with pytest.raises(VoskModelError, match="does not exist"):
        check_model_dir(DATA / "no_such_model", "es")
    with pytest.raises(LipSyncError, match=r"alphacephei\.com/vosk/models"):
        get_recognizer("es", backend="vosk")


@needs_espeak
def test_no_transcript_no_model_falls_back_with_a_message() -> None:
    audio = to_analysis(load_audio(DATA / "lang" / "13697_11991_000000.opus"))
    rec = get_recognizer("es")
    res = rec.transcribe(audio, "")
    assert res.method == "phone_loop" and rec.name == "phone-loop"
    assert "Vosk model" in res.warnings[0] and "transcript" in res.warnings[0]
    assert sum(not p.is_silence for p in res.phones) > 50


@needs_espeak
def test_pipeline_runs_in_spanish() -> None:
    from lipsync_addon.core.pipeline import run
    from lipsync_addon.core.types import PipelineConfig

    text = (DATA / "lang" / "13697_11991_000000.lab").read_text(encoding="utf-8")
    result = run(str(DATA / "lang" / "13697_11991_000000.opus"), PipelineConfig(transcript=text, language="es",
                                                                               viseme_set="oculus"))
    assert result.provenance["backend"] == "espeak-ng+dtw"
    assert len(result.transcript.words) == len(text.split())
    assert {v.viseme for v in result.visemes} >= {"PP", "SS", "aa", "E", "O"}
    # the report says the phone models refined the timing (method "align", not "align+dtw")
    assert result.transcript.method == "align"
    assert result.warnings[0] == "Timing by espeak-ng + DTW transcript alignment, refined with phone models (es)."


def test_ipa_chart_maps_to_english_model_phones() -> None:
    """Every IPA chart symbol gets the nearest English model phones (HMM refinement of other languages):
    real model phones, vowels to vowels and consonants to consonants, none by the unknown-symbol fallback."""
    from lipsync_addon.core.phonemes import _nearest_table, _strip_marks, english_model_phones

    model = set(json.loads((DATA.parents[1] / "lipsync_addon/core/data/arpabet_ipa.json").read_text("utf-8"))["phones"])
    vowels = {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"}
    chart = json.loads((DATA / "ipa_chart.json").read_text(encoding="utf-8"))
    table = _nearest_table()
    for group in ("pulmonic", "clicks", "implosives", "ejectives", "other", "vowels", "affricates", "espeak"):
        for sym in chart[group].split():
            got = english_model_phones(sym)
            assert got and set(got) <= model, (group, sym, got)
            bare = _strip_marks(sym, table["strip"])
            known = sym in table["sequences"] or bare in table["sequences"] or all(c in table["phones"] for c in bare)
            assert known, f"{group} {sym!r} uses the fallback"
            if group != "espeak":
                assert (set(got) <= vowels) == (group == "vowels"), (group, sym, got)
    assert english_model_phones("tʃ") == ["CH"] and english_model_phones("ts") == ["T", "S"]
    assert english_model_phones("aɪ") == ["AY"] and english_model_phones("oː") == ["OW"]
    assert english_model_phones("sil") == [] and english_model_phones("") == []
