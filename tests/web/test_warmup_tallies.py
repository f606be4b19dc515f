"""The warm-up at start leaves the embedded index's tallies (`search.tallies`) built: at 500k services they
cost 0.2-0.3 s of CPU, which the first search with a distance would otherwise pay (issue 18)."""

from __future__ import annotations

from pathlib import Path

from app.warmup import warm_up
from search import tallies
from search.embedded import EmbeddedIndex
from tests.web.site import make_app


def test_the_warm_up_leaves_the_tallies_built(web_home: Path, data_dir: Path, monkeypatch):
    # The sample site's boxes are far smaller than a large directory's: count any box from the tallies.
    monkeypatch.setattr(tallies, "MIN_ROWS", 0)
    state = make_app(web_home, data_dir, warm_up=False).state.rehabmap
    index = state.backend
    assert isinstance(index, EmbeddedIndex)
    assert "_tallies" not in index._current().columns.__dict__
    warm_up(state)
    assert "_tallies" in index._current().columns.__dict__
