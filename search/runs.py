"""Positions of runs of an array, in one vectorised step: the rows of grid cells in the grid's order
(`search.columns`), and the classes of tally blocks (`search.tallies`)."""

from __future__ import annotations

import numpy as np


def positions(begins: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Positions begins[j] .. ends[j]-1 of every run j, ascending within each run, runs in the order given."""
    lengths = ends - begins
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(begins - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    return np.arange(total) + offsets
