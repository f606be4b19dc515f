"""Server-side render time of every web page on the sample data (target: under 200 ms each).

Builds the sample site (geodata from the real ONS files in the data folder, the shipped sample directory
indexed into it), then asks each page in process (no network, so the time is the server's: routing,
geography, matching or gap indicators, Jinja2). Each page is asked once cold (first use of its caches,
e.g. the gap indicators for new thresholds) and then --rounds times warm; the table gives cold, median,
p95 and max, in milliseconds.

    python -m bench.bench_pages [--rounds 20] [--home DIR]

Not part of the test suite (a timed unit test would be flaky on a busy machine); exit status 1 when a
warm p95 is over the target.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

from starlette.testclient import TestClient

from geodata.build import build_geodata
from rehabmap.config import Settings
from search.embedded import index_file
from tests.web.site import build_home, make_app

TARGET_MS = 200.0
AIRE = "sample:aire-valley-rehabilitation-unit"
MATCH = {"home": "LS9 7TF", "needs": ["autism", "detained_mha"], "age": "34", "gender": "male",
         "placement": "TR1 3LJ", "limit": "3"}
PAGES: list[tuple[str, str, dict | None]] = [
    ("start", "/", None),
    ("find: categories", "/find", None),
    ("find: results (postcode)", "/find/rehabilitation?where=LS9+7TF", None),
    ("find: results (town)", "/find/housing?where=Manchester&within=50", None),
    ("find: bad postcode", "/find/work?where=ZZ99+9ZZ", None),
    ("service", f"/service/{AIRE}?where=LS9+7TF&cat=rehabilitation", None),
    ("shortlist", f"/shortlist?s={AIRE}&s=sample:harehills-high-dependency-rehabilitation-unit&where=LS9+7TF",
     None),
    ("alternatives: form", "/alternatives", None),
    ("alternatives: results (any type)", "/alternatives", MATCH),
    ("alternatives: results (2 types)", "/alternatives",
     {**MATCH, "types": ["inpatient_rehab_level1", "inpatient_rehab_level2"], "limit": "10"}),
    ("alternatives: bad postcode", "/alternatives", {**MATCH, "home": "XX9 9XX"}),
    ("gaps: start", "/pathway-gaps", None),
    ("gaps: ICB scorecard", "/pathway-gaps/E54000054", None),
    ("gaps: LA scorecard", "/pathway-gaps/E08000035?type=inpatient_rehab_level2", None),
    ("gaps: compare ICBs", "/pathway-gaps/compare", None),
    ("gaps: compare LAs (sorted)", "/pathway-gaps/compare?level=la&sort=indicator&order=desc", None),
    ("about the data", "/about-the-data", None),
]


def sample_site(home: Path | None, tmp: Path, data_dir: Path) -> Path:
    """The sample site's home folder: `home` when it already holds an index, else one built under `tmp`."""
    home = home or tmp / "home"
    if not index_file(home).exists():
        geodata = tmp / "geodata"
        print("building geodata and the sample index …", file=sys.stderr)
        build_geodata(data_dir, geodata, progress=False)
        build_home(home, geodata)
    return home


def timed(client: TestClient, path: str, form: dict | None) -> float:
    started = time.perf_counter()
    response = client.post(path, data=form) if form is not None else client.get(path)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code >= 500:
        raise SystemExit(f"{path}: HTTP {response.status_code}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--home", type=Path, help="reuse a site folder built by an earlier run")
    args = parser.parse_args(argv)
    logging.disable(logging.INFO)
    data_dir = Settings().data_dir
    with tempfile.TemporaryDirectory(prefix="rehabmap-bench-web-") as tmp:
        home = sample_site(args.home, Path(tmp), data_dir)
        with TestClient(make_app(home, data_dir)) as client:
            timed(client, "/find/work?where=LS9+7TF", None)  # open the geography and the index
            print(f"{'page':36} {'cold':>8} {'median':>8} {'p95':>8} {'max':>8}   (ms, {args.rounds} rounds)")
            over = []
            for name, path, form in PAGES:
                cold = timed(client, path, form)
                warm = sorted(timed(client, path, form) for _ in range(args.rounds))
                p95 = warm[min(len(warm) - 1, round(0.95 * (len(warm) - 1)))]
                flag = "  OVER" if p95 > TARGET_MS else ""
                print(f"{name:36} {cold:8.1f} {statistics.median(warm):8.1f} {p95:8.1f} {warm[-1]:8.1f}{flag}")
                if p95 > TARGET_MS:
                    over.append(name)
    if over:
        print(f"over {TARGET_MS:g} ms (warm p95): {', '.join(over)}", file=sys.stderr)
        return 1
    print(f"every page under {TARGET_MS:g} ms (warm p95)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
