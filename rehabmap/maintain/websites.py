"""Migration 18: a website a CSV file or CQC gave without its scheme ('www.partnershipsincare.co.uk') was
completed (https://) by the cell parser as it was read, so the sync store holds the completed link as what the
source said. Since session 20 the reader keeps the text and the record completes it, saying so in its field
source. Each such stored item's content digest would change, and the first sync after the upgrade would read
most CQC records as changed and stop at the share threshold (exit 3): the items are rewritten here, once, as
the new reader gives them, their digests with them, and the records are marked to be prepared again
(`indexer.sync.store.REPREPARE_DUE`), so that their field sources say "https:// added" and the next sync finds
them unchanged.
"""

from __future__ import annotations

import json
from typing import Any

from rehabmap.maintain.database import Connection
from rehabmap.record import completed_website
from rehabmap.sync_digests import content_digest, stored_json


def reread_websites(conn: Connection, _policy: object = None) -> None:
    """Every stored item whose website the old reader completed, given the text its source gave (found in the
    item's raw row: the value the old reader completed to the stored website), with its content digest anew; and
    so every item a run stopped at the share threshold staged, so that `--force` applies it as this reader reads."""
    rows = conn.execute("SELECT source, source_id, item, raw FROM sync_records WHERE raw IS NOT NULL").fetchall()
    rewritten = 0
    for source, source_id, item_text, raw_text in rows:
        item = _reread(json.loads(item_text), json.loads(raw_text))
        if item is not None:
            conn.execute("UPDATE sync_records SET item = ?, digest = ? WHERE source = ? AND source_id = ?",
                         (stored_json(item), content_digest(item), source, source_id))
            rewritten += 1
    for source, seq, payload_text in conn.execute(
            "SELECT source, seq, payload FROM sync_staged WHERE kind = 'item'").fetchall():
        payload = json.loads(payload_text)
        if (item := _reread(payload.get("item") or {}, payload.get("raw"))) is not None:
            conn.execute("UPDATE sync_staged SET payload = ? WHERE source = ? AND seq = ?",
                         (stored_json({**payload, "item": item}), source, seq))
    if rewritten:
        conn.execute("INSERT INTO sync_meta (key, value) SELECT 'reprepare_due', 'migration 18' WHERE NOT EXISTS "
                     "(SELECT 1 FROM sync_meta WHERE key = 'reprepare_due')")


def _reread(item: dict[str, Any], raw: Any) -> dict[str, Any] | None:
    """`item` with its website as the new reader gives it, or None when that reading is the stored one."""
    fields = item.get("fields") or {}
    given = given_website(fields.get("website"), raw)
    return None if given is None else {**item, "fields": {**fields, "website": given}}



def given_website(website: Any, raw: Any) -> str | None:
    """The text the source gave for a `website` the old reader completed, or None when it was given as stored
    (or its raw row does not say). The old reader gave `completed_website(text) or text` of the stripped cell;
    the new one gives the cell's words (`indexer.sources.common.parse_text`). Only one reading is taken: two
    cells completing to the same link but given differently leave the item as it is."""
    if not isinstance(website, str) or not isinstance(raw, dict):
        return None
    given = {" ".join(v.split()) for v in raw.values()
             if isinstance(v, str) and v.strip() and completed_website(v.strip()) == website}
    given.discard(website)
    return given.pop() if len(given) == 1 else None
