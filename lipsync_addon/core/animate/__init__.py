"""Canonical viseme segments (seconds) -> continuous coarticulated curves at a frame rate, then rig channels."""

from .coarticulation import (
    ARTICULATOR_CHANNELS,
    MOUTH_OPEN,
    TONGUE_UP,
    coarticulate,
    find_flutter,
    map_to_channels,
    pause_hold_seconds,
    sample_times,
    viseme_openness,
    viseme_tongue_up,
)

__all__ = [
    "ARTICULATOR_CHANNELS",
    "MOUTH_OPEN",
    "TONGUE_UP",
    "coarticulate",
    "find_flutter",
    "map_to_channels",
    "pause_hold_seconds",
    "sample_times",
    "viseme_openness",
    "viseme_tongue_up",
]
