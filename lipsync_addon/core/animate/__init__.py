"""Canonical viseme segments (seconds) -> continuous coarticulated curves at a frame rate, then rig channels."""

from .coarticulation import (
    MOUTH_OPEN,
    coarticulate,
    find_flutter,
    map_to_channels,
    pause_hold_seconds,
    sample_times,
    viseme_openness,
)

__all__ = [
    "MOUTH_OPEN",
    "coarticulate",
    "find_flutter",
    "map_to_channels",
    "pause_hold_seconds",
    "sample_times",
    "viseme_openness",
]
