"""Fixed-width tables for the terminal: the one layout every command prints, so they paste alike."""

from __future__ import annotations

from collections.abc import Collection, Sequence


def grid(rows: Sequence[Sequence[str]], right: Collection[int] = ()) -> str:
    """The first row is the header, underlined with dashes; columns in `right` are right-aligned."""
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(cell.rjust(w) if c in right else cell.ljust(w)
                         for c, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip()

    return "\n".join([line(rows[0]), "  ".join("-" * w for w in widths)] + [line(r) for r in rows[1:]])
