"""A serving worker's garbage collector (`app.main.create_served_app`): what stays alive past a request, the
record cache above all, is walked by the oldest generation's collection, so a worker sets that walk off a tenth as
often as the interpreter would (bench/RESULTS.md, session 31). A tool's or a test's app leaves it as it was."""

from __future__ import annotations

import gc

from app.main import SERVING_GC_THRESHOLDS, create_app, create_served_app
from rehabmap.config import Settings


def test_a_serving_worker_walks_the_oldest_generation_a_tenth_as_often(api_home, data_dir):
    before = gc.get_threshold()
    settings = Settings(home=api_home, data_dir=data_dir, warm_up=False)
    try:
        create_app(settings)
        assert gc.get_threshold() == before, "an app built by a tool or a test leaves the collector as it was"
        create_served_app(settings)
        assert gc.get_threshold() == SERVING_GC_THRESHOLDS
        young, middle, oldest = before
        assert SERVING_GC_THRESHOLDS == (young, middle, oldest * 10), "only the oldest generation's walks change"
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()  # the served app's index load froze the test process's heap
