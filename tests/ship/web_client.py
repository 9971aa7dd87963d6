"""Real clients for exported files: the Khronos glTF Validator (node) and three.js in headless Chromium.

Both run from ``tests/ship/web`` (``npm ci`` there is part of scripts/setup.sh); nothing touches the
network: the page and three.js are served from 127.0.0.1 by a throwaway HTTP server.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

WEB = Path(__file__).resolve().parent / "web"
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)  # fmt: skip


def chromium_binary() -> str | None:
    """Debian's chromium (or chromium-browser) on PATH, else None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def web_ready() -> str:
    """'' if node, the npm packages and chromium are there, else what is missing."""
    missing = []
    if shutil.which("node") is None:
        missing.append("node")
    for pkg in ("three", "gltf-validator"):
        if not (WEB / "node_modules" / pkg / "package.json").is_file():
            missing.append(f"npm package {pkg} (cd tests/ship/web && npm ci)")
    if chromium_binary() is None:
        missing.append("chromium")
    return ", ".join(missing)


def validate_gltf(path: Path) -> dict[str, Any]:
    """The Khronos glTF Validator's report for ``path`` (``issues.numErrors`` etc.)."""
    done = subprocess.run(
        ["node", str(WEB / "validate.js"), str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"gltf-validator failed: {done.stderr.strip()}")
    return json.loads(done.stdout)


class _Handler(SimpleHTTPRequestHandler):
    """Serves tests/ship/web, plus /files/<name> from a folder; POST /result stores the page's JSON."""

    files_dir: Path
    results: list[dict[str, Any]]
    done: threading.Event

    def translate_path(self, path: str) -> str:
        if path.startswith("/files/"):
            name = Path(unquote(path.split("?", 1)[0][len("/files/"):])).name
            return str(self.files_dir / name)
        return super().translate_path(path)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.results.append(json.loads(self.rfile.read(length).decode("utf-8")))
        self.send_response(204)
        self.end_headers()
        self.done.set()

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass


def sample_in_chromium(glb: Path, times: list[float], *, clip: str = "", timeout: float = 120.0) -> dict[str, Any]:
    """Load ``glb`` in three.js in headless Chromium, play ``clip`` (default: the first) and return
    ``{"ok", "samples": [{"t", "weights": {target: influence}}], "animations", "targets", ...}``."""
    chromium = chromium_binary()
    if chromium is None:
        raise RuntimeError("chromium is not installed")
    handler = type("Handler", (_Handler,), {"files_dir": glb.parent, "results": [], "done": threading.Event()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(WEB)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    query = f"glb=/files/{quote(glb.name)}&times={','.join(f'{t:.6f}' for t in times)}&clip={quote(clip)}"
    url = f"http://127.0.0.1:{port}/play.html?{query}"
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        proc = subprocess.Popen(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", url],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + timeout
            while not handler.done.wait(0.2):
                if proc.poll() is not None or time.monotonic() > deadline:
                    break
        finally:
            proc.terminate()
            try:
                _, err = proc.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
            server.shutdown()
            server.server_close()
    if not handler.results:
        raise RuntimeError(f"the three.js page reported nothing (chromium stderr: {(err or '')[-2000:]})")
    return handler.results[0]
