"""Build the Blender extension zips: one per platform and Blender Python, add-on + manifest + wheels.

    .venv/bin/python scripts/build_extension.py --fetch                 # all four platforms, both Pythons
    .venv/bin/python scripts/build_extension.py --fetch --platform linux-x64
    .venv/bin/python scripts/build_extension.py --fetch --platform linux-x64 --python 3.11
    .venv/bin/python scripts/build_extension.py --fetch-only --platform linux-x64   # set-up: wheels only

Steps:

1. ``--fetch``: ``pip download`` the pinned wheels of ``requirements-extension.txt`` (unmodified,
   from PyPI) for CPython 3.11 (Blender 4.2-5.0) and 3.13 (Blender 5.1+) and the platform into
   ``build/wheels/<platform>/`` (git-ignored). Skipped when the folder already holds a complete set
   for the current pins (a stamp file), so it is the only step that needs the network; building and
   the tests then run offline.
2. For each Blender Python (:data:`PYTHONS`), stage ``build/extension/stage/lipsync/``: the
   ``lipsync_addon`` package (no caches), the repo's ``blender_manifest.toml`` next to its
   ``__init__.py`` with ``platforms``, ``wheels`` (that Python's and the version-independent ones) and
   the Blender version range of that Python filled in.
3. Blender's own extension tool (``bl_pkg/cli/blender_ext.py`` from the bpy wheel, run standalone)
   builds one zip per platform (``--split-platforms`` keeps only each platform's wheels), renamed
   ``dist/lipsync-<version>-<platform>-<blender range>.zip``, and validates every zip.

Why one zip per Python: Blender installs only the wheels that match its own Python, so a zip holding
both would carry scipy and pocketsphinx twice (~70 MB) for nothing. Split, every zip stays far under
the 150 MB limit with Vosk and RNNoise inside (docs/install.md, decisions/0005).

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
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PINS_FILE = REPO / "requirements-extension.txt"
MANIFEST = REPO / "blender_manifest.toml"
PACKAGE = REPO / "lipsync_addon"
#: folders of models/ that go into every zip (DeepFilterNet3: core/enhance/deepfilter.py, ~8 MB)
MODELS = ("deepfilternet3",)
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
#: Pins left out of one platform's zip because PyPI has no usable wheel for it (checked with pip download).
#: espeakng-loader 0.2.4 has no macOS Intel wheel: there, other languages say espeak-ng is missing.
#: pyrnnoise 0.4.5's only macOS wheel is built for macOS 26: the macOS zips use the Wiener denoiser.
PLATFORM_EXCLUDES: dict[str, frozenset[str]] = {
    "macos-x64": frozenset({"espeakng-loader", "pyrnnoise"}),
    "macos-arm64": frozenset({"pyrnnoise"}),
}
#: Pure-Python pins that PyPI has only as source: built into a ``py3-none-any`` wheel from the PyPI
#: sdist, unchanged (``pip wheel``). srt (one module, MIT) is imported by ``import vosk``.
SDIST_ONLY = frozenset({"srt"})


@dataclass(frozen=True)
class BlenderPython:
    """A CPython version Blender embeds and the Blender versions that embed it.

    ``blender_max`` is exclusive (the manifest's ``blender_version_max``: first version not supported).
    """

    version: str
    blender_min: str
    blender_max: str | None
    label: str  # file-name part naming the Blender versions

    @property
    def tag(self) -> str:
        """The wheel tag of this CPython, e.g. ``cp311``."""
        return "cp" + self.version.replace(".", "")


#: CPython versions Blender embeds: 3.11 (Blender 4.2-5.0) and 3.13 (Blender 5.1 and later).
PYTHONS: dict[str, BlenderPython] = {
    "3.11": BlenderPython("3.11", "4.2.0", "5.1.0", "blender4.2-5.0"),
    "3.13": BlenderPython("3.13", "5.1.0", None, "blender5.1-and-later"),
}
#: Largest zip we accept (the issue's target: 150 MB), bytes.
MAX_ZIP_BYTES = 150 * 1000 * 1000


class BuildError(Exception):
    """A build step failed; the message says which and why."""


#: ``name==version`` with an optional ``; python_version <op> "X.Y"`` marker (a pin for some Pythons only).
_PIN = re.compile(r'([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.\-]+)'
                  r'(?:\s*;\s*python_version\s*(==|!=|<=|>=|<|>)\s*"(\d+\.\d+)")?')
_OPS = {"==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}


def read_pins(path: Path = PINS_FILE) -> list[str]:
    """The pin lines of the pins file (comments and blanks dropped): ``name==version``, optionally with a
    ``; python_version <op> "X.Y"`` marker for a pin that only some Blender Pythons get."""
    pins = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if not _PIN.fullmatch(line):
            raise BuildError(f"{path.name}: '{line}' is not an exact 'name==version' pin "
                             "(optionally with '; python_version <op> \"X.Y\"')")
        pins.append(line)
    return pins


def pin_name(pin: str) -> str:
    """The distribution name of a pin, lower case."""
    return pin.split("==", maxsplit=1)[0].strip().lower()


def pin_spec(pin: str) -> str:
    """The ``name==version`` part of a pin (its marker dropped)."""
    return pin.split(";", maxsplit=1)[0].strip()


def pin_applies(pin: str, python: str) -> bool:
    """True if ``pin`` is for CPython ``python`` ("3.11"): no marker, or its marker holds."""
    m = _PIN.fullmatch(pin)
    if m is None or m.group(3) is None:
        return True
    version = tuple(int(x) for x in python.split("."))
    return _OPS[m.group(3)](version, tuple(int(x) for x in m.group(4).split(".")))


def pins_for(platform: str, pins: list[str], python: str | None = None) -> list[str]:
    """The pins bundled for ``platform`` (:data:`PLATFORM_EXCLUDES` removed), for one Python if given."""
    skip = PLATFORM_EXCLUDES.get(platform, frozenset())
    return [p for p in pins if pin_name(p) not in skip and (python is None or pin_applies(p, python))]


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
    source = sorted({pin_spec(p) for p in pins if pin_name(p) in SDIST_ONLY})
    for py in PYTHONS:
        abi = "cp" + py.replace(".", "")
        binary = [pin_spec(p) for p in pins if pin_name(p) not in SDIST_ONLY and pin_applies(p, py)]
        cmd = [
            sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
            "--implementation", "cp", "--python-version", py, "--abi", abi, "--abi", "abi3", "--abi", "none",
            *platform_args, "--dest", str(target), *binary,
        ]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BuildError(f"pip download for {platform} / Python {py} failed:\n{done.stderr.strip()[-2000:]}")
    if source:
        names = ",".join(p.split("==")[0] for p in source)
        cmd = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", f"--no-binary={names}",
               "--wheel-dir", str(target), *source]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BuildError(f"pip wheel (from source) for {', '.join(source)} failed:\n{done.stderr.strip()[-2000:]}")
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


def _independent(wheel: str) -> bool:
    """True for a wheel that runs on any CPython 3 (pure, version-independent binary, or stable ABI)."""
    return any(tag in wheel for tag in ("-py3-", "-py2.py3-", "-abi3-"))


def _wheel_prefix(pin: str) -> str:
    """Start of the file names of a pin's wheels: ``name-version-`` (wheel names use ``_`` for ``-``)."""
    name, version = pin_spec(pin).split("==")
    return f"{name.lower().replace('-', '_')}-{version.lower()}-"


def wheels_for_python(wheels: list[Path], python: BlenderPython, pins: list[str] | None = None) -> list[Path]:
    """The wheels one Blender Python installs: its own ``cpXY`` builds and the version-independent ones,
    of the pins that apply to it (all pins when ``pins`` is None)."""
    mine = [w for w in wheels if f"-{python.tag}-" in w.name or _independent(w.name)]
    if pins is None:
        return mine
    prefixes = tuple(_wheel_prefix(p) for p in pins if pin_applies(p, python.version))
    return [w for w in mine if w.name.lower().startswith(prefixes)]


def check_wheel_set(platform: str, wheels: list[Path], pins: list[str],
                    pythons: list[BlenderPython] | None = None) -> None:
    """Every pin has a wheel for every Python in ``pythons`` it applies to (default all of :data:`PYTHONS`)."""
    for python in pythons or list(PYTHONS.values()):
        for pin in pins_for(platform, pins, python.version):
            if not any(w.name.lower().startswith(_wheel_prefix(pin)) for w in wheels_for_python(wheels, python)):
                raise BuildError(f"{platform}: no {pin_spec(pin)} wheel for Python {python.version} "
                                 f"in {wheel_dir(platform)}")


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


def staged_manifest(manifest_text: str, wheels: list[str], platforms: list[str],
                    python: BlenderPython | None = None) -> str:
    """The repo manifest with ``platforms``, ``wheels`` and (for one Python) its Blender range set.

    The keys go at the top level, before any table; the repo's own values of these keys are replaced.
    """
    keys = "wheels|platforms" + ("|blender_version_min|blender_version_max" if python else "")
    lines = [ln for ln in manifest_text.splitlines() if not re.match(rf"\s*#?\s*({keys})\s*=", ln)]
    first_table = next((i for i, ln in enumerate(lines) if ln.startswith("[")), len(lines))
    inserted = []
    if python is not None:
        inserted.append(f"blender_version_min = {json.dumps(python.blender_min)}")
        if python.blender_max:
            inserted.append(f"blender_version_max = {json.dumps(python.blender_max)}")
    inserted += [
        "platforms = [" + ", ".join(json.dumps(p) for p in platforms) + "]",
        "wheels = [",
        *(f"  {json.dumps('./wheels/' + w)}," for w in sorted(wheels)),
        "]",
        "",
    ]
    text = "\n".join(lines[:first_table] + inserted + lines[first_table:]) + "\n"
    tomllib.loads(text)  # raises if we broke it
    return text


def stage(platforms: list[str], wheels: list[Path], python: BlenderPython | None = None) -> Path:
    """Fill ``build/extension/stage/lipsync`` (add-on, manifest, wheels); return the folder."""
    out = STAGE_ROOT / "stage" / "lipsync"
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(PACKAGE, out, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo"))
    for model in MODELS:  # weights the add-on loads itself (found beside the package, see their loaders)
        shutil.copytree(REPO / "models" / model, out / "models" / model)
    (out / "wheels").mkdir()
    for wheel in wheels:
        shutil.copy2(wheel, out / "wheels" / wheel.name)
    text = staged_manifest(MANIFEST.read_text(encoding="utf-8"), [w.name for w in wheels], platforms, python)
    (out / "blender_manifest.toml").write_text(text, encoding="utf-8")
    return out


def zip_name(ext_id: str, version: str, platform: str, python: BlenderPython) -> str:
    """File name of one zip, e.g. ``lipsync-0.1.0-linux_x64-blender4.2-5.0.zip``."""
    return f"{ext_id}-{version}-{platform.replace('-', '_')}-{python.label}.zip"


def run_blender_ext(tool: Path, *args: str) -> str:
    """Run ``blender_ext.py`` standalone; return stdout or raise BuildError with its output."""
    done = subprocess.run([sys.executable, str(tool), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BuildError(f"blender_ext.py {args[0]} failed:\n{(done.stdout + done.stderr).strip()[-3000:]}")
    return done.stdout


def build(platforms: list[str], *, fetch: bool, out_dir: Path = DIST,
          pythons: list[str] | None = None) -> list[Path]:
    """Fetch (optionally), stage, build and validate one zip per platform and Python; return the paths."""
    pins = read_pins()
    chosen = [PYTHONS[v] for v in (pythons or list(PYTHONS))]
    wheels: dict[str, Path] = {}
    for platform in platforms:
        files = fetch_wheels(platform, pins) if fetch else cached_wheels(platform, pins)
        check_wheel_set(platform, files, pins, chosen)
        for f in files:
            wheels.setdefault(f.name, f)
    tool = find_blender_ext()
    manifest = tomllib.loads(MANIFEST.read_text(encoding="utf-8"))
    out_dir.mkdir(parents=True, exist_ok=True)
    zips: list[Path] = []
    for python in chosen:
        source = stage(platforms, wheels_for_python(list(wheels.values()), python, pins), python)
        tmp = STAGE_ROOT / "zips" / python.tag
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        # --split-platforms: one zip per platform holding only its wheels, named by platform (even for one)
        run_blender_ext(tool, "build", "--source-dir", str(source), "--output-dir", str(tmp), "--split-platforms")
        for platform in platforms:
            made = tmp / f"{manifest['id']}-{manifest['version']}-{platform.replace('-', '_')}.zip"
            if not made.is_file():
                found = ", ".join(p.name for p in tmp.glob("*.zip"))
                raise BuildError(f"blender_ext.py did not write {made.name} (found: {found or 'nothing'})")
            run_blender_ext(tool, "validate", str(made))
            size = made.stat().st_size
            if size > MAX_ZIP_BYTES:
                raise BuildError(f"{made.name} ({python.label}) is {size / 1e6:.1f} MB, over the 150 MB limit")
            final = out_dir / zip_name(manifest["id"], manifest["version"], platform, python)
            final.unlink(missing_ok=True)
            shutil.move(made, final)
            zips.append(final)
    return zips


def main(argv: list[str] | None = None) -> int:
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description="Build the Lip Sync Blender extension zips.")
    parser.add_argument("--platform", action="append", choices=sorted(PLATFORMS),
                        help="platform to build (repeatable; default: all four)")
    parser.add_argument("--python", action="append", choices=sorted(PYTHONS),
                        help="Blender Python to build for (repeatable; default: both)")
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
        for z in build(platforms, fetch=opts.fetch, out_dir=Path(opts.out), pythons=opts.python):
            size = z.stat().st_size
            print(f"{z}  {size / 1e6:.1f} MB = {size / 2**20:.1f} MiB ({size} bytes)")
    except BuildError as exc:
        print(f"build_extension: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
