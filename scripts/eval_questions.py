"""Question detection (final pitch rise) on real declarative speech and on espeak-ng questions.

    .venv/bin/python scripts/eval_questions.py      # ~30 s; needs the espeak-ng command (apt-get install espeak-ng)

- False questions: the phrase ends of real declarative speech (tests/data/aligned with its
  transcripts, four CMU ARCTIC statements from ../shared/data/speech_clean) that are flagged.
- Detected questions: six yes/no questions spoken by espeak-ng with "?" (its question intonation,
  en-us and a female en-gb voice) vs the same sentences with "." (flagged statements).
Prosody and questions: core/animate/procedural.py (docs/face.md).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import eval_align as ea  # noqa: E402

from lipsync_addon.core.animate import procedural  # noqa: E402
from lipsync_addon.core.audio import load_audio, to_analysis  # noqa: E402
from lipsync_addon.core.recognize.pocketsphinx_backend import PocketSphinxRecognizer  # noqa: E402

SENTENCES = ("Are you coming to the party tonight", "Did she really say that to him", "Is this the train to Boston",
             "Can you help me with this box", "Have you seen my keys anywhere", "Would you like some more tea")
STATEMENTS = {
    "cmu_arctic_us_aew_a0001.wav": "Author of the danger trail, Philip Steels, etc.",
    "cmu_arctic_us_aew_a0003.wav": "For the twentieth time that evening the two men shook hands.",
    "cmu_arctic_us_axb_a0004.wav": "Lord, but I'm glad to see you again, Phil.",
    "cmu_arctic_us_axb_a0006.wav": "God bless 'em, I hope I'll go on seeing them forever.",
}


def questions(recognizer: PocketSphinxRecognizer, path: Path, text: str) -> tuple[int, int]:
    """(phrase ends flagged as questions, phrase ends) of one clip aligned to ``text``."""
    audio = to_analysis(load_audio(path))
    prosody = procedural.analyze_prosody(audio.samples, audio.rate, recognizer.transcribe(audio, text))
    return len(prosody.questions), len(prosody.phrase_ends)


def main() -> int:
    """Print the counts; returns the exit code."""
    recognizer = PocketSphinxRecognizer(jobs=2)
    flagged = ends = 0
    data = ROOT / "tests" / "data" / "aligned"
    for audio_name, _grid, _tier, text_spec in ea.CLIPS:
        q, e = questions(recognizer, data / audio_name, ea.read_transcript(data, text_spec))
        flagged, ends = flagged + q, ends + e
    clean = ROOT.parent / "shared" / "data" / "speech_clean"
    for name, text in STATEMENTS.items():
        if (clean / name).exists():
            q, e = questions(recognizer, clean / name, text)
            flagged, ends = flagged + q, ends + e
    print(f"real declarative speech: {flagged} of {ends} phrase ends flagged as questions")
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        print("espeak-ng command not found: synthetic questions skipped (apt-get install espeak-ng)")
        return 0
    hits = {"?": 0, ".": 0}
    total = 0
    with tempfile.TemporaryDirectory() as tmp:
        for k, sentence in enumerate(SENTENCES):
            for voice in ("en-us", "en-gb+f3"):
                total += 1
                for mark in hits:
                    wav = Path(tmp) / f"{k}_{voice}_{'q' if mark == '?' else 's'}.wav"
                    subprocess.run([espeak, "-v", voice, "-w", str(wav), sentence + mark], check=True)
                    q, _ = questions(recognizer, wav, sentence)
                    hits[mark] += q > 0
    print(f"espeak-ng questions detected: {hits['?']} of {total}; the same sentences as statements flagged: "
          f"{hits['.']} of {total}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
