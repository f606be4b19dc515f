"""Killing a rebuild half way leaves the previous embedded index served intact."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

from rehabmap.index.base import ServiceQuery
from search.embedded import EmbeddedIndex, EmbeddedWriter
from bench.synthetic import load_small_areas, make_services

TODAY = date(2026, 11, 23)
ROOT = Path(__file__).resolve().parents[2]

# A rebuild in its own process that announces when it is half way, then stalls until it is killed, however
# long the test takes (after a pause of fixed length, a slow test's rebuild went on and finished).
REBUILD = textwrap.dedent("""
    import sys
    from datetime import date
    from pathlib import Path
    from search.embedded import EmbeddedWriter
    from bench.synthetic import load_small_areas, make_services

    services = make_services(load_small_areas(Path(sys.argv[2])), 400, seed=2, today=date(2026, 11, 23))

    def rows():
        for i, service in enumerate(services):
            if i == 200:
                print("halfway", flush=True)
                sys.stdin.read()  # ends only if the test went away without killing this process: then go too
                sys.exit("the test went away")
            yield service

    EmbeddedWriter(Path(sys.argv[1])).replace_all(rows())
""")


def test_killed_rebuild_keeps_old_index(tmp_path, data_dir):
    path = tmp_path / "index.sqlite"
    old = make_services(load_small_areas(data_dir), 50, seed=1, today=TODAY)
    EmbeddedWriter(path).replace_all(old)
    reader = EmbeddedIndex(path)
    assert reader.info().count == 50

    proc = subprocess.Popen([sys.executable, "-c", REBUILD, str(path), str(data_dir)], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout.readline().strip() == "halfway"
        leftovers = list(tmp_path.glob("index.sqlite.building-*"))
        assert leftovers, "the rebuild should be writing a separate file"
        # While the rebuild runs, and after it is killed, the old index answers in full.
        assert reader.info().count == 50
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    assert reader.info().count == 50
    fresh = EmbeddedIndex(path)
    assert fresh.info().count == 50
    assert fresh.get(old[0].id) == old[0]
    assert len(fresh.nearest(old[0].lat, old[0].lon, ServiceQuery(include_inactive=True), k=5)) == 5

    # The next rebuild completes, clears the dead build's file, and readers switch to it.
    new = make_services(load_small_areas(data_dir), 80, seed=3, today=TODAY)
    EmbeddedWriter(path).replace_all(new)
    assert not list(tmp_path.glob("index.sqlite.building-*"))
    assert reader.info().count == 80
    assert reader.get(new[0].id) == new[0]
