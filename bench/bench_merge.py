"""How merging grows with the records of one kind: CPU seconds to merge and note each shape at 1x, 2x and 4x.

Shapes (`indexer.merge.Merging`, `merge_duplicates`; the corpus's services, each from one file):

* `ids given again`: k ids each given twice, every row sharing one CQC location id, so one kind holds 2k rows
  of k ids: each id's second row finds its first among the kind's (`_first_of`), and each is noted against its
  id's rows' record (`make_notes`, `_of_id`). Quadratic before session 49's review (k=4000: 5.3 s).
* `synced and copy`: k records read from the sync's store, each with a file's copy of it (k kinds of two).
* `bridged pairs`: k pairs of records read from the sync's store, a CQC location and a council's home at its
  postcode under another name, each pair bridged by a file's row giving the one's CQC location id and the other's
  name (k kinds `finish` takes apart, `_apart`), the CQC record with a file's copy. Quadratic before session 50's
  review (k=2000/4000/8000 finish alone: 0.77/2.19/6.73 s): each kind merged again was handed every id given twice.
* `bridged in a line`: k records read from the sync's store at one postcode, each bridged to the next by a file's
  row giving its CQC location id and the next's name (one kind of k, k chains). Quadratic before (k=1000/2000/4000:
  0.36/0.94/3.13 s): each chain was tested against every synced record's keys.
* `one chain`: k records read from the sync's store, and a provider's list giving each one's CQC location id in a
  row under its head office's name and postcode (one chain sharing keys with k of them, `_apart`). Quadratic before
  session 52's review (k=1000/2000/4000: 0.45/1.95/8.15 s): the warning's rows were gathered per record, each over
  every row, and the warning named them all (685 KB at k=4000).

Each row prints the seconds and their ratio to the row before it: near 2 where a doubled size costs double, with
the cyclic garbage collector paused, as a build merges (`indexer.pipeline.collector_paused`), and running, as the
bench measured before session 51. Running, its full collections walk every record kept so far, more of them and
each longer as the records grow: that, not the merge, made `bridged in a line` ×2.15–2.2 a doubling (k=8000: 4 full
collections, 0.73 s of 2.9).

    python -m bench.bench_merge [--sizes 1000,2000,4000]
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from contextlib import nullcontext

from bench import common
from bench.common import fmt, log, table
from indexer.merge import Precedence, merge_duplicates
from indexer.pipeline import collector_paused
from rehabmap.record import Service


def ids_given_again(services: list[Service]) -> tuple[list[Service], set[tuple[str, str | None]]]:
    """Each service twice, its second row with another phone, all under one CQC location id (and of the first's
    type, as one service's records are)."""
    rows = []
    kind = {"service_type": services[0].service_type, "subtype": services[0].subtype}
    for at, service in enumerate(services):
        first = service.model_copy(update={**kind, "cqc_location_id": "1-112816741", "provenance": [
            service.provenance[0].model_copy(update={"file": "rows.csv", "line": 2 * at + 2})]})
        rows += [first, first.model_copy(update={"phone": "0161 000 0000", "provenance": [
            first.provenance[0].model_copy(update={"line": 2 * at + 3})]})]
    return rows, set()


def synced_and_copy(services: list[Service]) -> tuple[list[Service], set[tuple[str, str | None]]]:
    """Each service as a sync stores it, then a file's copy of it."""
    synced = [s.model_copy(update={"provenance": [s.provenance[0].model_copy(
        update={"file": f"https://example.org/{s.id}", "line": 1})]}) for s in services]
    copies = [s.model_copy(update={"provenance": [s.provenance[0].model_copy(
        update={"file": "copy.csv", "line": at + 2})]}) for at, s in enumerate(services)]
    return [*synced, *copies], {(s.id, s.provenance[0].file) for s in synced}


def _from(service: Service, file: str, line: int, **fields: object) -> Service:
    """`service` read from `file` at `line`, `fields` changed."""
    return service.model_copy(update={**fields, "provenance": [
        service.provenance[0].model_copy(update={"file": file, "line": line})]})


def bridged_pairs(services: list[Service]) -> tuple[list[Service], set[tuple[str, str | None]]]:
    """Each service as CQC's synced record and a council's synced record at its postcode under another name, a file's
    copy of the CQC record, and a file's row giving its CQC location id under the council's name."""
    synced, copies, rows = [], [], []
    for at, service in enumerate(services):
        location, postcode, council = f"1-{at:09d}", f"ZZ{at} 1AA", f"Council home {at}"
        cqc = _from(service, f"https://cqc.example/{at}", 1, id=f"cqc:{location}", source="cqc", status="active",
                    cqc_location_id=location, name=f"Home {at}", postcode=postcode)
        home = _from(service, f"https://homes.example/{at}", 1, id=f"homes:{at}", source="homes",
                     cqc_location_id=None, name=council, postcode=postcode)
        synced += [cqc, home]
        copies.append(_from(cqc, "cqc.csv", at + 2))
        rows.append(_from(home, "file.csv", at + 2, id=f"file:{at}", source="file", cqc_location_id=location))
    return [*synced, *copies, *rows], {(s.id, s.provenance[0].file) for s in synced}


def bridged_in_a_line(services: list[Service]) -> tuple[list[Service], set[tuple[str, str | None]]]:
    """Each service as CQC's synced record at one postcode, and a file's row giving its CQC location id under the
    next one's name."""
    synced = [_from(service, f"https://cqc.example/{at}", 1, id=f"cqc:1-{at:09d}", source="cqc", status="active",
                    cqc_location_id=f"1-{at:09d}", name=f"Home {at}", postcode="ZZ0 1AA")
              for at, service in enumerate(services)]
    rows = [_from(record, "file.csv", at + 2, id=f"file:{at}", source="file", name=f"Home {at + 1}")
            for at, record in enumerate(synced)]
    return [*synced, *rows], {(s.id, s.provenance[0].file) for s in synced}


def one_chain(services: list[Service]) -> tuple[list[Service], set[tuple[str, str | None]]]:
    """Each service as CQC's synced record, and a provider's list giving each one's CQC location id in a row under
    its head office's name and postcode (one chain of k rows sharing keys with k synced records), all of the first's
    type, as one service's records are."""
    kind = {"service_type": services[0].service_type, "subtype": services[0].subtype}
    synced = [_from(service, f"https://cqc.example/{at}", 1, id=f"cqc:1-{at:09d}", source="cqc", status="active",
                    cqc_location_id=f"1-{at:09d}", name=f"Home {at}", postcode=f"ZZ{at} 1AA", **kind)
              for at, service in enumerate(services)]
    rows = [_from(record, "provider.csv", at + 2, id=f"provider:{at}", source="provider", name="Head Office",
                  postcode="ZZ0 9ZZ") for at, record in enumerate(synced)]
    return [*synced, *rows], {(s.id, s.provenance[0].file) for s in synced}


SHAPES: dict[str, Callable[[list[Service]], tuple[list[Service], set[tuple[str, str | None]]]]] = {
    "ids given again": ids_given_again, "synced and copy": synced_and_copy, "bridged pairs": bridged_pairs,
    "bridged in a line": bridged_in_a_line, "one chain": one_chain}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,2000,4000")
    sizes = [int(size) for size in parser.parse_args().sizes.split(",")]
    services = common.corpus(max(sizes))
    rows = []
    for name, shape in SHAPES.items():
        before: dict[bool, float] = {}
        for size in sizes:
            records, synced = shape(services[:size])
            log(f"{name}: {len(records)} records")
            row: list[object] = [name, size, len(records)]
            for paused in (True, False):
                gc.collect()
                start = time.process_time()
                with collector_paused() if paused else nullcontext():
                    merge_duplicates(records, Precedence(), synced)
                seconds = time.process_time() - start
                row += [fmt(seconds), fmt(seconds / before[paused], 2) if paused in before else "-"]
                before[paused] = seconds
            rows.append(row)
    print(table("Merging and noting, CPU seconds", ["shape", "k", "records", "s, collector paused", "× row before",
                                                      "s, collector running", "× row before"], rows))


if __name__ == "__main__":
    main()
