"""Build the Blender extension zips: one per platform, add-on + manifest + bundled wheels.

    .venv/bin/python scripts/build_extension.py --fetch                 # all four platforms
    .venv/bin/python scripts/build_extension.py --fetch --platform linux-x64
    .venv/bin/python scripts/build_extension.py --fetch-only --platform linux-x64   # set-up: wheels only

Steps:

1. ``--fetch``: ``pip download`` the pinned wheels of ``requirements-extension.txt`` (unmodified,
   from PyPI) for CPython 3.11 (Blender 4.2-5.0) and 3.13 (Blender 5.1+) and the platform into
   ``build/wheels/<platform>/`` (git-ignored). Skipped when the folder already holds a complete set
   for the current pins (a stamp file), so it is the only step that needs the network; building and
   the tests then run offline.
2. Stage ``build/extension/stage/lipsync/``: the ``lipsync_addon`` package (no caches), the repo's
   ``blender_manifest.toml`` next to its ``__init__.py`` with ``platforms`` and ``wheels`` filled in,
   and the wheels under ``wheels/``.
3. Blender's own extension tool (``bl_pkg/cli/blender_ext.py`` from the bpy wheel, run standalone)
   builds ``dist/lipsync-<version>-<platform>.zip`` (``--split-platforms`` keeps only each platform's
   wheels) and validates every zip.

Prints one line per zip with its size. Exit codes: 0 ok, 1 failure (message on stderr).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PINS_FILE = REPO / "requirements-extension.txt"
MANIFEST = REPO / "blender_manifest.toml"
PACKAGE = REPO / "lipsync_addon"
WHEELS_ROOT = REPO / "build" / "wheels"
STAGE_ROOT = REPO / "build" / "extension"
DIST = REPO / "dist"

#: Blender platform -> pip ``--platform`` tags (newest first; pip also accepts older compatible
#: manylinux/macOS tags listed here). macOS arm64 scipy 1.15.3 needs macOS 12+ (macosx_12_0 wheel).
PLATFORMS: dict[str, list[str]] = {
    "linux-x64": ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"],
    "windows-x64": ["win_amd64"],
    "macos-arm64": ["macosx_12_0_arm64", "macosx_11_0_arm64", "macosx_10_13_universal2", "macosx_10_9_universal2"],
    "macos-x64": ["macosx_10_15_x86_64", "macosx_10_13_x86_64", "macosx_10_9_x86_64",
                  "macosx_10_13_universal2", "macosx_10_9_universal2"],
}  # fmt: skip
#: Pins left out of one platform's zip because PyPI has no wheel for it (checked with pip download).
#: espeakng-loader 0.2.4 has no macOS Intel wheel: there, other languages say espeak-ng is missing.
PLATFORM_EXCLUDES: dict[str, frozenset[str]] = {"macos-x64": frozenset({"espeakng-loader"})}
#: CPython versions Blender embeds: 3.11 (4.2-5.0) and 3.13 (5.1+).
PYTHONS = ("3.11", "3.13")
#: Largest zip we accept (the issue's target), bytes.
MAX_ZIP_BYTES = 150 * 1024 * 1024


class BuildError(Exception):
    """A build step failed; the message says which and why."""


def read_pins(path: Path = PINS_FILE) -> list[str]:
    """``name==version`` lines of the pins file (comments and blanks dropped)."""
    pins = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if not re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.\-]+", line):
            raise BuildError(f"{path.name}: '{line}' is not an exact 'name==version' pin")
        pins.append(line)
    return pins


def pins_for(platform: str, pins: list[str]) -> list[str]:
    """The pins bundled for ``platform`` (:data:`PLATFORM_EXCLUDES` removed)."""
    skip = PLATFORM_EXCLUDES.get(platform, frozenset())
    return [p for p in pins if p.split("==")[0].lower() not in skip]


def _pins_digest(pins: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(pins)).encode()).hexdigest()[:16]


def wheel_dir(platform: str) -> Path:
    """Cache folder of one platform's wheels."""
    return WHEELS_ROOT / platform


def fetch_wheels(platform: str, pins: list[str], *, force: bool = False) -> list[Path]:
    """Download the pinned wheels for ``platform`` x :data:`PYTHONS` (network); skip if cached.

    Returns the wheel files of that platform's cache folder.
    """
    target = wheel_dir(platform)
    stamp = target / ".complete"
    pins = pins_for(platform, pins)
    digest = _pins_digest(pins)
    if not force and stamp.is_file() and stamp.read_text().strip() == digest:
        return sorted(target.glob("*.whl"))
    target.mkdir(parents=True, exist_ok=True)
    for old in target.glob("*.whl"):  # pins changed: start clean so no stale wheel gets bundled
        old.unlink()
    platform_args = [arg for tag in PLATFORMS[platform] for arg in ("--platform", tag)]
    for py in PYTHONS:
        abi = "cp" + py.replace(".", "")
        cmd = [
            sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
            "--implementation", "cp", "--python-version", py, "--abi", abi, "--abi", "abi3", "--abi", "none",
            *platform_args, "--dest", str(target), *pins,
        ]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BuildError(f"pip download for {platform} / Python {py} failed:\n{done.stderr.strip()[-2000:]}")
    stamp.write_text(digest + "\n")
    return sorted(target.glob("*.whl"))


def cached_wheels(platform: str, pins: list[str]) -> list[Path]:
    """The cached wheels of ``platform``; raise BuildError if the cache is missing or stale."""
    stamp = wheel_dir(platform) / ".complete"
    if not stamp.is_file() or stamp.read_text().strip() != _pins_digest(pins_for(platform, pins)):
        raise BuildError(
            f"No complete wheel cache for {platform} in {wheel_dir(platform)} (or the pins changed). "
            f"Run: .venv/bin/python scripts/build_extension.py --fetch --platform {platform}"
        )
    return sorted(wheel_dir(platform).glob("*.whl"))


def check_wheel_set(platform: str, wheels: list[Path], pins: list[str]) -> None:
    """Every pin has a wheel for every Python in :data:`PYTHONS` (or a version-independent one)."""
    for pin in pins_for(platform, pins):
        name = pin.split("==")[0].lower().replace("-", "_")
        for py in PYTHONS:
            tag = "cp" + py.replace(".", "")
            ok = any(
                w.name.lower().startswith(name + "-") and (f"-{tag}-" in w.name or "-py3-" in w.name
                                                           or "-py2.py3-" in w.name or "-abi3-" in w.name)
                for w in wheels
            )
            if not ok:
                raise BuildError(f"{platform}: no {pin} wheel for Python {py} in {wheel_dir(platform)}")


def find_blender_ext() -> Path:
    """Path of Blender's standalone extension tool inside the installed bpy wheel (bpy not imported)."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise BuildError("The bpy wheel is not installed in this Python; run scripts/setup.sh first.")
    for root in spec.submodule_search_locations:
        hits = sorted(Path(root).glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
        if hits:
            return hits[-1]
    raise BuildError("blender_ext.py not found in the bpy wheel (bl_pkg/cli/blender_ext.py).")


def staged_manifest(manifest_text: str, wheels: list[str], platforms: list[str]) -> str:
    """The repo manifest with ``platforms`` and ``wheels`` set (top-level keys, before any table)."""
    lines = [ln for ln in manifest_text.splitlines() if not re.match(r"\s*#?\s*(wheels|platforms)\s*=", ln)]
    first_table = next((i for i, ln in enumerate(lines) if ln.startswith("[")), len(lines))
    inserted = [
        "platforms = [" + ", ".join(json.dumps(p) for p in platforms) + "]",
        "wheels = [",
        *(f"  {json.dumps('./wheels/' + w)}," for w in sorted(wheels)),
        "]",
        "",
    ]
    text = "\n".join(lines[:first_table] + inserted + lines[first_table:]) + "\n"
    tomllib.loads(text)  # raises if we broke it
    return text


def stage(platforms: list[str], wheels: list[Path]) -> Path:
    """Fill ``build/extension/stage/lipsync`` (add-on, manifest, wheels); return the folder."""
    out = STAGE_ROOT / "stage" / "lipsync"
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(PACKAGE, out, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo"))
    (out / "wheels").mkdir()
    for wheel in wheels:
        shutil.copy2(wheel, out / "wheels" / wheel.name)
    text = staged_manifest(MANIFEST.read_text(encoding="utf-8"), [w.name for w in wheels], platforms)
    (out / "blender_manifest.toml").write_text(text, encoding="utf-8")
    return out


def run_blender_ext(tool: Path, *args: str) -> str:
    """Run ``blender_ext.py`` standalone; return stdout or raise BuildError with its output."""
    done = subprocess.run([sys.executable, str(tool), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BuildError(f"blender_ext.py {args[0]} failed:\n{(done.stdout + done.stderr).strip()[-3000:]}")
    return done.stdout


def build(platforms: list[str], *, fetch: bool, out_dir: Path = DIST) -> list[Path]:
    """Fetch (optionally), stage, build and validate one zip per platform; return the zip paths."""
    pins = read_pins()
    wheels: dict[str, Path] = {}
    for platform in platforms:
        files = fetch_wheels(platform, pins) if fetch else cached_wheels(platform, pins)
        check_wheel_set(platform, files, pins)
        for f in files:
            wheels.setdefault(f.name, f)
    tool = find_blender_ext()
    source = stage(platforms, list(wheels.values()))
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = tomllib.loads((source / "blender_manifest.toml").read_text(encoding="utf-8"))
    zips = [out_dir / f"{manifest['id']}-{manifest['version']}-{p.replace('-', '_')}.zip" for p in platforms]
    for z in zips:
        z.unlink(missing_ok=True)
    # --split-platforms: one zip per platform holding only its wheels, named by platform (even for one)
    run_blender_ext(tool, "build", "--source-dir", str(source), "--output-dir", str(out_dir), "--split-platforms")
    for z in zips:
        if not z.is_file():
            made = ", ".join(p.name for p in out_dir.glob("*.zip"))
            raise BuildError(f"blender_ext.py did not write {z.name} (found: {made or 'nothing'})")
        run_blender_ext(tool, "validate", str(z))
        if z.stat().st_size > MAX_ZIP_BYTES:
            raise BuildError(f"{z.name} is {z.stat().st_size / 2**20:.1f} MiB, over the 150 MiB limit")
    return zips


def main(argv: list[str] | None = None) -> int:
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description="Build the Lip Sync Blender extension zips.")
    parser.add_argument("--platform", action="append", choices=sorted(PLATFORMS),
                        help="platform to build (repeatable; default: all four)")
    parser.add_argument("--fetch", action="store_true", help="download missing wheels from PyPI first")
    parser.add_argument("--fetch-only", action="store_true", help="only fill the wheel cache, build nothing")
    parser.add_argument("--out", default=str(DIST), help="output folder for the zips (default: dist/)")
    opts = parser.parse_args(argv)
    platforms = opts.platform or list(PLATFORMS)
    try:
        if opts.fetch_only:
            pins = read_pins()
            for platform in platforms:
                files = fetch_wheels(platform, pins)
                check_wheel_set(platform, files, pins)
                print(f"{platform}: {len(files)} wheels in {wheel_dir(platform)}")
            return 0
        for z in build(platforms, fetch=opts.fetch, out_dir=Path(opts.out)):
            print(f"{z}  {z.stat().st_size / 2**20:.1f} MiB ({z.stat().st_size} bytes)")
    except BuildError as exc:
        print(f"build_extension: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
