"""Phones (IPA) -> canonical visemes (Oculus 15) and canonical visemes -> a rig's channels, all data-driven."""

from .detect import (
    SetMatch,
    detect_viseme_set,
    load_custom_mapping,
    match_viseme_set,
    normalize_name,
    rank_viseme_sets,
    resolve_mapping,
    validate_custom_mapping,
)
from .sets import VisemeSet, list_viseme_sets, load_viseme_set
from .tables import canonical_visemes, ipa_to_visemes, phones_to_visemes

__all__ = [
    "SetMatch",
    "VisemeSet",
    "canonical_visemes",
    "detect_viseme_set",
    "ipa_to_visemes",
    "list_viseme_sets",
    "load_custom_mapping",
    "load_viseme_set",
    "match_viseme_set",
    "normalize_name",
    "phones_to_visemes",
    "rank_viseme_sets",
    "resolve_mapping",
    "validate_custom_mapping",
]
