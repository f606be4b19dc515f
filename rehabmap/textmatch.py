"""Fast matching of the indexer's label and needs patterns, with exactly the answers of re.IGNORECASE.

The indexer runs some 30 patterns over every row's name, description and label, and that was most of the
pipeline's time. Two things make it cheap without changing an answer:
  - Case folding once. Case-insensitive matching in Python's `re` costs 3–5× plain matching. For patterns
    written in lowercase ASCII, folding the text and matching case-sensitively is equivalent: IGNORECASE
    lets an ASCII letter match its other case plus exactly four non-ASCII letters (İ ı ſ K, see
    `re._casefix`), which are mapped to their ASCII letters before `str.lower()` (which would turn İ into
    two characters).
  - Needles. Most patterns start with `\\b`, which stops `re` from scanning for a literal prefix, so each
    search tries the pattern at every position (~3 µs on a description). Every match of a pattern contains
    one of a few literal words (its needles, read from the parsed pattern), and `in` finds or rules those
    out in a fraction of that; the regex runs only when a needle is present.
  - One pass for many patterns. `FoldedPatterns` finds the needles of a whole set of patterns in one scan of
    the text (an Aho-Corasick automaton, pyahocorasick), instead of one `in` per needle per pattern.
"""

from __future__ import annotations

import re
from typing import Any

import ahocorasick

try:  # the parser is private; without it patterns simply run without needles (same answers, slower)
    from re import _constants as sre  # type: ignore[attr-defined]  # private: not in typeshed's stubs
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - every supported Python (3.11+) has them
    sre_parse = None

# Sources join the words of a label in many ways: "Locked-Rehabilitation Ward", "Low/Secure",
# "HighDependency", "Complex–Care". A pattern written with a space between words matches any of them.
WORD_GAP = r"[\s/_\u2010-\u2015-]*"


def words(pattern: str) -> str:
    """The pattern with each space standing for any gap between words (`WORD_GAP`), none included."""
    return pattern.replace(" ", WORD_GAP)


_TWINS = {"İ": "i", "ı": "i", "ſ": "s", "K": "k"}
_ASCII_TWINS = str.maketrans(_TWINS)


def fold_case(text: str) -> str:
    """The text as `re.IGNORECASE` sees it, for patterns in lowercase ASCII."""
    if not text.isascii() and any(twin in text for twin in _TWINS):  # translate() is slow: only when needed
        text = text.translate(_ASCII_TWINS)
    return text.lower()


class FoldedPattern:
    """A pattern in lowercase ASCII, searched in `fold_case`d text, its needles checked first."""

    def __init__(self, pattern: str) -> None:
        stripped = re.sub(r"\\.", "", pattern)
        if stripped != stripped.lower() or not stripped.isascii():
            raise ValueError(f"pattern must be lowercase ASCII to run on folded text: {pattern!r}")
        self.regex = re.compile(pattern)
        self.needles: frozenset[str] = _needles(pattern)

    def search(self, folded: str) -> bool:
        if not self.needles:
            return self.regex.search(folded) is not None
        for needle in self.needles:  # a plain loop: any() over a generator costs as much as the test
            if needle in folded:
                return self.regex.search(folded) is not None
        return False


class FoldedPatterns:
    """Named `FoldedPattern`s searched in one text together, with the answers of each one's `search`.

    One scan finds every needle present, overlapping ones included ("abi" inside "disabilities"); then only
    the patterns one of whose needles is there, or that have no needles, run their regex."""

    def __init__(self, patterns: dict[str, FoldedPattern]) -> None:
        self.patterns = patterns
        self._unguarded = frozenset(name for name, pattern in patterns.items() if not pattern.needles)
        owners: dict[str, set[str]] = {}
        for name, pattern in patterns.items():
            for needle in pattern.needles:
                owners.setdefault(needle, set()).add(name)
        self._automaton = ahocorasick.Automaton()
        for needle, names in owners.items():
            self._automaton.add_word(needle, frozenset(names))
        if owners:  # an automaton without words cannot be made, and would find nothing
            self._automaton.make_automaton()

    def found(self, folded: str) -> list[str]:
        """The names of the patterns found in the `fold_case`d text, in the order they were given."""
        named = set(self._unguarded)
        if self._automaton.kind == ahocorasick.AHOCORASICK:
            for _end, names in self._automaton.iter(folded):
                named |= names
        return [name for name, pattern in self.patterns.items()
                if name in named and pattern.regex.search(folded) is not None]


def _needles(pattern: str) -> frozenset[str]:
    """Literal words one of which every match contains; empty when there is no such guarantee."""
    if sre_parse is None:
        return frozenset()
    return _required(list(sre_parse.parse(pattern))) or frozenset()


def _required(items: list[tuple[Any, Any]]) -> frozenset[str] | None:
    """For a sequence of parsed items: the most selective set of literals a match must contain one of."""
    best: frozenset[str] | None = None

    def consider(found: frozenset[str] | None) -> None:
        nonlocal best
        if found and (best is None or min(map(len, found)) > min(map(len, best))):
            best = found

    run: list[str] = []
    for op, av in items:
        if op is sre.LITERAL:
            run.append(chr(av))
            continue
        consider(frozenset({"".join(run)}) if run else None)
        run = []
        if op is sre.SUBPATTERN and not av[1] and not av[2]:  # a group, with no inline flags
            consider(_required(list(av[3])))
        elif op is sre.BRANCH:
            branches = [_required(list(branch)) for branch in av[1]]
            consider(frozenset().union(*branches) if all(branches) else None)  # type: ignore[arg-type]
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT) and av[0] >= 1:
            consider(_required(list(av[2])))
        # Anything else (a class, any character, an anchor, a lookaround) promises no literal.
    consider(frozenset({"".join(run)}) if run else None)
    return best
