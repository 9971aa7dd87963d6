"""Fixtures for the Blender tests (real bpy 5.0.1 wheel, no mocks).

Every test starts from ``read_factory_settings(use_empty=True)``; the add-on is
registered once per session from the repository checkout.
"""

from __future__ import annotations

from pathlib import Path

import pytest

bpy = pytest.importorskip("bpy")

import blender_helpers  # noqa: E402, F401  (puts the repo on sys.path)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test in this folder with ``blender``."""
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.blender)


@pytest.fixture(scope="session")
def addon():
    """The add-on, registered from the repository for the whole session."""
    import lipsync_addon

    lipsync_addon.register()
    yield lipsync_addon
    lipsync_addon.unregister()


@pytest.fixture(autouse=True)
def fresh_analyses():
    """Each test analyses its clips itself (the add-on reuses analyses within a session)."""
    from lipsync_addon.core import pipeline

    pipeline.clear_analysis_cache()
    yield
    pipeline.clear_analysis_cache()


@pytest.fixture
def scene(addon):
    """An empty factory scene (24 fps, frames 1-250) with the add-on registered."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return bpy.context.scene
