"""IPA phones -> canonical visemes, driven by ``data/phone_to_viseme.json``.

The canonical inventory is the Oculus 15 (``data/canonical.json``). Unknown symbols never raise:
diacritics, length and stress marks are stripped, sequences are split symbol by symbol, and what is
still unknown gets the table's ``fallback`` viseme.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ..types import Phone, VisemeSegment

_DATA = Path(__file__).with_name("data")

#: placeholder viseme meaning "take the shape of the neighbouring speech sound" (h, ʔ)
NEXT = "@next"


def _read_json(name: str) -> dict[str, Any]:
    return json.loads((_DATA / name).read_text(encoding="utf-8"))


@cache
def _canonical() -> dict[str, dict[str, Any]]:
    return _read_json("canonical.json")["visemes"]


def canonical_visemes() -> tuple[str, ...]:
    """The canonical viseme names in inventory order (``sil PP FF TH DD kk CH SS nn RR aa E I O U``)."""
    return tuple(_canonical())


def viseme_substitutes(viseme: str) -> tuple[str, ...]:
    """Canonical visemes to borrow from, in order, when a rig has no channel for ``viseme``."""
    return tuple(_canonical()[viseme]["substitutes"])


def substitute_weight() -> float:
    """Scale applied to a mix borrowed from a substitute viseme (0..1)."""
    return float(_read_json("canonical.json")["substitute_weight"])


def canonical_name(name: str) -> str | None:
    """Return the canonical spelling of a viseme name compared case-insensitively, else None."""
    lookup = {v.lower(): v for v in _canonical()}
    return lookup.get(name.strip().lower())


@dataclass(frozen=True)
class _Target:
    viseme: str
    weight: float


@dataclass(frozen=True)
class _Table:
    silence: frozenset[str]
    phones: dict[str, _Target]
    diphthongs: dict[str, tuple[_Target, ...]]
    strip: frozenset[str]
    split_two: float
    fallback: _Target
    next_fallback: _Target


def _target(value: Any) -> _Target:
    if isinstance(value, str):
        return _Target(value, 1.0)
    if isinstance(value, list | tuple):
        return _Target(str(value[0]), float(value[1]))
    return _Target(str(value["viseme"]), float(value.get("weight", 1.0)))


@cache
def _table() -> _Table:
    raw = _read_json("phone_to_viseme.json")
    known = set(_canonical()) | {NEXT}
    phones = {unicodedata.normalize("NFC", k): _target(v) for k, v in raw["phones"].items()}
    diphthongs = {
        unicodedata.normalize("NFC", k): tuple(_target(p) for p in v) for k, v in raw["diphthongs"].items()
    }
    for t in [*phones.values(), *(p for v in diphthongs.values() for p in v)]:
        if t.viseme not in known:  # a broken data file must fail loudly at first use
            raise ValueError(f"phone_to_viseme.json: unknown viseme {t.viseme!r}")
    return _Table(
        silence=frozenset(raw["silence"]),
        phones=phones,
        diphthongs=diphthongs,
        strip=frozenset(raw["strip"]),
        split_two=float(raw["split_ratio_two"]),
        fallback=_target(raw["fallback"]),
        next_fallback=_target(raw["next_fallback"]),
    )


def _strip_marks(ipa: str, strip: frozenset[str]) -> str:
    decomposed = unicodedata.normalize("NFD", ipa)
    kept = [
        ch
        for ch in decomposed
        if ch not in strip and unicodedata.category(ch) not in {"Mn", "Lm", "Sk", "Zs", "Cc", "Cf"}
    ]
    return unicodedata.normalize("NFC", "".join(kept))


def _lookup_symbols(symbols: str, table: _Table) -> list[_Target]:
    """Greedy longest-match of a symbol string against the phone table (2-char entries first)."""
    out: list[_Target] = []
    i = 0
    while i < len(symbols):
        two = symbols[i : i + 2]
        if len(two) == 2 and two in table.phones:
            out.append(table.phones[two])
            i += 2
            continue
        if len(two) == 2 and two in table.diphthongs:
            out.extend(table.diphthongs[two])
            i += 2
            continue
        ch = symbols[i]
        hit = table.phones.get(ch) or table.phones.get(ch.lower())
        if hit is None:
            base = unicodedata.normalize("NFD", ch)[0]
            hit = table.phones.get(base) or table.phones.get(base.lower())
        if hit is not None:
            out.append(hit)
        i += 1
    return out


def ipa_to_visemes(ipa: str) -> list[tuple[str, float]]:
    """Map one IPA phone to its canonical viseme(s) as ``[(viseme, weight), ...]``.

    Silence gives ``[("sil", 1.0)]``; diphthongs give two entries; ``"@next"`` marks a phone that
    takes its neighbour's shape (h, ʔ). Never raises: unknown symbols get the table's fallback.
    """
    table = _table()
    key = unicodedata.normalize("NFC", ipa.strip())
    if key in table.silence or key.lower() in table.silence:
        return [("sil", 1.0)]
    if key in table.phones:
        t = table.phones[key]
        return [(t.viseme, t.weight)]
    if key in table.diphthongs:
        return [(t.viseme, t.weight) for t in table.diphthongs[key]]
    stripped = _strip_marks(key, table.strip)
    if not stripped:
        # only marks (e.g. a lone stress mark) -> nothing visible; a stray symbol is not a pause
        return [(table.fallback.viseme, table.fallback.weight)]
    if stripped in table.phones:
        t = table.phones[stripped]
        return [(t.viseme, t.weight)]
    if stripped in table.diphthongs:
        return [(t.viseme, t.weight) for t in table.diphthongs[stripped]]
    targets = _lookup_symbols(stripped, table)
    # collapse repeated visemes from one phone (e.g. "tʰs" -> DD SS stays, "ss" -> SS)
    merged: list[_Target] = []
    for t in targets:
        if merged and merged[-1].viseme == t.viseme:
            merged[-1] = _Target(t.viseme, max(merged[-1].weight, t.weight))
        else:
            merged.append(t)
    if not merged:
        return [(table.fallback.viseme, table.fallback.weight)]
    return [(t.viseme, t.weight) for t in merged]


def _split_times(start: float, end: float, parts: int, first_ratio: float) -> list[tuple[float, float]]:
    if parts == 1:
        return [(start, end)]
    if parts == 2:
        mid = start + (end - start) * first_ratio
        return [(start, mid), (mid, end)]
    step = (end - start) / parts
    return [(start + i * step, start + (i + 1) * step) for i in range(parts)]


def phones_to_visemes(phones: list[Phone]) -> list[VisemeSegment]:
    """Map timed IPA phones (seconds) to canonical viseme segments (seconds).

    Phones are taken in time order. Silence/noise phones become ``sil``; diphthongs (aɪ aʊ eɪ oʊ ɔɪ)
    become two segments split 60/40; h and ʔ take the shape of the next speech sound (or the
    previous one at the end of a phrase) at reduced weight. Phones with ``end <= start`` are kept
    as zero-length segments so that short closures are not lost; coarticulation widens them.
    """
    table = _table()
    ordered = sorted(phones, key=lambda p: (p.start, p.end))
    raw: list[VisemeSegment] = []
    for ph in ordered:
        start = float(ph.start)
        end = max(float(ph.end), start)
        targets = ipa_to_visemes(ph.ipa)
        spans = _split_times(start, end, len(targets), table.split_two)
        for (vis, weight), (s, e) in zip(targets, spans, strict=True):
            raw.append(VisemeSegment(viseme=vis, start=s, end=e, phone=ph.ipa, weight=float(weight)))
    # resolve "@next": the next speech segment's viseme, else the previous one, else the fallback
    for i, seg in enumerate(raw):
        if seg.viseme != NEXT:
            continue
        shape = None
        for j in range(i + 1, len(raw)):
            if raw[j].viseme == "sil":
                break
            if raw[j].viseme != NEXT:
                shape = raw[j].viseme
                break
        if shape is None:
            for j in range(i - 1, -1, -1):
                if raw[j].viseme == "sil":
                    break
                if raw[j].viseme != NEXT:
                    shape = raw[j].viseme
                    break
        if shape is None or shape in {"PP", "FF"}:
            # never borrow a closure/contact: an "h" before "m" is breath, not closed lips
            seg.viseme = table.next_fallback.viseme
            seg.weight = min(seg.weight, table.next_fallback.weight) if shape is None else seg.weight
        else:
            seg.viseme = shape
    return raw
