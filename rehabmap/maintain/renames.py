"""Services whose id changed, and the id each has now: so that a link to the old one (a bookmarked service
page, a shortlist, an API client's stored id) is sent on to the record rather than told "no service".

Migration 15 fills it: the NHS website hospital list of 2014–15 (`nhs_website_hospitals_2019.csv`) had been read
through the 2018 list's mapping, so its records were `nhs-hospitals-2018:<code>` and said they were from 2018.
Now they are `nhs-hospitals-2015:<code>`, and every stored part of them (the sync store's records and review
decisions, the maintainers' edits, the owners, problem reports) follows, each renaming written to the audit log.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

from rehabmap.maintain.audit import AuditLog, Change
from rehabmap.maintain.database import Connection, Database, now
from rehabmap.record import id_in_path
from rehabmap.sync_digests import content_digest, evidence_digest, stored_json

RENAMES_TABLE = ("CREATE TABLE IF NOT EXISTS service_renames (old_id TEXT PRIMARY KEY, new_id TEXT NOT NULL, "
                 "renamed_at TEXT NOT NULL, why TEXT NOT NULL)",)
OLD_SOURCE, NEW_SOURCE, DATED_FILE = "nhs-hospitals-2018", "nhs-hospitals-2015", "nhs_website_hospitals_2019.csv"
WHY = ("the NHS website hospital list in nhs_website_hospitals_2019.csv is from October 2014 to September 2015 "
       "(its parent trusts' names say so), not from 2018: its records are dated and named so")
ACTOR = "migration 15"
# What the 2018 mapping said of every row and what the list's own mapping says (nhs_website_hospitals_2015.toml):
# the record's description and its evidence, as the import of the day wrote them.
WORDS = (("Dated 2018 NHS dataset entry (NHS website hospital list, September 2018)",
          "Dated 2014–15 NHS dataset entry (NHS website hospital list as it stood between October 2014 and "
          "September 2015)"),
         ("(NHS website list, 2018)", "(NHS website list, 2014–15)"))
# The tables that name a service by its id, beside the sync store's own.
_BY_SERVICE_ID = ("overlay", "ownership", "problem_reports")


def renamed_to(database: Database | None, service_id: str, named: Callable[[str], str] | None = None) -> str | None:
    """The id a service renamed from `service_id` has now, or None (and None without a store). `named`: how the
    caller names a service by its id (its ORUK UUID), when it does not name it by the id itself."""
    if database is None:
        return None
    with database.snapshot() as conn:
        if named is None:
            row = conn.execute("SELECT new_id FROM service_renames WHERE old_id = ?", (service_id,)).fetchone()
            return str(row[0]) if row else None
        rows = conn.execute("SELECT old_id, new_id FROM service_renames").fetchall()
    return next((str(new) for old, new in rows if named(str(old)) == service_id), None)


def rename_dated_hospitals(conn: Connection, _policy: object = None) -> None:
    """Migration 15: the records a store holds of `DATED_FILE` read as `OLD_SOURCE`, renamed `NEW_SOURCE`
    wherever the store names them, losing nothing: the sync record (its item's origin and evidence, its prepared
    record's id and provenance), its review decision, the file import's state (split off when the same import
    read the 2018 list too), coverage claims made on that source, and the maintainers' edits, owners and problem
    reports of each service. Each renaming is an audit row (old id → new id) and a row of `service_renames`,
    which sends links to the old id on. The words dating a record 2018 (its description, its evidence) are the
    list's own, and its digests follow, so the next import of the file finds the records as it left them (not
    every one changed, past the share threshold) and a decision on the same evidence standing."""
    for statement in RENAMES_TABLE:
        conn.execute(statement)
    rows = conn.execute("SELECT source_id, item, service, evidence_digest FROM sync_records WHERE source = ?",
                        (OLD_SOURCE,)).fetchall()
    moved = [(str(source_id), json.loads(item), None if service is None else json.loads(service), evidence)
             for source_id, item, service, evidence in rows if _file_of(json.loads(item)) == DATED_FILE]
    if not moved:
        return
    at = now()
    for source_id, item, service, evidence in moved:
        old_id, new_id = f"{OLD_SOURCE}:{source_id}", f"{NEW_SOURCE}:{source_id}"
        item = _renamed(item, old_id, new_id)
        new_evidence = evidence_digest(item)
        conn.execute("UPDATE sync_records SET source = ?, connector = ?, service_id = ?, item = ?, service = ?, "
                     "digest = ?, evidence_digest = ? WHERE source = ? AND source_id = ?",
                     (NEW_SOURCE, NEW_SOURCE, new_id, stored_json(item),
                      None if service is None else stored_json(_renamed(service, old_id, new_id)), content_digest(item),
                      new_evidence, OLD_SOURCE, source_id))
        # A decision made on the evidence as it was stands on the same evidence, dated anew.
        conn.execute("UPDATE sync_review SET source = ?, decided_on_evidence = CASE WHEN decided_on_evidence = ? "
                     "THEN ? ELSE decided_on_evidence END WHERE source = ? AND source_id = ?",
                     (NEW_SOURCE, evidence, new_evidence, OLD_SOURCE, source_id))
        for table in _BY_SERVICE_ID:
            conn.execute(f"UPDATE {table} SET service_id = ? WHERE service_id = ?", (new_id, old_id))
        conn.execute("INSERT INTO service_renames (old_id, new_id, renamed_at, why) VALUES (?, ?, ?, ?)",
                     (old_id, new_id, at, WHY))
        AuditLog.append(conn, ACTOR, "rename", "service", old_id, (Change("id", old_id, new_id),), at)
    _split_state(conn, len(moved))


def _split_state(conn: Connection, moved: int) -> None:
    """The file import's state (which files it read, how many rows it held) as two sources' states; all of it,
    and the coverage claims made on the source, when the import read no other file."""
    row = conn.execute("SELECT state FROM sync_state WHERE source = ?", (OLD_SOURCE,)).fetchone()
    if row is None:
        return
    state = json.loads(row[0])
    files = [f for f in state.get("files", []) if PurePosixPath(f).name != DATED_FILE]
    if not files:
        conn.execute("UPDATE sync_state SET source = ? WHERE source = ?", (NEW_SOURCE, OLD_SOURCE))
        conn.execute("UPDATE coverage_claims SET basis = ? WHERE basis = ?", (NEW_SOURCE, OLD_SOURCE))
        return
    kept = {**state, "files": files, "held_rows": max(0, int(state.get("held_rows", moved)) - moved)}
    conn.execute("UPDATE sync_state SET state = ? WHERE source = ?", (stored_json(kept), OLD_SOURCE))
    conn.execute("INSERT INTO sync_state (source, state, pending, run_started_at, last_success_at, last_complete_at) "
                 "SELECT ?, ?, NULL, NULL, last_success_at, last_complete_at FROM sync_state WHERE source = ?",
                 (NEW_SOURCE, stored_json({"files": [DATED_FILE], "held_rows": moved}), OLD_SOURCE))


def _file_of(item: dict[str, Any]) -> str:
    return PurePosixPath(str((item.get("origin") or {}).get("file") or "")).name


def _renamed(value: Any, old_id: str, new_id: str) -> Any:
    """`value` (a stored item or record) with the old source's name and the old id replaced wherever they stand
    as a whole value (an origin's or evidence's `source`, provenance, the record's `id`), and the 2018 list's
    words (`WORDS`) the list's own wherever they stand in a text."""
    if isinstance(value, dict):
        return {k: _renamed(v, old_id, new_id) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v, old_id, new_id) for v in value]
    if value == OLD_SOURCE:
        return NEW_SOURCE
    if value == old_id:
        return new_id
    if isinstance(value, str):
        for old, new in WORDS:
            value = value.replace(old, new)
    return value



def moved_to(path: str, query: str, old_id: str, new_id: str) -> str:
    """The address of a renamed service's page or record: the request's own path (as decoded: the ASGI scope's, where
    the old id stands as given) with its last part, the old id, replaced by the new one as every face writes an id
    (`id_in_path`), relative to this host (never built from a Host header a caller chooses), and its query kept.
    Before, the path as Starlette's URL writes it ('#' as %23) missed an id holding a '#', and the new id's '/' was
    written %2F where the pages' links keep it."""
    base = path[: -len(old_id)] if path.endswith(old_id) else path.rsplit("/", 1)[0] + "/"
    return base + id_in_path(new_id) + (f"?{query}" if query else "")
