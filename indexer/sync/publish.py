"""What a synced record shows: the one rule for the runner, the review queue and a rebuild alike.

A record is shown (in search, browse, exports, the ORUK feed) as the type its source confirms, or as the
type a maintainer accepted it as. A record whose type is only inferred, or unknown, is held: not shown at
all until a maintainer decides, so that it is never presented as a type nobody has confirmed. A maintainer's
decision outlives re-syncs, and wins over what the source later says. A retired record that was shown stays
in the index as inactive (out of every search, still there for its id and history).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from indexer.sync.store import ReviewRow, StoredRecord, SyncStore
from rehabmap.coverage import ENGLAND, CoverageStore
from rehabmap.taxonomy import SUBTYPES, ServiceType

REVIEW_SOURCE = "review"  # field_sources value of a type a maintainer decided


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


def with_type(service: dict[str, Any], service_type: str | None, subtype: str | None) -> dict[str, Any]:
    """The record as the given type and subtype, which a maintainer decided (so `field_sources` says so)."""
    out = dict(service)
    out["service_type"], out["subtype"] = service_type, subtype
    out["field_sources"] = {**out.get("field_sources", {}), "service_type": REVIEW_SOURCE,
                            "subtype": REVIEW_SOURCE}
    return out


def record_pending(store: SyncStore) -> None:
    """Tell coverage where candidates await review, per category (type or subtype) they may be and area (ICB,
    sub-ICB, local authority, region, England): where they are, "none found" is not yet the whole truth. An
    upper-tier authority's count is its districts' (`CoverageMap`), so it needs no code here."""
    reviews = {r.key: r for r in store.reviews()}
    counts: Counter[tuple[str, str]] = Counter()
    for record in store.records():
        if record.proposed_type and record.service and held(record, reviews.get(record.key)):
            areas = record.service.get("areas") or {}
            codes = {areas.get(k) for k in ("icb_code", "sub_icb_code", "lad_code", "region_code")} | {ENGLAND}
            counts.update((category, code) for category in _may_be(record.proposed_type, record.proposed_subtype)
                          for code in codes if code)
    CoverageStore(store.database).replace_pending(counts)


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
