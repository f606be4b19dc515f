"""Positions of runs of an array, in one vectorised step: the rows of grid cells in the grid's order
(`search.columns`), and the classes of tally blocks (`search.tallies`)."""

from __future__ import annotations

import numpy as np


def positions(begins: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Positions begins[j] .. ends[j]-1 of every run j, ascending within each run, runs in the order given."""
    lengths = ends - begins
    after = np.cumsum(lengths)  # where each run ends in the output
    total = int(after[-1]) if len(after) else 0
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    out = np.repeat(begins - (after - lengths), lengths)
    out += np.arange(total)
    return out
