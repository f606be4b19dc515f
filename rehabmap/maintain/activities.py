"""Migration 28: until session 51 the CQC readers (`indexer.sources.cqc`) took a location's regulated activities for
specialisms, so a synced record's evidence said "specialisms: Assessment or medical treatment for persons detained
under the Mental Health Ac… — states the need detained_mha", where CQC had said a regulated activity. The evidence
names it `regulatedActivities` now, and so does the type's source of a care home placed by the activity alone
("cqc:gacServiceTypes+regulatedActivities"). The evidence is in both of an item's digests, the type's source in its
content digest: left as they were, the next sync would read each such record as changed, and the review queue would
flag each decision on one as made on evidence that has since changed, when CQC said nothing new. Each stored item
(and each a stopped run staged) is relabelled here, once, as the new reader gives it, its digests with it, its shown
record's type source with it (laid in the live index again), and a decision made on its evidence as it was stands on
the same evidence relabelled.
"""

from __future__ import annotations

import json
from typing import Any

from rehabmap.cqc_words import REGISTERED_FOR_MENTAL_HEALTH, REGULATED_ACTIVITIES, SPECIALISMS, regulated_activities
from rehabmap.errors import shorten
from rehabmap.maintain.database import NEXT_LIVE_REVISION, Connection, paged
from rehabmap.sync_digests import content_digest, evidence_digest, stored_json

# The items that may quote an activity as a specialism, in the sync store's JSON (`stored_json`: compact, keys
# sorted): evidence said of `specialisms`, and an activity's words. The readers quoted two activities only (the
# one for persons detained under the Mental Health Act, the one for persons who require treatment for substance
# misuse), both "for persons", as no service user band is; a record that also shows neither is not read.
_SAID_OF_SPECIALISMS, _AN_ACTIVITY = f'%"field":"{SPECIALISMS}"%', "%for persons%"


def relabel_activities(conn: Connection, _policy: object = None) -> None:
    """Every stored item whose evidence names a regulated activity of its raw row as a specialism, relabelled, with
    its content and evidence digests anew, its shown record's type source as the item's (`_shown`), due to the live
    index, and its review decision's digest where it was made on that evidence; and so every item a stopped run
    staged, so that `--force` applies it as the new reader reads it. Read a page
    at a time by key (before, every CQC record and its raw row at once: 20,000 took 600 MB)."""
    for source, source_id, item_text, raw_text, service_text, old_evidence in paged(
            conn, "SELECT source, source_id, item, raw, service, evidence_digest FROM sync_records WHERE raw IS NOT "
            "NULL AND item LIKE ? AND item LIKE ? AND (source, source_id) > (?, ?) ORDER BY source, source_id",
            (_SAID_OF_SPECIALISMS, _AN_ACTIVITY), ""):
        before = json.loads(item_text)
        item = relabelled(before, json.loads(raw_text))
        if item is None:
            continue
        new_evidence = evidence_digest(item)
        conn.execute("UPDATE sync_records SET item = ?, digest = ?, evidence_digest = ? WHERE source = ? AND "
                     "source_id = ?", (stored_json(item), content_digest(item), new_evidence, source, source_id))
        conn.execute("UPDATE sync_review SET decided_on_evidence = ? WHERE source = ? AND source_id = ? AND "
                     "decided_on_evidence = ?", (new_evidence, source, source_id, old_evidence))
        if service_text is not None and (service := _shown(json.loads(service_text), before, item)) is not None:
            conn.execute(f"UPDATE sync_records SET service = ?, {NEXT_LIVE_REVISION} WHERE source = ? AND "
                         "source_id = ?",
                         (stored_json(service), source, source_id))
    for source, seq, payload_text in paged(
            conn, "SELECT source, seq, payload FROM sync_staged WHERE kind = 'item' AND payload LIKE ? "
            "AND payload LIKE ? AND (source, seq) > (?, ?) ORDER BY source, seq", (_SAID_OF_SPECIALISMS, _AN_ACTIVITY),
            -1):
        payload = json.loads(payload_text)
        if (item := relabelled(payload.get("item") or {}, payload.get("raw"))) is not None:
            conn.execute("UPDATE sync_staged SET payload = ? WHERE source = ? AND seq = ?",
                         (stored_json({**payload, "item": item}), source, seq))


def relabelled(item: dict[str, Any], raw: Any) -> dict[str, Any] | None:
    """`item` with each evidence that quotes one of the raw row's regulated activities as a specialism naming it as
    one, or None when there is none. The readers quoted an activity whole where it said the location is registered
    for people with mental health needs (`read_pathway`), `shorten`ed where it stated a need (`needs_evidence`).
    The type's source names the fields of the evidence that placed it (`location_field_sources`): where that quote
    is relabelled, so is it ("cqc:gacServiceTypes+specialisms" → "cqc:gacServiceTypes+regulatedActivities")."""
    activities = {said for name in regulated_activities(raw) for said in (name, shorten(name))}
    evidence = item.get("evidence") or []
    relabelled = [{**e, "field": REGULATED_ACTIVITIES}
                  if isinstance(e, dict) and e.get("field") == SPECIALISMS and e.get("value") in activities else e
                  for e in evidence]
    if relabelled == evidence:
        return None
    item = {**item, "evidence": relabelled}
    sources = item.get("field_sources") or {}
    if "service_type" in sources and any(new != old and new.get("means") == REGISTERED_FOR_MENTAL_HEALTH
                                         for new, old in zip(relabelled, evidence)):
        said_by, _, fields = str(sources["service_type"]).rpartition(":")
        item["field_sources"] = {**sources, "service_type": f"{said_by}:" + "+".join(dict.fromkeys(
            REGULATED_ACTIVITIES if field == SPECIALISMS else field for field in fields.split("+")))}
    return item


def _shown(service: dict[str, Any], before: dict[str, Any], item: dict[str, Any]) -> dict[str, Any] | None:
    """The record `service` stored to show the item `before`, its type's source as `item` (relabelled) says it, or
    None when that is unchanged. The stored record's type source is always its item's (`indexer.sync.runner`; no
    enrichment gives a type): a type a maintainer decided is laid over it as it is shown (`publish.with_type`),
    never stored in it. Before, a record whose type source was not its item's was left, a case that cannot occur."""
    sources = service.get("field_sources") or {}
    was, now = (i.get("field_sources", {}).get("service_type") for i in (before, item))
    if was == now:
        return None
    return {**service, "field_sources": {**sources, "service_type": now}}
