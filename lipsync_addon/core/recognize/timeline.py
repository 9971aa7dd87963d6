"""Shared by every backend: make a phone list tile the clip exactly (seconds)."""

from __future__ import annotations

from ..types import Phone


def tile_phones(phones: list[Phone], duration: float) -> list[Phone]:
    """Sort, clip to [0, duration], fill gaps with silence and merge adjacent silences.

    The result covers the clip without gaps or overlaps: the first phone starts at 0, each phone
    starts where the previous one ends, the last ends at ``duration`` (seconds).
    """
    out: list[Phone] = []
    t = 0.0
    for p in sorted(phones, key=lambda p: p.start):
        s, e = max(p.start, t), min(p.end, duration)
        if e <= s:
            continue
        if s > t + 1e-6:
            out.append(Phone("sil", t, s))
        out.append(Phone(p.ipa, s, e, p.confidence, p.word_index, p.stress))
        t = e
    if t < duration - 1e-6:
        out.append(Phone("sil", t, duration))
    merged: list[Phone] = []
    for p in out:
        if merged and p.is_silence and merged[-1].is_silence:
            merged[-1] = Phone("sil", merged[-1].start, p.end)
        else:
            merged.append(p)
    return merged
