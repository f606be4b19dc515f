"""Connector outcomes as JSON, for the sync store, and the digests that tell "changed" from "the same".

The content digest covers what the source says about a record (mapped fields, the text the classifier
reads, type status, evidence, field sources, match keys) and not when or from which URL it was fetched, so a record
fetched again unchanged has the same digest. The evidence digest covers only what bears on its type
(type status, evidence and the type the source proposes): a change there after a review decision is shown to the
maintainers.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from enum import Enum
from typing import Any

from indexer.rows import Candidate, Origin
from indexer.sync.items import Enrichment, Evidence, Gone, Outcome, Refused, SourceItem, Unchanged


def _plain(value: Any) -> Any:
    """JSON-ready: enums by value, dates in ISO form, mappings and sequences recursively."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "__dataclass_fields__"):
        return {k: _plain(getattr(value, k)) for k in value.__dataclass_fields__}
    return value


def item_to_json(item: SourceItem) -> dict[str, Any]:
    origin = item.candidate.origin
    return {
        "fields": _plain(item.candidate.fields), "label_text": item.candidate.label_text,
        "warnings": list(item.candidate.warnings),
        "origin": {"source": origin.source, "file": origin.file, "line": origin.line,
                   "source_id": origin.source_id, "licence": origin.licence,
                   "fetched_at": origin.fetched_at.isoformat() if origin.fetched_at else None},
        "type_status": item.type_status,
        "evidence": [_plain(e) for e in item.evidence],
        "field_sources": dict(item.field_sources),
        "keys": dict(item.keys),
    }


def item_from_json(data: dict[str, Any], raw: Any = None) -> SourceItem:
    o = data["origin"]
    origin = Origin(o["source"], o["file"], o["line"], o.get("source_id"), o.get("licence"),
                    datetime.fromisoformat(o["fetched_at"]) if o.get("fetched_at") else None)
    candidate = Candidate(dict(data["fields"]), origin, data.get("label_text", ""), list(data.get("warnings", [])))
    return SourceItem(candidate, data["type_status"], tuple(Evidence(**e) for e in data.get("evidence", [])),
                      raw, dict(data.get("field_sources", {})), dict(data.get("keys", {})))


def enrichment_to_json(enrichment: Enrichment) -> dict[str, Any]:
    return {"source": enrichment.source, "source_id": enrichment.source_id, "match": dict(enrichment.match),
            "fields": _plain(enrichment.fields), "evidence": [_plain(e) for e in enrichment.evidence],
            "field_sources": dict(enrichment.field_sources)}


def enrichment_from_json(data: dict[str, Any], raw: Any = None) -> Enrichment:
    return Enrichment(data["source"], data["source_id"], dict(data["match"]), dict(data.get("fields", {})),
                      tuple(Evidence(**e) for e in data.get("evidence", [])), raw,
                      dict(data.get("field_sources", {})))


def outcome_to_json(outcome: Outcome) -> tuple[str, dict[str, Any]]:
    """(kind, payload) for staging."""
    if isinstance(outcome, SourceItem):
        return "item", {"item": item_to_json(outcome), "raw": _plain(outcome.raw)}
    if isinstance(outcome, Enrichment):
        return "enrichment", {"enrichment": enrichment_to_json(outcome), "raw": _plain(outcome.raw)}
    if isinstance(outcome, Gone):
        return "gone", {"source": outcome.source, "source_id": outcome.source_id, "reason": outcome.reason,
                        "on": outcome.on.isoformat() if outcome.on else None}
    if isinstance(outcome, Unchanged):  # staged beside the refusals: the store CHECKs its four kinds (migration 7)
        return "refused", {"source": outcome.source, "source_id": outcome.source_id, "unchanged": True}
    return "refused", {"source": outcome.source, "source_id": outcome.source_id, "where": outcome.where,
                       "reason": outcome.reason, "unplaced": outcome.unplaced, "unreadable": outcome.unreadable,
                       "name": outcome.name}


def outcome_from_json(kind: str, payload: dict[str, Any]) -> Outcome:
    if kind == "item":
        return item_from_json(payload["item"], payload.get("raw"))
    if kind == "enrichment":
        return enrichment_from_json(payload["enrichment"], payload.get("raw"))
    if kind == "gone":
        return Gone(payload["source"], payload["source_id"], payload["reason"],
                    date.fromisoformat(payload["on"]) if payload.get("on") else None)
    if payload.get("unchanged"):
        return Unchanged(payload["source"], payload["source_id"])
    return Refused(payload["source"], payload.get("source_id"), payload["where"], payload["reason"],
                   bool(payload.get("unplaced")), bool(payload.get("unreadable")), payload.get("name") or "")


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:32]


def content(item_json: dict[str, Any]) -> dict[str, Any]:
    """What an item says, as its digest reads it (not when or in which file it was fetched, nor when the source
    its feed names fetched it: a feed's published provenance, which a nightly refetch upstream changes)."""
    said = {k: item_json.get(k) for k in ("fields", "label_text", "type_status", "evidence", "field_sources", "keys")}
    fields = said["fields"] or {}
    if "provenance" in fields:
        said["fields"] = {k: v for k, v in fields.items() if k != "provenance"}
    return said


def content_digest(item: SourceItem) -> str:
    return _digest(content(item_to_json(item)))


def enrichment_digest(enrichment: Enrichment) -> str:
    return _digest(enrichment_to_json(enrichment))


def evidence_digest(item: SourceItem) -> str:
    data = item_to_json(item)
    proposed = {k: data["fields"].get(k) for k in ("service_type", "subtype")}
    return _digest({"type_status": data["type_status"], "evidence": data["evidence"], "proposed": proposed})
