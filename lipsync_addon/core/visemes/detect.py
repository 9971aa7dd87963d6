"""Find which viseme set a rig uses from its shape-key names, and build the channel mapping.

Matching rules live in ``data/name_matching.json`` (case, separators, namespaces and common
prefixes are tolerated). Every preset is scored; the best one that has all its core channels wins.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ..types import RigError
from .sets import VisemeSet, list_viseme_sets, load_viseme_set
from .tables import canonical_name, canonical_visemes, substitute_weight, viseme_substitutes

_DATA = Path(__file__).with_name("data")

Mapping = dict[str, dict[str, float]]


@dataclass(frozen=True)
class _Rules:
    separators: str
    exact: float
    namespace: float
    prefix: float
    prefixes: tuple[re.Pattern[str], ...]


@cache
def _rules() -> _Rules:
    raw = json.loads((_DATA / "name_matching.json").read_text(encoding="utf-8"))
    q = raw["quality"]
    return _Rules(
        separators=raw["separators"],
        exact=float(q["exact"]),
        namespace=float(q["namespace"]),
        prefix=float(q["prefix"]),
        prefixes=tuple(re.compile(p, re.IGNORECASE) for p in raw["prefixes"]),
    )


def normalize_name(name: str) -> str:
    """Lower-case (NFKC) ``name`` and drop separators: ``"Viseme_A-a"`` -> ``"visemeaa"``."""
    rules = _rules()
    text = unicodedata.normalize("NFKC", name).strip().lower()
    return "".join(ch for ch in text if ch not in rules.separators)


def name_variants(name: str) -> dict[str, float]:
    """Normalized keys a name can match under, with a match quality in (0, 1].

    The full name has quality 1; without a namespace ("blendShape1.jawOpen" -> "jawOpen") 0.9;
    with one or two known prefixes removed ("viseme_PP" -> "PP") 0.8 per step taken.
    """
    rules = _rules()
    out: dict[str, float] = {}

    def add(text: str, quality: float) -> None:
        key = normalize_name(text)
        if key and quality > out.get(key, 0.0):
            out[key] = quality

    raw = unicodedata.normalize("NFKC", name).strip()
    add(raw, rules.exact)
    stems = [(raw, rules.exact)]
    tail = re.split(r"[.:|]", raw)[-1]
    if tail and tail != raw:
        add(tail, rules.namespace)
        stems.append((tail, rules.namespace))
    for _ in range(2):
        nxt: list[tuple[str, float]] = []
        for text, quality in stems:
            for pat in rules.prefixes:
                m = pat.match(text)
                if m and m.end() < len(text):
                    rest = text[m.end() :]
                    add(rest, quality * rules.prefix)
                    nxt.append((rest, quality * rules.prefix))
        stems = nxt
    return out


@dataclass(frozen=True)
class SetMatch:
    """How well one preset matches a rig.

    Attributes:
        name: preset name.
        quality: mean match quality of the channels found, in [0, 1] (1 = names match exactly,
            lower when namespaces or prefixes had to be dropped).
        coverage: share of the preset's channels found on the rig, in [0, 1].
        matched: expected channel -> the rig's actual channel name.
        complete: True when every core channel was found.
        priority: the preset's tie-breaker.
    """

    name: str
    quality: float
    coverage: float
    matched: dict[str, str]
    complete: bool
    priority: int = 0

    @property
    def score(self) -> float:
        """quality x coverage, in [0, 1] (for display; ranking uses :meth:`rank_key`)."""
        return self.quality * self.coverage

    def rank_key(self) -> tuple[bool, float, float, int]:
        """Sort key: complete first, then name-match quality (in steps of 0.1), priority, coverage."""
        return (self.complete, round(self.quality + 1e-9, 1), self.priority, round(self.coverage, 3))


def match_viseme_set(vset: VisemeSet, channel_names: list[str]) -> SetMatch:
    """Match one preset's expected channels (and aliases) against a rig's channel names."""
    rig = [(n, name_variants(n)) for n in channel_names]
    matched: dict[str, str] = {}
    total = 0.0
    for expected, aliases in vset.channels.items():
        best_q, best_name = 0.0, ""
        for i, candidate in enumerate((expected, *aliases)):
            alias_penalty = 1.0 if i == 0 else 0.95
            for ekey, eq in name_variants(candidate).items():
                for actual, variants in rig:
                    rq = variants.get(ekey)
                    if rq is None:
                        continue
                    q = min(rq, eq) * alias_penalty
                    if q > best_q:
                        best_q, best_name = q, actual
        if best_name:
            matched[expected] = best_name
            total += best_q
    complete = all(c in matched for c in vset.core)
    quality = total / len(matched) if matched else 0.0
    coverage = len(matched) / max(len(vset.channels), 1)
    return SetMatch(vset.name, quality, coverage, matched, complete, vset.priority)


def rank_viseme_sets(channel_names: list[str]) -> list[SetMatch]:
    """Score every bundled preset against a rig's channel names, best first."""
    matches = [match_viseme_set(load_viseme_set(n), channel_names) for n in list_viseme_sets()]
    return sorted(matches, key=SetMatch.rank_key, reverse=True)


def detect_viseme_set(channel_names: list[str]) -> SetMatch:
    """Return the best preset for these channel names.

    Raises:
        RigError: no preset has all its core channels; the message lists each preset's names.
    """
    if not channel_names:
        raise RigError(
            "The object has no shape keys, so no viseme set can be detected. Add mouth shape keys "
            "(see docs/visemes.md for the names each preset expects) or choose a viseme set."
        )
    ranked = rank_viseme_sets(channel_names)
    if ranked and ranked[0].complete:
        return ranked[0]
    raise RigError(_no_match_message(channel_names, ranked))


def _no_match_message(channel_names: list[str], ranked: list[SetMatch]) -> str:
    shown = ", ".join(channel_names[:12]) + (" ..." if len(channel_names) > 12 else "")
    lines = [
        f"No viseme set matches this object's shape keys ({len(channel_names)} found: {shown}).",
        "Rename the mouth shape keys to one of these presets, pick a preset by hand, "
        "or load a custom mapping (docs/visemes.md):",
    ]
    by_name = {m.name: m for m in ranked}
    for name in list_viseme_sets():
        vset = load_viseme_set(name)
        found = by_name[name].matched if name in by_name else {}
        missing = [c for c in vset.core if c not in found]
        note = f" (missing: {', '.join(missing)})" if missing and found else ""
        aliases = [a for alts in vset.channels.values() for a in alts]
        also = f"; also accepted: {', '.join(aliases)}" if aliases else ""
        lines.append(f"  {name}: {', '.join(vset.expected_names())}{also}{note}")
    return "\n".join(lines)


def _fill_gaps(mapping: Mapping, defined_empty: set[str]) -> Mapping:
    """Give visemes that lost all channels the channels of their first usable substitute."""
    out = {v: dict(m) for v, m in mapping.items()}
    scale = substitute_weight()
    for vis in canonical_visemes():
        if out.get(vis) or vis in defined_empty:
            continue
        for sub in viseme_substitutes(vis):
            if mapping.get(sub):
                out[vis] = {c: w * scale for c, w in mapping[sub].items()}
                break
        else:
            out[vis] = {}
    return out


def _preset_mapping(vset: VisemeSet, matched: dict[str, str] | None) -> Mapping:
    """Translate a preset's mapping to actual channel names, dropping channels the rig lacks."""
    out: Mapping = {}
    for vis in canonical_visemes():
        mix = vset.mapping.get(vis, {})
        if matched is None:
            out[vis] = {c: w for c, w in mix.items() if w > 0}
        else:
            out[vis] = {matched[c]: w for c, w in mix.items() if c in matched and w > 0}
    defined_empty = {v for v in canonical_visemes() if not vset.mapping.get(v)}
    return _fill_gaps(out, defined_empty)


def validate_custom_mapping(mapping: Any, channel_names: list[str] | None = None) -> Mapping:
    """Check and normalize a custom mapping ``{viseme: {channel: weight}}``.

    Viseme names are matched case-insensitively against the canonical 15; a value may also be a
    single channel name (weight 1). Weights are clipped to [0, 1]. When ``channel_names`` is given,
    channels the rig does not have are dropped.

    Raises:
        RigError: the mapping is not a dict, names an unknown viseme, has a non-numeric weight, or
            (with ``channel_names``) none of its channels exist on the rig.
    """
    if not isinstance(mapping, dict):
        raise RigError("A custom viseme mapping must be a JSON object {viseme: {shape key: weight}}.")
    out: Mapping = {}
    present = set(channel_names) if channel_names else None
    dropped: list[str] = []
    for key, value in mapping.items():
        vis = canonical_name(str(key))
        if vis is None:
            raise RigError(
                f"Custom mapping: {key!r} is not a viseme. Use: {', '.join(canonical_visemes())}."
            )
        mix = {str(value): 1.0} if isinstance(value, str) else value
        if not isinstance(mix, dict):
            raise RigError(f"Custom mapping for {vis}: expected {{shape key: weight}}, got {value!r}.")
        clean: dict[str, float] = {}
        for channel, weight in mix.items():
            try:
                w = float(weight)
            except (TypeError, ValueError):
                raise RigError(f"Custom mapping for {vis}: weight of {channel!r} is not a number.") from None
            if not math.isfinite(w):
                raise RigError(f"Custom mapping for {vis}: weight of {channel!r} is not finite.")
            if present is not None and channel not in present:
                dropped.append(str(channel))
                continue
            if w > 0:
                clean[str(channel)] = min(w, 1.0)
        out[vis] = clean
    if present is not None and dropped and not any(out.values()):
        raise RigError(
            "None of the shape keys named in the custom mapping exist on this object "
            f"(missing: {', '.join(sorted(set(dropped))[:12])})."
        )
    return out


def load_custom_mapping(path: str) -> Mapping:
    """Read a custom mapping file (UTF-8 JSON, see docs/visemes.md).

    Accepts ``{"viseme_set": "custom", "mapping": {"PP": {"MyClosed": 1.0}, ...}}`` or the bare
    ``{"PP": {...}}`` object. Returns the validated mapping.

    Raises:
        RigError: the file is missing, not JSON, or not a valid mapping.
    """
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise RigError(f"Custom mapping file not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RigError(f"Cannot read the custom mapping file {path}: {exc}") from None
    if isinstance(data, dict) and "mapping" in data:
        data = data["mapping"]
    return validate_custom_mapping(data)


def resolve_mapping(
    viseme_set: str, channel_names: list[str], custom_mapping: dict | None = None
) -> tuple[str, Mapping]:
    """Decide the viseme set and build canonical viseme -> {actual channel name: weight}.

    Args:
        viseme_set: a preset name, "auto" (detect from ``channel_names``) or "custom".
        channel_names: the rig's shape-key names; may be empty for a named preset (then the
            preset's own channel names are used, e.g. for the CLI).
        custom_mapping: canonical viseme -> {channel: weight}; when given it overrides the preset
            for the visemes it names, the others come from the preset (named or detected, if any),
            and visemes still without channels borrow from their substitutes. The set is "custom".

    Returns:
        (set name, mapping) with an entry for each of the 15 canonical visemes; an empty entry means
        the rest pose (nothing driven).

    Raises:
        RigError: unknown preset; "auto" with no match (the message lists, per preset, the names it
            expects); a named preset whose core channels the rig lacks; an invalid custom mapping.
    """
    name = (viseme_set or "auto").strip().lower()
    names = [str(n) for n in channel_names]
    if custom_mapping:
        custom = validate_custom_mapping(custom_mapping, names or None)
        base: Mapping = {}
        if name not in {"auto", "custom"}:
            base = resolve_mapping(name, names)[1]
        elif names:
            try:
                base = resolve_mapping("auto", names)[1]
            except RigError:
                base = {}
        merged = {v: dict(base.get(v, {})) for v in canonical_visemes()}
        merged.update(custom)
        explicit_empty = {v for v, m in custom.items() if not m}
        return "custom", _fill_gaps(merged, explicit_empty)
    if name == "custom":
        raise RigError("Viseme set 'custom' needs a custom mapping (a JSON file, see docs/visemes.md).")
    if name == "auto":
        match = detect_viseme_set(names)
        return match.name, _preset_mapping(load_viseme_set(match.name), match.matched)
    vset = load_viseme_set(name)
    if not names:
        return vset.name, _preset_mapping(vset, None)
    match = match_viseme_set(vset, names)
    if not match.complete:
        missing = [c for c in vset.core if c not in match.matched]
        raise RigError(
            f"The object's shape keys do not fit the {vset.name!r} viseme set (missing: "
            f"{', '.join(missing)}). It expects: {', '.join(vset.expected_names())}. "
            "Choose 'auto' or another set, or load a custom mapping."
        )
    return vset.name, _preset_mapping(vset, match.matched)
