"""Read and write Praat TextGrid files (long and short text formats).

Used to read reference alignments (e.g. from Montreal Forced Aligner) and to write ours for
inspection in Praat. Times are seconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Interval:
    """One labelled span, seconds."""

    start: float
    end: float
    text: str


@dataclass
class Tier:
    """An interval tier (point tiers are read with start == end)."""

    name: str
    kind: str
    intervals: list[Interval] = field(default_factory=list)


_TOKEN = re.compile(r'"((?:[^"]|"")*)"|(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)|<exists>')


def _read_text(path: str | Path) -> str:
    raw = Path(path).read_bytes()
    for enc in ("utf-8-sig", "utf-16"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


def read_textgrid(path: str | Path) -> dict[str, Tier]:
    """Parse a TextGrid file into {tier name: Tier}. Works for Praat's long and short formats."""
    text = _read_text(path)
    # Drop "key =" words and "item [n]:" headers; what remains is the short-format token stream.
    body = re.sub(r"(?m)^\s*(item|intervals|points)\s*\[\d*\]\s*:?\s*$", "", text)
    body = re.sub(r"(?m)^\s*(item)\s*\[\]\s*:\s*$", "", body)
    tokens: list[str | float] = []
    for m in _TOKEN.finditer(body.split("Object class", 1)[-1].split("\n", 1)[-1]):
        if m.group(1) is not None:
            tokens.append(m.group(1).replace('""', '"'))
        elif m.group(2) is not None:
            tokens.append(float(m.group(2)))
    # tokens: xmin xmax [exists] n_tiers, then per tier: class name xmin xmax n, items...
    pos = 3
    n_tiers = int(tokens[2]) if len(tokens) > 2 else 0
    tiers: dict[str, Tier] = {}
    for _ in range(n_tiers):
        kind, name = str(tokens[pos]), str(tokens[pos + 1])
        n = int(tokens[pos + 4])
        pos += 5
        tier = Tier(name=name, kind=kind)
        for _ in range(n):
            if kind == "IntervalTier":
                tier.intervals.append(Interval(float(tokens[pos]), float(tokens[pos + 1]), str(tokens[pos + 2])))
                pos += 3
            else:
                tier.intervals.append(Interval(float(tokens[pos]), float(tokens[pos]), str(tokens[pos + 1])))
                pos += 2
        tiers[name] = tier
    return tiers


def write_textgrid(path: str | Path, tiers: list[Tier], duration: float) -> None:
    """Write interval tiers as a long-format TextGrid (UTF-8)."""
    lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "xmin = 0", f"xmax = {duration}",
             "tiers? <exists>", f"size = {len(tiers)}", "item []:"]
    for i, tier in enumerate(tiers, 1):
        lines += [f"    item [{i}]:", '        class = "IntervalTier"', f'        name = "{tier.name}"',
                  "        xmin = 0", f"        xmax = {duration}",
                  f"        intervals: size = {len(tier.intervals)}"]
        for j, iv in enumerate(tier.intervals, 1):
            label = iv.text.replace('"', '""')
            lines += [f"        intervals [{j}]:", f"            xmin = {iv.start}",
                      f"            xmax = {iv.end}", f'            text = "{label}"']
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
