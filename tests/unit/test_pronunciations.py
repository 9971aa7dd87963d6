"""User pronunciation dictionaries: names and invented words said the way the character says them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lipsync_addon.core import pipeline, pronunciations
from lipsync_addon.core.types import PipelineConfig, TranscriptError

ROOT = Path(__file__).resolve().parents[2]
SPEECH = str(ROOT / "tests" / "data" / "cmu_arctic_us_aew_a0001.wav")
TEXT = "Author of the danger trail, Philip Steels, etc."
#: the same line with the name spelled so that no dictionary knows it ("Xilip" would be read SH IY L IH P)
ODD = "Author of the danger trail, Xilip Steels, etc."


def test_parse_both_forms_comments_and_errors(tmp_path: Path) -> None:
    text = ("# names in episode 3\nXal'atath  Z AA1 L AH0 T AE2 TH\n\n"
            "Hermione = her my oh nee  # the wizard\nDATA d ey t ah\n")
    assert pronunciations.parse(text) == {
        "xal'atath": "Z AA1 L AH0 T AE2 TH", "hermione": "= her my oh nee", "data": "D EY T AH"}
    assert pronunciations.is_respelling("= her my oh nee") and pronunciations.respelling("= her my") == "her my"
    with pytest.raises(TranscriptError, match=r"names.txt, line 2: Q, XX are not ARPAbet"):
        pronunciations.parse("ok OW K EY\nbad Q AA XX\n", "names.txt")
    with pytest.raises(TranscriptError, match="line 1: 'Xalatath' has no pronunciation"):
        pronunciations.parse("Xalatath\n")
    with pytest.raises(TranscriptError, match="not one word"):
        pronunciations.parse("New York = noo york\n")
    with pytest.raises(TranscriptError, match="line 1: write 'word = words it sounds like'"):
        pronunciations.parse("Hermione =\n")
    path = tmp_path / "names.txt"
    path.write_text("\ufeffXilip = philip\n", encoding="utf-8")  # a byte-order mark is fine
    assert pronunciations.read(path) == {"xilip": "= philip"}
    with pytest.raises(TranscriptError, match="Cannot read the pronunciation dictionary"):
        pronunciations.read(tmp_path / "missing.txt")


def _words(result) -> list[tuple[str, str, float, float]]:
    return [(w.text, w.pronunciation_source, w.start, w.end) for w in result.transcript.words]


def _phones_of(result, index: int) -> list[str]:
    return [p.ipa for p in result.transcript.phones if p.word_index == index]


@pytest.mark.parametrize("entry", ["= philip", "F IH1 L AH0 P"])
def test_an_unknown_name_said_as_the_dictionary_says(entry: str) -> None:
    """On real speech: a name no dictionary knows, given as a respelling or as ARPAbet, aligns exactly like
    the word the speaker says; without the entry it gets letter-to-sound phones and a warning."""
    config = PipelineConfig(transcript=TEXT, viseme_set="oculus")
    reference = pipeline.run(SPEECH, config)
    guessed = pipeline.run(SPEECH, PipelineConfig(transcript=ODD, viseme_set="oculus"))
    assert any("'xilip' is not in the dictionary" in w and "docs/pronunciations.md" in w for w in guessed.warnings)
    assert _phones_of(guessed, 5) != _phones_of(reference, 5)
    told = pipeline.run(SPEECH, PipelineConfig(transcript=ODD, viseme_set="oculus", pronunciations={"xilip": entry}))
    assert not any("xilip" in w for w in told.warnings)
    assert _phones_of(told, 5) == _phones_of(reference, 5) == ["f", "ɪ", "l", "ə", "p"]
    ours, theirs = _words(told), _words(reference)
    assert ours[5][:2] == ("xilip", "user") and [w[2:] for w in ours] == [w[2:] for w in theirs]
    # the stress digits given (or the respelling's dictionary stress) mark the stressed vowel
    assert [p.stress for p in told.transcript.phones if p.word_index == 5 and p.ipa == "ɪ"] == [1]


def test_arpabet_replaces_what_the_dictionary_says() -> None:
    told = pipeline.run(SPEECH, PipelineConfig(transcript=TEXT, viseme_set="oculus",
                                               pronunciations={"author": "Z AA1 L AH0 T AE2 TH"}))
    assert _words(told)[0][:2] == ("author", "user")
    assert _phones_of(told, 0) == ["z", "ɑ", "l", "ə", "t", "æ", "θ"]


def test_respellings_on_the_espeak_path_and_arpabet_there_warns() -> None:
    reference = pipeline.run(SPEECH, PipelineConfig(transcript=TEXT, backend="espeak", viseme_set="oculus"))
    told = pipeline.run(SPEECH, PipelineConfig(transcript=ODD, backend="espeak", viseme_set="oculus",
                                               pronunciations={"xilip": "= philip"}))
    assert [w.text for w in told.transcript.words][5] == "xilip"
    assert _phones_of(told, 5) == _phones_of(reference, 5)
    arpabet = pipeline.run(SPEECH, PipelineConfig(transcript=ODD, backend="espeak", viseme_set="oculus",
                                                  pronunciations={"xilip": "F IH1 L AH0 P"}))
    assert any("ARPAbet pronunciations are used by the English aligner only: xilip" in w for w in arpabet.warnings)


def test_a_changed_dictionary_is_not_served_from_the_reused_analysis() -> None:
    pipeline.clear_analysis_cache()
    try:
        first = pipeline.run(SPEECH, PipelineConfig(transcript=ODD, viseme_set="oculus", reuse_analysis=True,
                                                    pronunciations={"xilip": "= philip"}))
        other = pipeline.run(SPEECH, PipelineConfig(transcript=ODD, viseme_set="oculus", reuse_analysis=True,
                                                    pronunciations={"xilip": "= shilling"}))
        assert "analysis_reused" not in other.provenance
        assert _phones_of(first, 5)[0] == "f" and _phones_of(other, 5)[0] == "ʃ"
    finally:
        pipeline.clear_analysis_cache()


def test_cli_dict_option(tmp_path: Path) -> None:
    names = tmp_path / "names.txt"
    names.write_text("Xilip = philip\n", encoding="utf-8")
    text = tmp_path / "line.txt"
    text.write_text(ODD, encoding="utf-8")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "lipsync_addon", "analyze", SPEECH, "--text", str(text), *args],
                              cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)

    done = cli("--dict", str(names), "-o", str(tmp_path / "cues.json"))
    assert done.returncode == 0, done.stderr
    cues = json.loads((tmp_path / "cues.json").read_text(encoding="utf-8"))
    assert cues["words"][5]["text"] == "xilip" and cues["words"][5]["pronunciation_source"] == "user"
    names.write_text("Xilip Q\n", encoding="utf-8")
    bad = cli("--dict", str(names))
    assert bad.returncode != 0 and "names.txt, line 1: Q is not ARPAbet" in bad.stderr and "Traceback" not in bad.stderr


def test_letter_to_sound_words_are_reported_on_every_run() -> None:
    """A word pronounced by rules is added to the long-lived decoder; the next run still reports it."""
    for _ in range(2):
        result = pipeline.run(SPEECH, PipelineConfig(transcript=ODD.replace("Xilip", "Zyllip"), viseme_set="oculus"))
        assert any("'zyllip' is not in the dictionary" in w for w in result.warnings)
