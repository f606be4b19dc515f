"""The label and needs patterns run on case-folded text without re.IGNORECASE (for speed); their answers
must be exactly those of the plain definition: each pattern searched case-insensitively in the raw text,
negation first."""

from __future__ import annotations

import csv
import json
import re
import string
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer import needs
from rehabmap import taxonomy
from rehabmap.taxonomy import Classification, NotRehab
from rehabmap.textmatch import FoldedPattern, FoldedPatterns, fold_case, words

ROOT = Path(__file__).resolve().parents[2]


def reference_needs(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """(met, not_met), each need with the words that suggested it, as the search found them (case-folded)."""
    met: dict[str, str] = {}
    not_met: dict[str, str] = {}
    for need, pattern in needs._PATTERNS.items():
        if excluded := re.search(needs._NEGATION + "(?:" + pattern + ")", text, re.I):
            not_met[need] = fold_case(excluded.group(0))
        elif said := re.search(pattern, text, re.I):
            met[need] = fold_case(said.group(0))
    return met, not_met


def reference_gender(text: str) -> str | None:
    found = [g for g, pattern in needs._GENDER.items() if re.search(pattern, text, re.I)]
    return found[0] if len(found) == 1 else None


def reference_label(label: str) -> Classification | None | str:
    if re.search(taxonomy._SECURE.regex.pattern, label, re.I):
        return "not rehab"
    for pattern, classification in taxonomy._LABEL_RULES:
        if re.search(pattern.regex.pattern, label, re.I):
            if re.search(taxonomy._PD.regex.pattern, label, re.I) and classification.service_type.is_inpatient:
                return replace(classification, pd_specialist=True)
            return classification
    return None


def fast_label(label: str) -> Classification | None | str:
    try:
        return taxonomy.classify_label(label)
    except NotRehab:
        return "not rehab"


def assert_same(text: str) -> None:
    assert needs.extract_needs(text) == tuple(set(read) for read in reference_needs(text)), text
    assert needs.extract_gender(text) == reference_gender(text), text
    if gender := reference_gender(text):  # the words a page quotes beside the gender read (session 18)
        said = re.search(needs._GENDER[gender], text, re.I)
        assert said is not None and needs.gender_words(gender, text) == fold_case(said.group(0)), text
    assert needs.extract_needs_and_gender(text) == (*reference_needs(text), reference_gender(text)), text
    assert fast_label(text) == reference_label(text), text


def real_texts(data_dir: Path) -> list[str]:
    """Every service name in the real NHS files (ODS names are in capitals) and the sample's prose."""
    services = data_dir / "services"
    texts = []
    with open(services / "ods_trusts_and_sites_2018_geocoded.csv", newline="", encoding="utf-8") as handle:
        texts += [row["name"] for row in csv.DictReader(handle)]
    with open(services / "nhs_website_hospitals_2018.csv", newline="", encoding="utf-8-sig") as handle:
        texts += [f"{row['OrganisationName']} {row['SubType']} {row['Sector']}" for row in csv.DictReader(handle)]
    sample = json.loads((ROOT / "sample" / "rehabmap-sample.oruk.json").read_text(encoding="utf-8"))
    texts += [f"{s['name']} {s.get('description', '')}" for s in sample["contents"]]
    return texts


def test_same_answers_on_real_names_and_descriptions(data_dir):
    texts = real_texts(data_dir)
    assert len(texts) > 30_000
    for text in texts:
        assert_same(text)


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    return [text for item in value for text in _strings(item)] if isinstance(value, list) else []


def feed_texts(data_dir: Path) -> list[str]:
    """Every text in the recorded feeds (CQC, NHS service search, ORUK: JSON strings and CSV cells, each row's
    cells also joined, as the import joins a name, description and label)."""
    texts: set[str] = set()
    for path in sorted((data_dir / "feeds").rglob("*")):
        if path.suffix == ".json":
            texts.update(_strings(json.loads(path.read_text(encoding="utf-8"))))
        elif path.suffix == ".csv":
            with open(path, newline="", encoding="utf-8-sig") as handle:
                for row in csv.reader(handle):
                    texts.update(row)
                    texts.add(" ".join(row))
    return sorted(text for text in texts if len(text) > 2)


def test_same_answers_on_every_recorded_feed(data_dir):
    """Needs and gender are found by one scan for every pattern's needles (an Aho-Corasick automaton, with
    overlapping needles such as 'abi' in 'disabilities'): the answers are still each pattern's own."""
    texts = feed_texts(data_dir)
    assert len(texts) > 10_000
    for text in texts:
        assert needs.extract_needs_and_gender(text) == (*reference_needs(text), reference_gender(text)), text


def test_a_needle_inside_another_is_still_found():
    """One scan finds overlapping needles: 'abi' inside 'disabilities' (a leftmost-longest scan would not)."""
    patterns = FoldedPatterns({"disability": FoldedPattern("disabilit"), "abi": FoldedPattern("abi"),
                               "unguarded": FoldedPattern(r"^[a-z]{12}$"), "absent": FoldedPattern("older")})
    assert patterns.found("disabilities") == ["disability", "abi", "unguarded"]
    assert FoldedPatterns({}).found("anything") == []


_TRICKY_PATTERNS = [r"\bmen\b", r"\bfor\s+men\b|\bmen'?s ward\b", r"[|(]x|\by", r"[]|]z|\bq", r"(a|\bb)c|\bd\)?",
                    r"\b(?:women|female)(?:'s)? only\b", r"\b\w*|x", r"\b(?<=-)ab", r"\bab|\bab\b",
                    # optional letters inside a needle's run, and alternatives with needles of their own
                    r"\b(?:men|male)(?:'s)? only\b|\bfor\s+men\b|\bmen'?s (?:unit|ward)\b", r"ab?c|\bxy(?:z)?w|q"]
_TRICKY_TEXTS = ["xmen men", "xmen", "women", "for  men", "amen's ward", "men's ward", "|x", "(x", "]z", "|z",
                 "ay", "bc", "xbc", "abc", "xd", "d)", "a-ab", "aab", "female's only", "females only", "",
                 "mens unit", "men unit", "mental health unit", "men only", "male's only", "for mental", "ac",
                 "xyw", "xyzw", "axyw", "q"]


@pytest.mark.parametrize("pattern", _TRICKY_PATTERNS)
def test_alternatives_that_start_with_a_boundary_match_as_the_whole_pattern(pattern):
    """A pattern runs alternative by alternative, one that starts with \\b found by scanning for the rest of it
    and trying the whole at each place the rest starts ('xmen men': not at the first place, at the second)."""
    folded = FoldedPattern(pattern)
    for text in _TRICKY_TEXTS:
        assert folded.matches(text) == (re.search(pattern, text) is not None), (pattern, text)


@pytest.mark.parametrize("pattern, needles", [
    (words(r"\bmen'?s (?:unit|ward)\b"), {"men's", "mens"}), (r"colou?r", {"color", "colour"}),
    (r"(?:ab)?cd", {"abcd", "cd"}), (r"x?", set()), (r"\bfor\s+men\b", {"for"})])
def test_an_optional_letter_inside_a_run_makes_longer_needles(pattern, needles):
    """A run with an optional letter holds one of its spellings ("men'?s": "men's" or "mens"). Breaking the run
    there left the male-only pattern's "men's unit" alternative guarded by "service", which every description
    in the bench's corpus holds, so its regex ran on every row."""
    assert FoldedPattern(pattern).needles == needles


# Words the patterns look for, negations, and the four letters re.IGNORECASE treats as ASCII twins.
_WORDS = ["no", "not", "does not accept", "unable to support", "excludes", "Autism", "AUTISTIC", "asc",
          "learning disabilities", "Personality Disorder", "detained", "sectioned", "MHA", "section 2", "section 3",
          "Section 37/41", "s37/41", "restricted patients", "dual diagnosis", "older people", "ABI",
          "acquired brain injury",
          "step-free", "wheelchair accessible", "sensory-friendly", "women-only", "for men", "men's ward",
          "mixed-sex", "locked rehab", "high dependency", "complex care", "care team", "longer stay", "level 2",
          "Level 1", "community rehabilitation unit", "rehabilitation team", "IPS", "IMHA", "imca",
          "care act advocacy", "advocate", "floating support", "24-hour staffed", "care home", "supported living",
          "rehab ward", "peer support", "charity", "low secure", "Medium-Secure", "PD unit", "Locked-Rehab",
          "high/dependency", "learning-disability", "step free", "and", "the", "for", "with",
          "İMHA", "ıps", "ſection 3", "Kare home", "\u212aare home", "wıth", "—", ",", "."]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_WORDS), min_size=1, max_size=12),
       st.sampled_from([" ", "  ", "\n", "-", "/", "", "_", "\u2013", " - "]))
def test_same_answers_on_generated_text(words, separator):
    assert_same(separator.join(words))


@pytest.mark.parametrize("text", ["İMHA service", "\u212aare home", "ſupported housing", "No ABI", "wıth autism",
                                  # folded by lowering alone: non-ASCII without a twin; a twin lowered to ASCII
                                  "Care home – \u2018IMHA\u2019 service", "\u212aARE HOME’s",
                                  # a combining dot the source wrote (İ lowers to i and one): not a twin
                                  "i\u0307mha service", "I\u0307MHA – İMHA", "ſection 3 – \u212aare home"])
def test_ascii_twins_match_as_ignorecase_does(text):
    assert_same(text)


def test_folding_keeps_every_character_that_ignorecase_does_not_pair_with_an_ascii_letter():
    """`fold_case` lowers ASCII capitals, maps the twins and keeps every other character as it is; that is
    what re.IGNORECASE does for ASCII patterns only if `re` pairs an ASCII letter with no other character:
    checked here for every code point (folding is character by character, so this covers every text)."""
    letter = re.compile("[a-z]", re.IGNORECASE)
    paired = []
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        folded = fold_case(char)
        if letter.fullmatch(char):
            paired.append(char)
            assert folded.isascii() and folded.islower() and re.fullmatch(folded, char, re.IGNORECASE), hex(code)
        else:
            assert folded == char, hex(code)
    assert "".join(paired) == string.ascii_uppercase + string.ascii_lowercase + "İıſ\u212a"  # in code order
    assert fold_case("\ud800 MHA \u2014 İ") == "\ud800 mha \u2014 i"  # a lone surrogate passes through
