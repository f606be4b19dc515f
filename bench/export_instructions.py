"""Instructions the services exports cost, counted by valgrind: an A/B that a loaded machine cannot blur.

`csv_lines` (GET /services.csv's body; with `--geojson`, `geojson_chunks`, GET /services.geojson's) over the first
ROWS of the bench corpus, each given a phone number of digits alone, as CQC gives them; with `--listed`, as a fully
synced directory's worst case: every record listed by CQC and carrying a CQC care home's 17 field sources, so each
row has its source listing's columns. Run under callgrind with instrumentation off; counting is switched on
(`callgrind_control -i on`) around the export only:

    PYTHONHASHSEED=0 valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/cg.out \\
        python -m bench.export_instructions --rows 10000 --listed          # "I refs" is the count

Run it in two checkouts with the same arguments; `--rows 0` is what is counted besides the export.
"""

from __future__ import annotations

import argparse
import os
import subprocess
from datetime import date

from bench import common

# A CQC care home's field sources, as `rehabmap sync cqc` records them (Dovetail House's).
CQC_FIELD_SOURCES = {
    "address": "cqc:postalAddressLine1..County", "beds": "cqc:numberOfBeds", "county": "cqc:postalAddressCounty",
    "cqc_location_id": "cqc:locationId", "cqc_rating": "cqc:currentRatings.overall.rating",
    "cqc_rating_date": "cqc:currentRatings.overall.reportDate", "lat": "cqc:onspdLatitude",
    "lon": "cqc:onspdLongitude", "max_age": "cqc:specialisms", "min_age": "cqc:specialisms", "name": "cqc:name",
    "needs_met": "cqc:specialisms", "phone": "cqc:mainPhoneNumber", "postcode": "cqc:postalCode",
    "service_type": "cqc:gacServiceTypes+specialisms", "subtype": "cqc:gacServiceTypes",
    "town": "cqc:postalAddressTownCity"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10000)
    parser.add_argument("--listed", action="store_true", help="every record listed by CQC, with its field sources")
    parser.add_argument("--geojson", action="store_true", help="the GeoJSON export instead of the CSV")
    args = parser.parse_args()
    from api.exports import csv_lines, geojson_chunks
    from rehabmap.browse import Listed
    from rehabmap.maintain.freshness import Listings

    extra = {"field_sources": CQC_FIELD_SOURCES} if args.listed else {}
    items = [Listed(s.model_copy(update={"phone": f"0113496{n % 10000:04d}", **extra}))
             for n, s in enumerate(common.corpus(max(args.rows, 50)))]
    listings = Listings(None, {"cqc": "Care Quality Commission (CQC)"}.__getitem__)
    if args.listed:
        listings.listed = {item.service.id: ("cqc", "cqc", date(2026, 12, 1)) for item in items}
    today = date(2026, 12, 2)
    export = geojson_chunks if args.geojson else csv_lines
    list(export(items[:50], today, listings))  # first calls (lazy imports, caches) before counting starts
    subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True, capture_output=True)
    for _ in export(items[:args.rows], today, listings):
        pass
    os._exit(0)  # out at once: the interpreter's shutdown would be counted too


if __name__ == "__main__":
    main()
