"""The review queue: synced records whose type is only inferred (or unknown), held with their evidence until a
maintainer accepts them as a type, or rejects them with a reason.

The library the CLI (`rehabmap review`) calls now and the maintainers' pages will call later. A record is
named by its service id (`cqc:1-123`). A decision is one transaction in the store with its audit rows; then
the live index follows (an accepted record becomes searchable as the type accepted; a rejected one leaves it).
Decisions outlive re-syncs; when the source's evidence changes after a decision, the item says so
(`evidence_changed`) and the sync report lists it. A maintainer may decide again at any time.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from functools import partial
from typing import Any

from pydantic import ValidationError

from indexer.sync.codec import enrichment_from_json, item_from_json
from indexer.sync.connectors import TITLES
from indexer.sync.enrich import Enrichments, enriched
from indexer.sync.items import Evidence, SourceKeyed
from indexer.merge import similar_names
from indexer.precedence import PrecedenceInvalid
from indexer.sync.live import LiveIndex, NotYetShown
from indexer.sync.steps import reached
from indexer.sync.publish import record_pending, shown, with_type
from indexer.sync.store import Audit, Paged, ReviewRow, ReviewState, StoredRecord, SyncStore, now
from rehabmap.maintain.audit import Change, given_reason
from rehabmap.errors import DomainError, InvalidValue, Remedy, ServiceNotFound
from rehabmap.record import Service
from rehabmap.record_keys import key_columns, merge_keys, postcode_key
from rehabmap.taxonomy import ServiceType, parse_type, type_words


@dataclass(frozen=True)
class Alike:
    """Another record that may be the same service as a queued one, and why: a hint for the maintainer deciding, who
    may accept one and reject the other; nothing is merged on it. Before, the 2014–15 and 2018 NHS hospital lists'
    rows of one hospital under another name or at another postcode (Stockton Hall Hospital, NMV02 in both) sat in the
    queue twice with nothing saying so."""

    service_id: str
    name: str
    source: str
    why: str          # each reason, in words: "both sources give it the ODS code NMV02"
    one_record: bool  # they share a key records are merged by (`indexer.merge.merge_keys`): shown, they are one
    queued: bool      # it has a review row (its page is in the queue; else it is under Services)

    @property
    def lead(self) -> str:
        """How it relates, in words, before its name: a merge the rule makes, or a person's to judge."""
        return "Once both are shown, one record with" if self.one_record else "Possibly the same service as"


def alike(record: StoredRecord, others: Sequence[StoredRecord], queued: Collection[tuple[str, str]]
          ) -> tuple[Alike, ...]:
    """The records among `others` (active, prepared) that may be the same service as `record` (`_reasons`), each
    with why."""
    service, found = record.service or {}, []
    keys = set(merge_keys(service)[1:])
    for other in others:
        if other.key == record.key or other.service is None or other.status != "active":
            continue
        shared = {name for name, _ in keys & set(merge_keys(other.service)[1:])}
        why = _reasons(record, other, shared)
        if why:
            found.append(Alike(other.service_id, str(other.service.get("name") or ""), other.source, "; ".join(why),
                               bool(shared), other.key in queued))
    return tuple(found)


# A key records are merged by (`indexer.merge.merge_keys`), as two records that share it are told.
_SHARED_WORDS = {"cqc": "the same CQC location id", "name+postcode": "the same name and postcode"}


# The identifiers sources share (`indexer.sync.items.MatchKey`) that a record's id may be, as a person reads them.
_ID_WORDS = {"ods_code": "ODS code", "cqc_location_id": "CQC location id", "cqc_provider_id": "CQC provider id"}


def _reasons(record: StoredRecord, other: StoredRecord, shared: set[str]) -> list[str]:
    """Why `record` and `other` may be one service, in words: the keys they are merged by that they share
    (`shared`), the same id at two sources whose ids are one shared identifier (`_id_is`: both NHS hospital lists'
    are ODS codes), or, sharing no key, one postcode and similar names (`indexer.merge.similar_names`)."""
    service, theirs = record.service or {}, other.service or {}
    why = [_SHARED_WORDS[name] for name in sorted(shared)]
    scheme = _id_is(record) if other.source_id == record.source_id else None
    if scheme is not None and _id_is(other) == scheme:
        why.append(f"both sources give it the {_ID_WORDS.get(scheme, scheme)} {record.source_id}")
    postcode = postcode_key(service.get("postcode"))
    if not shared and postcode is not None and postcode_key(theirs.get("postcode")) == postcode \
            and similar_names(service, theirs):
        why.append(f"the same postcode, {service.get('postcode')}, and a similar name")
    return why


def _id_is(record: StoredRecord) -> str | None:
    """Which shared identifier a record's id at its source is: as its mapping declares (`SourceItem.id_is`), or the
    one its connector gives it that is its id (`SourceItem.keys`: a CQC location's id, an NHS Service Search
    organisation's ODS code). None for an id that means something to its source only: two council lists whose ids
    are row numbers may both give a "12", and before, the queue said "both sources give it the code 12"."""
    item = item_from_json(record.item)
    return item.id_is or next((key for key, value in item.keys.items() if value == record.source_id), None)


def _near_keys(record: StoredRecord) -> list[tuple[str, str]]:
    """What a record is found near others by (`SyncStore.alike`): its id at its source, its CQC location id and its
    postcode keys."""
    return [("source_id", record.source_id),
            *((name, value) for name, value in zip(("cqc", "postcode"), key_columns(record.service)) if value)]


@dataclass(frozen=True)
class ReviewItem(SourceKeyed):
    """One queued record, with everything a maintainer needs to decide."""

    service_id: str
    name: str
    source: str
    source_id: str
    state: ReviewState
    type_status: str
    proposed_type: str | None
    proposed_subtype: str | None
    evidence: tuple[Evidence, ...]
    decided_type: str | None
    decided_subtype: str | None
    reason: str | None
    decided_by: str | None
    decided_at: str | None
    evidence_changed: bool
    retired: bool
    queued_at: str
    service: dict[str, Any]
    raw: Any
    # The stored record it was read from, which the others it may be are found by (`ReviewQueue.with_alike`)
    record: StoredRecord = field(repr=False, compare=False)
    # Other records that may be the same service (`alike`); None until a face that shows them asks
    # (`ReviewQueue.with_alike`), as working them out reads more of the store.
    alike: tuple[Alike, ...] | None = None

    @property
    def where(self) -> str:
        areas = self.service.get("areas") or {}
        return ", ".join(filter(None, [self.service.get("postcode"), areas.get("lad_name"), areas.get("icb_name")]))

    def held(self, source_title: str, *, field: str = "service_id") -> ServiceNotFound | None:
        """What was asked of the record by id (a change, a link to an organisation) refused, saying why whoever
        looks for it by id does not find it (`why_unshown`), the record and its source (`source_title`: as a person
        reads it) named, with where it is decided apart (`Remedy.REVIEW_DECISION`): each face words that itself,
        naming the record where it gives a command (`subject`). None for one decided in."""
        why = self.why_unshown()
        if why is None:
            return None
        return ServiceNotFound(f"'{self.service_id[:80]}' is held from {source_title} but not shown: {why}.",
                               field=field, remedy=Remedy.REVIEW_DECISION, subject=self.service_id)

    def why_unshown(self) -> str | None:
        """Why the index does not hold a record its source gives (it awaits review, or a maintainer rejected it),
        for whoever looks for it there by id (the API's 404), in words: the type by its name and the day as a
        person writes one. It said "it awaits review (inferred: inpatient_rehab_level1)" and "on 2026-12-02";
        the codes stay in the item's own fields (`state`, `type_status`, `proposed_type`). The keepers' pages say
        the same words (`web.keepers.maintainer_review`). None for one decided in."""
        if self.state == "rejected":
            when = date.fromisoformat(self.decided_at[:10]) if self.decided_at else None
            day = f"{when.day} {when:%B %Y}" if when else "an unknown day"
            return f"it was rejected in review on {day} by {self.decided_by}: {self.reason}"
        if self.state != "pending":
            return None
        if self.proposed_type is None:
            return ("it awaits review, as its source does not name its type and rehabmap cannot tell it from what "
                    "it says")
        return (f"it awaits review, as its source does not name its type; rehabmap infers "
                f"{type_words(self.proposed_type, self.proposed_subtype)} from what it says")


class DecisionNotShown(NotYetShown):
    """Decisions the store committed whose live write was then refused (`NotYetShown`). Before, the refusal reached
    the keeper as if nothing were decided. `items`: the decisions as made, for the keeper's page."""

    code = "decision_not_yet_shown"

    def __init__(self, items: list[ReviewItem], refused: PrecedenceInvalid) -> None:
        super().__init__(f"{'1 decision is' if len(items) == 1 else f'{len(items)} decisions are'} stored", refused)
        self.items = items


class DecidedOnChanged(DomainError):
    """A decision on records a sync run changed after the decision read them (retired one, or stored its source's
    new record): nothing is decided, as it was made on what is no longer so. Before, the decision wrote the records
    back as it had read them, undoing the run."""

    status = 409
    code = "record_changed"

    def __init__(self, message: str) -> None:
        super().__init__(message, field="service_id", remedy=Remedy.REVIEW_QUEUE)


def _parse_level(level: int | None, service_type: str | None) -> str | None:
    if level is None:
        return service_type
    if level not in (1, 2):
        raise InvalidValue("--level is 1 or 2 (the inpatient rehabilitation levels).", field="level")
    chosen = f"inpatient_rehab_level{level}"
    if service_type is not None and service_type != chosen:
        raise InvalidValue(f"--level {level} means {chosen}, but --type says {service_type}; give one of them.",
                           field="level")
    return chosen


class ReviewQueue:
    def __init__(self, store: SyncStore, live: LiveIndex | None = None, *,
                 source_titles: Mapping[str, str] = TITLES) -> None:
        """`source_titles`: the sources as people know them (`indexer.sync.connectors.source_titles`, the server's
        `AppState.source_titles`), for its refusals to name a record's source so, never by its code."""
        self.store = store
        self.live = live
        self.source_titles = source_titles

    # --- reading ------------------------------------------------------------------------------------------

    def items(self, *, states: Sequence[ReviewState] = ("pending",), source: str | None = None,
              proposed_type: str | None = None, evidence_changed: bool = False,
              service_ids: Collection[str] | None = None) -> list[ReviewItem]:
        """The queue, oldest first: by default what awaits a decision; with `service_ids`, of those records alone
        (the few a bulk decision chose, where it read the whole queue for them). Without the others each may be
        (`with_alike`): a face asks for them for the rows it shows. The records of its rows alone are read, on the
        store's key (`SyncStore.records(keys=...)`): before, every list (the keepers' queue page, `review list`)
        read every record of the store, every CQC location's too, to find the few queued."""
        rows = partial(self.store.reviews, states=states, source=source, evidence_changed=evidence_changed)
        if service_ids is not None:
            chosen = {r.key: r for r in self.store.records(service_ids=list(service_ids))}
            found = self._listed(rows(keys=list(chosen)) if chosen else [], chosen)
        else:
            found = self._listed(rows())
        if proposed_type is not None:
            wanted = parse_type(proposed_type).value
            found = [i for i in found if i.proposed_type == wanted]
        return found

    def page(self, number: int, per_page: int, *, states: Sequence[ReviewState] = ("pending",),
             evidence_changed: bool = False) -> Paged[ReviewItem]:
        """Page `number` (from 1) of the queue as `items` lists it (these states; with `evidence_changed`, the
        decisions whose evidence changed since), `per_page` rows oldest first, and how many rows it holds; a page
        past the end is the last that has rows (`SyncStore.reviews_page`). The database counts the rows and reads
        the page's alone, and the records of those rows alone are read, so a face that shows one page at a time
        (the keepers' queue page) reads them, and works out the others each may be (`with_alike`), for those rows
        alone. Before, that page listed every row at once (521 with both NHS hospital lists held) and worked the
        others out for each; then it read every row to count and slice them."""
        rows = self.store.reviews_page(number, per_page, states=states, evidence_changed=evidence_changed)
        return Paged(self._listed(rows.rows), rows.total, rows.number)

    def _listed(self, rows: Sequence[ReviewRow], records: Mapping[tuple[str, str], StoredRecord] | None = None
                ) -> list[ReviewItem]:
        """The items of these rows, in their order, each of its record: `records` (by key), if read already, else
        read on the store's key (`SyncStore.records(keys=...)`), with the facts other sources give about them."""
        if records is None:
            records = {r.key: r for r in self.store.records(keys=[row.key for row in rows])} if rows else {}
        index = self._enrichments(records.values())
        return [self._item(records[row.key], row, index) for row in rows if row.key in records]

    def item(self, service_id: str) -> ReviewItem:
        """One queued record, without the others it may be (`with_alike`): the public pages' and the API's
        refusals read it only to say why a record is in no search."""
        [(record, row)] = self._chosen([service_id])
        return self._item(record, row, self._enrichments([record]))

    def with_alike(self, items: Sequence[ReviewItem]) -> list[ReviewItem]:
        """These items, each with the others that may be the same service (`ReviewItem.alike`): only the rows a
        face shows, after its filters and limit. Before, every list worked them out for every record it read,
        the callers that show none too (a bulk decision, a refusal's lookup), and the cost grew with the queue."""
        kin = self._alike([i.record for i in items])
        return [replace(i, alike=kin[i.key]) for i in items]

    def _alike(self, records: Sequence[StoredRecord]) -> dict[tuple[str, str], tuple[Alike, ...]]:
        """Per record, the others that may be the same service (`alike`), found on the store's indexes
        (`SyncStore.alike`), with whether each has a review row (`SyncStore.reviews` by key): a face asks for the
        records it shows (`with_alike`), never every record."""
        if not records:
            return {}
        others = self.store.alike(records)  # these among them, as given: not read again
        given = {r.key for r in records}  # each an item's, so it has a review row
        queued = given | {r.key for r in self.store.reviews(keys=[o.key for o in others if o.key not in given])}
        near: dict[tuple[str, str], list[StoredRecord]] = {}
        for other in others:
            for at in _near_keys(other):
                near.setdefault(at, []).append(other)
        return {record.key: alike(record, list({o.key: o for at in _near_keys(record) for o in near.get(at, ())}
                                                   .values()), queued) for record in records}

    def _enrichments(self, records: Iterable[StoredRecord]) -> Enrichments:
        """The enrichments that may match these records, found by the keys their items are known by
        (`SyncStore.enrichments(keys=...)`): before, each list and each item (a decision reads one per record
        decided) read every enrichment of the store, every ODS site's."""
        keys = {pair for record in records for pair in item_from_json(record.item).keys.items()}
        found = self.store.enrichments(keys=keys) if keys else []
        return Enrichments(enrichment_from_json(e.enrichment) for e in found)

    def _chosen(self, service_ids: Sequence[str]) -> Iterator[tuple[StoredRecord, ReviewRow]]:
        """Each record named (once, in the order given) with its review row, all read at once, on the store's keys;
        refused, as it is reached, where no sync holds it or its source confirms its type (so not queued). Before,
        a decision read each record chosen and its row one by one, then its row again to log what it was, then
        both again to answer what it decided."""
        wanted = list(dict.fromkeys(service_ids))
        records: dict[str, StoredRecord] = {}
        for record in self.store.records(service_ids=wanted):
            records.setdefault(record.service_id, record)  # the first in the store's order, as read one by one
        rows = {r.key: r for r in self.store.reviews(keys=[r.key for r in records.values()])} if records else {}
        for service_id in wanted:
            yield self._queued(service_id, records.get(service_id), rows)

    def _queued(self, service_id: str, record: StoredRecord | None, rows: Mapping[tuple[str, str], ReviewRow]
                ) -> tuple[StoredRecord, ReviewRow]:
        """The record named and its review row, or why it is not in the queue."""
        if record is None:
            raise ServiceNotFound(f"No synced record '{service_id[:80]}'.", field="service_id",
                                  remedy=Remedy.REVIEW_QUEUE)
        row = rows.get(record.key)
        if row is None:
            title = self.source_titles.get(record.source, record.source)  # "Care Quality Commission (CQC)": "cqc"
            raise InvalidValue(f"'{service_id[:80]}' is not in the review queue: {title} confirms its type.",
                               field="service_id", remedy=Remedy.SERVICE_EDITS)
        return record, row

    def _changes(self, changed: Sequence[StoredRecord]) -> str:
        """Each record decided on that changed since it was read, and how, as stored now (`DecidedOnChanged`)."""
        stored = {r.key: r for r in self.store.records(service_ids=[r.service_id for r in changed])}
        said = []
        for before in changed:
            after = stored.get(before.key, before)
            if after.status != before.status:
                how = f"now {after.status}" + (f": {after.retired_reason}" if after.retired_reason else "")
            elif after.problem != before.problem:
                how = f"it now cannot be used: {after.problem}" if after.problem else "its problem is mended"
            else:
                how = "its source's record is new"
            said.append(f"{(before.service or {}).get('name') or before.service_id} changed at its source while you "
                        f"decided ({how})")
        them = "it" if len(changed) == 1 else "them"
        return f"{'; '.join(said)}: look at {them} again; nothing was decided."

    @staticmethod
    def _item(record: StoredRecord, row: ReviewRow, index: Enrichments) -> ReviewItem:
        own = item_from_json(record.item, record.raw)
        item = enriched(own, index.matching(own.keys))
        service = record.service or {}
        return ReviewItem(
            service_id=record.service_id, name=str(service.get("name") or own.candidate.fields.get("name") or ""),
            source=record.source, source_id=record.source_id, state=row.state, type_status=record.type_status,
            proposed_type=record.proposed_type, proposed_subtype=record.proposed_subtype, evidence=item.evidence,
            decided_type=row.decided_type, decided_subtype=row.decided_subtype, reason=row.reason,
            decided_by=row.decided_by, decided_at=row.decided_at,
            evidence_changed=row.decided_on_evidence is not None and row.decided_on_evidence != record.evidence_digest,
            retired=record.status == "retired", queued_at=row.queued_at, service=service, raw=record.raw,
            record=record)

    # --- deciding -----------------------------------------------------------------------------------------

    def accept(self, service_ids: Sequence[str], *, actor: str, service_type: str | None = None,
               subtype: str | None = None, level: int | None = None) -> list[ReviewItem]:
        """Accept each record as the given type (and subtype), or as the type its source proposes. All or
        nothing: one that cannot be accepted so stops the lot, naming it and why."""
        chosen = _parse_level(level, parse_type(service_type).value if service_type else None)
        decisions = []
        for record, row in self._chosen(service_ids):
            decided_type = chosen or record.proposed_type
            if decided_type is None:
                raise InvalidValue(f"No type is proposed for '{record.service_id}' ({record.type_status}); accept it "
                                   "with --type (and --subtype), or reject it.", field="type")
            as_proposed = decided_type == record.proposed_type
            decided_subtype = subtype if subtype is not None else record.proposed_subtype if as_proposed else None
            self._check(record, decided_type, decided_subtype)
            decisions.append((record, row, replace(row, state="accepted", decided_type=decided_type,
                                                   decided_subtype=decided_subtype, reason=None)))
        return self._decide(decisions, actor, "accept")

    def reject(self, service_ids: Sequence[str], *, actor: str, reason: str) -> list[ReviewItem]:
        reason = given_reason(reason)
        decisions = [(record, row, replace(row, state="rejected", decided_type=None, decided_subtype=None,
                                           reason=reason)) for record, row in self._chosen(service_ids)]
        return self._decide(decisions, actor, "reject")

    @staticmethod
    def _check(record: StoredRecord, service_type: str, subtype: str | None) -> None:
        if record.service is None:
            raise InvalidValue(f"'{record.service_id}' cannot be used as it stands ({record.problem}); reject it, "
                               "or fix it at the source.", field="service_id")
        try:
            Service.stored(with_type(record.service, ServiceType(service_type).value, subtype))
        except ValidationError as exc:
            raise InvalidValue(f"'{record.service_id}' cannot be {service_type}"
                               f"{':' + subtype if subtype else ''}: "
                               + "; ".join(e["msg"] for e in exc.errors()), field="subtype") from None
        except DomainError as exc:
            raise InvalidValue(exc.message, field=exc.field or "subtype") from None

    def _decide(self, decisions: list[tuple[StoredRecord, ReviewRow, ReviewRow]], actor: str, action: str
                ) -> list[ReviewItem]:
        """Each record's decision (its review row before, and as decided) written with its audit rows in one
        transaction, then the live index brought up to it (refused after the commit: `DecisionNotShown`); the items
        as decided, from the records and rows read to decide (`_chosen`), which the decision leaves as they were but
        the rows it writes."""
        at = now()
        rows, audits, live_changed = [], [], set()
        for record, before, decided in decisions:
            decided = replace(decided, decided_by=actor, decided_at=at, decided_on_evidence=record.evidence_digest)
            rows.append(decided)
            if action == "accept":
                changes = [Change("service_type", before.decided_type, decided.decided_type),
                           Change("subtype", before.decided_subtype, decided.decided_subtype)]
            else:
                changes = [Change("review_reason", before.reason, decided.reason)]
            # The decision itself is always logged (deciding again on new evidence is news); a field it leaves as
            # it was is not ("subtype: null → null" said nothing and read as if something changed).
            audits.append(Audit(actor, action, record.service_id,
                                (Change("review", before.state, decided.state),
                                 *(c for c in changes if c.old != c.new))))
            if shown(record, decided) != shown(record, before):
                live_changed.add(record.key)
        changed = self.store.write_decisions([record for record, _, _ in decisions], rows, audits,
                                             live_changed=live_changed)
        if changed:
            raise DecidedOnChanged(self._changes(changed))
        reached("applied")
        index = self._enrichments(record for record, _, _ in decisions)
        items = [self._item(record, row, index) for (record, _, _), row in zip(decisions, rows)]
        if self.live is None:
            record_pending(self.store)
            return items
        self.live.follow(self.store, partial(DecisionNotShown, items))  # after the commit: the decisions stand
        return items
