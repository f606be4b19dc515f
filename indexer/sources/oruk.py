"""Open Referral UK / HSDS 3.0 JSON feeds → candidate rows.

The mapping itself lives in `rehabmap.oruk` (shared with the API's export); this module walks a feed —
one service, a list, or an ORUK `Page` with `contents` — and turns each item into a `Candidate` or a
`Rejection` with its item number.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from indexer.rows import Candidate, Held, Origin, Rejection
from indexer.sources.common import UNSTATED_LEVEL, label_reading, provider_type_from_name, unstated_level
from rehabmap.errors import shorten
from rehabmap.oruk import oruk_to_fields
from rehabmap.record import FileEdition
from rehabmap.taxonomy import ServiceType

DEFAULT_SOURCE = "oruk"
# Fields only a service has: a name alone could be a taxonomy term or an organisation.
_SERVICE_KEYS = frozenset({"status", "service_at_locations", "service_areas", "organization", "organization_id",
                           "attributes", "url", "email", "application_process"})


def is_oruk(data: Any) -> bool:
    """One service, a list of services, or a `Page` of them. A page or list counts when any item looks
    like a service, so a feed with a few broken items still imports (and reports them)."""
    if isinstance(data, dict) and "contents" in data:
        data = data["contents"]
        if data == []:
            return True
    items = data if isinstance(data, list) else [data]
    return any(_looks_like_service(item) for item in items)


def _looks_like_service(item: Any) -> bool:
    return isinstance(item, dict) and "name" in item and bool(_SERVICE_KEYS & item.keys())


def read_oruk(data: Any, file: str, source: str | None = None) -> Iterator[Candidate | Held | Rejection]:
    items = data["contents"] if isinstance(data, dict) and "contents" in data else data
    for number, item in enumerate(items if isinstance(items, list) else [items], start=1):
        yield _candidate(item, file, number, source)


def _candidate(item: Any, file: str, number: int, source: str | None) -> Candidate | Held | Rejection:
    origin = Origin(source or DEFAULT_SOURCE, file, number)
    if not isinstance(item, dict):
        return Rejection(origin, f"item is {type(item).__name__}, not an ORUK service object")
    origin = Origin(origin.source, file, number, source_id=item.get("id"))
    left_out: list[str] = []
    try:
        fields, label_text = oruk_to_fields(item, left_out)
        provenance = fields.pop("provenance", None) or [{}]
        fetched_at, edition = provenance[0].get("fetched_at"), provenance[0].get("edition")
        # The entry is the record's own, as the site that published it had it: a dated file's listing stays the
        # file's (its edition). Its `relayed_by`, where it has one, is not read: the operator's import of a saved
        # file is no feed this home syncs, and a relay's date is no confirmation of anything (docs/adr/0018).
        origin = Origin(
            # rehabmap's own exports say where each record came from, unless the caller names the source.
            source=source or provenance[0].get("source") or DEFAULT_SOURCE,
            file=file, line=number,
            source_id=provenance[0].get("source_id") or item.get("id"),
            licence=provenance[0].get("licence"),
            fetched_at=datetime.fromisoformat(fetched_at) if fetched_at else None,
            edition=FileEdition.model_validate(edition) if edition else None,
        )
    except (ValueError, TypeError) as exc:
        return Rejection(origin, f"cannot read the service: {shorten(exc, 300)}")
    except AttributeError:
        return Rejection(origin, "malformed ORUK service: an object field holds something else (text or a list)")
    if not fields.get("name"):
        return Rejection(origin, "service has no name")
    # A foreign feed states no provider type, but names the provider: an NHS trust's or a council's service is
    # then no voluntary one, whatever its words read as (the pipeline's rule, which needs the provider type).
    if not fields.get("provider_type") and (provider := provider_type_from_name(fields.get("organisation"))):
        fields["provider_type"] = provider
    if not origin.source_id and "id" not in fields:
        return Rejection(origin, f"service '{shorten(fields['name'])}' has no id")
    # A part left out is said with the feed's id for the service, which a publisher looks it up by
    named = item.get("id") or fields.get("id") or origin.source_id
    warnings = [f"service {shorten(named)}: {said}" for said in left_out]
    if len(item.get("service_at_locations") or []) > 1:
        warnings.append(f"service has {len(item['service_at_locations'])} locations; only the first is indexed")
    candidate = Candidate(fields, origin, label_text, warnings)
    # A feed that states no rehabmap type, whose words name an inpatient unit but not its level: level 1 is only the
    # classifier's default, held for a maintainer to say (as `rehabmap sync oruk` and a hospital list hold it).
    # Before, "Pine Rehabilitation Unit" was indexed and shown as a level 1 unit, a guess given as fact.
    if not fields.get("service_type") and unstated_level(label_reading(fields, label_text)):
        fields["service_type"] = ServiceType.inpatient_rehab_level1.value
        return Held(candidate, "name", shorten(label_text), UNSTATED_LEVEL)
    return candidate
