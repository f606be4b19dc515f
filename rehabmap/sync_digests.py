"""The digests that tell a synced item "changed" from "the same", over the item as the sync store keeps it
(JSON): the sync layer's (`indexer.sync.codec`), and a store migration's that rewrites stored items (migration
15 dates the 2014–15 hospital list's records anew; a digest left as it was would make the next import read every
one of them as changed, past the share threshold).

The content digest covers what the source says about a record (mapped fields, the text the classifier reads, type
status, evidence, field sources, match keys) and not when or from which URL it was fetched, so a record fetched
again unchanged has the same digest. The evidence digest covers only what bears on its type (type status,
evidence and the type the source proposes): a change there after a review decision is shown to the maintainers.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def stored_json(value: Any) -> str:
    """JSON as the sync store writes what it keeps (items, states, reports): compact, keys sorted, text as it is.
    The sync layer (`indexer.sync.store`) and a store migration that rewrites its rows write it alike, so a row
    rewritten reads as the sync layer would have written it."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:32]


def content(item_json: dict[str, Any]) -> dict[str, Any]:
    """What an item says, as its digest reads it (not when or in which file it was fetched, nor when the source
    its feed names fetched it: a feed's published provenance, which a nightly refetch upstream changes)."""
    said = {k: item_json.get(k) for k in ("fields", "label_text", "type_status", "evidence", "field_sources", "keys")}
    fields = said["fields"] or {}
    if "provenance" in fields:
        said["fields"] = {k: v for k, v in fields.items() if k != "provenance"}
    return said


def relays_marked(fields: dict[str, Any]) -> list[Any]:
    """Which feed relayed each entry of a feed's published provenance (`Provenance.relayed_by`), which the content
    digest leaves out with the provenance: a store synced before a release marked relays holds the same content
    unmarked, and must be read again for the marks (`indexer.sync.runner._same`), or no sync would ever mark it."""
    return [p.get("relayed_by") for p in fields.get("provenance") or () if isinstance(p, dict)]


def content_digest(item_json: dict[str, Any]) -> str:
    return digest(content(item_json))


def evidence_digest(item_json: dict[str, Any]) -> str:
    proposed = {k: item_json["fields"].get(k) for k in ("service_type", "subtype")}
    return digest({"type_status": item_json["type_status"], "evidence": item_json["evidence"], "proposed": proposed})
