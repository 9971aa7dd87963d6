"""Text normalisation and English pronunciation with fallbacks."""

from __future__ import annotations

from lipsync_addon.core.phonemes import (
    Lexicon,
    arpabet_to_ipa,
    ipa_to_arpabet,
    letter_to_sound,
    normalize_text,
    number_to_words,
)


def test_arpabet_ipa_round_trip() -> None:
    pairs = [("AA1", "ɑ"), ("AH0", "ə"), ("AH1", "ʌ"), ("ER0", "ɚ"), ("CH", "tʃ"), ("NG", "ŋ"), ("SIL", "sil")]
    for arpa, ipa in pairs:
        assert arpabet_to_ipa(arpa) == ipa
    assert ipa_to_arpabet("tʃ") == "CH"
    assert arpabet_to_ipa("+NSN+") == "noise"
    assert arpabet_to_ipa("QQ") == "noise"


def test_normalize_numbers_symbols_accents_and_punctuation() -> None:
    words = normalize_text("Hi — it's 1984, $20 & 3.5% of café-goers… «OK»!")
    assert words == ["hi", "it's", "nineteen", "eighty", "four", "twenty", "dollars", "and", "three",
                     "point", "five", "percent", "of", "cafe", "goers", "ok"]
    assert number_to_words(2_000_305) == "two million three hundred five"
    assert normalize_text("   ") == []


def test_normalize_leaves_out_directions_and_sound_descriptions() -> None:
    assert normalize_text("so [adif] bunch <VOCNOISE> yeah (laughs) OK") == ["so", "bunch", "yeah", "ok"]


def test_lexicon_uses_dictionary_then_fallbacks() -> None:
    lex = Lexicon()
    assert lex.pronounce("hello").source == "cmudict"
    compound = lex.pronounce("lipsync")
    assert compound.source == "compound" and compound.phones[:3] == ["L", "IH1", "P"]
    made_up = lex.pronounce("blorptastic")
    assert made_up.source == "letter_to_sound"
    assert made_up.phones[:2] == ["B", "L"] and "T" in made_up.phones


def test_letter_to_sound_handles_digraphs_and_doubles() -> None:
    assert letter_to_sound("shmoo") == ["SH", "M", "UW1"]
    assert letter_to_sound("bazzle")[:3] == ["B", "AE1", "Z"]
    assert letter_to_sound("phlox")[0] == "F"
    assert letter_to_sound("") == []
