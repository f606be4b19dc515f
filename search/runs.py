"""Positions of runs of an array, in one vectorised step: the classes of tally blocks (`search.tallies`). A box's
rows in the grid's order are no longer laid out as positions: `search.columns` hands their runs to the compiled
filters (`search._pass.kept_in_runs`) as they are."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Runs(NamedTuple):
    """Runs of positions of a grid's order: each run's first position, the one after its last (int64 arrays), and
    how many positions they hold (the room the compiled filters write their survivors into: known where the runs
    are made, so no step counts it again)."""

    begins: np.ndarray
    ends: np.ndarray
    total: int


def positions(begins: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Positions begins[j] .. ends[j]-1 of every run j, ascending within each run, runs in the order given."""
    # The arrays' own methods rather than `np.cumsum` and `np.repeat`, which reach them through Python-level
    # wrappers (dispatch, then `_wrapfunc`): this runs for every box whose blocks a match counts from the tallies.
    lengths = ends - begins
    after = lengths.cumsum()  # where each run ends in the output
    total = int(after[-1]) if len(after) else 0
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    out = (ends - after).repeat(lengths)  # begins - (after - lengths): each run's shift from the output's places
    out += np.arange(total)
    return out
