"""What a synced record shows: the one rule for the runner, the review queue and a rebuild alike.

A record is shown (in search, browse, exports, the ORUK feed) as the type its source confirms, or as the
type a maintainer accepted it as. A record whose type is only inferred, or unknown, is held: not shown at
all until a maintainer decides, so that it is never presented as a type nobody has confirmed. A maintainer's
decision outlives re-syncs, and wins over what the source later says. A retired record that was shown stays
in the index as inactive (out of every search, still there for its id and history).
"""

from __future__ import annotations

from typing import Any

from indexer.sync.store import ReviewRow, StoredRecord, SyncStore
from rehabmap.coverage import CoverageStore
from rehabmap.review_counts import HeldCandidate, pending_counts

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
    """Tell coverage where candidates await review (`rehabmap.review_counts.pending_counts`): where they are,
    "none found" is not yet the whole truth."""
    reviews = {r.key: r for r in store.reviews()}
    held_now = (HeldCandidate(record.proposed_type, record.proposed_subtype, record.service.get("areas") or {})
                for record in store.records()
                if record.proposed_type and record.service and held(record, reviews.get(record.key)))
    CoverageStore(store.database).replace_pending(pending_counts(held_now))
