"""Text normalisation and English pronunciation with fallbacks."""

from __future__ import annotations

import pytest

from lipsync_addon.core.phonemes import (
    Lexicon,
    arpabet_to_ipa,
    ipa_to_arpabet,
    letter_to_sound,
    normalize_text,
    number_to_words,
    unelongated,
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


@pytest.mark.parametrize(("written", "said"), [
    ("well—I mean", "well i mean"),  # dashes, ellipses and quotes between words separate them
    ("wait–no", "wait no"),
    ("so…what, so...what", "so what so what"),
    ('hello,world "quoted"word yes.No', "hello world quoted word yes no"),
    ("the U.S. army, A.I. and e.g. at 3 p.m.", "the u s army a i and e g at three p m"),  # dotted initialisms
    ("Ph.D", "phd"),
    ("Dr. Smith on St. Louis Rd, Elm Dr.", "doctor smith on saint louis rd elm dr"),  # a title only before a name
    ("Smith vs. Jones", "smith versus jones"),
    ("the 2nd, 21st and 100th time", "the second twenty first and one hundredth time"),
    ("the 1990s, the '80s and the 1900s", "the nineteen nineties the eighties and the nineteen hundreds"),
    ("$1, $3.50, $0.99, $5 million", "one dollar three dollars fifty ninety nine cents five million dollars"),
    ("£20 and €1.25", "twenty pounds and one euro twenty five"),
    ("$1.5 million or $3.5", "one point five million dollars or three point five dollars"),
    ("$1,299.99 in 2005, 2024 and the 2020s", "one thousand two hundred ninety nine dollars ninety nine in two "
     "thousand five twenty twenty four and the twenty twenties"),
    ("call 555-1234 or (555) 123-4567", "call five five five one two three four or five five five one two three "
     "four five six seven"),
    ("pages 100-200, ages 18-25, a 9-5 job", "pages one hundred to two hundred ages eighteen to twenty five a "
     "nine to five job"),  # a range, not a phone number
    ("COVID-19, 2024-11-24, R2-D2", "covid nineteen twenty twenty four eleven twenty four r two d two"),
    ("pages 5–10 at 30°", "pages five to ten at thirty degrees"),
    ("1,000 people at 5:30", "one thousand people at five thirty"),
    ("at 3pm, 10:30 a.m. or 7 AM", "at three p m ten thirty a m or seven a m"),
    ("at 7:00, 7:05 pm and 12:00", "at seven seven oh five p m and twelve"),  # not "seven zero"
    ("5km at 60 mph, 1 kg, 2.5 GB, 10 mins", "five kilometers at sixty miles per hour one kilogram two point five "
     "gigabytes ten minutes"),  # not the letter-to-sound "K M"
    ("1/2 cup, 3/4 of it, 24/7, 9/11", "one half cup three quarters of it twenty four seven nine eleven"),
    ("my #1 fan, call 911", "my number one fan call nine one one"),
    ("2024 people, 1500 of them, 1200 miles", "two thousand twenty four people one thousand five hundred of them "
     "one thousand two hundred miles"),  # counts, not years
    ("in 1999 was it 2010 marks the year 1984 Orwell wrote, the 2024 elections, in 1999 things",
     "in nineteen ninety nine was it twenty ten marks the year nineteen eighty four orwell wrote the twenty "
     "twenty four elections in nineteen ninety nine things"),  # years stay years
])
def test_normalize_says_written_forms_as_spoken(written: str, said: str) -> None:
    """Before, "well—I" was one word "welli" (letter-to-sound), "$3.50" was "three point five zero
    dollars", "2nd" was "two nd" and "A.I." was the word "ai"."""
    assert normalize_text(written) == said.split()


def test_drawn_out_spellings_are_pronounced_as_their_dictionary_word() -> None:
    """A script's "Nooo", "Sooo", "Ummm", "whaaat" were letter-to-sound words ("nooo" N UW AA)."""
    assert unelongated("sooo") == ["so", "soo"]  # a run of three is drawn out: one letter first
    assert unelongated("pleease") == ["please"]  # the word itself is not a candidate
    assert unelongated("mmm") == ["mm"]  # never a single letter's name
    assert unelongated("ledger") == []
    lexicon = Lexicon()
    for drawn, plain in [("nooo", "no"), ("sooo", "so"), ("ummm", "um"), ("whaaat", "what"), ("heyyy", "hey"),
                         ("pleease", "please"), ("yesss", "yes"), ("okaaay", "okay")]:
        said = lexicon.pronounce(drawn)
        assert (said.phones, said.source) == (lexicon.pronounce(plain).phones, "elongated"), drawn
    assert lexicon.pronounce("xyzzy").source == "letter_to_sound"


def test_hesitation_spellings_are_a_vowel_and_a_hum() -> None:
    """ "uhm" was letter-to-sound AH HH M with a not-in-the-dictionary warning; the hum step needs
    vowel + M to find where the lips close."""
    lexicon = Lexicon()
    for word, phones in [("uhm", ["AH", "M"]), ("ehm", ["EH", "M"]), ("erm", ["ER", "M"])]:
        said = lexicon.pronounce(word)
        assert (said.phones, said.source) == (phones, "hesitation"), word
    said = lexicon.pronounce("uhmmm")
    assert (said.phones, said.source) == (["AH", "M"], "elongated")


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
