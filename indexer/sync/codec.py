"""Connector outcomes as JSON, for the sync store, and the digests that tell "changed" from "the same" (read
over that JSON: `rehabmap.sync_digests`, which says what each covers)."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Any

from indexer.rows import Candidate, Origin
from indexer.sources.cqc import cause_in
from indexer.sync.connectors.cqc import staged_deregistration
from indexer.sync.connectors.oruk import OFF_PATHWAY as ORUK_OFF_PATHWAY
from indexer.sync.connectors.oruk import is_feed
from indexer.sync.connectors.titles import CQC, CQC_LOCATION_FILES
from indexer.sync.items import Enrichment, Evidence, Gone, Outcome, Refused, SourceItem, Unchanged
from rehabmap import sync_digests as digests
from rehabmap.record import FileEdition


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
                   "fetched_at": origin.fetched_at.isoformat() if origin.fetched_at else None,
                   "edition": origin.edition.model_dump(mode="json") if origin.edition else None},
        "type_status": item.type_status,
        "evidence": [_plain(e) for e in item.evidence],
        "field_sources": dict(item.field_sources),
        "keys": dict(item.keys),
        # only where declared, so that no other item's JSON (its digest) changes
        **({"id_is": item.id_is} if item.id_is else {}),
        # a row read short (`Candidate.short`), so that a reason it is rejected for later, prepared from the store
        # (after an upgrade, or a stopped run's staged items), still says so first, as its warning does
        **({"short": item.candidate.short} if item.candidate.short else {}),
        # and the fields the cells it may have lost give, which a reason says it is short for (`Candidate.rejected`)
        **({"lost_fields": lost} if (lost := lost_fields_json(item.candidate)) is not None else {}),
    }


def lost_fields_json(candidate: Candidate) -> list[str] | None:
    """The fields a short row's lost cells may give, as an item's JSON keeps them (None: kept for none), so that a
    stored item is read again where they differ (`runner._same`)."""
    return sorted(candidate.lost_fields) if candidate.short and candidate.lost_fields is not None else None


def item_from_json(data: dict[str, Any], raw: Any = None) -> SourceItem:
    o = data["origin"]
    origin = Origin(o["source"], o["file"], o["line"], o.get("source_id"), o.get("licence"),
                    datetime.fromisoformat(o["fetched_at"]) if o.get("fetched_at") else None,
                    FileEdition.model_validate(o["edition"]) if o.get("edition") else None)
    lost = data.get("lost_fields")
    candidate = Candidate(dict(data["fields"]), origin, data.get("label_text", ""), list(data.get("warnings", [])),
                          short=data.get("short", ""), lost_fields=None if lost is None else frozenset(lost))
    return SourceItem(candidate, data["type_status"], tuple(Evidence(**e) for e in data.get("evidence", [])),
                      raw, dict(data.get("field_sources", {})), dict(data.get("keys", {})), data.get("id_is"))


def fetched_at_of(service: dict[str, Any] | None) -> datetime | None:
    """When a stored record was read from its source, as its record says (its own provenance, the first): the
    fetch of a sync, or the import that first read a file's row as it stands. A file's row carries no time of its
    own (nothing is fetched: the import reads the file), so its record is the only word on it."""
    fetched = ((service or {}).get("provenance") or [{}])[0].get("fetched_at")
    return datetime.fromisoformat(fetched) if fetched else None


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
                        "on": outcome.on.isoformat() if outcome.on else None, "detail": outcome.detail}
    if isinstance(outcome, Unchanged):  # a kind of its own (migration 17; it was a 'refused' row marked unchanged)
        return "unchanged", {"source": outcome.source, "source_id": outcome.source_id}
    return "refused", {"source": outcome.source, "source_id": outcome.source_id, "where": outcome.where,
                       "reason": outcome.reason, "unplaced": outcome.unplaced, "unreadable": outcome.unreadable,
                       "name": outcome.name, "off_pathway": outcome.off_pathway}


def outcome_from_json(kind: str, payload: dict[str, Any]) -> Outcome:
    if kind == "item":
        return item_from_json(payload["item"], payload.get("raw"))
    if kind == "enrichment":
        return enrichment_from_json(payload["enrichment"], payload.get("raw"))
    if kind == "gone":
        gone = Gone(payload["source"], payload["source_id"], payload["reason"],
                    date.fromisoformat(payload["on"]) if payload.get("on") else None, payload.get("detail"))
        return gone if "detail" in payload else staged_deregistration(gone)  # staged before session 51 had none
    if kind == "unchanged":
        return Unchanged(payload["source"], payload["source_id"])
    return Refused(_refusing(payload), payload.get("source_id"), payload["where"], payload["reason"],
                   bool(payload.get("unplaced")), bool(payload.get("unreadable")), payload.get("name") or "",
                   _off_pathway(payload))


def _refusing(staged: dict[str, Any]) -> str:
    """The source of the record a staged refusal refuses. A CQC location file's, staged before session 51's upgrade,
    named the file's connector (`cqc-directory:<id>`), not the record its row is (`cqc:<id>`, `location_item`): read
    as it was, a stopped run applied with --force after the upgrade missed the record, and retired the home as "no
    longer listed" rather than for its cause."""
    source = str(staged["source"])
    return CQC if source in CQC_LOCATION_FILES and staged.get("source_id") else source


def _off_pathway(staged: dict[str, Any]) -> str:
    """A refusal staged before session 51 has no cause: one CQC's classifier gave, or a feed's reader off the pathway,
    is read from its words, rather than retiring the record in them (before, a feed's service was retired "the
    source's record can no longer be used: not on the rehab pathway: …"); any other keeps its words, its cause not
    told by them (a feed's words only of a feed's refusal: another source's words that start so are not the feed
    reader's). Session 51's first release said `true` for every refusal off the pathway: rehabmap's reading."""
    if "off_pathway" not in staged:
        reason = str(staged["reason"])
        feeds = is_feed(str(staged["source"])) and reason.startswith(ORUK_OFF_PATHWAY)
        return cause_in(reason) or ("reading" if feeds else "")
    return "reading" if staged["off_pathway"] is True else str(staged["off_pathway"] or "")


def content_digest(item: SourceItem) -> str:
    return digests.content_digest(item_to_json(item))


def enrichment_digest(enrichment: Enrichment) -> str:
    return digests.digest(enrichment_to_json(enrichment))


def evidence_digest(item: SourceItem) -> str:
    return digests.evidence_digest(item_to_json(item))
