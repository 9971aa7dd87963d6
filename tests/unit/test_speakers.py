"""Dialogue with several speakers: scripts and subtitles that say who speaks, one speaker's lines animated."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lipsync_addon.core import pipeline, speakers
from lipsync_addon.core.audio import load_audio, to_analysis
from lipsync_addon.core.export.subtitles import MAX_CHARS, MAX_SECONDS, split_line, to_srt, to_vtt, two_rows
from lipsync_addon.core.transcript_file import ScriptLine, script_lines, sentences, transcript_from_text
from lipsync_addon.core.transcript_file import speakers as speakers_of
from lipsync_addon.core.types import Audio, LineTiming, Phone, PipelineConfig, Transcript, TranscriptError, Word

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"

SRT = """1
00:00:01,000 --> 00:00:03,000
ANNA: Are you coming [door creaks]
tonight?

2
00:00:03,500 --> 00:00:05,000
- BEN: Maybe.
- I don't know.

3
00:00:05,500 --> 00:00:06,000
<i>Then I go alone.</i>
"""

VTT = """WEBVTT

00:01.000 --> 00:03.000
<v Anna>Are you coming?</v>

00:03.500 --> 00:05.000
<v.loud Ben>Maybe.</v>
"""


def test_subtitle_speakers_labels_dashes_and_continuations() -> None:
    assert script_lines(SRT) == [
        ScriptLine("ANNA", "Are you coming tonight?"),  # a cue's next row continues Anna's line
        ScriptLine("BEN", "Maybe."),
        ScriptLine("", "I don't know."),  # a dialogue dash without a name: someone else
        ScriptLine("", "Then I go alone."),
    ]
    assert speakers_of(SRT) == ["ANNA", "BEN"]
    assert script_lines(VTT) == [ScriptLine("Anna", "Are you coming?"), ScriptLine("Ben", "Maybe.")]


def test_plain_text_scripts() -> None:
    script = "ANNA: Are you coming?\n(quietly) still thinking\nBEN: Maybe.\n"
    assert script_lines(script) == [ScriptLine("ANNA", "Are you coming?"), ScriptLine("ANNA", "still thinking"),
                                    ScriptLine("BEN", "Maybe.")]
    mixed = "Anna: Are you coming?\nBen: Maybe.\nanna: Fine."
    assert speakers_of(mixed) == ["Anna", "Ben"]  # names compare without case
    assert transcript_from_text(mixed) == "Are you coming? Maybe. Fine."
    # one line with a mixed-case "label" is plain text: "Note:" is spoken, nothing is dropped
    assert script_lines("Note: the lid is open.") == [ScriptLine("", "Note: the lid is open.")]
    assert transcript_from_text("Note: the lid is open.\n") == "Note: the lid is open."
    assert speakers_of("Just a line, no speakers.") == []
    one_cue = "1\n00:00:00,000 --> 00:00:01,100\nBobby ripped the ledger\n"  # one cue, no speaker: its text
    assert transcript_from_text(one_cue) == "Bobby ripped the ledger"
    assert script_lines("I: think so.") == [ScriptLine("", "I: think so.")]  # a one-letter capital "label" is text
    # screenplay extensions: "ANNA (V.O.):", "Ben (whispering):"
    assert script_lines("ANNA (V.O.): I knew.\nBen (whispering): Quiet.") == [ScriptLine("ANNA", "I knew."),
                                                                             ScriptLine("Ben", "Quiet.")]


def test_select_explains_a_missing_speaker() -> None:
    with pytest.raises(TranscriptError, match="names no speakers"):
        speakers.select("Are you coming tonight?", "Anna")
    with pytest.raises(TranscriptError, match="Its speakers are: ANNA, BEN"):
        speakers.select(SRT, "Carl")
    _, keep = speakers.select(SRT, " anna ")
    assert keep == {0}


def test_words_find_their_lines_when_the_aligner_skips_or_spells_out_words() -> None:
    lines = [ScriptLine("ANNA", "I have 2 cats."), ScriptLine("BEN", "Nice! Two cats?"), ScriptLine("ANNA", "Yes.")]
    # "have" skipped (no pronunciation, say), "2" spelled out as the English aligner does
    words = ["i", "two", "cats", "nice", "two", "cats", "yes"]
    assert speakers.word_lines(words, lines, "en") == [0, 0, 0, 1, 1, 1, 2]
    assert speakers.word_lines(["xyz"], lines, "en") == [-1]
    # other languages keep their words (and accents do not matter)
    es = [ScriptLine("A", "¿Vienes esta noche?"), ScriptLine("B", "Quizá.")]
    assert speakers.word_lines(["vienes", "esta", "noche", "quiza"], es, "es") == [0, 0, 0, 1]
    # Japanese has no spaces: the lines are segmented as the aligner segments the whole text
    from lipsync_addon.core.recognize.espeak_align import tokenize

    ja = [ScriptLine("A", "真っ昼間なのにキャンプの外れの"), ScriptLine("B", "電柱に電球がともっていた")]
    words = [t.text for t in tokenize(" ".join(line.text for line in ja), "ja")]
    assert speakers.word_lines(words, ja, "ja") == [0] * 6 + [1] * 4


def _transcript() -> Transcript:
    words = [Word("hello", 0.1, 0.5), Word("hi", 1.0, 1.3), Word("bye", 2.0, 2.4)]
    phones = [Phone("sil", 0.0, 0.1), Phone("h", 0.1, 0.3, word_index=0), Phone("oʊ", 0.3, 0.5, word_index=0),
              Phone("sil", 0.5, 0.7), Phone("ə", 0.7, 0.9),  # a filler after "hello", nearer Ben's "hi"
              Phone("h", 1.0, 1.1, word_index=1), Phone("aɪ", 1.1, 1.3, word_index=1), Phone("sil", 1.3, 2.0),
              Phone("b", 2.0, 2.1, word_index=2), Phone("aɪ", 2.1, 2.4, word_index=2), Phone("sil", 2.4, 3.0)]
    return Transcript(words, phones, 3.0, "align")


def test_keep_speaker_silences_the_others() -> None:
    lines = [ScriptLine("ANNA", "Hello"), ScriptLine("BEN", "Hi"), ScriptLine("ANNA", "Bye")]
    anna = speakers.keep_speaker(_transcript(), lines, {0, 2}, "en")
    assert [w.text for w in anna.words] == ["hello", "bye"]
    assert [(p.ipa, p.start, p.end, p.word_index) for p in anna.phones] == [
        ("sil", 0.0, 0.1, -1), ("h", 0.1, 0.3, 0), ("oʊ", 0.3, 0.5, 0), ("sil", 0.5, 2.0, -1),
        ("b", 2.0, 2.1, 1), ("aɪ", 2.1, 2.4, 1), ("sil", 2.4, 3.0, -1)]
    ben = speakers.keep_speaker(_transcript(), lines, {1}, "en")
    assert [(p.ipa, p.start, p.end, p.word_index) for p in ben.phones if not p.is_silence] == [
        ("ə", 0.7, 0.9, -1), ("h", 1.0, 1.1, 0), ("aɪ", 1.1, 1.3, 0)]
    assert not ben.warnings


def test_keep_speaker_without_words_keeps_the_speech_and_says_so() -> None:
    loop = Transcript([], [Phone("sil", 0.0, 0.2), Phone("m", 0.2, 0.5), Phone("sil", 0.5, 1.0)], 1.0, "phone_loop")
    out = speakers.keep_speaker(loop, [ScriptLine("A", "mm"), ScriptLine("B", "hi")], {0}, "en")
    assert [p.ipa for p in out.phones] == ["sil", "m", "sil"]
    assert any("could not be told apart" in w for w in out.warnings)
    # the others' words aligned, none of this speaker's: said too
    only_b = speakers.keep_speaker(_transcript(), [ScriptLine("A", "nothing"), ScriptLine("B", "hello hi bye")], {0},
                                   "en")
    assert not only_b.words and all(p.is_silence for p in only_b.phones)
    assert any("None of this speaker's words" in w for w in only_b.warnings)


def _scene() -> tuple[Audio, str, list[tuple[str, float, float]]]:
    """Three real recordings in a row, two speakers: (audio, script, [(speaker, start s, end s)])."""
    clips = [("JOHN", DATA / "cmu_arctic_us_aew_a0001.wav", "Author of the danger trail, Philip Steels, etc."),
             ("MARY", DATA / "aligned" / "mary.wav", "Mary rolled the barrel."),
             ("JOHN", DATA / "aligned" / "bobby.wav", "Bobby ripped the ledger.")]
    parts, spans, t = [], [], 0.0
    for who, path, _ in clips:
        clip = to_analysis(load_audio(str(path)))
        parts += [np.zeros(int(0.4 * clip.rate), np.float32), clip.samples]
        spans.append((who, t + 0.4, t + 0.4 + clip.duration))
        t += 0.4 + clip.duration
    return Audio(np.concatenate(parts), 16000), "\n".join(f"{who}: {text}" for who, _, text in clips), spans


def _speech_in(result: Transcript, start: float, end: float) -> float:
    return sum(min(p.end, end) - max(p.start, start) for p in result.phones
               if not p.is_silence and p.end > start and p.start < end)


@pytest.mark.parametrize("backend", ["pocketsphinx", "espeak"])
def test_one_speaker_of_a_real_dialogue_track(backend: str) -> None:
    audio, script, spans = _scene()
    everyone = pipeline.run(audio, PipelineConfig(transcript=script, backend=backend, viseme_set="oculus"))
    assert any("names several speakers (JOHN, MARY)" in w for w in everyone.warnings)
    assert [w.text for w in everyone.transcript.words][8:] == ["mary", "rolled", "the", "barrel", "bobby", "ripped",
                                                               "the", "ledger"]
    mary = pipeline.run(audio, PipelineConfig(transcript=script, speaker="Mary", backend=backend,
                                              viseme_set="oculus"))
    assert [w.text for w in mary.transcript.words] == ["mary", "rolled", "the", "barrel"]
    assert not any("names several speakers" in w for w in mary.warnings)
    for who, start, end in spans:
        speech = _speech_in(mary.transcript, start, end)
        assert (speech > 0.8) if who == "MARY" else (speech == 0.0), (who, speech)
    # her words keep the timing they have when every line is animated
    assert [(w.start, w.end) for w in mary.transcript.words] == [(w.start, w.end) for w in
                                                                 everyone.transcript.words[8:12]]
    # every line is timed (all speakers), inside its recording
    assert [(line.speaker, line.text) for line in mary.lines] == [(who, text) for who, text in
                                                                  (ln.split(": ", 1) for ln in script.splitlines())]
    for line, (_, start, end) in zip(mary.lines, spans, strict=True):
        assert start - 0.05 <= line.start < line.end <= end + 0.05
    # her mouth rests while John talks
    t = mary.curves.times
    john = (t > spans[0][1] + 0.2) & (t < spans[0][2] - 0.2)
    assert john.any() and float(np.max(mary.curves.channels["mouth_open"][john])) < 0.05
    assert float(np.max(everyone.curves.channels["mouth_open"][john])) > 0.3


def test_cli_speaker_from_webvtt_subtitles(tmp_path: Path) -> None:
    """The CLI takes the scene's subtitles with voice tags (times are not used) and one speaker."""
    import json
    import subprocess
    import sys

    import soundfile as sf

    audio, script, spans = _scene()
    sf.write(tmp_path / "scene.wav", audio.samples, audio.rate)
    cues = [f"00:0{i}.000 --> 00:0{i + 1}.000\n<v {line.split(':')[0].title()}>{line.split(': ', 1)[1]}</v>"
            for i, line in enumerate(script.splitlines())]
    (tmp_path / "scene.vtt").write_text("WEBVTT\n\n" + "\n\n".join(cues) + "\n", encoding="utf-8")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "lipsync_addon", "analyze", str(tmp_path / "scene.wav"),
                               "--text", str(tmp_path / "scene.vtt"), *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=300, check=False)

    done = cli("--speaker", "john", "-o", str(tmp_path / "john.json"))
    assert done.returncode == 0, done.stderr
    john = json.loads((tmp_path / "john.json").read_text(encoding="utf-8"))
    assert [w["text"] for w in john["words"]] == ["author", "of", "the", "danger", "trail", "philip", "steels", "etc",
                                                   "bobby", "ripped", "the", "ledger"]
    assert john["metadata"]["provenance"]["speaker"] == "john"
    mary_start, mary_end = spans[1][1:]
    assert not [p for p in john["phones"] if p["ipa"] not in ("sil", "") and p["end"] > mary_start + 0.05
                and p["start"] < mary_end - 0.05]
    both = cli("--speaker", "Mary", "--subtitles", str(tmp_path / "timed.vtt"), "-o", str(tmp_path / "mary.json"))
    assert both.returncode == 0, both.stderr
    timed = script_lines((tmp_path / "timed.vtt").read_text(encoding="utf-8"))
    assert [line.speaker for line in timed] == ["John", "Mary", "John"]
    mary = json.loads((tmp_path / "mary.json").read_text(encoding="utf-8"))
    assert [line["speaker"] for line in mary["lines"]] == ["John", "Mary", "John"] and mary["version"] == "1.2"
    for line, (_, start, end) in zip(mary["lines"], spans, strict=True):
        assert start - 0.05 <= line["start"] < line["end"] <= end + 0.05
    wrong = cli("--speaker", "Carl")
    assert wrong.returncode != 0 and "Its speakers are: John, Mary" in wrong.stderr
    assert "Traceback" not in wrong.stderr


def test_line_times_sentences_and_subtitle_files() -> None:
    lines = [ScriptLine("ANNA", "Hello."), ScriptLine("BEN", "Hi."), ScriptLine("ANNA", "Bye!"),
             ScriptLine("", "Never")]
    timed = speakers.line_times(_transcript(), lines, "en")  # "Never" has no aligned word: left out
    assert timed == [LineTiming("ANNA", "Hello.", 0.1, 0.5), LineTiming("BEN", "Hi.", 1.0, 1.3),
                     LineTiming("ANNA", "Bye!", 2.0, 2.4)]
    srt = to_srt([*timed, LineTiming("", "A long one.", 3723.0, 3725.5)])
    assert srt.startswith("1\n00:00:00,100 --> 00:00:00,500\nANNA: Hello.\n\n2\n")
    assert "4\n01:02:03,000 --> 01:02:05,500\nA long one.\n" in srt
    vtt = to_vtt(timed)
    assert vtt.startswith("WEBVTT\n\n00:00:00.100 --> 00:00:00.500\n<v ANNA>Hello.\n")
    for text in (srt, vtt):  # what we write reads back as the same lines
        assert script_lines(text)[:3] == lines[:3]
    assert sentences("Hi there. How are you?  Fine... thanks! 3.5 kg — ok") == [
        "Hi there.", "How are you?", "Fine...", "thanks!", "3.5 kg — ok"]
    assert sentences("真っ昼間だった。電球がともっていた。") == ["真っ昼間だった。", "電球がともっていた。"]


def _timed_words(text: str, gaps: dict[int, float], rate: float = 0.3) -> tuple[Word, ...]:
    """Words of ``text`` every ``rate`` s (0.25 s long), with an extra pause before the word indices in ``gaps``."""
    out, t = [], 0.0
    for i, w in enumerate(text.split()):
        t += gaps.get(i, 0.0)
        out.append(Word(w.strip(",.").lower(), t, t + 0.25))
        t += rate
    return tuple(out)


def test_long_lines_become_several_cues_cut_at_pauses() -> None:
    """An unpunctuated 26 s transcript used to be one 26 s subtitle."""
    text = ("so this is the line that goes on and on without any punctuation at all because the "
            "actor improvised it and nobody cut it into sentences before it came to us today")
    words = _timed_words(text, {15: 1.2, 21: 0.4})  # a long pause before "because", a short one before "nobody"
    line = LineTiming("ANNA", text, words[0].start, words[-1].end, words)
    cues = split_line(line)
    assert " ".join(c.text for c in cues) == text
    for c in cues:
        assert len(c.text) <= MAX_CHARS and c.end - c.start <= MAX_SECONDS and c.speaker == "ANNA"
    assert [c.text.split()[0] for c in cues] == ["so", "because", "nobody"]  # the long pause ends a cue; the
    assert cues[1].start == words[15].start and cues[1].end == words[20].end  # too long rest is cut at its pause
    # punctuation is a good place too; a short line stays whole; text without spaces is not cut
    said = "First we go to the harbour and find the boat, then we sail out past the lighthouse before dawn and wait"
    cues = split_line(LineTiming("", said, 0.0, 9.0, _timed_words(said, {})))
    assert cues[0].text.endswith("boat,")
    assert split_line(LineTiming("", "Hello there.", 0.0, 1.0, _timed_words("Hello there.", {}))) == [
        LineTiming("", "Hello there.", 0.0, 1.0)]
    assert len(split_line(LineTiming("", "電球が" * 40, 0.0, 12.0))) == 1
    # a cue longer than one row is written on two balanced rows, cut after punctuation where it can be
    assert two_rows("First we go to the harbour, then we sail out past the light") == (
        "First we go to the harbour,\nthen we sail out past the light")
    assert two_rows("Hello there.") == "Hello there."
    srt = to_srt([LineTiming("ANNA", "this is the acoustic corpus i'm talking pretty fast here", 0.0, 3.0)])
    assert srt.split("\n")[2:4] == ["ANNA: this is the acoustic corpus", "i'm talking pretty fast here"]
    assert script_lines(srt) == [ScriptLine("ANNA", "this is the acoustic corpus i'm talking pretty fast here")]
    # words that do not match the text one to one: times spread over the line by characters
    cues = split_line(LineTiming("", text, 0.0, 20.0, words[:5]))
    assert len(cues) >= 3 and cues[0].start == 0.0 and abs(cues[-1].end - 20.0) < 1e-9


def test_cli_subtitles_of_a_long_unpunctuated_transcript_are_readable_cues(tmp_path: Path) -> None:
    """Real speech, 26 s, its transcript one line without punctuation: cues cut between its words."""
    import itertools
    import subprocess
    import sys

    from lipsync_addon.core.transcript_file import is_subtitles

    clip, lab = DATA / "aligned" / "acoustic_corpus.wav", DATA / "aligned" / "acoustic_corpus.lab"
    out = tmp_path / "line.srt"
    run = subprocess.run([sys.executable, "-m", "lipsync_addon", "analyze", str(clip), "--text", str(lab),
                          "--subtitles", str(out), "-o", str(tmp_path / "cues.json")],
                         check=False, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr
    srt = out.read_text(encoding="utf-8")
    assert is_subtitles(srt)
    blocks = [b.split("\n") for b in srt.strip().split("\n\n")]
    assert len(blocks) >= 4
    spans = []
    for _number, timing, *rows in blocks:
        a, b = (sum(float(x) * m for x, m in zip(t.replace(",", ".").split(":"), (3600, 60, 1), strict=True))
                for t in timing.split(" --> "))
        assert len(rows) <= 2 and all(len(row) <= 42 for row in rows) and 0 < b - a <= MAX_SECONDS
        spans.append((a, b))
    assert all(b1 <= a2 for (_, b1), (a2, _) in itertools.pairwise(spans))
    assert " ".join(line.text for line in script_lines(srt)) == " ".join(lab.read_text(encoding="utf-8").split())


def test_subtitle_writer_refuses_no_lines_and_unwritable_paths(tmp_path: Path) -> None:
    from lipsync_addon.core.export.subtitles import write_subtitles
    from lipsync_addon.core.types import LipSyncError

    with pytest.raises(LipSyncError, match="No timed lines"):
        write_subtitles([], str(tmp_path / "out.srt"))
    with pytest.raises(LipSyncError, match="Cannot write"):
        write_subtitles([LineTiming("", "Hi.", 0.0, 1.0)], str(tmp_path / "missing" / "out.srt"))
    write_subtitles([LineTiming("", "Hi.", 0.0, 1.0)], str(tmp_path / "out.vtt"))
    assert (tmp_path / "out.vtt").read_text(encoding="utf-8").startswith("WEBVTT")


def test_cli_speaker_and_subtitles_need_a_transcript() -> None:
    import subprocess
    import sys

    for option in (["--speaker", "Anna"], ["--subtitles", "out.srt"]):
        clip = str(DATA / "cmu_arctic_us_aew_a0001.wav")
        done = subprocess.run([sys.executable, "-m", "lipsync_addon", "analyze", clip, *option], cwd=ROOT,
                              capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode != 0 and "needs" in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_hashes_of_configs_without_the_new_options_are_unchanged() -> None:
    """Batch resumption across this update: hashes as computed before speaker/pronunciations/reuse existed."""
    from lipsync_addon import batch

    assert pipeline.config_hash(PipelineConfig(transcript="hi", viseme_set="arkit")) == "f7249c1bc0be"
    assert batch.BatchOptions(viseme_set="arkit").digest() == "d20181946ef382df"
