"""Phone -> viseme tables, viseme set presets, rig-name detection and custom mappings."""

from __future__ import annotations

import itertools
import json
import struct
from pathlib import Path

import pytest

from lipsync_addon.core.phonemes import arpabet_to_ipa
from lipsync_addon.core.types import Phone, RigError
from lipsync_addon.core.visemes import (
    canonical_visemes,
    ipa_to_visemes,
    list_viseme_sets,
    load_custom_mapping,
    load_viseme_set,
    phones_to_visemes,
    resolve_mapping,
)

DATA = Path(__file__).resolve().parents[1] / "data"

# The English inventory of the contracts (ARPAbet -> IPA), incl. unstressed variants.
ENGLISH_IPA = (
    "ɑ æ ʌ ə ɔ aʊ aɪ b tʃ d ð ɛ ɝ ɚ eɪ f ɡ h ɪ i dʒ k l m n ŋ oʊ ɔɪ p ɹ s ʃ t θ ʊ u v w j z ʒ".split()
)
ARPABET = (
    "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z ZH".split()
)

EXPECTED = {
    "p": "PP", "b": "PP", "m": "PP", "f": "FF", "v": "FF", "θ": "TH", "ð": "TH", "t": "DD", "d": "DD",
    "k": "kk", "ɡ": "kk", "ŋ": "kk", "tʃ": "CH", "dʒ": "CH", "ʃ": "CH", "ʒ": "CH", "s": "SS", "z": "SS",
    "n": "nn", "l": "nn", "ɹ": "RR", "ɝ": "RR", "ɑ": "aa", "æ": "aa", "ʌ": "aa", "ɛ": "E", "ɪ": "I",
    "i": "I", "ɔ": "O", "u": "U", "ʊ": "U", "w": "U",
}


def test_canonical_inventory_is_oculus_15() -> None:
    assert canonical_visemes() == tuple("sil PP FF TH DD kk CH SS nn RR aa E I O U".split())


def test_every_english_phone_is_covered_explicitly() -> None:
    canon = set(canonical_visemes())
    for ipa in ENGLISH_IPA:
        out = ipa_to_visemes(ipa)
        assert out, ipa
        for vis, weight in out:
            assert vis in canon or vis == "@next", (ipa, vis)
            assert 0 < weight <= 1
    for ipa, vis in EXPECTED.items():
        assert ipa_to_visemes(ipa) == [(vis, 1.0)], ipa
    # the contract's ARPAbet -> IPA adapter lands in the table too
    for arpa in ARPABET:
        assert arpabet_to_ipa(arpa) in ENGLISH_IPA, arpa


@pytest.mark.parametrize(
    ("diphthong", "parts"),
    [("aɪ", ("aa", "I")), ("aʊ", ("aa", "U")), ("eɪ", ("E", "I")), ("oʊ", ("O", "U")), ("ɔɪ", ("O", "I"))],
)
def test_diphthongs_split_60_40(diphthong: str, parts: tuple[str, str]) -> None:
    segs = phones_to_visemes([Phone(diphthong, 1.0, 1.2, word_index=0)])
    assert [s.viseme for s in segs] == list(parts)
    assert segs[0].start == 1.0 and segs[1].end == 1.2
    assert segs[0].end == pytest.approx(1.12)
    assert all(s.phone == diphthong for s in segs)


def test_unknown_and_decorated_symbols_never_crash() -> None:
    cases = {
        "pʰ": "PP", "tːʰ": "DD", "ɑː": "aa", "ˈa": "aa", "n̩": "nn", "t͡ʃ": "CH", "ã": "aa", "ɦ": "@next",
        "x": "kk", "ʁ": "kk", "y": "U", "ø": "O", "ɲ": "nn", "ç": "SS", "ɸ": "PP", "ʋ": "FF",
    }
    for ipa, vis in cases.items():
        assert ipa_to_visemes(ipa)[0][0] == vis, ipa
    for junk in ["☃", "ˈ", "Q42", "???", "ʘʘʘ", "\u0301"]:
        out = ipa_to_visemes(junk)
        assert out and all(v in canonical_visemes() for v, _ in out), junk
    assert ipa_to_visemes("sil") == [("sil", 1.0)]
    assert ipa_to_visemes("noise") == [("sil", 1.0)]


def test_h_takes_next_vowel_shape_and_segments_are_ordered() -> None:
    phones = [
        Phone("sil", 0.0, 0.2),
        Phone("h", 0.2, 0.28, word_index=0),
        Phone("oʊ", 0.28, 0.5, word_index=0),
        Phone("m", 0.5, 0.6, word_index=0),
        Phone("sil", 0.6, 1.0),
    ]
    segs = phones_to_visemes(list(reversed(phones)))
    assert [s.viseme for s in segs] == ["sil", "O", "O", "U", "PP", "sil"]
    assert segs[1].weight < 1.0 and segs[1].phone == "h"
    assert all(a.end <= b.start + 1e-12 for a, b in itertools.pairwise(segs))


# ---------------------------------------------------------------- presets and detection


def test_presets_are_complete() -> None:
    assert set(list_viseme_sets()) >= {"oculus", "arkit", "vrm", "vrchat", "rhubarb", "preston_blair"}
    for name in list_viseme_sets():
        vset = load_viseme_set(name)
        assert set(vset.mapping) == set(canonical_visemes())
        for mix in vset.mapping.values():
            assert all(0 < w <= 1 for w in mix.values())
    arkit = load_viseme_set("arkit").mapping
    assert arkit["PP"]["jawOpen"] < 0.1 and "mouthClose" in arkit["PP"] and "mouthRollLower" in arkit["PP"]
    assert arkit["aa"]["jawOpen"] >= 0.6
    assert "mouthRollLower" in arkit["FF"]
    assert "mouthPucker" in arkit["U"] and "mouthFunnel" in arkit["O"]


def _messy(name: str, i: int) -> str:
    """Mangle a shape-key name the ways real rigs do: casing and separators."""
    variants = [name, name.upper(), name.lower()]
    variants += [name.replace("_", sep) for sep in "- ."]
    return variants[i % len(variants)]


@pytest.mark.parametrize("preset", ["oculus", "arkit", "vrm", "vrchat", "rhubarb", "preston_blair"])
def test_detects_every_preset_from_its_own_messy_names(preset: str) -> None:
    names = [_messy(n, i) for i, n in enumerate(load_viseme_set(preset).expected_names())]
    names += ["Basis", "eyeBlink_L", "browDown_R"]  # unrelated keys are ignored
    set_name, mapping = resolve_mapping("auto", names)
    assert set_name == preset
    used = {c for mix in mapping.values() for c in mix}
    assert used <= set(names)  # the actual key names are returned
    assert set(mapping) == set(canonical_visemes())


@pytest.mark.parametrize(
    ("names", "preset"),
    [
        (["Fcl_MTH_A", "Fcl_MTH_I", "Fcl_MTH_U", "Fcl_MTH_E", "Fcl_MTH_O", "Fcl_ALL_Joy"], "vrm"),
        (["A", "I", "U", "E", "O", "Blink"], "vrm"),
        (["mouth_A", "mouth_B", "Mouth C", "mouth-D", "MOUTH_E", "mouth_F", "mouth_G", "mouth_H"], "rhubarb"),
        (["Vrc.V_AA", "vrc.v-E", "VRC V IH", "vrc.v_oh", "vrc.v_ou", "vrc.v_pp"], "vrchat"),
        (["V_AA", "V_E", "V_I", "V_O", "V_U", "V_PP", "V_FF"], "oculus"),
        (["CC_viseme_aa", "CC_viseme_E", "CC_viseme_I", "CC_viseme_O", "CC_viseme_U", "CC_viseme_PP"], "oculus"),
        (["blendShape1.jawOpen", "blendShape1.mouthClose", "blendShape1.mouthFunnel", "blendShape1.mouthPucker",
          "blendShape1.mouthSmileLeft", "blendShape1.mouthSmileRight"], "arkit"),
    ],
)
def test_detection_tolerates_prefixes_and_namespaces(names: list[str], preset: str) -> None:
    assert resolve_mapping("auto", names)[0] == preset


def test_rig_with_both_arkit_and_oculus_prefers_dedicated_visemes() -> None:
    names = load_viseme_set("arkit").expected_names() + load_viseme_set("oculus").expected_names()
    assert resolve_mapping("auto", names)[0] == "oculus"


def _glb_morph_names(path: Path) -> list[str]:
    blob = path.read_bytes()
    (length,) = struct.unpack("<I", blob[12:16])
    gltf = json.loads(blob[20 : 20 + length])
    return [n for mesh in gltf["meshes"] for n in mesh.get("extras", {}).get("targetNames", [])]


def test_real_arkit_head_is_detected_and_missing_tongue_is_dropped() -> None:
    names = _glb_morph_names(DATA / "rigs" / "ict_face_arkit.glb")
    assert "jawOpen" in names and "tongueOut" not in names
    set_name, mapping = resolve_mapping("auto", names)
    assert set_name == "arkit"
    assert "tongueOut" not in mapping["TH"] and mapping["TH"]  # dropped, TH still drawn by the rest
    assert mapping["PP"]["mouthPress_L"] > 0 and mapping["aa"]["jawOpen"] > 0.5


def test_no_match_message_lists_expected_names_per_preset() -> None:
    with pytest.raises(RigError) as err:
        resolve_mapping("auto", ["Basis", "Smile", "Frown", "Blink"])
    msg = str(err.value)
    for preset in list_viseme_sets():
        assert f"{preset}:" in msg
    for name in ["viseme_PP", "jawOpen", "vrc.v_aa", "Fcl_MTH_A", "MBP", "ih"]:
        assert name in msg
    with pytest.raises(RigError, match="no shape keys"):
        resolve_mapping("auto", [])
    with pytest.raises(RigError, match="Unknown viseme set"):
        resolve_mapping("nonsense", ["a"])


def test_named_preset_without_rig_uses_its_own_names_and_checks_a_given_rig() -> None:
    set_name, mapping = resolve_mapping("oculus", [])
    assert set_name == "oculus" and mapping["PP"] == {"viseme_PP": 1.0}
    with pytest.raises(RigError, match="missing"):
        resolve_mapping("arkit", ["viseme_PP", "viseme_aa"])


def test_missing_channels_borrow_from_substitutes_weaker() -> None:
    names = ["viseme_sil", "viseme_PP", "viseme_aa", "viseme_E", "viseme_I", "viseme_O", "viseme_U"]
    _, mapping = resolve_mapping("auto", names)
    assert mapping["TH"] and all(w < 1 for w in mapping["TH"].values())
    assert mapping["PP"] == {"viseme_PP": 1.0}


def test_custom_mapping_file_overrides(tmp_path: Path) -> None:
    path = tmp_path / "mapping ü.json"
    path.write_text(
        json.dumps(
            {
                "viseme_set": "custom",
                "mapping": {"PP": {"MyClosed": 1.0}, "aa": {"MyOpen": 0.8, "Jaw": 1.5}, "u": "Kiss"},
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    custom = load_custom_mapping(str(path))
    assert custom == {"PP": {"MyClosed": 1.0}, "aa": {"MyOpen": 0.8, "Jaw": 1.0}, "U": {"Kiss": 1.0}}
    set_name, mapping = resolve_mapping("auto", ["MyClosed", "MyOpen", "Jaw", "Kiss", "Basis"], custom)
    assert set_name == "custom"
    assert mapping["PP"] == {"MyClosed": 1.0} and mapping["U"] == {"Kiss": 1.0}
    assert mapping["O"]  # unnamed visemes borrow from substitutes (O -> U)
    # on top of a detected preset, only the named visemes change
    oc = load_viseme_set("oculus").expected_names()
    set_name, mapping = resolve_mapping("auto", [*oc, "MyClosed"], {"PP": {"MyClosed": 1.0}})
    assert mapping["PP"] == {"MyClosed": 1.0} and mapping["aa"] == {"viseme_aa": 1.0}


def test_bad_custom_mappings_are_rig_errors(tmp_path: Path) -> None:
    with pytest.raises(RigError, match="not found"):
        load_custom_mapping(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(RigError, match="Cannot read"):
        load_custom_mapping(str(bad))
    bad.write_text(json.dumps({"mapping": {"XYZ": {"a": 1}}}), encoding="utf-8")
    with pytest.raises(RigError, match="not a viseme"):
        load_custom_mapping(str(bad))
    with pytest.raises(RigError, match="None of the shape keys"):
        resolve_mapping("auto", ["Basis"], {"PP": {"Nope": 1.0}})


def test_simple_preset_drives_one_open_shape_with_mouth_open() -> None:
    """Rigs with a single open shape get the mouth_open curve; its weights are the openness table."""
    import numpy as np

    from lipsync_addon.core.animate import coarticulate, map_to_channels, viseme_openness
    from lipsync_addon.core.types import VisemeSegment
    from lipsync_addon.core.visemes import load_viseme_set, resolve_mapping

    simple = load_viseme_set("simple")
    openness = viseme_openness()
    for viseme, targets in simple.mapping.items():
        assert targets.get("mouth_open", 0.0) == pytest.approx(openness[viseme]), viseme
    assert resolve_mapping("auto", ["Basis", "Mouth Open"])[0] == "simple"
    assert resolve_mapping("auto", ["jawOpen"])[0] == "simple"  # a lone ARKit jaw shape
    # a full preset with an extra open shape keeps its own preset
    oculus = list(load_viseme_set("oculus").channels)
    assert resolve_mapping("auto", [*oculus, "MouthOpen"])[0] == "oculus"
    segs = [VisemeSegment("aa", 0.2, 0.4), VisemeSegment("PP", 0.4, 0.45), VisemeSegment("O", 0.45, 0.7)]
    curves = coarticulate(segs, 1.0, fps=30.0)
    _, mapping = resolve_mapping("auto", ["MouthOpen"])
    out = map_to_channels(curves, mapping)
    assert np.allclose(out.channels["MouthOpen"], curves.channels["mouth_open"], atol=1e-6)
