"""What a synced record shows: the one rule for the runner, the review queue and a rebuild alike.

A record is shown (in search, browse, exports, the ORUK feed) as the type its source confirms, or as the
type a maintainer accepted it as. A record whose type is only inferred, or unknown, is held: not shown at
all until a maintainer decides, so that it is never presented as a type nobody has confirmed. A maintainer's
decision outlives re-syncs, and wins over what the source later says. A retired record that was shown stays
in the index as inactive (out of every search, still there for its id and history).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from indexer.merge import Precedence, merge_duplicates, read_from
from indexer.sync.steps import reached
from indexer.sync.store import ReviewRow, StoredRecord, SyncStore
from rehabmap.coverage import Claim, CoverageStore
from rehabmap.held_words import as_accepted
from rehabmap.index.base import as_service
from rehabmap.record import Service
from rehabmap.record_keys import KeyGroups, key_columns, merge_keys
from rehabmap.review_counts import held_points, pending_counts, read_held

REVIEW_SOURCE = "review"  # field_sources value of a type a maintainer decided
COVERAGE_DUE = "coverage_due:"  # sync_meta: a run's coverage claims, made once its records are live
HELD_POINTS = "held_points_published"  # sync_meta: a digest of the held candidates' points coverage last read


def decided(review: ReviewRow | None) -> bool:
    return review is not None and review.state in ("accepted", "rejected")


def held(record: StoredRecord, review: ReviewRow | None) -> bool:
    """Awaiting a maintainer: an active record whose type no source confirms, with no decision yet."""
    return (record.status == "active" and record.type_status != "confirmed" and record.service is not None
            and not decided(review))


def shown(record: StoredRecord, review: ReviewRow | None) -> dict[str, Any] | None:
    """The record as the live index should hold it (Service JSON), or None when it should not be there."""
    if record.service is None:
        return None
    if decided(review):
        assert review is not None
        if review.state == "rejected":
            return None
        service = with_type(record.service, review.decided_type, review.decided_subtype)
    elif record.type_status == "confirmed":
        service = dict(record.service)
    else:
        return None
    if record.status == "retired":
        service["status"] = "inactive"
    return service


def shown_merged(store: SyncStore, changed: Sequence[StoredRecord], precedence: Precedence
                 ) -> dict[str, dict[str, Any] | None]:
    """Per service id, what the live index should hold for the changed records and for every shown record they
    share a merge key with (`indexer.merge.merge_keys`: the same CQC location id, or the same normalised name and
    postcode): one record for a service two sources give, merged as a rebuild merges them (`rebuild.synced_rows`
    reads the records in this order), each field's source and every source's provenance kept. None: not to be
    shown under that id (no longer shown, or merged into another). Before, a decision or a sync wrote each record
    on its own, so a hospital both NHS lists give, accepted from each, was listed twice until the next rebuild.
    The records a changed one was merged with when last written (found by the keys it had then,
    `SyncStore.published_keys`) are written again too: before, a merged record that moved left its partner made
    inactive, or carrying its fields, until the next rebuild.
    Reads the changed records' kin only (`_kin`), so a write costs what it changes, whatever the store holds.
    `precedence`: which source's value a merged record shows, as a rebuild reads it (`source_precedence`)."""
    groups, asked, read = _kin(store, [r.service or {"id": r.service_id} for r in changed],
                               store.published_keys(changed))
    out = {r.service_id: read[r.service_id] for r in changed}  # each changed record is among those read, by its id
    done: set[int] = set()
    for record in asked:
        members = sorted(groups.of(merge_keys(record)) - done)
        done.update(members)
        if len(members) == 1:  # a record of its own (perhaps one another was merged into before, now shown alone)
            out[groups.records[members[0]]["id"]] = groups.records[members[0]]
        elif members:  # each read from the store: merged as a rebuild merges synced records (`Merging`'s `synced`)
            services = [Service.stored(groups.records[at]) for at in members]
            kept, _ = merge_duplicates(services, precedence, read_from(services))
            out |= {groups.records[at]["id"]: None for at in members}
            out |= {service.id: as_service(service).model_dump(mode="json") for service in kept}
    return out


def merged_into(store: SyncStore | None, service_id: str) -> str | None:
    """The id of the record a synced record is shown merged into, as the live index holds it (`shown_merged`: the
    kept record of those it shares a key with, whose provenance lists it), or None: shown under its own id, not
    shown, no synced record, or no store. A link to a merged-away id (`nhs-hospitals-2018:NTN03`, merged into
    `nhs-hospitals-2015:NTN03`) is sent on to it: before, it answered "no service" after a rebuild, and the record
    as inactive, as if retired, after a live write. Found on the store's indexes, as a live write finds it.
    Which source's values the record shows is not asked (the store's order alone, `Precedence()`), as the id kept
    is the first record's in the store's order whichever it is: so a link is sent on while the mappings'
    `supersedes` cannot be read (`PrecedenceInvalid`), which only a write refuses. Before, every such link read
    the mappings, and one put wrong answered the merged-away record as inactive, as if retired. Nor are the
    records merged (`indexer.merge.Merging`: before, a record sharing a key only with a superseding record's name
    and postcode was merged in by the live write and not here, and its link answered it as inactive)."""
    records = store.records(service_ids=[service_id]) if store is not None else []
    if store is None or not records:
        return None
    written = shown_merged(store, records, Precedence())
    if written.get(service_id) is not None:
        return None
    return next((kept for kept, shown_as in written.items() if shown_as is not None and any(
        (origin.get("source"), str(origin.get("source_id"))) == records[0].key
        for origin in shown_as.get("provenance") or ())), None)


def _kin(store: SyncStore, changed: list[Mapping[str, Any]], published: set[tuple[str, str]]
         ) -> tuple[KeyGroups, list[Mapping[str, Any]], dict[str, dict[str, Any] | None]]:
    """The shown records that share a merge key with one of the changed records (as JSON), or with one of those,
    in turn, in the store's order (active ones: an inactive one is merged by its id alone, `merge_keys`): those with
    a changed record's id, CQC location id or postcode (`SyncStore.sharing_keys`, on indexes), asked again with
    those of each found one that shares a key, until no new one comes. Every record that shares a key with one found
    is then among those read, so the records merged are those a read of every record finds (which took 2 s of CPU
    at 20k records, under the index lock). `published`: the keys the changed records had when last written; the
    shown records that have one of them (those a changed record may have been merged with) are asked about as the
    changed ones are, and returned with them, to be written again. Also each record read, as shown (None: not),
    by its service id: the changed records among them, read once with their reviews."""
    known = {column for record in changed for column in _key_columns(record)} | published
    while True:
        records = store.sharing_keys(known)
        reviews = {r.key: r for r in store.reviews(keys=[r.key for r in records])}
        each = [(r.service_id, shown(r, reviews.get(r.key))) for r in records]
        groups = KeyGroups([s for _, s in each if s is not None and s.get("status") != "inactive"])
        roots = changed + [record for record in groups.records if _key_columns(record) & published]
        found = [groups.records[at] for at in set().union(*(groups.of(merge_keys(r)) for r in roots))]
        new = [record for record in found if not _key_columns(record) <= known]
        if not new:
            return groups, roots, dict(each)
        known.update(column for record in new for column in _key_columns(record))


def _key_columns(record: Mapping[str, Any]) -> set[tuple[str, str]]:
    """A record's (as JSON) values of the store's columns its merge keys are found by: its id (the service id),
    its CQC location id and its postcode (`SyncStore.sharing_keys`)."""
    cqc, postcode = key_columns(record)
    return {("id", record["id"])} | {(name, value) for name, value in (("cqc", cqc), ("postcode", postcode))
                                    if value is not None}


def with_type(service: dict[str, Any], service_type: str | None, subtype: str | None) -> dict[str, Any]:
    """The record as the given type and subtype, which a maintainer decided (so `field_sources` says so, and its
    description, where its list's mapping said a maintainer decides: `rehabmap.held_words`)."""
    out = dict(service)
    out["service_type"], out["subtype"] = service_type, subtype
    if isinstance(out.get("description"), str):
        out["description"] = as_accepted(out["description"])
    out["field_sources"] = {**out.get("field_sources", {}), "service_type": REVIEW_SOURCE,
                            "subtype": REVIEW_SOURCE}
    return out


def record_pending(store: SyncStore) -> None:
    """Tell coverage where candidates await review (`rehabmap.review_counts.pending_counts`): where they are,
    "none found" is not yet the whole truth. Each service counts once, as the merge lists it once shown
    (`rehabmap.review_counts.read_held`): before, a hospital both NHS lists give (Priory Hospital Hemel Hempstead)
    was "2 candidates". Written only when they changed, since every server start asks (`LiveIndex.converge`) and a
    write makes every host read the claims again."""
    with store.database.connect() as conn:
        held_now = read_held(conn)
    coverage, counts = CoverageStore(store.database), {k: n for k, n in pending_counts(held_now).items() if n}
    # A held point that moved within the same areas changes no count, but a search's radius reads it: the write
    # moves the coverage revision on, which a PostgreSQL reader's cache follows (`CoverageStore.snapshot`). The
    # points are read from the records themselves, so what was last published is remembered here to compare.
    points = hashlib.sha256(repr(sorted(held_points(held_now).items())).encode()).hexdigest()
    if coverage.snapshot().pending != counts or store.meta(HELD_POINTS) != points:
        coverage.replace_pending(counts)
        store.set_meta(HELD_POINTS, points)


def coverage_due(basis: str, as_of: str, claims: Mapping[str, Collection[str]] | None) -> dict[str, str]:
    """The meta entry a run commits with its records (`SyncStore.apply_run`): the claims a complete listing
    makes (per category, its areas), or, with `claims` None, that the source's claims hold as of `as_of`.
    They are made only once the live index holds the run's records (`publish_coverage`): made before, a
    search between the two would read "none found, and the source covers this area" while the index still
    lacked what the source had just listed."""
    listed = None if claims is None else [[category, area] for category, areas in sorted(claims.items())
                                          for area in sorted(areas)]
    return {COVERAGE_DUE + basis: json.dumps({"as_of": as_of, "claims": listed}, sort_keys=True)}


def publish_coverage(store: SyncStore) -> None:
    """Make the coverage claims that applied runs left due (see `coverage_due`). Making them twice is the
    same as once, so a crash between the claims and forgetting them only repeats them."""
    coverage, due_now = CoverageStore(store.database), store.metas(COVERAGE_DUE)
    if due_now:
        reached("live")
    for key, value in due_now.items():
        basis, due = key[len(COVERAGE_DUE):], json.loads(value)
        if due["claims"] is None:
            coverage.touch(basis, due["as_of"])
        else:
            coverage.replace(basis, [Claim(category, area, basis, due["as_of"]) for category, area in due["claims"]])
        store.delete_meta(key)
