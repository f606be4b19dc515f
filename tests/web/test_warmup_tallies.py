"""The warm-up at start leaves the embedded index's tallies (`search.tallies`) built: at 500k services they
cost 0.2-0.3 s of CPU, which the first search with a distance would otherwise pay (issue 18); and the ORUK feed's
language term ids made."""

from __future__ import annotations

from pathlib import Path

from app.warmup import warm_up
from rehabmap.oruk import language_ids
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


def test_the_warm_up_leaves_the_oruk_language_term_ids_made(web_home: Path, data_dir: Path):
    """The 18,252 ids of the ORUK feed's language need terms (`rehabmap.oruk.language_ids`) were made on a worker's
    first GET /oruk/taxonomy_terms/{id} or `taxonomy_term_id` filter of one (96-286 ms before session 52's second
    half); the warm-up makes them now."""
    state = make_app(web_home, data_dir, warm_up=False).state.rehabmap
    language_ids.cache_clear()
    warm_up(state)
    assert language_ids.cache_info().currsize == 1
