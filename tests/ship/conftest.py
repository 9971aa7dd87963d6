"""Fixtures for the shipping tests: the extension zip (built offline from the wheel cache), paths."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

DATA = REPO / "tests" / "data"
#: CMU ARCTIC aew a0001 (3.9 s, 16 kHz)
SPEECH = DATA / "cmu_arctic_us_aew_a0001.wav"
SPEECH_TEXT = "Author of the danger trail, Philip Steels, etc."


@pytest.fixture(scope="session")
def linux_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dist zip for linux-x64 and Blender 4.2-5.0 (Python 3.11, the bpy wheel's), built from build/wheels
    (filled by scripts/setup.sh, no network here)."""
    import build_extension

    out = tmp_path_factory.mktemp("dist")
    try:
        (zip_path,) = build_extension.build(["linux-x64"], fetch=False, out_dir=out, pythons=["3.11"])
    except build_extension.BuildError as exc:
        pytest.fail(f"extension build failed (run scripts/setup.sh to fill build/wheels): {exc}")
    return zip_path
