"""Viseme set presets (``data/sets/*.json``): the channels a rig naming convention expects and how
each canonical viseme is drawn with them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from ..types import RigError
from .tables import canonical_visemes

_SETS = Path(__file__).with_name("data") / "sets"


@dataclass(frozen=True)
class VisemeSet:
    """A preset: expected channel names and the canonical viseme -> channel weight mix.

    Attributes:
        name: preset id ("oculus", "arkit", ...).
        title: human-readable name.
        description: where the convention comes from.
        channels: expected channel name -> accepted alternative names (aliases).
        core: channels a rig must have for the preset to be detected.
        priority: tie-breaker when two presets match a rig equally well (higher wins).
        mapping: canonical viseme -> {expected channel name: weight in [0, 1]}; an empty dict
            means "rest": no channel is driven for that viseme.
    """

    name: str
    title: str
    description: str
    channels: dict[str, tuple[str, ...]]
    core: tuple[str, ...]
    priority: int = 0
    mapping: dict[str, dict[str, float]] = field(default_factory=dict)

    def expected_names(self) -> list[str]:
        """The primary channel names of this preset, in file order."""
        return list(self.channels)


def list_viseme_sets() -> list[str]:
    """Names of the bundled viseme set presets, sorted."""
    return sorted(p.stem for p in _SETS.glob("*.json"))


@cache
def load_viseme_set(name: str) -> VisemeSet:
    """Load a bundled preset by name (see :func:`list_viseme_sets`).

    Raises:
        RigError: unknown preset name (the message lists the valid ones).
    """
    path = _SETS / f"{name}.json"
    if name not in list_viseme_sets():
        raise RigError(f"Unknown viseme set {name!r}. Known sets: {', '.join(list_viseme_sets())}, or 'auto'.")
    raw = json.loads(path.read_text(encoding="utf-8"))
    channels = {str(k): tuple(str(a) for a in v) for k, v in raw["channels"].items()}
    mapping = {str(v): {str(c): float(w) for c, w in m.items()} for v, m in raw["mapping"].items()}
    missing = set(canonical_visemes()) - set(mapping)
    bad = {c for m in mapping.values() for c in m} - set(channels)
    if missing or bad:  # a broken data file must fail loudly, not animate half a mouth
        raise ValueError(f"viseme set {name}: missing visemes {sorted(missing)}, unknown channels {sorted(bad)}")
    return VisemeSet(
        name=str(raw["name"]),
        title=str(raw.get("title", name)),
        description=str(raw.get("description", "")),
        channels=channels,
        core=tuple(raw["core"]),
        priority=int(raw.get("priority", 0)),
        mapping=mapping,
    )
