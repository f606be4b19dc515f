"""Types of `search._pass`, the compiled row loops of a match's radius pass (search/_pass.c says what each does)."""

import numpy as np

CATCHMENT_SHIFT: int
MIN_AGE_SHIFT: int
MAX_AGE_SHIFT: int
SOURCE_SHA256: str  # of the search/_pass.c it was built from (setup.py)

def kept_in_runs(flags: np.ndarray, words: np.ndarray, status_mask: int, status: int, type_bits: int | None,
                 gender_mask: int, refused: int | None, covering: np.ndarray | None, needs_mask: int, needs: int,
                 age: int | None, begins: np.ndarray, ends: np.ndarray, out: np.ndarray, /) -> int: ...
def kept_of(flags: np.ndarray, words: np.ndarray, status_mask: int, status: int, type_bits: int | None,
            gender_mask: int, refused: int | None, covering: np.ndarray | None, needs_mask: int, needs: int,
            age: int | None, rows: np.ndarray, out: np.ndarray, /) -> int: ...
def near(records: np.ndarray, at: np.ndarray, a: float, b: float, c: float, floor: float, sure: float,
         out_at: np.ndarray, out_cosines: np.ndarray, groups: np.ndarray | None, out_in: np.ndarray | None,
         types: np.ndarray | None, by_type: np.ndarray | None, /) -> tuple[int, list[int]]: ...
def reach(cosines: np.ndarray, at: np.ndarray, k: int, margin: float, among: np.ndarray | None, only_among: bool,
          out_at: np.ndarray, out_in: np.ndarray | None, /) -> tuple[int, bool]: ...
def first_k(at: np.ndarray, distances: np.ndarray, id_rank: np.ndarray, k: int, ours: np.ndarray | None,
            margin: float, order: np.ndarray | None, out_rows: np.ndarray, out_distances: np.ndarray, /) -> int: ...
def cell_runs(start: np.ndarray, cells_total: int, nx: int, cells: np.ndarray | None, types: np.ndarray,
              box: tuple[int, int, int, int] | None, begins: np.ndarray, ends: np.ndarray, /) -> tuple[int, int]: ...
def box_runs(start: np.ndarray, cells_total: int, nx: int, cells: np.ndarray | None, types: np.ndarray,
             box: tuple[int, int, int, int], begins: np.ndarray, ends: np.ndarray, /) -> tuple[int, int]: ...
