"""Worker process for long clips: runs backend piece functions for the parent process.

Protocol: the parent writes pickled ``(function_name, piece)`` jobs to stdin (``None`` ends);
the worker writes one pickled ``("ok", result)`` or ``("error", message)`` per job to its own
protocol pipe (the original stdout; anything libraries print goes to stderr instead).

Plain subprocesses instead of ``multiprocessing``: spawn re-runs the parent's ``__main__`` (a user's
batch script without a main guard would run again in every worker), and inside Blender the add-on's
package (``bl_ext.<repo>.<id>``) cannot be imported by name in a fresh interpreter. The parent starts
workers with the add-on folder's parent on ``sys.path`` and imports the package by its folder name.
"""

from __future__ import annotations

import os
import pickle
import sys


def main() -> None:
    """Serve jobs until stdin closes or a ``None`` job arrives."""
    from . import pocketsphinx_backend as backend

    protocol = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # C-level and Python prints go to stderr, never into the protocol stream
    sys.stdout = sys.stderr
    jobs = sys.stdin.buffer
    allowed = {"run_piece", "recognize_piece"}
    while True:
        try:
            job = pickle.load(jobs)
        except EOFError:
            break
        if job is None:
            break
        name, piece = job
        try:
            if name not in allowed:
                raise ValueError(f"unknown job {name!r}")
            reply = ("ok", getattr(backend, name)(piece))
        except Exception as exc:
            reply = ("error", f"{type(exc).__name__}: {exc}")
        pickle.dump(reply, protocol)
        protocol.flush()
