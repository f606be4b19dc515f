"""The review queue's counts: how many candidates await review per category (type or subtype) and area, which
coverage reads to say "none confirmed yet" rather than "none found" beside them. Below both the coverage
store (`rehabmap.coverage`) and the store's migrations (`rehabmap.maintain.migrations`, which recounts a
store written before subtypes were counted), so that neither imports the other for it."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from geodata.england import ENGLAND
from rehabmap.record_keys import first_of_each
from rehabmap.taxonomy import SUBTYPES, ServiceType

if TYPE_CHECKING:
    from rehabmap.maintain.database import Connection

# Every write of the coverage claims or of these counts moves the store's coverage revision on, so that each
# process's cached answers (`CoverageStore`) follow it.
BUMP_REVISION = ("INSERT INTO coverage_revision VALUES (1, 1) "
                 "ON CONFLICT (id) DO UPDATE SET n = coverage_revision.n + 1")


# The records held for review, as `indexer.sync.publish.held` says: active, prepared, a type proposed but not
# confirmed by its source, and no maintainer's decision yet.
HELD = ("SELECT r.proposed_type, r.proposed_subtype, r.service FROM sync_records r LEFT JOIN sync_review v "
        "ON v.source = r.source AND v.source_id = r.source_id WHERE r.status = 'active' "
        "AND r.type_status <> 'confirmed' AND r.service IS NOT NULL AND r.proposed_type IS NOT NULL "
        "AND (v.state IS NULL OR v.state NOT IN ('accepted', 'rejected')) ORDER BY r.source, r.source_id")


class HeldCandidate(NamedTuple):
    """A record held for review, as the queue's counts need it: the type and subtype a source proposes, the
    areas its point lies in (its record's `areas`), the point (lat, lon), where it has one, and the service it is
    one of (`one_of`: the place, among those read, of the first held record it is one service with, as
    `read_held` finds them: its own place for a service of its own). A service two sources hold counts once in
    each category and area any of its records may be (a hospital both NHS lists hold was "2 candidates"; Field
    House, proposed by one source as an inpatient unit and by another as floating support, is a candidate for
    either)."""

    proposed_type: str
    proposed_subtype: str | None
    areas: Mapping[str, Any]
    point: tuple[float, float] | None
    one_of: int

    @classmethod
    def of(cls, proposed_type: str, proposed_subtype: str | None, service: Mapping[str, Any],
           one_of: int) -> HeldCandidate:
        """From a held record's prepared service (`HELD`'s rows, with the service's JSON read)."""
        lat, lon = service.get("lat"), service.get("lon")
        return cls(proposed_type, proposed_subtype, service.get("areas") or {},
                   None if lat is None or lon is None else (float(lat), float(lon)), one_of)


def read_held(conn: Connection) -> list[HeldCandidate]:
    """The review queue's held candidates, read from the store as `HELD` finds them, each with the service it is
    one of (`rehabmap.record_keys.first_of_each`): held records that share a key records are merged by are one
    service once accepted, and count once (`pending_counts`, `held_points`)."""
    rows = [(t, s, json.loads(service) or {}) for t, s, service in conn.execute(HELD).fetchall()]
    first = first_of_each([service for _, _, service in rows])
    return [HeldCandidate.of(*row, first[at]) for at, row in enumerate(rows)]


class HeldPoints(NamedTuple):
    """The held candidates of one category that have a point, as a search's radius is checked against them:
    their latitudes, in order, and each one's longitude, ICB (where the counts hold it) and service
    (`HeldCandidate.one_of`: the same number in every category it may be, so that kinds asked together count it
    once). In order of latitude so that a search reads only those in its band of latitude (`bisect`): plain floats,
    not arrays, as a request checks a few (numpy's ufuncs on one point were ~108k instructions a request;
    bench/RESULTS.md)."""

    lats: tuple[float, ...]
    lons: tuple[float, ...]
    icbs: tuple[str, ...]
    services: tuple[int, ...]


def held_points(held: Iterable[HeldCandidate]) -> dict[str, HeldPoints]:
    """Per category (as `pending_counts` counts them), the held candidates' points. A search with a radius
    says "none confirmed yet" beside one within it, whichever area it lies in: Field House, 14.5 km from
    Mansfield in another ICB, left a 40 km search from there saying "None found" (`HomeCoverage`)."""
    found: dict[str, dict[int, tuple[float, float, str, int]]] = {}
    for candidate in held:
        if candidate.point is not None:
            icb = candidate.areas.get("icb_code") or ""
            for category in _may_be(candidate.proposed_type, candidate.proposed_subtype):
                found.setdefault(category, {}).setdefault(candidate.one_of, (*candidate.point, icb, candidate.one_of))
    return {category: HeldPoints(*zip(*sorted(rows.values()))) for category, rows in found.items()}


def pending_counts(held: Iterable[HeldCandidate]) -> Counter[tuple[str, str]]:
    """The candidates awaiting review per (category, area code): each counts in every category (type or
    subtype) it may turn out to be and every area its point lies in (ICB, sub-ICB, local authority, region,
    England). An upper-tier authority's count is its districts' (`CoverageMap._pending_in`), so it has none
    here. Each service once in each (`HeldCandidate.one_of`). The one count for a sync and a review decision
    (`indexer.sync.publish.record_pending`) and for the migration that recounts a store written before subtypes
    were counted."""
    counted: set[tuple[int, str, str]] = set()
    for candidate in held:
        areas = candidate.areas
        codes = {areas.get(k) for k in ("icb_code", "sub_icb_code", "lad_code", "region_code")} | {ENGLAND}
        counted.update((candidate.one_of, category, code)
                       for category in _may_be(candidate.proposed_type, candidate.proposed_subtype)
                       for code in codes if code)
    return Counter((category, code) for _, category, code in counted)


def _may_be(proposed_type: str, proposed_subtype: str | None) -> tuple[str, ...]:
    """The categories a held record may turn out to be. A held inpatient unit's level is the maintainer's to
    say (`review accept --level`): a source proposes level 1 where nothing states one (a CQC mental health
    hospital, a hospital list's row), so the candidate counts at both levels, and a level 2 search beside it
    says "none confirmed yet" rather than "none found". A subtype counts only the candidates proposed as it,
    and those whose subtype nothing states (any of the type's subtypes, until a maintainer says): a held
    floating support service says nothing of 24-hour care homes."""
    service_type = ServiceType(proposed_type)
    kinds = ((ServiceType.inpatient_rehab_level1, ServiceType.inpatient_rehab_level2) if service_type.is_inpatient
             else (service_type,))
    return tuple(category for kind in kinds for category in (
        kind.value, *(f"{kind.value}:{s}" for s in SUBTYPES.get(kind, ()) if proposed_subtype in (None, s))))


def write_pending(conn: Connection, counts: Mapping[tuple[str, str], int]) -> None:
    """Replace the queue's counts in the transaction `conn` is in (`CoverageStore.replace_pending`, and a
    migration, which holds its own)."""
    conn.execute("DELETE FROM coverage_pending")
    conn.executemany("INSERT INTO coverage_pending VALUES (?, ?, ?)",
                     [(t, a, n) for (t, a), n in sorted(counts.items()) if n])
    conn.execute(BUMP_REVISION)
