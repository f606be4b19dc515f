"""Named steps of a sync run, a review decision and a rebuild, where a crash test stops the process to kill it.

`REHABMAP_TEST_PAUSE_AT=<step>` makes the process that reaches that step print `paused at <step>` on stderr and
wait there until it is killed (SIGKILL: nothing cleans up), so a test can see what is on disk at each step and
what the next start makes of it (README "A sync", "Interrupted runs"). Unset, as in every deployment, a step
costs one look-up of the environment. The steps, in order:

* `fetched`: a run has staged everything it fetched, and applied nothing;
* `applied`: a run's (or a review decision's) changes are committed to the store; the live index and the
  coverage claims have not yet followed;
* `index-written`: the live index holds them, and the store does not yet know it;
* `live`: the live index has followed and the store knows it; the coverage claims have not yet followed;
* `swapped` (a rebuild: `rehabmap index`, a maintainers' upload): the new index is live; the uploaded table, the
  curated tables' coverage claims and the remembered sources have not yet followed (`app.rebuild`).
"""

from __future__ import annotations

import os
import sys
import time

PAUSE_AT = "REHABMAP_TEST_PAUSE_AT"


def reached(step: str) -> None:
    if os.environ.get(PAUSE_AT) == step:
        print(f"paused at {step}", file=sys.stderr, flush=True)
        while True:
            time.sleep(3600)
