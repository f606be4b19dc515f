"""Needs a service's own words suggest (DESIGN.md §2 vocabulary): read, never taken as stated.

Only positive statements are read: silence stays unknown, never "no". Exclusions such as "does not accept
restricted patients" are read as not met. What is read here is a guess from a name, a description or a label,
so the record keeps it apart from what a source or maintainer states (`Service.needs_read_from_text`,
`Service.needs_read_not_met`, each need with the words that suggested it): a match never counts it as
confirmed nor hides a service on it (rehabmap/match.py `RANKING_RULE`). So is the gender read here
("A women-only ward"): `Service.gender_read_from_text`, with its words (`gender_words`), never `Service.gender`.
"""

from __future__ import annotations

import re

from rehabmap.textmatch import FoldedPattern, FoldedPatterns, fold_case, words

_NEGATION = (r"(?:no|not|does\s+not\s+(?:accept|admit|take|support)|unable\s+to\s+(?:accept|support)|excludes?)"
             r"\s+(?:\w+\s+){0,3}?")

# A space in a pattern stands for any gap between words ("learning-disabilities", "step free", "stepfree");
# the grammar of a negation ("does not accept") is spelt out.
_PATTERNS: dict[str, str] = {need: words(pattern) for need, pattern in {
    "learning_disability": r"learning disabilit(?:y|ies)",
    "autism": r"autis(?:m|tic)|\basc\b",
    "personality_disorder_diagnosis": r"personality disorder",
    # Detention only: the Act's or "MHA"'s name alone also covers a community treatment order, guardianship and
    # s17 leave (as CQC's band does, indexer/sources/cqc.py), which say nothing of whether detained people are taken.
    "detained_mha": r"detained|sectioned|section\s*(?:2|3|37)\b",
    "restricted_s37_41": r"s\.?\s?37\s*/\s*41|section\s+37\s*/\s*41|restricted patients?|restriction order",
    "substance_misuse": r"substance misuse|drug and alcohol|dual diagnosis|addiction",
    "older_adult": r"older (?:adults?|people)",
    "physical_health_complex": r"complex physical health|physical health needs",
    "acquired_brain_injury": r"acquired brain injur(?:y|ies)|\babi\b",
    "step_free_access": r"step free|wheelchair access(?:ible)?|level access",
    "sensory_adapted": r"sensory (?:adapted|friendly|room)",
}.items()}
_GENDER: dict[str, str] = {gender: words(pattern) for gender, pattern in {
    "female_only": r"\b(?:women|female)(?:'s)? only\b|\bfor\s+women\b|\bwomen'?s (?:unit|service|ward)\b",
    "male_only": r"\b(?:men|male)(?:'s)? only\b|\bfor\s+men\b|\bmen'?s (?:unit|service|ward)\b",
    "mixed_gender": r"\bmixed (?:gender|sex)\b",
}.items()}
# Patterns are lowercase and run on folded text (rehabmap/textmatch.py): the answers of re.IGNORECASE, faster.
# Needs and genders are searched together: one scan of a row's text finds the needles of all of them.
_POSITIVE = FoldedPatterns({**{need: FoldedPattern(p) for need, p in _PATTERNS.items()},
                            **{gender: FoldedPattern(p) for gender, p in _GENDER.items()}})
# The negative pattern holds the positive one, so it can only match where the positive does: most texts
# never name most needs, and the costly negative search runs only for the needs a text names.
_NEGATIVE = {need: re.compile(_NEGATION + "(?:" + p + ")") for need, p in _PATTERNS.items()}


def extract_needs(text: str) -> tuple[set[str], set[str]]:
    """(met, not_met) the text suggests."""
    met, not_met, _gender = extract_needs_and_gender(text)
    return set(met), set(not_met)


def extract_gender(text: str) -> str | None:
    return extract_needs_and_gender(text)[2]


def extract_needs_and_gender(text: str) -> tuple[dict[str, str], dict[str, str], str | None]:
    """`extract_needs` and `extract_gender` of one text, folded once and scanned once for every needle (the
    import reads every row's name, description and label both ways; it was a quarter of a row's time). Each
    need read maps to the words that suggested it (lowercase, as the text was searched): the evidence a
    reader is shown beside the guess. Those words cost one more search of one pattern per need found, and
    most texts name none."""
    text = fold_case(text)
    met: dict[str, str] = {}
    not_met: dict[str, str] = {}
    genders: list[str] = []
    for name in _POSITIVE.found(text):
        negative = _NEGATIVE.get(name)
        if negative is None:
            genders.append(name)
        elif (excluded := negative.search(text)) is not None:
            not_met[name] = excluded.group(0)
        else:
            met[name] = _said(name, text)
    return met, not_met, genders[0] if len(genders) == 1 else None


def gender_words(gender: str, text: str) -> str:
    """The words of `text` that suggested `gender` (`extract_gender`'s answer for it), lowercase as searched:
    asked apart, for the few rows whose words suggest a gender and that state none."""
    return _said(gender, fold_case(text))


def _said(name: str, text: str) -> str:
    """The words of the folded `text` that pattern `name` found."""
    said = _POSITIVE.patterns[name].regex.search(text)
    assert said is not None  # `found` names only the patterns that match
    return said.group(0)
