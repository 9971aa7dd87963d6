"""espeak-ng through its C API (the ``espeakng-loader`` wheel ships the library and its data).

:func:`synthesize` speaks a text in any espeak-ng language and returns the audio at
:data:`~lipsync_addon.core.types.ANALYSIS_RATE` together with the phoneme events espeak-ng emits
while it speaks: every phone in IPA with its exact start (sample position from the synthesizer),
grouped into the words of the text. :func:`phonemize` is the same without audio (g2p).

espeak-ng keeps global state, so every call holds one process-wide lock.
"""

from __future__ import annotations

import ctypes
import threading
import unicodedata
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from ..audio import resample
from ..types import ANALYSIS_RATE, LipSyncError

# espeak-ng constants (speak_lib.h)
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS = 0x0001
_INIT_PHONEME_IPA = 0x0002
_INIT_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_EV_LIST_TERMINATED = 0
_EV_WORD = 1
_EV_PHONEME = 7
_EE_OK = 0
_PARAM_RATE = 1
#: espeak-ng's default speaking rate, words per minute
DEFAULT_WPM = 175

_LOCK = threading.Lock()

INSTALL_HINT = (
    "Languages other than English need the espeakng-loader package. The Blender extension bundles it on "
    "Linux, Windows and Apple-silicon Macs; PyPI has no build for Intel Macs. From the repository: "
    ".venv/bin/pip install -r requirements-lang.txt (docs/languages.md). English lip sync works without it."
)


class EspeakError(LipSyncError):
    """espeak-ng is missing, does not know the language, or could not speak the text."""


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


class _Voice(ctypes.Structure):
    """espeak_VOICE (speak_lib.h), used to select a voice by language."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass
class SynthPhone:
    """A phone of the synthetic rendition: IPA symbol, start/end in seconds, word index (-1 = pause)."""

    ipa: str
    start: float
    end: float
    word_index: int
    stress: int = -1


@dataclass
class Synthesis:
    """espeak-ng's rendition of a text: mono float32 samples at ``rate`` Hz, phones and words.

    ``words[i]`` is the i-th word of the text passed in (see :func:`synthesize`); ``unspoken`` lists
    the words espeak-ng produced no phone for, ``foreign`` those it read in another language
    (e.g. Han characters that the Japanese voice spells as "Chinese letter" in English).
    """

    samples: np.ndarray
    rate: int
    phones: list[SynthPhone]
    words: list[str]
    unspoken: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    @property
    def duration(self) -> float:
        """Length of the rendition in seconds."""
        return len(self.samples) / float(self.rate)


class _Engine:
    """The loaded library with its callback; one per process."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise EspeakError(f"espeak-ng is not installed. {INSTALL_HINT}") from exc
        self.data_path = espeakng_loader.get_data_path()
        try:
            self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        except OSError as exc:  # pragma: no cover
            raise EspeakError(f"The espeak-ng library could not be loaded ({exc}). {INSTALL_HINT}") from exc
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetVoiceByProperties.argtypes = [ctypes.POINTER(_Voice)]
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
            ctypes.c_void_p, ctypes.c_void_p,
        ]
        flags = _INIT_PHONEME_EVENTS | _INIT_PHONEME_IPA | _INIT_DONT_EXIT
        self.rate = int(self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, self.data_path.encode(), flags))
        if self.rate <= 0:
            raise EspeakError(f"espeak-ng failed to start (data folder {self.data_path}). {INSTALL_HINT}")
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, int, str]] = []
        self._cb = _Callback(self._on_audio)  # keep a reference: the library calls it later
        self.lib.espeak_SetSynthCallback(self._cb)
        self.voice = ""

    def _on_audio(self, wav: object, n: int, events: object) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (n,)).astype(np.float32) / 32768.0)  # type: ignore[arg-type]
        i = 0
        while events[i].type != _EV_LIST_TERMINATED:  # type: ignore[index]
            ev = events[i]  # type: ignore[index]
            if ev.type in (_EV_WORD, _EV_PHONEME):
                name = ""
                if ev.type == _EV_PHONEME:
                    name = bytes(ev.id.string).split(b"\0")[0].decode("utf-8", "replace")
                if ev.type == _EV_WORD:
                    name = str(ev.length)
                self._events.append((ev.type, ev.text_position, ev.sample, name))
            i += 1
        return 0

    def set_voice(self, language: str) -> None:
        if language == self.voice:
            return
        # a voice file name ("en-us", "sv"), else a language a voice declares ("en-gb" is declared
        # by the voice file "en")
        by_name = self.lib.espeak_SetVoiceByName(language.encode("utf-8")) == _EE_OK
        by_language = by_name or self.lib.espeak_SetVoiceByProperties(
            ctypes.byref(_Voice(languages=language.encode("utf-8")))
        ) == _EE_OK
        if not by_language:
            raise EspeakError(
                f"espeak-ng does not know the language '{language}'. Use an ISO 639 code espeak-ng speaks "
                f"(e.g. en, en-gb, es, fr, de, sv, ja, ko, zh, hi; see docs/languages.md)."
            )
        self.voice = language

    def speak(self, text: str, wpm: int) -> tuple[np.ndarray, list[tuple[int, int, int, str]]]:
        self._chunks, self._events = [], []
        self.lib.espeak_SetParameter(_PARAM_RATE, int(wpm), 0)
        data = text.encode("utf-8") + b"\0"
        buf = ctypes.create_string_buffer(data)
        err = self.lib.espeak_Synth(buf, len(data), 0, 0, 0, _CHARS_UTF8, None, None)
        if err != _EE_OK:
            raise EspeakError(f"espeak-ng could not speak the text (error {err}).")
        samples = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.float32)
        return samples, list(self._events)


@cache
def _engine() -> _Engine:
    return _Engine()


def available() -> bool:
    """True when espeak-ng can be loaded in this environment."""
    try:
        with _LOCK:
            _engine()
    except LipSyncError:
        return False
    return True


def data_path() -> Path:
    """espeak-ng's data folder (voices, dictionaries)."""
    with _LOCK:
        return Path(_engine().data_path)


def espeak_voice(language: str) -> str:
    """ISO 639 code ('en', 'en-US', 'pt_BR', 'sv') -> espeak-ng voice name ('en-us', 'pt-br', 'sv')."""
    code = (language or "en").strip().lower().replace("_", "-")
    return _voice_table().get(code, code)


@cache
def _voice_table() -> dict[str, str]:
    import json

    raw = json.loads((Path(__file__).with_name("data") / "espeak_align.json").read_text(encoding="utf-8"))
    return dict(raw["voices"])


def check_language(language: str) -> str:
    """Return the espeak-ng voice for ``language``; raise :class:`EspeakError` if it has none."""
    voice = espeak_voice(language)
    with _LOCK:
        _engine().set_voice(voice)
    return voice


def _stress(symbol: str) -> tuple[str, int]:
    if "ˈ" in symbol:
        return symbol.replace("ˈ", "").replace("ˌ", ""), 1
    if "ˌ" in symbol:
        return symbol.replace("ˌ", ""), 2
    return symbol, -1


def _is_language_switch(symbol: str) -> bool:
    return symbol.startswith("(") and symbol.endswith(")")


def _clean_symbol(symbol: str) -> str:
    # espeak-ng marks some phones with '-' (e.g. Korean 's-'); keep pure IPA
    return unicodedata.normalize("NFC", symbol).replace("-", "").replace("_", "").strip()


def synthesize(words: list[str], language: str, *, rate: int = ANALYSIS_RATE, wpm: int = DEFAULT_WPM) -> Synthesis:
    """Speak ``words`` (joined by spaces) with espeak-ng in ``language``.

    Args:
        words: the text's words, already normalised; each becomes one ``Synthesis.words`` entry.
        language: ISO 639 code or espeak-ng voice name.
        rate: sample rate of the returned audio in Hz.
        wpm: speaking rate in words per minute (espeak-ng accepts 80..450).

    Returns:
        The rendition and its phones (seconds, on the returned audio) with their word index;
        pauses espeak-ng inserts are phones with ``ipa == ""`` and ``word_index == -1``.

    Raises:
        EspeakError: espeak-ng is missing or does not know ``language``.
    """
    voice = espeak_voice(language)
    starts: list[int] = []  # 1-based character position of each word in the spoken text
    pos = 1
    for w in words:
        starts.append(pos)
        pos += len(w) + 1
    text = " ".join(words)
    with _LOCK:
        eng = _engine()
        eng.set_voice(voice)
        samples, events = eng.speak(text, max(80, min(450, int(wpm))))
        src_rate = eng.rate
    out_samples = resample(samples, src_rate, rate) if src_rate != rate else samples
    scale = float(src_rate)

    def word_at(text_pos: int) -> int:
        idx = int(np.searchsorted(np.asarray(starts), text_pos, side="right")) - 1
        return max(0, min(len(words) - 1, idx)) if words else -1

    phones: list[SynthPhone] = []
    groups: list[tuple[int, int, int]] = []  # (first word, last word, index of first phone)
    current = -1
    foreign_words: set[int] = set()
    in_foreign = False
    spoken: set[int] = set()
    # the words each word event speaks: from its own word up to the word before the next event. espeak-ng
    # speaks some pairs as one word ("against the", "on the") and its event length does not always say so
    event_words = [word_at(pos) for kind, pos, _, _ in events if kind == _EV_WORD]
    n_event = 0
    for kind, text_pos, sample, name in events:
        if kind == _EV_WORD:
            current = word_at(text_pos)
            last = word_at(text_pos + max(1, int(name or 1)) - 1)
            n_event += 1
            last = max(last, event_words[n_event] - 1 if n_event < len(event_words) else len(words) - 1)
            if last > current:
                groups.append((current, last, len(phones)))
            continue
        if _is_language_switch(name):
            in_foreign = name.strip("()").split("-")[0] != voice.split("-")[0]
            if in_foreign and current >= 0:
                foreign_words.add(current)
            continue
        t = sample / scale
        symbol, stress = _stress(_clean_symbol(name))
        if phones:
            phones[-1].end = max(phones[-1].start, t)
        if not symbol:
            phones.append(SynthPhone("", t, t, -1))
            continue
        idx = current if current >= 0 else (word_at(text_pos) if words else -1)
        if in_foreign and idx >= 0:
            foreign_words.add(idx)
        phones.append(SynthPhone(symbol, t, t, idx, stress))
        if idx >= 0:
            spoken.add(idx)
    for first, last, k0 in groups:
        _share_phones(phones, k0, first, last, words)
        spoken.update(p.word_index for p in phones if p.word_index >= 0)
    total = len(samples) / scale
    if phones:
        phones[-1].end = max(phones[-1].start, total)
    phones = [p for p in phones if p.end > p.start or p.ipa]
    return Synthesis(
        samples=out_samples.astype(np.float32),
        rate=rate,
        phones=phones,
        words=list(words),
        unspoken=[w for i, w in enumerate(words) if i not in spoken],
        foreign=[words[i] for i in sorted(foreign_words)],
    )


def _share_phones(phones: list[SynthPhone], k0: int, first: int, last: int, words: list[str]) -> None:
    """Phones of one espeak-ng word event covering words first..last: split by character share."""
    k1 = k0
    while k1 < len(phones) and phones[k1].word_index == first:
        k1 += 1
    mine = [k for k in range(k0, k1) if phones[k].ipa]
    if len(mine) < 2:
        return
    lengths = np.array([max(1, len(words[w])) for w in range(first, last + 1)], dtype=float)
    bounds = np.cumsum(lengths) / lengths.sum()
    for n, k in enumerate(mine):
        frac = (n + 0.5) / len(mine)
        phones[k].word_index = first + int(np.searchsorted(bounds, frac))


def phonemize(words: list[str], language: str) -> list[list[str]]:
    """IPA phones of each word as espeak-ng says it in ``language`` (g2p; no timing kept)."""
    syn = synthesize(words, language)
    out: list[list[str]] = [[] for _ in words]
    for p in syn.phones:
        if p.word_index >= 0 and p.ipa:
            out[p.word_index].append(p.ipa)
    return out
