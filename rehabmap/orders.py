"""The orders a match's results can come in (`rehabmap.match.RANKING_RULE`, steps 2 and 4). A module without
imports of rehabmap's own, so that `rehabmap match` offers them as its choices without loading the matching code
when `rehabmap --help` lists the commands (tests/test_startup_imports.py)."""

from __future__ import annotations

from typing import Literal, get_args

Order = Literal["nearest", "best_fit"]
ORDERS: tuple[Order, ...] = get_args(Order)
