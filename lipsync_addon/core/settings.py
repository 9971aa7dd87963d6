"""Numeric constants kept as JSON data files in ``core/data`` (keys starting with "_" are comments)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

_DATA = Path(__file__).with_name("data")


@cache
def numeric_settings(name: str) -> dict[str, float]:
    """``core/data/<name>.json`` as {key: float}; units are in the key names."""
    with open(_DATA / f"{name}.json", encoding="utf-8") as fh:
        data = json.load(fh)
    return {k: float(v) for k, v in data.items() if not k.startswith("_")}
