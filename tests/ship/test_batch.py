"""Batch: a folder of real lines -> cue files (+ .blend / GLB with a template), resumable, with a
manifest; broken audio, name clashes, unwritable output and missing template objects reported."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, SPEECH, SPEECH_TEXT

from lipsync_addon import batch, cli
from lipsync_addon.core.types import LipSyncError

SHARED = REPO.parent / "shared" / "data" / "speech_clean"
AXB = REPO / "tests" / "data" / "aligned" / "acoustic_corpus.wav"


@pytest.fixture
def lines_dir(tmp_path: Path) -> Path:
    """3 real lines (one with a transcript, one in a sub-folder), a broken file and a name clash."""
    d = tmp_path / "lines"
    (d / "scene2").mkdir(parents=True)
    shutil.copy(SPEECH, d / "hello.wav")
    (d / "hello.txt").write_text(SPEECH_TEXT, encoding="utf-8")
    shutil.copy(AXB, d / "scene2" / "corpus.wav")
    shutil.copy(SPEECH, d / "scene2" / "again.wav")
    (d / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 20)
    shutil.copy(SPEECH, d / "twice.wav")
    shutil.copy(SPEECH, d / "twice.flac")  # same stem: both outputs would collide
    return d


def test_discover_pairs_and_clashes(lines_dir):
    lines = {ln.name: ln for ln in batch.discover_lines(lines_dir)}
    assert lines["hello"].text.endswith("hello.txt") and lines["scene2/corpus"].text == ""
    assert "Name clash" in lines["twice.wav"].error and "Name clash" in lines["twice.flac"].error
    with pytest.raises(LipSyncError, match="does not exist"):
        batch.discover_lines(lines_dir / "nope")


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="the ffmpeg program is not installed")
def test_batch_takes_m4a_lines_with_subtitles(tmp_path):
    """An AAC (M4A) line is picked up and analysed through ffmpeg like any other; its transcript can be
    subtitles (.srt), read as their cue text."""
    d = tmp_path / "lines"
    d.mkdir()
    shutil.copy(REPO / "tests" / "data" / "formats" / "bobby.m4a", d / "bobby.m4a")
    (d / "bobby.srt").write_text("1\n00:00:00,000 --> 00:00:01,100\nBobby ripped the ledger\n", encoding="utf-8")
    (d / "notes.md").write_text("not a line", encoding="utf-8")
    assert [(ln.name, Path(ln.text).name) for ln in batch.discover_lines(d)] == [("bobby", "bobby.srt")]
    out = tmp_path / "out"
    assert cli.main(["batch", str(d), "-o", str(out), "--formats", "json", "-j", "1"]) == 0
    cues = json.loads((out / "bobby.json").read_text(encoding="utf-8"))
    assert [w["text"] for w in cues["words"]] == ["bobby", "ripped", "the", "ledger"]


def test_batch_pronunciation_dictionary_reaches_every_line_and_a_change_redoes_them(tmp_path):
    d = tmp_path / "lines"
    d.mkdir()
    shutil.copy(SPEECH, d / "hello.wav")
    (d / "hello.txt").write_text(SPEECH_TEXT.replace("Philip", "Xilip"), encoding="utf-8")
    names = tmp_path / "names.txt"
    names.write_text("Xilip = philip\n", encoding="utf-8")
    out = tmp_path / "out"
    args = ["batch", str(d), "-o", str(out), "--formats", "json", "-j", "1", "--progress", "none"]
    assert cli.main([*args, "--dict", str(names)]) == 0
    cues = json.loads((out / "hello.json").read_text(encoding="utf-8"))
    assert (cues["words"][5]["text"], cues["words"][5]["pronunciation_source"]) == ("xilip", "user")
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert not any("xilip" in w for w in manifest["lines"]["hello"]["warnings"])
    assert cli.main(args) == 0  # without the dictionary: re-processed, the name guessed and reported
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert any("'xilip' is not in the dictionary" in w for w in manifest["lines"]["hello"]["warnings"])


def test_batch_speaker_takes_one_character_of_each_scene(tmp_path):
    """Scenes recorded as one track with subtitles naming the speakers: --speaker keeps one character's lines;
    a scene without that character fails with the message, the others go on."""
    import numpy as np
    import soundfile as sf

    d = tmp_path / "scenes"
    d.mkdir()
    john, rate = sf.read(SPEECH, dtype="float32")
    bobby, bobby_rate = sf.read(REPO / "tests" / "data" / "aligned" / "bobby.wav", dtype="float32")
    bobby = np.interp(np.arange(0, len(bobby), bobby_rate / rate), np.arange(len(bobby)), bobby).astype(np.float32)
    sf.write(d / "scene1.wav", np.concatenate([john, np.zeros(rate // 2, np.float32), bobby]), rate)
    (d / "scene1.srt").write_text(f"1\n00:00:00,000 --> 00:00:04,000\nJOHN: {SPEECH_TEXT}\n\n"
                                  "2\n00:00:04,500 --> 00:00:06,000\nBOBBY: Bobby ripped the ledger.\n",
                                  encoding="utf-8")
    shutil.copy(SPEECH, d / "scene2.wav")
    (d / "scene2.txt").write_text(f"JOHN: {SPEECH_TEXT}", encoding="utf-8")
    out = tmp_path / "out"
    args = ["batch", str(d), "-o", str(out), "--formats", "json", "-j", "1", "--progress", "none"]
    assert cli.main([*args, "--speaker", "bobby"]) == 1  # scene2 has no Bobby
    cues = json.loads((out / "scene1.json").read_text(encoding="utf-8"))
    assert [w["text"] for w in cues["words"]] == ["bobby", "ripped", "the", "ledger"]
    assert [line["speaker"] for line in cues["lines"]] == ["JOHN", "BOBBY"]
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["lines"]
    assert manifest["scene2"]["status"] == "failed" and "Its speakers are: JOHN" in manifest["scene2"]["error"]
    assert cli.main(args) == 0  # every line: the scenes are re-processed (another option)
    cues = json.loads((out / "scene1.json").read_text(encoding="utf-8"))
    assert len(cues["words"]) == 12


def test_batch_of_another_language_with_subtitles_out(tmp_path):
    """--lang reaches every line (a Spanish line aligned by espeak-ng + DTW: its 44 words), --formats srt,vtt
    writes each line's timed subtitles; a line without a transcript fails its subtitles with the message;
    an unknown language is refused once, before any line."""
    d = tmp_path / "lines"
    d.mkdir()
    lang = REPO / "tests" / "data" / "lang"
    shutil.copy(lang / "13697_11991_000000.opus", d / "es_line.opus")
    shutil.copy(lang / "13697_11991_000000.lab", d / "es_line.txt")
    out = tmp_path / "out"
    args = ["batch", str(d), "-o", str(out), "-j", "1", "--progress", "none"]
    assert cli.main([*args, "--lang", "es", "--formats", "json,srt,vtt"]) == 0
    cues = json.loads((out / "es_line.json").read_text(encoding="utf-8"))
    provenance = cues["metadata"]["provenance"]
    assert (provenance["language"], provenance["backend"], len(cues["words"])) == ("es", "espeak-ng+dtw", 44)
    srt = (out / "es_line.srt").read_text(encoding="utf-8")
    vtt = (out / "es_line.vtt").read_text(encoding="utf-8")
    assert srt.startswith("1\n00:00:") and vtt.startswith("WEBVTT")
    from lipsync_addon.core.transcript_file import script_lines

    said = " ".join((lang / "13697_11991_000000.lab").read_text(encoding="utf-8").split())
    assert " ".join(line.text for line in script_lines(srt)) == said
    assert cli.main([*args, "--lang", "es", "--formats", "json"]) == 0  # other formats: done again
    before = json.loads((out / "es_line.json").read_text(encoding="utf-8"))["metadata"]["provenance"]["config_hash"]
    assert cli.main([*args, "--lang", "es", "--formats", "json", "--dereverb"]) == 0  # reaches the pipeline
    after = json.loads((out / "es_line.json").read_text(encoding="utf-8"))["metadata"]["provenance"]["config_hash"]
    assert after != before
    (d / "es_line.txt").unlink()
    assert cli.main([*args, "--formats", "srt", "--force"]) == 1
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["lines"]
    assert "No subtitles for this line" in manifest["es_line"]["error"]
    with pytest.raises(LipSyncError, match="xx"):
        batch.run_batch(str(d), str(tmp_path / "o2"), batch.BatchOptions(language="xx"))


def test_batch_two_workers_resume_and_manifest(lines_dir, tmp_path):
    out = tmp_path / "out"
    opts = batch.BatchOptions(formats=["json", "rhubarb-tsv", "oculus", "azure", "csv"])
    seen = []
    summary = batch.run_batch(str(lines_dir), str(out), opts, workers=2, progress=lambda f, t, r: seen.append(f))
    assert (summary.done, summary.failed, summary.skipped) == (3, 3, 0)
    assert seen == list(range(1, 7))
    for stem in ("hello", "scene2/corpus", "scene2/again"):
        for suffix in (".json", ".tsv", ".oculus.json", ".azure.json", ".csv"):
            assert (out / f"{stem}{suffix}").is_file(), stem + suffix
    cue = json.loads((out / "hello.json").read_text(encoding="utf-8"))
    assert [w["text"].lower() for w in cue["words"]][:2] == ["author", "of"]  # the transcript was used
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    entries = manifest["lines"]
    assert entries["hello"]["status"] == "done" and entries["hello"]["duration"] > 3.0
    assert "hello.csv" in entries["hello"]["outputs"]
    assert entries["broken"]["status"] == "failed" and "Cannot read" in entries["broken"]["error"]
    assert "Traceback" not in entries["broken"]["error"]
    assert entries["twice.wav"]["status"] == "failed" and "rename one" in entries["twice.wav"]["error"]

    # resume: finished lines are skipped, failed ones retried
    again = batch.run_batch(str(lines_dir), str(out), opts, workers=2)
    assert (again.done, again.skipped, again.failed) == (0, 3, 3)
    # a changed transcript or a missing output re-processes just that line
    (lines_dir / "hello.txt").write_text("Author of the danger trail.", encoding="utf-8")
    (out / "scene2" / "again.tsv").unlink()
    third = batch.run_batch(str(lines_dir), str(out), opts, workers=1)
    assert third.done == 2 and third.skipped == 1
    assert {r.name for r in third.results if r.status == "done"} == {"hello", "scene2/again"}
    forced = batch.run_batch(str(lines_dir), str(out), opts, workers=1, force=True)
    assert forced.done == 3 and forced.skipped == 0


def test_batch_bad_setups(lines_dir, tmp_path):
    (tmp_path / "afile").write_text("")
    with pytest.raises(LipSyncError, match="Cannot write to the output folder"):
        batch.run_batch(str(lines_dir), str(tmp_path / "afile" / "out"), batch.BatchOptions())
    with pytest.raises(LipSyncError, match="Unknown cue format"):
        batch.run_batch(str(lines_dir), str(tmp_path / "o"), batch.BatchOptions(formats=["xml"]))
    with pytest.raises(LipSyncError, match=r"need a \.blend template"):
        batch.run_batch(str(lines_dir), str(tmp_path / "o"), batch.BatchOptions(glb=True))
    with pytest.raises(LipSyncError, match=r"template \.blend .* does not exist"):
        batch.run_batch(str(lines_dir), str(tmp_path / "o"),
                        batch.BatchOptions(template=str(tmp_path / "x.blend"), object_name="Head"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LipSyncError, match="No audio files"):
        batch.run_batch(str(empty), str(tmp_path / "o"), batch.BatchOptions())


def test_cli_exit_codes(lines_dir, tmp_path, capsys):
    out = tmp_path / "cli_out"
    code = cli.main(["batch", str(lines_dir), "-o", str(out), "--formats", "rhubarb-tsv", "-j", "1"])
    err = capsys.readouterr().err
    assert code == 1  # some lines failed
    assert "3 done, 0 skipped, 3 failed" in err and "failed: broken:" in err
    shutil.rmtree(lines_dir / "scene2")
    for name in ("broken.wav", "twice.flac"):
        (lines_dir / name).unlink()
    assert cli.main(["batch", str(lines_dir), "-o", str(out), "--formats", "rhubarb-tsv",
                           "--progress", "none"]) == 0
    assert "1 done, 1 skipped, 0 failed" in capsys.readouterr().err  # twice.wav: no clash any more
    assert cli.main(["batch", str(tmp_path / "nope"), "-o", str(out)]) == 1


@pytest.mark.slow
def test_template_mode_bakes_blend_and_glb(tmp_path):
    bpy = pytest.importorskip("bpy")
    from test_glb import make_head

    bpy.ops.wm.read_factory_settings(use_empty=True)
    make_head("Head")
    template = tmp_path / "shot.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(template))
    d = tmp_path / "lines"
    d.mkdir()
    shutil.copy(SPEECH, d / "a.wav")
    (d / "a.txt").write_text(SPEECH_TEXT, encoding="utf-8")
    shutil.copy(AXB, d / "b.wav")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "lipsync_addon", "batch", str(d), "-o", str(out), "--template",
           str(template), "--object", "Head", "--glb", "--blend", "--formats", "json", "-j", "2",
           "--progress", "none"]  # fmt: skip
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    for stem in ("a", "b"):
        assert (out / f"{stem}.glb").read_bytes()[:4] == b"glTF"
        assert (out / f"{stem}.json").is_file()
        bpy.ops.wm.open_mainfile(filepath=str(out / f"{stem}.blend"))
        action = bpy.data.objects["Head"].data.shape_keys.animation_data.action
        assert action.name == f"LipSync_Head_{stem}" and action.get("lipsync_generated")
    bpy.ops.wm.open_mainfile(filepath=str(template))  # the template itself was not modified
    assert bpy.data.objects["Head"].data.shape_keys.animation_data is None
    # a template without the object: every line fails with a clear message, the batch still ends
    cmd[cmd.index("Head")] = "Face"
    bad = subprocess.run([*cmd[:6], str(tmp_path / "out2"), *cmd[7:]], cwd=REPO, capture_output=True, text=True,
                         timeout=600, check=False, env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    assert bad.returncode == 1
    assert "has no object named 'Face'" in bad.stderr and "0 done, 0 skipped, 2 failed" in bad.stderr


@pytest.mark.slow
def test_batch_lipsync_script_glb_and_fbx(tmp_path):
    bpy = pytest.importorskip("bpy")
    from test_glb import make_head

    bpy.ops.wm.read_factory_settings(use_empty=True)
    make_head("Head")
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "scene.blend"))
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "batch_lipsync.py"), "--blend", str(tmp_path / "scene.blend"),
         "--object", "Head", "--audio", str(SPEECH), "--transcript", SPEECH_TEXT, "--glb", str(tmp_path / "o.glb"),
         "--fbx", str(tmp_path / "o.fbx"), "--quiet"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "o.glb").read_bytes()[:4] == b"glTF" and (tmp_path / "o.fbx").stat().st_size > 1000
    summary = json.loads(done.stdout.split("lipsync: done ", 1)[1])
    assert summary["saved"] == "" and len(summary["exported"]) == 2


def test_dask_backend_on_a_local_cluster_matches_the_local_backend(lines_dir, tmp_path, monkeypatch):
    """The farm backend, tested with a Dask LocalCluster of 2 worker processes."""
    opts = batch.BatchOptions(formats=["json"])
    local = batch.run_batch(str(lines_dir), str(tmp_path / "local"), opts, workers=1)
    dask = batch.run_batch(str(lines_dir), str(tmp_path / "dask"), opts, workers=2, backend="dask")
    assert (dask.done, dask.failed, dask.skipped) == (local.done, local.failed, local.skipped) == (3, 3, 0)
    for stem in ("hello", "scene2/corpus", "scene2/again"):
        a = json.loads((tmp_path / "local" / f"{stem}.json").read_text(encoding="utf-8"))
        b = json.loads((tmp_path / "dask" / f"{stem}.json").read_text(encoding="utf-8"))
        assert a["curves"] == b["curves"] and a["words"] == b["words"]
    manifest = json.loads((tmp_path / "dask" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["lines"]["broken"]["status"] == "failed"
    monkeypatch.setattr(batch, "DASK_CONNECT_TIMEOUT", 2.0)
    with pytest.raises(LipSyncError, match="Cannot reach the Dask scheduler"):
        batch.run_batch(str(lines_dir), str(tmp_path / "x"), opts, workers=2, backend="tcp://127.0.0.1:1")
    with pytest.raises(LipSyncError, match="Unknown batch backend"):
        batch.run_batch(str(lines_dir), str(tmp_path / "y"), opts, workers=2, backend="slurm")
