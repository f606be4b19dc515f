"""Words that sentences across the product share: one home, so that a list reads alike on every page."""

from __future__ import annotations

from collections.abc import Sequence


def and_list(words: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c': a list as a sentence says it (no serial comma, as the pages have it)."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"
