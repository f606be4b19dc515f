"""Write bench/queries.csv: the fixed query set every benchmark uses (run once; the file is committed).

200 real English postcodes drawn with a fixed seed from the ONS Postcode Directory (postcodes follow where
people live, so the draw is population-weighted), each with two service types (any of) and one need, the
shape of the targets in the performance issue: "10 nearest within 50 km, 2 types any-of, 1 need".

    python -m bench.make_queries [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import random
from pathlib import Path

from bench.synthetic import NEEDS
from rehabmap.config import Settings

QUERIES = Path(__file__).with_name("queries.csv")
COUNT = 200
# Pairs a clinician or commissioner would ask for together.
TYPE_PAIRS = [
    ("inpatient_rehab_level1", "inpatient_rehab_level2"),
    ("supported_accommodation", "community_rehab_team"),
    ("vcfse", "advocacy"),
    ("ips_employment", "vcfse"),
    ("community_rehab_team", "inpatient_rehab_level1"),
    ("supported_accommodation", "ips_employment"),
    ("advocacy", "inpatient_rehab_level2"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Settings().data_dir)
    args = parser.parse_args()
    path = args.data_dir / "postcodes" / "england_postcodes_latlon_onspd_nov2025.csv.gz"
    with gzip.open(path, "rt", newline="") as handle:
        postcodes = [row["pcds"] for row in csv.DictReader(handle) if row["lat"] and row["lon"]]
    rng = random.Random(2026)
    with QUERIES.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["postcode", "types", "needs"])
        for postcode in rng.sample(postcodes, COUNT):
            writer.writerow([postcode, ";".join(rng.choice(TYPE_PAIRS)), rng.choice(NEEDS)])
    print(f"wrote {COUNT} queries to {QUERIES}")


if __name__ == "__main__":
    main()
