"""Migration 28: until session 51 the CQC readers (`indexer.sources.cqc`) took a location's regulated activities for
specialisms, so a synced record's evidence said "specialisms: Assessment or medical treatment for persons detained
under the Mental Health Ac… — states the need detained_mha", where CQC had said a regulated activity. The evidence
names it `regulatedActivities` now. The evidence is in both of an item's digests: left as it was, the next sync
would read each such record as changed, and the review queue would flag each decision on one as made on evidence
that has since changed, when CQC said nothing new. Each stored item (and each a stopped run staged) is relabelled
here, once, as the new reader gives it, its digests with it, and a decision made on its evidence as it was stands on
the same evidence relabelled.
"""

from __future__ import annotations

import json
from typing import Any

from rehabmap.errors import shorten
from rehabmap.maintain.database import Connection
from rehabmap.sync_digests import content_digest, evidence_digest, stored_json

SPECIALISMS, REGULATED_ACTIVITIES = "specialisms", "regulatedActivities"  # as `indexer.sources.cqc` names them
# Where a CQC record's source row (the sync store's `raw`) gives its regulated activities: the API's list of
# `{"name": …}`, and the HSCA active locations file's "Regulated activity - <name>" columns, flagged "Y".
_API_KEY, _HSCA_COLUMN = "regulatedActivities", "Regulated activity - "


def relabel_activities(conn: Connection, _policy: object = None) -> None:
    """Every stored item whose evidence names a regulated activity of its raw row as a specialism, relabelled, with
    its content and evidence digests anew, and its review decision's digest where it was made on that evidence;
    and so every item a stopped run staged, so that `--force` applies it as the new reader reads it."""
    rows = conn.execute("SELECT source, source_id, item, raw, evidence_digest FROM sync_records "
                        "WHERE raw IS NOT NULL AND item LIKE ?", (f"%{SPECIALISMS}%",)).fetchall()
    for source, source_id, item_text, raw_text, old_evidence in rows:
        item = relabelled(json.loads(item_text), json.loads(raw_text))
        if item is None:
            continue
        new_evidence = evidence_digest(item)
        conn.execute("UPDATE sync_records SET item = ?, digest = ?, evidence_digest = ? WHERE source = ? AND "
                     "source_id = ?", (stored_json(item), content_digest(item), new_evidence, source, source_id))
        conn.execute("UPDATE sync_review SET decided_on_evidence = ? WHERE source = ? AND source_id = ? AND "
                     "decided_on_evidence = ?", (new_evidence, source, source_id, old_evidence))
    for source, seq, payload_text in conn.execute(
            "SELECT source, seq, payload FROM sync_staged WHERE kind = 'item' AND payload LIKE ?",
            (f"%{SPECIALISMS}%",)).fetchall():
        payload = json.loads(payload_text)
        if (item := relabelled(payload.get("item") or {}, payload.get("raw"))) is not None:
            conn.execute("UPDATE sync_staged SET payload = ? WHERE source = ? AND seq = ?",
                         (stored_json({**payload, "item": item}), source, seq))


def relabelled(item: dict[str, Any], raw: Any) -> dict[str, Any] | None:
    """`item` with each evidence that quotes one of the raw row's regulated activities as a specialism naming it as
    one (the reader quoted each `shorten`ed), or None when there is none."""
    activities = {shorten(name) for name in _activities(raw)}
    evidence = item.get("evidence") or []
    relabelled = [{**e, "field": REGULATED_ACTIVITIES}
                  if isinstance(e, dict) and e.get("field") == SPECIALISMS and e.get("value") in activities else e
                  for e in evidence]
    return None if relabelled == evidence else {**item, "evidence": relabelled}


def _activities(raw: Any) -> list[str]:
    if not isinstance(raw, dict):
        return []
    listed = raw.get(_API_KEY)
    if isinstance(listed, list):
        return [str(a["name"]) for a in listed if isinstance(a, dict) and a.get("name")]
    return [column.removeprefix(_HSCA_COLUMN) for column, flag in raw.items()
            if column.startswith(_HSCA_COLUMN) and str(flag).strip().upper() == "Y"]
