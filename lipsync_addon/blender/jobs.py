"""The background job: a worker thread running the core pipeline, and a result queue.

The worker never touches bpy. It posts ``("progress", fraction, stage)``,
``("done", result)`` or ``("error", exception)`` messages; the main thread
drains them with :meth:`Job.poll` (from the operator's 0.1 s timer).
"""

from __future__ import annotations

import queue
import sys
import threading
import traceback
from typing import Any

from ..core.types import CancelToken, LipSyncError, LipSyncResult
from . import api


class Job:
    """One lip-sync analysis running off the main thread.

    Attributes:
        request: the plain-data snapshot being analyzed.
        fraction: last reported progress in [0, 1].
        stage: last reported stage name.
        result: the LipSyncResult once done without error.
        error: the LipSyncError once failed (user-facing message).
        done: True once the worker finished (result or error).
    """

    def __init__(self, request: api.GenerateRequest) -> None:
        self.request = request
        self.token = CancelToken()
        self.fraction = 0.0
        self.stage = "starting"
        self.result: LipSyncResult | None = None
        self.error: LipSyncError | None = None
        self.done = False
        self._messages: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the worker thread (daemon: a cancelled job never blocks quitting Blender)."""
        self._thread = threading.Thread(target=self._work, name="lipsync-worker", daemon=True)
        self._thread.start()

    def run_blocking(self) -> None:
        """Run the analysis in the calling thread, then :meth:`poll` (scripts, tests)."""
        self._work()
        self.poll()

    def cancel(self) -> None:
        """Ask the worker to stop at its next check; its result will be discarded."""
        self.token.cancel()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the worker thread (seconds; None = forever)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def poll(self) -> bool:
        """Drain the worker's messages (main thread); return True once the job is done."""
        while True:
            try:
                message = self._messages.get_nowait()
            except queue.Empty:
                break
            kind = message[0]
            if kind == "progress":
                self.fraction, self.stage = float(message[1]), str(message[2])
            elif kind == "done":
                self.result, self.done, self.fraction, self.stage = message[1], True, 1.0, "done"
            elif kind == "error":
                self.error, self.done = message[1], True
        return self.done

    def _progress(self, fraction: float, stage: str) -> None:
        self._messages.put(("progress", fraction, stage))

    def _work(self) -> None:
        try:
            result = api.analyze(self.request, progress=self._progress, cancel=self.token)
            self.token.check()
        except LipSyncError as exc:
            api.discard(self.request)
            self._messages.put(("error", exc))
        except Exception as exc:  # a bug: keep the traceback for the console, a message for the user
            traceback.print_exc(file=sys.stderr)
            api.discard(self.request)
            self._messages.put(
                ("error", LipSyncError(f"Lip sync failed unexpectedly ({type(exc).__name__}: {exc}).")),
            )
        else:
            self._messages.put(("done", result))
