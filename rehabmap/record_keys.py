"""How a record's CQC location id and postcode read as the keys records are merged by (`indexer.merge.merge_keys`):
one rule for the merge, and for the sync store, which keeps them in columns of their own (`sync_records.cqc_key`
and `postcode_key`, migration 22) so that a live write finds the few records a changed one may be merged with on
an index (`indexer.sync.publish.shown_merged`), never by reading every record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def cqc_key(cqc_location_id: str | None) -> str | None:
    """The CQC location id as records are merged by it, spaces around it and its case aside; None where none."""
    return cqc_location_id.strip().upper() if cqc_location_id else None


def postcode_key(postcode: str | None) -> str | None:
    """The postcode as records are merged by it (with their names), its spaces and case aside; None where none."""
    return postcode.replace(" ", "").upper() if postcode else None


def key_columns(service: Mapping[str, Any] | None) -> tuple[str | None, str | None]:
    """A record's (as JSON) CQC location id and postcode keys: the sync store's columns `cqc_key`, `postcode_key`."""
    if service is None:
        return None, None
    return cqc_key(service.get("cqc_location_id")), postcode_key(service.get("postcode"))
