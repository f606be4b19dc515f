"""Fast matching of the indexer's label and needs patterns, with exactly the answers of re.IGNORECASE.

The indexer runs some 30 patterns over every row's name, description and label, and that was most of the
pipeline's time. Two things make it cheap without changing an answer:
  - Case folding once. Case-insensitive matching in Python's `re` costs 3–5× plain matching. For patterns
    written in lowercase ASCII, folding the text and matching case-sensitively is equivalent: IGNORECASE
    lets an ASCII letter match its other case plus exactly four non-ASCII letters (İ ı ſ K, see
    `re._casefix`), and no class (\\w, \\s, \\d, \\b) depends on case; so the folded text is the text with
    its ASCII capitals lowered and those four mapped to their ASCII letters, every other character kept.
  - Needles. Most patterns start with `\\b`, which stops `re` from scanning for a literal prefix, so each
    search tries the pattern at every position (~3 µs on a description). Every match of a pattern contains
    one of a few literal words (its needles, read from the parsed pattern), and `in` finds or rules those
    out in a fraction of that; the regex runs only when a needle is present.
  - Word boundaries last. A pattern (or one of its alternatives) that starts with `\\b` gives `re` no
    literal to scan for, so it is tried at every position (15-30 µs on a description, where a literal start
    takes 0.4 µs). Each alternative runs on its own, and one that starts with `\\b` is found by scanning for
    the rest of it and trying the whole alternative only where the rest starts.
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


_TWINS = {"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"}  # İ ı ſ and the Kelvin sign
_ASCII_TWINS = str.maketrans(_TWINS)


def fold_case(text: str) -> str:
    """The text as `re.IGNORECASE` sees it, for patterns in lowercase ASCII.

    Only ASCII capitals are lowered (and the twins mapped), as `re` pairs no other character with an ASCII
    letter (tests/indexer/test_text_patterns.py checks every code point): `bytes.lower` on the UTF-8 lowers
    ASCII alone, and costs about half of `str.lower`, which looks up every character of the import's texts
    (nearly all non-ASCII: a dash, a curly quote) in the Unicode tables. `surrogatepass` lets a lone surrogate
    (a JSON source may hold one) through unchanged."""
    if text.isascii():
        return text.lower()
    if "\u0130" in text or "\u0131" in text or "\u017f" in text or "\u212a" in text:  # İ ı ſ K; four `in`s: per row
        text = text.translate(_ASCII_TWINS)
    return text.encode("utf-8", "surrogatepass").lower().decode("utf-8", "surrogatepass")


class FoldedPattern:
    """A pattern in lowercase ASCII, searched in `fold_case`d text, its needles checked first."""

    def __init__(self, pattern: str) -> None:
        stripped = re.sub(r"\\.", "", pattern)
        if stripped != stripped.lower() or not stripped.isascii():
            raise ValueError(f"pattern must be lowercase ASCII to run on folded text: {pattern!r}")
        self.regex = re.compile(pattern)
        self.needles: frozenset[str] = _needles(pattern)
        # Per alternative: the alternative, for one that starts with \b the rest of it to scan for, and, when
        # the pattern has several, the alternative's own needles: a pattern's needle in the text says one of
        # its alternatives may match, not which ("for" lets the male-only pattern through on half the rows,
        # yet only its "for men" alternative needs it).
        branches = _branches(pattern)
        self._alternatives = [(re.compile(branch), _rest_after_boundary(branch),
                               _needles(branch) if len(branches) > 1 else frozenset()) for branch in branches]

    def search(self, folded: str) -> bool:
        if not self.needles or _holds_any(folded, self.needles):
            return self.matches(folded)
        return False

    def matches(self, folded: str, present: set[str] | None = None) -> bool:
        """`self.regex.search(folded) is not None`, without trying every position for a leading \\b.
        `present`, if given, holds every needle of the alternatives that the text contains (`FoldedPatterns`
        finds them in its one scan), so no alternative looks for its own needles again."""
        for whole, rest, needles in self._alternatives:
            if needles and (needles.isdisjoint(present) if present is not None else not _holds_any(folded, needles)):
                continue
            if rest is None:
                if whole.search(folded) is not None:
                    return True
                continue
            # Every start of a match of the whole alternative is a start of a match of its rest, and the
            # rest's next start is found fast: try the whole there (match() sees the text before that
            # position, so its \b is decided as in a search), else go on from the position after.
            found = rest.search(folded)
            while found is not None:
                if whole.match(folded, found.start()) is not None:
                    return True
                found = rest.search(folded, found.start() + 1)
        return False


def _holds_any(text: str, needles: frozenset[str]) -> bool:
    for needle in needles:  # a plain loop: any() over a generator costs as much as the test
        if needle in text:
            return True
    return False


class FoldedPatterns:
    """Named `FoldedPattern`s searched in one text together, with the answers of each one's `search`.

    One scan finds every needle present, overlapping ones included ("abi" inside "disabilities"), the
    needles of the patterns' alternatives too; then only the patterns one of whose needles is there, or that
    have no needles, run, each only the alternatives one of whose own needles is there (or that have none):
    what `FoldedPattern.search` decides with `in`, read from the one scan."""

    def __init__(self, patterns: dict[str, FoldedPattern]) -> None:
        self.patterns = patterns
        self._order = list(patterns.items())
        self._unguarded = frozenset(i for i, (_name, pattern) in enumerate(self._order) if not pattern.needles)
        owners: dict[str, set[int]] = {}  # a needle → the patterns (by position) it lets run
        for i, (_name, pattern) in enumerate(self._order):
            for needle in pattern.needles:
                owners.setdefault(needle, set()).add(i)
            for _whole, _rest, needles in pattern._alternatives:
                for needle in needles:
                    owners.setdefault(needle, set())  # an alternative's needle lets no pattern run by itself
        self._automaton = ahocorasick.Automaton()
        for needle, positions in owners.items():
            self._automaton.add_word(needle, (needle, frozenset(positions)))
        if owners:  # an automaton without words cannot be made, and would find nothing
            self._automaton.make_automaton()

    def found(self, folded: str) -> list[str]:
        """The names of the patterns found in the `fold_case`d text, in the order they were given."""
        present: set[str] = set()
        positions = set(self._unguarded)
        if self._automaton.kind == ahocorasick.AHOCORASICK:
            for _end, (needle, owners) in self._automaton.iter(folded):
                present.add(needle)
                positions |= owners
        order = self._order
        return [order[i][0] for i in sorted(positions) if order[i][1].matches(folded, present)]


def _branches(pattern: str) -> list[str]:
    """The pattern's top-level alternatives: 'a|b(c|d)' → ['a', 'b(c|d)'] (the whole pattern, unsplit, if a
    piece would not compile on its own)."""
    branches, depth, start, in_class, i = [], 0, 0, False, 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            i += 1 + (pattern[i + 1:i + 2] == "^")
            i += pattern[i:i + 1] == "]"  # a ']' first in a class is a literal
            continue
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            branches.append(pattern[start:i])
            start = i + 1
        i += 1
    branches.append(pattern[start:])
    try:  # a split in the wrong place leaves a branch that does not compile (a bracket without its pair)
        for branch in branches:
            re.compile(branch)
    except re.error:
        return [pattern]
    return branches


def _rest_after_boundary(branch: str) -> re.Pattern[str] | None:
    """For an alternative that starts with \\b: the rest of it, compiled; None otherwise, or when the rest
    could match nothing at all (scanning for it would stop at every position)."""
    if not branch.startswith(r"\b"):
        return None
    try:
        rest = re.compile(branch[2:])
    except re.error:  # the \b was quantified ('\b?x'): leave the alternative whole
        return None
    return None if rest.match("") is not None else rest


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

    # The literal runs a match holds here, one of which it must: more than one when an optional literal
    # ("men'?s": "men's" or "mens") lies in the run, which makes a longer needle than breaking the run would.
    runs = {""}
    for op, av in items:
        if op is sre.LITERAL:
            runs = {run + chr(av) for run in runs}
            continue
        optional = _optional_literal(op, av)
        if optional is not None and len(runs) < _MAX_RUNS:
            runs = runs | {run + optional for run in runs}
            continue
        consider(None if "" in runs else frozenset(runs))
        runs = {""}
        if op is sre.SUBPATTERN and not av[1] and not av[2]:  # a group, with no inline flags
            consider(_required(list(av[3])))
        elif op is sre.BRANCH:
            branches = [_required(list(branch)) for branch in av[1]]
            consider(frozenset().union(*branches) if all(branches) else None)  # type: ignore[arg-type]
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT) and av[0] >= 1:
            consider(_required(list(av[2])))
        # Anything else (a class, any character, an anchor, a lookaround) promises no literal.
    consider(None if "" in runs else frozenset(runs))
    return best


_MAX_RUNS = 8  # optional literals a run forks at, at most 3: each doubles its needles


def _optional_literal(op: Any, av: Any) -> str | None:
    """The text of `x?` or `(?:xy)?` (an optional run of literals), else None."""
    if op not in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT) or av[0] != 0 or av[1] != 1:
        return None
    body = list(av[2])
    if len(body) == 1 and body[0][0] is sre.SUBPATTERN and not body[0][1][1] and not body[0][1][2]:
        body = list(body[0][1][3])  # a group with no inline flags
    if not body or any(item_op is not sre.LITERAL for item_op, _ in body):
        return None
    return "".join(chr(code) for _, code in body)
