"""Transcript files: encodings, and subtitles (SubRip, WebVTT) read as their spoken text."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lipsync_addon.core.transcript_file import (
    annotations,
    is_subtitles,
    read_transcript_file,
    script_lines,
    subtitle_text,
    transcript_from_text,
    without_annotations,
)
from lipsync_addon.core.types import TranscriptError

ROOT = Path(__file__).resolve().parents[2]
BOBBY = ROOT / "tests" / "data" / "aligned" / "bobby.wav"

SRT = """1
00:00:00,000 --> 00:00:00,600
<i>Bobby</i> ripped

2
00:00:00,600 --> 00:00:01,190
- JOHN: the [paper tears] ledger ♪

"""

VTT = """WEBVTT - a line

NOTE the speaker is Bobby's friend

STYLE
::cue { color: yellow }

intro
00:00.000 --> 00:00.600 align:start position:10%
<v John>Bobby ripped</v>

00:00:00.600 --> 00:00:01.190
the (sighs) ledger
"""


def test_subrip_cues_give_the_spoken_words_only() -> None:
    assert is_subtitles(SRT)
    assert subtitle_text(SRT) == "Bobby ripped the ledger"
    assert subtitle_text(SRT.replace("\n", "\r\n")) == "Bobby ripped the ledger"


def test_webvtt_headers_notes_styles_and_voice_tags_are_dropped() -> None:
    assert is_subtitles(VTT)
    assert subtitle_text(VTT) == "Bobby ripped the ledger"


def test_plain_text_stays_as_it_is(tmp_path: Path) -> None:
    text = "Bobby ripped the ledger at 10:30 -- twice."
    assert not is_subtitles(text)
    assert transcript_from_text("  " + text + "\n") == text
    path = tmp_path / "line.txt"
    path.write_text(text, encoding="utf-16")  # with its byte-order mark
    assert read_transcript_file(path) == text
    path.write_bytes(text.replace("twice", "zweimal, ä").encode("latin-1"))
    assert read_transcript_file(path).endswith("zweimal, ä.")


def test_directions_and_sound_descriptions_are_not_spoken() -> None:
    """Plain text too: a transcription's ``[laughter]`` / ``<VOCNOISE>`` or a script's ``(quietly)`` is
    not aligned as words (it was: "vocnoise" got letter-to-sound phones over a pause)."""
    text = "I told you (laughs) it's fine [door creaks]\nso <VOCNOISE> come {B_TRANS} in （笑） now"
    assert transcript_from_text(text).split() == "I told you it's fine so come in now".split()
    assert "\n" in transcript_from_text(text)  # plain text keeps its line breaks
    assert script_lines(text)[0].text == "I told you it's fine so come in now"
    assert annotations(text) == ["(laughs)", "[door creaks]", "<VOCNOISE>", "{B_TRANS}", "（笑）"]
    # formatting and voice tags are markup: removed without a space, never listed
    assert without_annotations("<i>Hel</i>lo {\\an8}there<br>now").split() == ["Hello", "there", "now"]
    assert annotations("<v.loud Anna>Hi</v> <b>there</b> ♪ [MUSIC] ♪ <00:00:05.000>you<br/>") == ["[MUSIC]"]
    assert annotations("a < b and c") == [] and without_annotations("a < b") == "a < b"


def test_files_by_extension_or_content(tmp_path: Path) -> None:
    srt = tmp_path / "line.srt"
    srt.write_text("\ufeff" + SRT, encoding="utf-8")
    assert read_transcript_file(srt) == "Bobby ripped the ledger"
    pasted = tmp_path / "line.txt"  # subtitles saved as .txt are still subtitles
    pasted.write_text(VTT, encoding="utf-8")
    assert read_transcript_file(pasted) == "Bobby ripped the ledger"
    empty = tmp_path / "music.srt"
    empty.write_text("1\n00:00:00,000 --> 00:00:02,000\n♪ [music] ♪\n", encoding="utf-8")
    with pytest.raises(TranscriptError, match="hold no text"):
        read_transcript_file(empty)
    with pytest.raises(TranscriptError, match="Cannot read the transcript file"):
        read_transcript_file(tmp_path / "missing.srt")


def test_cli_aligns_to_subtitles(tmp_path: Path) -> None:
    srt = tmp_path / "bobby.srt"
    srt.write_text(SRT, encoding="utf-8")
    out = tmp_path / "cues.json"
    proc = subprocess.run([sys.executable, "-m", "lipsync_addon", "analyze", str(BOBBY), "--text", str(srt),
                           "-o", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text(encoding="utf-8"))
    assert [w["text"] for w in data["words"]] == ["bobby", "ripped", "the", "ledger"]
    assert data["metadata"]["method"] == "align"
