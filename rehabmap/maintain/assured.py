"""Migration 29: until session 51 `rehabmap sync oruk` read a council feed's `assured_date` (its publisher's check
of its own listing) as `last_verified` (a person's check: the rehabmap team's or the service's), so Bristol's
Autism Advice said "Checked by the rehabmap team or the service: 5 June 2020". The reader reads a person's check
now only from rehabmap's own export's `last_verified` term (`rehabmap.oruk.oruk_to_fields`), never `assured_date`.
The date is in the stored item's content digest: left as it was, the first sync after the upgrade read each such
service as changed by its council, and on Bristol's feed (1 of its 1 service shown) stopped at the share threshold
(exit 3) until `--force`, against the rule that what a release reads differently is migrated, not counted. Each
stored item (and each a stopped run staged) is read here, once, as the new reader gives it, its digest with it; the
record it shows loses the date, and is laid into the live index again (a new `live_revision`) at the next catch-up
(a server's start, a sync's).
"""

from __future__ import annotations

import json
from typing import Any

from rehabmap.maintain.database import NEXT_LIVE_REVISION, Connection, paged
from rehabmap.oruk import oruk_to_fields
from rehabmap.sync_digests import content_digest, stored_json

# Items whose `last_verified` was read from a feed's `assured_date`, in the sync store's JSON (`stored_json`): its
# field source is the feed's source and the key it was read from (`indexer.sync.connectors.oruk._ORUK_KEYS`).
_FROM_ASSURED_DATE = '%:assured_date"%'


def unread_assured_dates(conn: Connection, _policy: object = None) -> None:
    """Every stored item whose `last_verified` the old reader took from a feed's `assured_date`, and the record it
    shows, without it; its content digest anew and a new live revision. And so every item a stopped run staged, so
    that `--force` after the upgrade does not put the date back. Read a page at a time by key."""
    for source, source_id, item_text, raw_text, service_text in paged(
            conn, "SELECT source, source_id, item, raw, service FROM sync_records WHERE raw IS NOT NULL "
            "AND item LIKE ? AND (source, source_id) > (?, ?) ORDER BY source, source_id", (_FROM_ASSURED_DATE,), ""):
        item = json.loads(item_text)
        if (unread := unread_assured_date(item, json.loads(raw_text))) is None:
            continue
        service = None if service_text is None else _unshown(json.loads(service_text), item)
        conn.execute(f"UPDATE sync_records SET item = ?, digest = ?, service = ?, {NEXT_LIVE_REVISION} "
                     "WHERE source = ? AND source_id = ?",
                     (stored_json(unread), content_digest(unread), None if service is None else stored_json(service),
                      source, source_id))
    for source, seq, payload_text in paged(
            conn, "SELECT source, seq, payload FROM sync_staged WHERE kind = 'item' AND payload LIKE ? "
            "AND (source, seq) > (?, ?) ORDER BY source, seq", (_FROM_ASSURED_DATE,), -1):
        payload = json.loads(payload_text)
        if (unread := unread_assured_date(payload.get("item") or {}, payload.get("raw"))) is not None:
            conn.execute("UPDATE sync_staged SET payload = ? WHERE source = ? AND seq = ?",
                         (stored_json({**payload, "item": unread}), source, seq))


def unread_assured_date(item: dict[str, Any], raw: Any) -> dict[str, Any] | None:
    """`item` without the `last_verified` the old reader read from its feed's `assured_date`, or None where it
    holds none so read, or the new reader reads one (rehabmap's own export's term), or a raw item it cannot read."""
    said = (item.get("field_sources") or {}).get("last_verified")
    if not (isinstance(said, str) and said.endswith(":assured_date")) or not isinstance(raw, dict):
        return None
    try:
        if "last_verified" in oruk_to_fields(raw)[0]:
            return None
    except (ValueError, TypeError, AttributeError):
        return None
    return {**item, "fields": _without(item.get("fields") or {}), "field_sources": _without(item["field_sources"])}


def _unshown(service: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """The stored record without the date, where it shows the one its item held (not an enrichment's)."""
    said = (service.get("field_sources") or {}).get("last_verified")
    if said != item["field_sources"]["last_verified"]:
        return service
    return {**service, "last_verified": None, "field_sources": _without(service["field_sources"])}


def _without(said: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in said.items() if k != "last_verified"}
