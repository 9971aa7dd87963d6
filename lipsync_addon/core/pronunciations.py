"""User pronunciations: how the characters say names and invented words.

Words the dictionaries do not know (a fantasy name, a brand, slang) are pronounced by letter-to-sound
rules and listed in the warnings; a pronunciation dictionary fixes them. One entry per line::

    # comments and blank lines are ignored
    Xal'atath   Z AA1 L AH0 T AE2 TH      <- ARPAbet phones (CMUdict style, stress digits optional)
    Hermione  = her my oh nee             <- a respelling: said like these words

ARPAbet entries are used by the English aligner (pocketsphinx) and replace what the dictionary says
for that word; respellings work in every language (the English aligner pronounces the respelling's
words, the espeak-ng path speaks them). Words are matched without case or accents, as the transcript
is normalised.
"""

from __future__ import annotations

import os
import re

from .phonemes import normalize_text
from .types import TranscriptError

#: The ARPAbet phones of the English models (CMUdict's 39), without stress digits.
ARPABET = frozenset(
    "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z ZH".split()
)
_RESPELL = "="


def _key(word: str, where: str) -> str:
    words = normalize_text(word)
    if len(words) != 1:
        raise TranscriptError(f"{where}: '{word}' is not one word; give one word per entry.")
    return words[0]


def parse(text: str, source: str = "pronunciations") -> dict[str, str]:
    """Entries of a pronunciation dictionary: normalised word -> ARPAbet phones ("Z AA1 L") or a
    respelling ("= her my oh nee").

    Raises:
        TranscriptError: a line that is neither form, or phones that are not ARPAbet (with its line number).
    """
    out: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{source}, line {number}"
        if _RESPELL in line:
            word, _, respelling = (part.strip() for part in line.partition(_RESPELL))
            if not word or not respelling:
                raise TranscriptError(f"{where}: write 'word = words it sounds like', e.g. 'Hermione = her my oh nee'.")
            out[_key(word, where)] = f"{_RESPELL} {' '.join(respelling.split())}"
            continue
        word, *phones = line.split()
        if not phones:
            raise TranscriptError(
                f"{where}: '{word}' has no pronunciation; give ARPAbet phones ('Xalatath Z AA1 L AH0 T AE2 TH') "
                "or a respelling ('Hermione = her my oh nee')."
            )
        bad = [p for p in phones if re.sub(r"[012]$", "", p.upper()) not in ARPABET]
        if bad:
            raise TranscriptError(
                f"{where}: {', '.join(bad)} {'is' if len(bad) == 1 else 'are'} not ARPAbet phones (the 39 of CMUdict: "
                "AA AE AH ... ZH, stress digits 0-2 allowed); for a respelling write 'word = words'."
            )
        out[_key(word, where)] = " ".join(p.upper() for p in phones)
    return out


def read(path: str | os.PathLike[str]) -> dict[str, str]:
    """Entries of the pronunciation dictionary file at ``path`` (UTF-8; see :func:`parse`).

    Raises:
        TranscriptError: the file cannot be read or has a bad line.
    """
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8-sig") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise TranscriptError(f"Cannot read the pronunciation dictionary '{path}': {reason}.") from exc
    return parse(text, os.path.basename(path))


def is_respelling(entry: str) -> bool:
    """True for a respelling entry ("= words"), False for ARPAbet phones."""
    return entry.startswith(_RESPELL)


def respelling(entry: str) -> str:
    """The words of a respelling entry."""
    return entry[len(_RESPELL):].strip()
