"""Batch lip sync of a folder of dialogue lines (bpy-free unless a .blend template is given).

A *line* is an audio file (``.wav .flac .ogg .opus .mp3 .aif .aiff .m4a .aac .wma``; the last three
through FFmpeg, see :func:`lipsync_addon.core.audio.read_audio_file`) with an optional transcript next to
it of the same stem (``line.wav`` + ``line.txt``); sub-folders are walked and mirrored in the
output folder. Every line is processed independently (one failure never stops the batch):

* cue files in the requested formats (:data:`lipsync_addon.core.export.engines.FORMATS`),
* with ``template`` (a .blend) and the bpy module available: the line baked onto ``object_name``
  in a copy of the template, saved as ``<line>.blend`` and/or exported as ``<line>.glb`` / ``.fbx``.

``manifest.json`` in the output folder records each line's status (``done`` / ``failed``),
warnings, error, seconds and outputs, plus a signature of its inputs and options; it is rewritten
atomically after every line, so an interrupted batch resumes where it stopped: a line whose
signature matches a ``done`` entry and whose outputs all exist is skipped.

Parallelism: ``workers`` local processes (spawned, one line at a time each, BLAS threads pinned
to 1). :func:`process_line` is a plain picklable function of plain data, so a distributed backend
(Dask) maps the same function: ``backend="dask"`` or a scheduler address (docs/batch.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .core.types import DEFAULT_BREATH, DEFAULT_SMOOTHING, DEFAULT_STRENGTH, LipSyncError

#: transcript next to a line, first found wins: plain text, then subtitles (their cue text)
TEXT_SUFFIXES = (".txt", ".srt", ".vtt")
#: audio file suffixes a batch picks up (lower case)
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aif", ".aiff", ".m4a", ".aac", ".wma")
#: name of the manifest in the output folder
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "lipsync-batch-manifest"
MANIFEST_VERSION = "1.0"
#: environment for worker processes: one BLAS/OpenMP thread each (workers are the parallelism)
WORKER_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass
class BatchOptions:
    """Everything a line needs besides its files (plain data, sent to workers).

    Attributes:
        formats: cue formats to write (keys of ``engines.FORMATS``).
        viseme_set: viseme set of the cue curves ("oculus", "arkit", ...; "auto" with a template).
        fps: curve sample rate in frames per second (the template scene's fps when baking).
        csv_fps: frame rate of the CSV format, frames per second.
        strength: mouth motion amplitude, 0..2.
        smoothing: coarticulation smoothing, 0..1.
        breath: breath opening before phrases after a pause, 0 (off) .. 1.
        template: .blend to bake into ("" = cues only).
        object_name: object of the template to animate.
        glb: export ``<line>.glb`` (template mode).
        fbx: export ``<line>.fbx`` (template mode).
        blend: save ``<line>.blend`` (template mode).
        pronunciations: the user's pronunciations (word -> ARPAbet or "= respelling", docs/pronunciations.md).
        speaker: animate only this speaker's lines of each transcript that names its speakers ("" = every
            line; docs/speakers.md); a line whose transcript does not name it fails with a message.
        language: ISO 639 code of every line (docs/languages.md): pocketsphinx for English, espeak-ng +
            DTW for other languages with a transcript, Vosk without one.
        vosk_model: Vosk model folder (absolute) for lines of another language without a transcript.
        dereverb: reduce room echo (WPE) before each line's analysis (docs/enhance.md, "Room echo").
    """

    formats: list[str] = field(default_factory=lambda: ["json"])
    viseme_set: str = "oculus"
    fps: float = 30.0
    csv_fps: float = 30.0
    strength: float = DEFAULT_STRENGTH
    smoothing: float = DEFAULT_SMOOTHING
    breath: float = DEFAULT_BREATH
    template: str = ""
    object_name: str = ""
    glb: bool = False
    fbx: bool = False
    blend: bool = False
    pronunciations: dict[str, str] = field(default_factory=dict)
    speaker: str = ""
    language: str = "en"
    vosk_model: str = ""
    dereverb: bool = False

    def digest(self) -> str:
        """Short hash of the options (a change re-processes every line)."""
        settings = asdict(self)
        for name in ("pronunciations", "speaker", "vosk_model", "dereverb"):
            if not settings[name]:
                settings.pop(name)  # unset: batches from before these options resume
        if settings["language"] == "en":
            settings.pop("language")
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Line:
    """One dialogue line of the batch.

    Attributes:
        name: relative path of the audio without suffix, '/'-separated (the output stem).
        audio: absolute path of the clip.
        text: absolute path of the transcript ("" if none).
        error: a problem found while scanning (e.g. a name clash); the line is reported failed.
    """

    name: str
    audio: str
    text: str = ""
    error: str = ""


@dataclass
class LineResult:
    """What happened to one line (one manifest entry)."""

    name: str
    status: str  # "done" | "failed" | "skipped"
    seconds: float = 0.0
    duration: float = 0.0
    outputs: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str = ""
    signature: str = ""


@dataclass
class BatchSummary:
    """Counts and the manifest path of a finished batch run."""

    manifest: str
    done: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    results: list[LineResult] = field(default_factory=list)


# ------------------------------------------------------------------ scanning


def discover_lines(in_dir: str | os.PathLike[str]) -> list[Line]:
    """Lines under ``in_dir`` (recursive), sorted by name; clashing stems are marked with an error."""
    root = Path(in_dir)
    if not root.is_dir():
        raise LipSyncError(f"The batch input folder '{in_dir}' does not exist or is not a folder.")
    by_name: dict[str, list[Path]] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix.lower() in AUDIO_SUFFIXES and not path.name.startswith("."):
            name = path.relative_to(root).with_suffix("").as_posix()
            by_name.setdefault(name.casefold(), []).append(path)
    lines = []
    for paths in by_name.values():
        for path in paths:
            name = path.relative_to(root).with_suffix("").as_posix()
            text = next((t for t in map(path.with_suffix, TEXT_SUFFIXES) if t.is_file()), None)
            line = Line(name=name, audio=str(path.resolve()), text=str(text.resolve()) if text else "")
            if len(paths) > 1:
                line.name = path.relative_to(root).as_posix()  # unique manifest key for each clashing file
                others = ", ".join(p.name for p in paths if p != path)
                line.error = (f"Name clash: '{path.relative_to(root)}' and {others} would write the same output "
                              "files; rename one of them.")
            lines.append(line)
    return sorted(lines, key=lambda ln: (ln.name, ln.audio))


def output_paths(line: Line, out_dir: str, options: BatchOptions) -> list[str]:
    """Every file the line writes (cue files, then .blend/.glb/.fbx in template mode)."""
    from .core.export.engines import FORMATS

    stem = os.path.join(out_dir, *line.name.split("/"))
    paths = [stem + FORMATS[fmt][0] for fmt in options.formats]
    if options.template:
        paths += [stem + ext for ext, on in ((".blend", options.blend), (".glb", options.glb),
                                              (".fbx", options.fbx)) if on]  # fmt: skip
    return paths


def line_signature(line: Line, options: BatchOptions) -> str:
    """Hash of the line's inputs (audio size + mtime, transcript bytes) and the options."""
    h = hashlib.sha256(options.digest().encode())
    st = os.stat(line.audio)
    h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    if line.text:
        h.update(Path(line.text).read_bytes())
    return h.hexdigest()[:24]


# ------------------------------------------------------------------ one line (runs in a worker)


def _read_text(path: str) -> str:
    """The line's transcript file as written (subtitles and speaker labels are read by the pipeline)."""
    from .core.transcript_file import read_script_file

    return read_script_file(path) if path else ""


def process_line(line: Line, out_dir: str, options: BatchOptions) -> LineResult:
    """Analyse one line and write its outputs; never raises (errors go into the result)."""
    started = time.perf_counter()
    res = LineResult(name=line.name, status="failed")
    try:
        if line.error:
            raise LipSyncError(line.error)
        res.signature = line_signature(line, options)
        outputs = output_paths(line, out_dir, options)
        transcript = _read_text(line.text)
        if options.template:
            result = _bake_with_template(line, transcript, outputs, options)
        else:
            result = _analyze(line, transcript, options)
        _write_cues(result, outputs, options)
        res.duration = round(float(result.duration), 3)
        res.warnings = [str(w) for w in result.warnings]
        res.outputs = [os.path.relpath(p, out_dir) for p in outputs]
        res.status = "done"
    except LipSyncError as exc:
        res.error = str(exc)
    except Exception as exc:  # a bug: keep the batch going, keep the evidence
        tail = traceback.format_exc().strip().splitlines()[-6:]
        res.error = f"internal error ({type(exc).__name__}: {exc}); please report it. " + " | ".join(tail)
    res.seconds = round(time.perf_counter() - started, 3)
    return res


def _analyze(line: Line, transcript: str, options: BatchOptions) -> Any:
    from .core import pipeline
    from .core.types import PipelineConfig

    config = PipelineConfig(transcript=transcript, viseme_set=options.viseme_set, fps=options.fps,
                            strength=options.strength, smoothing=options.smoothing, breath=options.breath,
                            pronunciations=options.pronunciations, speaker=options.speaker, jobs=1,
                            language=options.language, vosk_model=options.vosk_model, dereverb=options.dereverb)
    return pipeline.run(line.audio, config)


def _write_cues(result: Any, outputs: list[str], options: BatchOptions) -> None:
    from .core.export.engines import write_cue_file

    for fmt, path in zip(options.formats, outputs, strict=False):
        write_cue_file(result, fmt, path, csv_fps=options.csv_fps, language=options.language)


def _bake_with_template(line: Line, transcript: str, outputs: list[str], options: BatchOptions) -> Any:
    """Open the template, bake the line onto the object, save/export; return the pipeline result."""
    try:
        from .blender import export as blender_export
    except ImportError as exc:
        raise LipSyncError(
            f"Baking into a .blend template needs Blender's Python module (bpy): {exc}. Run the batch with "
            "the project's .venv/bin/python (bpy wheel), or drop --template to write cue files only."
        ) from None
    extra = outputs[len(options.formats):]
    wanted = {Path(p).suffix: p for p in extra}
    return blender_export.bake_line_into_template(
        options.template, options.object_name, line.audio, transcript=transcript,
        strength=options.strength, smoothing=options.smoothing, breath=options.breath,
        viseme_set=options.viseme_set, pronunciations=options.pronunciations, speaker=options.speaker,
        language=options.language, vosk_model=options.vosk_model, dereverb=options.dereverb,
        blend_path=wanted.get(".blend", ""), glb_path=wanted.get(".glb", ""), fbx_path=wanted.get(".fbx", ""),
    )  # fmt: skip


def _worker_init() -> None:
    os.environ.update(WORKER_ENV)


# ------------------------------------------------------------------ the batch


def _check_writable(out_dir: str) -> None:
    try:
        os.makedirs(out_dir, exist_ok=True)
        probe = os.path.join(out_dir, f".lipsync-write-test-{os.getpid()}")
        with open(probe, "w", encoding="utf-8") as fh:
            fh.write("")
        os.unlink(probe)
    except OSError as exc:
        raise LipSyncError(f"Cannot write to the output folder '{out_dir}': {exc.strerror or exc}.") from None


def load_manifest(out_dir: str) -> dict[str, Any]:
    """The manifest of a previous run, or an empty one (unreadable manifests are started over)."""
    path = os.path.join(out_dir, MANIFEST_NAME)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("format") == MANIFEST_FORMAT and isinstance(data.get("lines"), dict):
            return data
    except (OSError, ValueError):
        pass
    return {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "lines": {}}


def _save_manifest(manifest: dict[str, Any], out_dir: str) -> None:
    from .core.export.cues import write_json

    write_json(manifest, os.path.join(out_dir, MANIFEST_NAME))


def is_finished(entry: dict[str, Any] | None, line: Line, out_dir: str, options: BatchOptions) -> bool:
    """True if the manifest entry says done with the same signature and every output exists."""
    if not entry or entry.get("status") != "done" or line.error:
        return False
    try:
        if entry.get("signature") != line_signature(line, options):
            return False
    except OSError:
        return False
    return all(os.path.isfile(p) for p in output_paths(line, out_dir, options))


ProgressCallback = Callable[[int, int, LineResult], None]


def run_batch(
    in_dir: str,
    out_dir: str,
    options: BatchOptions,
    *,
    workers: int = 1,
    backend: str = "local",
    force: bool = False,
    progress: ProgressCallback | None = None,
) -> BatchSummary:
    """Process every line under ``in_dir`` into ``out_dir``; return the summary.

    Args:
        in_dir: folder of ``line.wav`` (+ ``line.txt``) files.
        out_dir: output folder (created); holds the outputs and ``manifest.json``.
        options: formats, viseme set, fps, template settings.
        workers: local worker processes (1 = in this process); 0 = all cores.
        backend: "local" (worker processes here), "dask" (a local Dask cluster) or a Dask scheduler
            address ("tcp://host:8786") for a farm.
        force: re-process lines even if the manifest says they are finished.
        progress: called as ``progress(finished, total, result)`` after each line.

    Raises LipSyncError for a missing input folder, an unwritable output folder, unknown formats or
    a missing template; failures of single lines are recorded, not raised.
    """
    from .core.export.engines import FORMATS

    started = time.perf_counter()
    unknown = [f for f in options.formats if f not in FORMATS]
    if unknown:
        raise LipSyncError(f"Unknown cue format(s) {', '.join(unknown)}; use {', '.join(FORMATS)}.")
    if options.template:
        if not os.path.isfile(options.template):
            raise LipSyncError(f"The template .blend '{options.template}' does not exist.")
        if not options.object_name:
            raise LipSyncError("A template needs --object: the name of the mesh to animate.")
        options.template = os.path.abspath(options.template)
    elif options.glb or options.fbx or options.blend:
        raise LipSyncError("--glb / --fbx / --blend need a .blend template (--template) to bake into.")
    from .core.recognize import get_recognizer

    if options.vosk_model:
        options.vosk_model = os.path.abspath(options.vosk_model)
    get_recognizer(options.language or "en", vosk_model=options.vosk_model)  # an unknown language: refuse once
    out_dir = os.path.abspath(out_dir)
    lines = discover_lines(in_dir)
    if not lines:
        raise LipSyncError(f"No audio files ({', '.join(AUDIO_SUFFIXES)}) in '{in_dir}'.")
    _check_writable(out_dir)
    manifest = load_manifest(out_dir)
    manifest.update(format=MANIFEST_FORMAT, version=MANIFEST_VERSION, input=os.path.abspath(in_dir),
                    options=asdict(options))  # fmt: skip
    entries: dict[str, Any] = manifest["lines"]
    summary = BatchSummary(manifest=os.path.join(out_dir, MANIFEST_NAME))
    todo: list[Line] = []
    finished = 0
    for line in lines:
        if not force and is_finished(entries.get(line.name), line, out_dir, options):
            res = LineResult(name=line.name, status="skipped")
            summary.skipped += 1
            summary.results.append(res)
            finished += 1
            if progress:
                progress(finished, len(lines), res)
        else:
            todo.append(line)

    def record(res: LineResult) -> None:
        nonlocal finished
        finished += 1
        entry = asdict(res)
        entry["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        entries[res.name] = entry
        if res.status == "done":
            summary.done += 1
        else:
            summary.failed += 1
        summary.results.append(res)
        _save_manifest(manifest, out_dir)
        if progress:
            progress(finished, len(lines), res)

    if todo:
        for res in _execute(todo, out_dir, options, workers=workers, backend=backend):
            record(res)
    else:
        _save_manifest(manifest, out_dir)
    summary.results.sort(key=lambda r: r.name)
    summary.seconds = round(time.perf_counter() - started, 3)
    return summary


def _execute(
    todo: list[Line], out_dir: str, options: BatchOptions, *, workers: int, backend: str
) -> Iterable[LineResult]:
    """Yield line results as they complete, on the chosen backend."""
    n_workers = workers if workers > 0 else (os.cpu_count() or 1)
    if backend == "dask" or backend.startswith(("tcp://", "tls://", "ucx://")):
        yield from _execute_dask(todo, out_dir, options, n_workers=n_workers,
                                 scheduler="" if backend == "dask" else backend)
        return
    if backend != "local":
        raise LipSyncError(f"Unknown batch backend '{backend}'; use 'local', 'dask' (a local Dask cluster) "
                           "or a Dask scheduler address such as tcp://farm-head:8786.")
    if n_workers == 1 or len(todo) == 1:
        for line in todo:
            yield process_line(line, out_dir, options)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = multiprocessing.get_context("spawn")  # same behaviour on every OS; no forked decoder state
    old = {k: os.environ.get(k) for k in WORKER_ENV}
    os.environ.update(WORKER_ENV)  # inherited by the spawned workers before numpy loads
    try:
        with ProcessPoolExecutor(max_workers=min(n_workers, len(todo)), mp_context=ctx,
                                 initializer=_worker_init) as pool:  # fmt: skip
            futures = {pool.submit(process_line, line, out_dir, options): line for line in todo}
            for fut in as_completed(futures):
                try:
                    yield fut.result()
                except Exception as exc:  # the worker process died (e.g. killed): report the line
                    line = futures[fut]
                    yield LineResult(name=line.name, status="failed", error=f"worker process failed: {exc}")
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


#: Seconds to wait for a Dask scheduler before giving up with a message.
DASK_CONNECT_TIMEOUT = 20.0


def _execute_dask(
    todo: list[Line], out_dir: str, options: BatchOptions, *, n_workers: int, scheduler: str
) -> Iterable[LineResult]:
    """Run the lines on Dask: a local cluster of ``n_workers`` processes, or the cluster at ``scheduler``.

    On a farm every worker needs this package importable and the input/output paths reachable
    (shared storage): each task is :func:`process_line` for one line, exactly as the local backend.
    """
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError as exc:
        raise LipSyncError("The Dask backend needs dask.distributed: .venv/bin/pip install -r "
                           "requirements-batch.txt (scripts/setup.sh installs it).") from exc
    cluster = None
    try:
        if scheduler:
            client = Client(scheduler, timeout=DASK_CONNECT_TIMEOUT)
        else:
            cluster = LocalCluster(n_workers=min(n_workers, len(todo)), threads_per_worker=1, processes=True,
                                   dashboard_address=None, env=dict(WORKER_ENV))  # fmt: skip
            client = Client(cluster)
    except (OSError, TimeoutError) as exc:
        if cluster is not None:
            cluster.close()
        raise LipSyncError(f"Cannot reach the Dask scheduler {scheduler or '(local)'}: {exc}") from exc
    try:
        futures = {client.submit(process_line, line, out_dir, options, pure=False): line for line in todo}
        for fut in as_completed(list(futures)):
            try:
                yield fut.result()
            except Exception as exc:  # the task or its worker died: report the line, go on
                line = futures[fut]
                yield LineResult(name=line.name, status="failed", error=f"Dask worker failed: {exc}")
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def text_progress(stream: Any = None) -> ProgressCallback:
    """A progress bar on stderr: ``[#####-----]  45/100 lines  2 failed  ETA 1m20s  <line>``."""
    out = stream or sys.stderr
    started = time.monotonic()
    failed = [0]
    width = 28

    def report(finished: int, total: int, res: LineResult) -> None:
        failed[0] += res.status == "failed"
        frac = finished / total if total else 1.0
        elapsed = time.monotonic() - started
        eta = elapsed / frac - elapsed if frac > 0 else 0.0
        bar = "#" * round(frac * width) + "-" * (width - round(frac * width))
        msg = f"\r[{bar}] {finished:>{len(str(total))}}/{total} lines"
        if failed[0]:
            msg += f"  {failed[0]} failed"
        msg += f"  ETA {int(eta // 60)}m{int(eta % 60):02d}s  {res.name[-30:]:<30}"
        out.write(msg + ("\n" if finished >= total else ""))
        out.flush()

    return report
