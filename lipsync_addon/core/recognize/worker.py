"""Worker processes for long clips: the parent's pool (:class:`WorkerPool`) and the worker's loop (:func:`main`).

Protocol: the parent writes pickled ``(function_name, piece)`` jobs to stdin (``None`` ends);
the worker writes one pickled ``("ok", result)`` or ``("error", message)`` per job to its own
protocol pipe (the original stdout; anything libraries print goes to stderr instead).

Plain subprocesses instead of ``multiprocessing``: spawn re-runs the parent's ``__main__`` (a user's
batch script without a main guard would run again in every worker), and inside Blender the add-on's
package (``bl_ext.<repo>.<id>``) cannot be imported by name in a fresh interpreter. The parent starts
workers with the add-on folder's parent on ``sys.path`` and imports the package by its folder name.

One pool serves every stage of an analysis (locating words, then aligning them): the workers start
while the parent is still reading the transcript, and build the decoders they will need while it
does (``warm``), so neither stage waits for interpreters to start.
"""

from __future__ import annotations

import os
import pickle
import queue
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..types import Cancelled, CancelToken, ProgressFn

#: the backend functions a worker may run
JOBS = ("run_piece", "recognize_piece")


class WorkerPool:
    """``jobs`` worker processes kept for one analysis; use as a context manager.

    Args:
        jobs: number of processes.
        warm: decoder kinds (``pocketsphinx_backend._decoder``) each worker builds before its first job.

    Raises:
        RuntimeError: inside Blender, whose executable is not a Python interpreter (callers then
            run pieces in-process).
    """

    def __init__(self, jobs: int, warm: Sequence[str] = ()) -> None:
        if Path(sys.executable).name.lower().startswith("blender"):
            raise RuntimeError("no separate Python interpreter to run workers")
        package_dir = Path(__file__).resolve().parents[2]  # the add-on folder, whatever it is called
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(package_dir.parent), *[p for p in sys.path if p]])
        code = (f"import importlib; importlib.import_module({package_dir.name!r} + "
                f"'.core.recognize.worker').main({list(warm)!r})")
        self.procs: list[subprocess.Popen[bytes]] = []
        self.broken = False
        try:
            for _ in range(max(1, jobs)):
                self.procs.append(subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env))
        except OSError:
            self.stop()  # none left behind when the second one cannot start
            raise

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def map(
        self,
        fn: str,
        pieces: Sequence[Any],
        *,
        progress: ProgressFn,
        cancel: CancelToken | None,
        lo: float,
        hi: float,
    ) -> list[Any]:
        """Results of the backend function ``fn`` on each piece, in order; the longest pieces go first
        (fewer idle cores at the end). Progress runs from ``lo`` to ``hi``.

        Raises:
            Cancelled: ``cancel`` was set (the workers are stopped).
            RuntimeError: a worker failed or ended early (the pool is closed; run in-process instead).
        """
        if self.broken:
            raise RuntimeError("the worker pool was stopped")
        todo: queue.Queue[int] = queue.Queue()
        for i in sorted(range(len(pieces)), key=lambda i: -len(getattr(pieces[i], "pcm", b""))):
            todo.put(i)
        done: queue.Queue[tuple[int, str, object]] = queue.Queue()

        def serve(proc: subprocess.Popen[bytes]) -> None:
            assert proc.stdin is not None and proc.stdout is not None
            try:
                while True:
                    try:
                        i = todo.get_nowait()
                    except queue.Empty:
                        break
                    pickle.dump((fn, pieces[i]), proc.stdin)
                    proc.stdin.flush()
                    status, value = pickle.load(proc.stdout)
                    done.put((i, status, value))
            except Exception as exc:
                done.put((-1, "error", f"worker failed: {exc}"))

        threads = [threading.Thread(target=serve, args=(p,), daemon=True) for p in self.procs[:len(pieces)]]
        for t in threads:
            t.start()
        results: dict[int, Any] = {}
        try:
            while len(results) < len(pieces):
                if cancel is not None:
                    cancel.check()
                try:
                    i, status, value = done.get(timeout=0.1)
                except queue.Empty:
                    if not any(t.is_alive() for t in threads) and done.empty():
                        raise RuntimeError("workers ended early") from None
                    continue
                if status != "ok":
                    raise RuntimeError(str(value))
                results[i] = value
                progress(lo + (hi - lo) * len(results) / len(pieces), "analysing speech")
        except (Cancelled, RuntimeError):
            self.stop()
            raise
        return [results[i] for i in range(len(pieces))]

    def stop(self) -> None:
        """Kill the workers at once (cancel or failure)."""
        self.broken = True
        for p in self.procs:
            if p.poll() is None:
                p.kill()
        self._wait()

    def close(self) -> None:
        """End the workers' loops and wait for them."""
        if self.broken:
            return
        self.broken = True
        for p in self.procs:
            try:
                assert p.stdin is not None
                pickle.dump(None, p.stdin)
                p.stdin.close()
            except (OSError, ValueError):
                p.kill()
        self._wait()

    def _wait(self) -> None:
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            for stream in (p.stdin, p.stdout):
                if stream is not None and not stream.closed:
                    stream.close()


def main(warm: Sequence[str] = ()) -> None:
    """Serve jobs until stdin closes or a ``None`` job arrives, after building the ``warm`` decoders."""
    from . import pocketsphinx_backend as backend

    protocol = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # C-level and Python prints go to stderr, never into the protocol stream
    sys.stdout = sys.stderr
    for kind in warm:
        backend._decoder(kind)
    jobs = sys.stdin.buffer
    while True:
        try:
            job = pickle.load(jobs)
        except EOFError:
            break
        if job is None:
            break
        name, piece = job
        try:
            if name not in JOBS:
                raise ValueError(f"unknown job {name!r}")
            backend.fresh_features()
            reply = ("ok", getattr(backend, name)(piece))
        except Exception as exc:
            reply = ("error", f"{type(exc).__name__}: {exc}")
        pickle.dump(reply, protocol)
        protocol.flush()
