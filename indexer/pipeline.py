"""The source-agnostic pipeline: candidate rows → validated, placed, classified, merged records → index.

Nothing is dropped silently: every row ends up indexed, merged into another, held for review (`Held`: a
type its source only suggests, which the caller queues once the new index is live), or rejected with its
file, line and reason in the report. And the live directory is never lost to a bad import: the new index is
not swapped in (`ImportRefused`, with the report) when a source could not be read at all, when no record
is left to index, or when it would drop more than the allowed share of the live index's services.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import lru_cache
from operator import attrgetter
from typing import Any, Protocol, TypeVar, cast, runtime_checkable

import numpy as np
from pydantic import ValidationError

from geodata.geography import Geography
from geodata.areas import AreaCodes, check_coordinates, outside_england
from geodata.errors import GeodataError, InvalidPostcode, TerminatedPostcode, UnknownPostcode
from indexer.merge import Keyed, MergeNote, Merging, Precedence, merged_ids, same_id
from indexer.needs import extract_needs_and_gender, gender_words
from indexer.precedence import source_precedence
from indexer.rows import Candidate, Held, Rejection, Row, Stated, place
from rehabmap.errors import DomainError, IndexNotBuilt, shorten
from rehabmap.index.base import IndexWriter, Parts, PartWriter, Replaced, Stored
from rehabmap.record import IMPORTED, SYNCED, Provenance, Service, contact_problem, source_of
from rehabmap.taxonomy import Classification, NotRehab, ServiceType, classify_label, refuse_secure, said_of


class Placer(Protocol):
    """The slice of geography the pipeline needs: a service's point from its postcode, areas from a point."""

    def place_postcode(self, postcode: str) -> tuple[float, float, str | None]:
        """The postcode's point and local authority, or `Unplaceable` saying why it cannot place a service."""
        ...

    def lad_of_postcode(self, postcode: str) -> str | None: ...

    def area_codes_all(self, lats: list[float], lons: list[float],
                       lads: list[str | None]) -> list[AreaCodes | GeodataError]:
        """Per point its areas, or the error that rejects it (bad coordinates, outside England)."""
        ...

    def forked(self) -> Placer:
        """This placer for a forked worker process (`indexer.workers`), which must not use its parent's
        connections to files."""
        ...


class RowWorkers(Protocol):
    """Processes that prepare and store an import's rows (`indexer.workers.Workers`), given to `build_index` by
    its caller: this module does not import them (they use its steps), and a server's start never loads them."""

    def prepare(self, rows: Iterable[Row], placer: Placer, report: IndexReport,
                parts: Parts, progress: bool) -> Iterator[Service | Keyed]:
        """`prepare_rows` across the processes, each record stored in a part file, with the keys it is merged by."""
        ...


class Unplaceable(ValueError):
    """A postcode that cannot place a service, and why, without naming the field: the pipeline names it as the
    row's source does (`Candidate.postcode_named`)."""


def _unplaceable(postcode: str, error: GeodataError) -> str:
    """Why a postcode cannot place a service, in an importer's words. Not geodata's own, which are the public
    search's: "try the first half of it (for example 'LS9')" is right for a person's home, and wrong for a
    service, which needs its full postcode (a half is refused)."""
    base = "a service needs the full postcode of its base"
    if isinstance(error, UnknownPostcode):
        return f"'{postcode}' is not a current postcode: the ONS Postcode Directory for England does not hold it. " \
               f"Check it; {base}"
    if isinstance(error, TerminatedPostcode):
        return f"'{postcode}' is not a current postcode: it was terminated ({error.terminated}). Give the current " \
               "postcode of the service's base"
    if isinstance(error, InvalidPostcode):
        return f"'{postcode}' is not a postcode; {base} (like 'LS9 7TF')"
    return error.message  # one outside England says where it is, and that the directory lists England only


class GeographyPlacer:
    """Places services with the offline geodata. Only a full postcode is precise enough for a service."""

    def __init__(self, geography: Geography) -> None:
        self.geography = geography

    def place_postcode(self, postcode: str) -> tuple[float, float, str | None]:
        try:
            point = self.geography.postcodes.lookup(postcode)
        except GeodataError as error:
            raise Unplaceable(_unplaceable(postcode, error)) from None
        if point.precision != "postcode":
            raise Unplaceable(f"'{postcode}' is only a {point.precision}; a service needs the full postcode of "
                              "its base")
        return point.lat, point.lon, point.lad_code

    def forked(self) -> GeographyPlacer:
        return GeographyPlacer(self.geography.forked())

    def lad_of_postcode(self, postcode: str) -> str | None:
        """ONS's local authority of a full postcode the directory knows, else None (a terminated, unknown or
        partial postcode): the row's coordinates then place it by the boundaries alone, as before."""
        try:
            point = self.geography.postcodes.lookup(postcode)
        except GeodataError:
            return None
        return point.lad_code if point.precision == "postcode" else None

    def area_codes_all(self, lats: list[float], lons: list[float],
                       lads: list[str | None]) -> list[AreaCodes | GeodataError]:
        if _all_within_range(lats, lons):  # the usual chunk: no point to reject one by one
            return [areas if areas is not None else outside_england()
                    for areas in self.geography.locate_all(lats, lons, lads)]
        checked: list[int] = []
        found: list[AreaCodes | GeodataError | None] = []
        for i, (lat, lon) in enumerate(zip(lats, lons)):
            try:
                check_coordinates(lat, lon)
                checked.append(i)
                found.append(None)
            except GeodataError as exc:
                found.append(exc)
        located = self.geography.locate_all([lats[i] for i in checked], [lons[i] for i in checked],
                                            [lads[i] for i in checked])
        for i, areas in zip(checked, located):
            found[i] = areas if areas is not None else outside_england()
        return found  # type: ignore[return-value]


def _all_within_range(lats: list[float], lons: list[float]) -> bool:
    """Whether `check_coordinates` passes every point, decided for all of them at once: its per-point call
    cost ~2 µs a row, and a failing comparison (NaN, out of range, not a number) sends the chunk back to
    it, point by point, for each point's own error."""
    try:
        lat, lon = np.asarray(lats, dtype=float), np.asarray(lons, dtype=float)
    except (TypeError, ValueError):
        return False
    return bool(((lat >= -90.0) & (lat <= 90.0)).all() and ((lon >= -180.0) & (lon <= 180.0)).all())


LOSS_EXAMPLES = 5  # lost services named in the report
_SERVICE_TYPE = attrgetter("service_type")
T = TypeVar("T")


@dataclass(frozen=True)
class Loss:
    """The services of the live index that a new index would not hold."""

    live: int                                   # services in the live index
    lost: list[str]                             # their ids, sorted
    by_source: dict[str, int]                   # how many of them each source (id prefix) held
    examples: list[tuple[str, str]]             # the first few lost: (id, name)

    @property
    def share(self) -> float:
        return len(self.lost) / self.live if self.live else 0.0

    def lines(self, verb: str) -> list[str]:
        if not self.lost:
            return []
        sources = ", ".join(f"{source} {count}" for source, count in self.by_source.items())
        return [f"{verb} {len(self.lost)} of {self.live} live services ({self.share:.0%}): {sources}",
                *(f"  {verb} {service_id}  {name}" for service_id, name in self.examples)]


@dataclass
class IndexReport:
    read: int = 0           # the sources' rows (files, tables)
    stored: int = 0         # the sync store's records a rebuild reads beside them (`Candidate.synced`)
    indexed: int = 0        # the new index's records, from both
    merged: list[MergeNote] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    held: list[Held] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    by_type: dict[str, int] = field(default_factory=dict)
    loss: Loss | None = None
    swapped: bool = False   # the new index went live

    def summary_lines(self) -> list[str]:
        # The store's records counted apart: `rehabmap index` of the 2018 hospital list (1,231 rows) over a synced
        # home read "read 1237, indexed 6", the 6 the store's CQC care homes, none of them the file's.
        stored = f" rows and {self.stored} records of the sync store" if self.stored else ""
        lines = [f"read {self.read}{stored}, indexed {self.indexed}, merged {len(self.merged)}, "
                 f"rejected {len(self.rejected)}" + (f", held for review {len(self.held)}" if self.held else "")]
        lines += [f"  {t}: {n}" for t, n in sorted(self.by_type.items())]
        lines += self.loss.lines("dropped" if self.swapped else "would drop") if self.loss else []
        lines += [f"merged {m.merged} into {m.kept} (same {m.key})" for m in self.merged]
        lines += [f"warning {w}" for w in self.warnings]
        lines += [f"rejected {r}" for r in self.rejected]
        return lines


class ImportRefused(DomainError):
    """The new index was not swapped in; the live one serves on, unchanged. `report` says what was read."""

    status = 409
    code = "import_refused"

    def __init__(self, message: str, report: IndexReport) -> None:
        super().__init__(message)
        self.report = report


@runtime_checkable
class CarriesServices(Protocol):
    """A writer that lays services of its own over every build, whatever the sources hold (the
    maintainers' overlay): they are not lost when the sources lack them."""

    def carried_ids(self) -> set[str]: ...


Step = TypeVar("Step", bound=Callable[..., Any])
# Each step of a row's preparation (`prepare_all`) with the record's fields it reads: `reads` declares them where the
# step is written, and a reason the step rejects a row for is about them (`Candidate.rejected`)
STEP_READS: dict[Callable[..., Any], frozenset[str]] = {}


def reads(*fields: str) -> Callable[[Step], Step]:
    """Declares the record's fields the step reads (`label_text`: the row's label text, which it is given apart), the
    one home of them: a rejection the step makes says first that its row is short where a cell the row may have lost
    gives one of them (`Candidate.rejected`), so a field the step read undeclared would lose that word where the lost
    cell explains the rejection. tests/indexer/test_pipeline.py runs every step so declared over the real lists' rows
    and a row giving every field, and fails where one reads a field it does not declare."""
    def declared(step: Step) -> Step:
        STEP_READS[step] = frozenset(fields)
        return step
    return declared


def _about(step: Callable[..., Any]) -> frozenset[str] | None:
    """What a rejection by `step` is about: the fields it declares it reads; None (not known which: every reason
    says the row is short first) for a step declaring none, such as one a test puts in its place."""
    return STEP_READS.get(step)


@lru_cache(maxsize=4096)
def _label_meaning(label: str) -> Classification | NotRehab | None:
    """`classify_label`, remembered: a source repeats a few hundred labels over thousands of rows (its
    type terms, a feed's taxonomy), and the label rules were a sixth of the import's time."""
    try:
        return classify_label(label)
    except NotRehab as exc:
        return exc


@reads("name", "original_label", "label_text", "service_type", "subtype", "provider_type", "legacy_locked_label",
       "pd_specialist")
def _classify(fields: dict[str, Any], label_text: str) -> None:
    name = fields.get("name") if isinstance(fields.get("name"), str) else ""
    # A secure unit is not rehab whatever type a source, a mapping default or a feed's term gives it.
    refuse_secure(name)
    original = fields.get("original_label")
    if not isinstance(original, str):
        refuse_secure(original)
    label = original or label_text or name
    # An original label that is text is the label classified next, which refuses a secure unit in turn.
    meaning = (_label_meaning(label) if isinstance(label, str) else classify_label(label)) if label else None
    if isinstance(meaning, NotRehab):
        raise NotRehab(str(meaning))
    # The label alone is remembered; whose service it is, a row's own: a VCFSE reading of an NHS trust's or a
    # council's site says nothing, so the row is typed (or its type proposed for review) as one whose label
    # says nothing, never as a voluntary service. Asked only of a VCFSE reading: asked of every row, the call
    # was ~1,500 instructions a row (0.7%; ~390, 0.17%, now: `bench.build_instructions --part prepare`).
    classification = meaning if meaning is None or meaning.service_type is not _VCFSE \
        else said_of(meaning, fields.get("provider_type"))
    if fields.get("service_type") is None:
        if classification is None:
            why = _STATUTORY_VCFSE if meaning is not None else ""  # a reading the provider rule set aside
            raise ValueError(f"cannot tell the service type from '{shorten(label)}'{why}"
                             "; give a service_type or a recognised label")
        fields["service_type"] = classification.service_type
        fields.setdefault("subtype", classification.subtype)
    if classification is not None and _same_type(fields["service_type"], classification.service_type):
        fields["legacy_locked_label"] = fields.get("legacy_locked_label") or classification.legacy_locked
        fields["pd_specialist"] = fields.get("pd_specialist") or classification.pd_specialist
        if fields.get("subtype") is None:
            fields["subtype"] = classification.subtype


_VCFSE = ServiceType.vcfse
_STATUTORY_VCFSE = " (it reads as a voluntary-sector service, which an NHS or council provider's is not)"


def _same_type(given: Any, service_type: ServiceType) -> bool:
    """`ServiceType(given) == service_type`, without the enum's call (~2 µs a row) when `given` is that
    type or its value, as it nearly always is: a row whose type agrees with its label. A member is a str
    equal to its value, so text compares with it directly (`.value` is a Python-level property, ~0.4 µs)."""
    return given is service_type or (type(given) is str and given == service_type) \
        or ServiceType(given) == service_type


_CONTACTS = ("phone", "email", "website")


def refused_contacts(candidate: Candidate) -> dict[str, str]:
    """Per phone, email or website the record refuses, the warning that says so (the field is dropped with it,
    the service kept: `without_bad_contacts`). Keyed by the field, so a sync keeps each warning beside the field
    it is about (`indexer.sync.store.LeftOutDetail`), never read back from its words."""
    refused = {}
    for name in _CONTACTS:
        value = candidate.fields.get(name)
        if value is not None:
            problem = (contact_problem(name, value, completing=True) if isinstance(value, str)
                       else f"'{shorten(value)}' is not text")
            if problem:
                refused[name] = f"{name} {problem}: dropped, the service is kept"
    return refused


def without_bad_contacts(candidate: Candidate, refused: dict[str, str] | None = None) -> Candidate:
    """A phone, email or website the record refuses is dropped with a warning, and the service kept: by an
    import and by a sync alike (`indexer.sync.runner.prepare_items`, which gives what `refused_contacts` found).

    A directory maintainer would rather list a rehab unit without its website than lose the unit from
    every search over one bad cell; the bad value itself ('javascript:…') is never stored or republished,
    and the warning names the row, so the source can be fixed."""
    refused = refused_contacts(candidate) if refused is None else refused
    if not refused:
        return candidate
    fields = {k: v for k, v in candidate.fields.items() if k not in refused}
    return replace(candidate, fields=fields, warnings=[*candidate.warnings, *refused.values()])


@reads("name", "description", "label_text", "gender")
def _extract_needs(fields: dict[str, Any], label_text: str) -> None:
    """The needs and the gender the row's words suggest, kept apart from those it states
    (`Service.needs_read_from_text`, `Service.gender_read_from_text`): a word in a description is a guess,
    never a statement (before session 17 read needs were merged into the stated lists, and before session 18
    a read gender was the record's gender: each then counted as confirmed, and a gender left a person out).
    Most texts suggest neither: the row is then left as it is. A row that states its gender is not read for
    one (the record would drop it: `Service._consistent`), and the words are not searched."""
    text = " ".join(filter(None, [fields.get("name"), fields.get("description"), label_text]))
    met, not_met, gender = extract_needs_and_gender(text)
    if met:
        fields["needs_read_from_text"] = met
    if not_met:
        fields["needs_read_not_met"] = not_met
    if gender is not None and fields.get("gender") is None:
        fields["gender_read_from_text"] = {gender: gender_words(gender, text)}


@reads("postcode", "lat", "lon")
def _locate(fields: dict[str, Any], placer: Placer, postcode_named: str) -> tuple[float, float, str | None]:
    """The row's point (from its postcode when it has no coordinates) and its postcode's LAD, if any, also
    beside coordinates: the generalised boundaries agree with ONS's postcode directory for only ~98% of single
    postcodes (../shared/data/README.md), and put CQC's Maison Moti Care Home (N14 4PH, Enfield) in Barnet, so
    that Enfield read as having no care home. A home's postcode is read the same way."""
    postcode = fields.get("postcode")
    if fields.get("lat") is None or fields.get("lon") is None:
        if not postcode:
            raise ValueError("no coordinates and no postcode to place the service")
        try:
            fields["lat"], fields["lon"], lad = placer.place_postcode(postcode)
        except Unplaceable as exc:
            raise ValueError(f"{postcode_named}: {exc}") from None
        return float(fields["lat"]), float(fields["lon"]), lad
    try:
        lat, lon = float(fields["lat"]), float(fields["lon"])
    except (TypeError, ValueError, OverflowError):
        # An ORUK feed's coordinates are its JSON values as given: text, a list, or a whole number too large for a
        # float, whose OverflowError no step caught (the import ended in a traceback, every other row unread).
        raise ValueError(f"lat, lon: '{shorten(fields['lat'])}', '{shorten(fields['lon'])}' are not both numbers "
                         "(degrees of latitude and longitude)") from None
    return lat, lon, placer.lad_of_postcode(postcode) if postcode else None


_REJECTABLE = (DomainError, GeodataError, ValidationError, ValueError, TypeError)


def _rejection(candidate: Candidate, exc: Exception, about: frozenset[str] | None) -> Rejection:
    """The candidate's rejection for `exc`, about the fields `about` (None: not known which), said first to be of a
    row read short where it may be cut in two and a cell it may have lost gives one of them (`Candidate.rejected`)."""
    if isinstance(exc, ValidationError):
        about = frozenset(str(e["loc"][0]) for e in exc.errors() if e["loc"]) or None
    return Rejection(candidate.origin, candidate.rejected(_reason(exc), about))


def _reason(exc: Exception) -> str:
    if isinstance(exc, NotRehab):
        return f"not indexed: {exc}"
    if isinstance(exc, DomainError | GeodataError):
        return exc.message
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg']}" for e in exc.errors())
    return str(exc)


def prepare_all(candidates: list[Candidate], placer: Placer) -> list[Service | Rejection]:
    """Candidate rows → valid records or rejections that say why, in order; areas found in one batch."""
    outcomes: list[Service | Rejection | tuple[dict[str, Any], Candidate]] = []
    points: list[tuple[float, float, str | None]] = []
    for candidate in candidates:
        # The caller's row stays as it was; the copy of its fields is the pipeline's own to fill in (only the
        # fields: a new `Candidate` around them would cost a Python `__init__` a row).
        fields, label_text = dict(candidate.fields), candidate.label_text
        step: Callable[..., Any] = _classify  # the step running: a rejection is about the fields it reads
        try:
            _classify(fields, label_text)
            step = _extract_needs
            _extract_needs(fields, label_text)
            step = _locate
            points.append(_locate(fields, placer, candidate.postcode_named))
            outcomes.append((fields, candidate))
        except _REJECTABLE as exc:
            outcomes.append(_rejection(candidate, exc, _about(step)))
    lats, lons, lads = (list(column) for column in zip(*points)) if points else ([], [], [])
    areas = iter(placer.area_codes_all(lats, lons, lads) if points else [])
    for i, outcome in enumerate(outcomes):
        if type(outcome) is tuple:
            outcomes[i] = _finish(*outcome, next(areas))
    return outcomes  # type: ignore[return-value]


def _finish(fields: dict[str, Any], candidate: Candidate, areas: Any) -> Service | Rejection:
    origin = candidate.origin
    about = _about(_locate)  # the areas are found from the point it gave
    try:
        if isinstance(areas, Exception):
            raise areas
        fields["areas"], about = areas, None
        fields.setdefault("id", f"{origin.source}:{origin.source_id}")
        # Validated by pydantic-core directly: what `Provenance(...)` and `Service.model_validate` do, without
        # their Python frames around the call (~1 µs a row).
        fields["provenance"] = [_validate_provenance({
            "source": origin.source, "source_id": str(origin.source_id), "licence": origin.licence,
            "fetched_at": origin.fetched_at or datetime.now(timezone.utc), "file": origin.file, "line": origin.line,
            "edition": origin.edition}),
            # where the source says it had the record from (an ORUK feed's); a synced record read again by a
            # rebuild carries its own first, made again above
            *(p for p in fields.get("provenance", ()) if p["source"] != origin.source)]
        return _validate_service(fields, context=SYNCED if candidate.synced else IMPORTED)
    except _REJECTABLE as exc:
        return _rejection(candidate, exc, about)


_validate_provenance = Provenance.__pydantic_validator__.validate_python
_validate_service = Service.__pydantic_validator__.validate_python


def prepare(candidate: Candidate, placer: Placer) -> Service | Rejection:
    """One candidate row → a valid record, or a rejection that says why."""
    return prepare_all([candidate], placer)[0]


CHUNK = 2000


@contextmanager
def collector_paused() -> Iterator[None]:
    """Keep the cyclic garbage collector out of a bulk build.

    A build allocates millions of objects that all live to its end; every few thousand allocations the
    collector walks the survivors, and at 10k rows that was a third of the time spent validating records
    (bench/RESULTS.md). The pipeline makes almost no reference cycles, so nothing piles up meanwhile, and
    the collector runs as usual once the build is over."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _synced(rows: Iterable[Row], synced: set[tuple[str, str | None]]) -> Iterator[Row]:
    """The rows, each read from the sync's store (`Candidate.synced`) noted in `synced` by its record's id and file
    (or page) as it is read, before it is merged (`indexer.merge.Merging`: the base of its id's copies, whose keys
    alone are its id's, as a sync's live write merges it). A synced record's fields hold its id."""
    for row in rows:
        if isinstance(row, Candidate) and row.synced:
            synced.add((str(row.fields["id"]), row.origin.file))
        yield row


def build_index(rows: Iterable[Row], placer: Placer, writer: IndexWriter, *,
                live: Replaced | None = None, max_drop_share: float = 0.0, force: bool = False,
                progress: bool = True, workers: RowWorkers | None = None,
                precedence: Precedence | None = None, build: str | None = None) -> IndexReport:
    """Run the whole pipeline; the writer swaps the new index in only once it is complete, and only if
    it keeps the live directory: `live` is the index it replaces, of whose services the new one may drop
    at most `max_drop_share` (0 to 1) unless `force`. Raises ImportRefused, writing nothing, otherwise.
    `workers` (`indexer.workers.Workers`): a large import's rows are prepared and stored by other processes, where
    the writer takes records in part files; the index and the report are the same, and a refused index is
    written, then deleted (the checks need every record, which are written as they come). `precedence`: which
    source's value a merged record shows (None: as the mappings declare, `source_precedence`, which a live write
    reads too). `build`: the token the new index bears (`IndexWriter.replace_all`)."""
    precedence = source_precedence() if precedence is None else precedence
    with collector_paused():
        return _build_index(rows, placer, writer, live, max_drop_share, force, progress, workers, precedence, build)


def _build_index(rows: Iterable[Row], placer: Placer, writer: IndexWriter,
                 live: Replaced | None, max_drop_share: float, force: bool, progress: bool,
                 workers: RowWorkers | None, precedence: Precedence, build: str | None) -> IndexReport:
    report = IndexReport()
    parts = writer.parts() if workers is not None and isinstance(writer, PartWriter) else None
    synced: set[tuple[str, str | None]] = set()  # the synced records', noted as their rows are read (`_synced`)
    rows = _synced(rows, synced)
    merging = Merging(precedence, synced)
    if parts is None:
        merged = merging.merge_all(prepare_rows(rows, placer, report, progress))
        _noted(report, merging)
        _check_keeps_live(report, merged, writer, live, max_drop_share, force)
        report.indexed = writer.replace_all(cast(list[Service], merged), build=build)  # records in, records out
    else:
        assert isinstance(writer, PartWriter) and workers is not None
        # The records are merged and written as the workers send them, so this process's share of the work runs
        # beside theirs; whether the new index may replace the live one is asked once all are written.

        def keeps_live() -> None:
            _noted(report, merging)
            _check_keeps_live(report, merging.kept(), writer, live, max_drop_share, force)

        try:
            report.indexed = writer.replace_all(
                merging.stream(workers.prepare(rows, placer, report, parts, progress)),
                before_swap=keeps_live, build=build)
        finally:
            parts.remove()
        merged = merging.kept()
    report.swapped = True
    # Counted by the members themselves (a str subclass: hashed at C speed), then named: an enum's `.value`
    # is a Python-level property, ~0.4 µs a call, and this was two calls a row.
    by_type = Counter(map(_SERVICE_TYPE, merged))
    report.by_type = {service_type.value: count for service_type, count in by_type.items()}
    return report


def prepare_rows(rows: Iterable[Row], placer: Placer, report: IndexReport,
                 progress: bool = False) -> list[Service]:
    """Every row checked, placed and validated, before anything is merged or written: the services, with
    `report` counting what was read and naming each row rejected or held and each warning. A table's check
    before upload (`indexer.upload`) is this step, so it finds every problem an import would."""
    services: list[Service] = []
    for chunk in read_chunks(rows, report, progress):
        collect(chunk, prepare_all(candidates_of(chunk), placer), report, services)
    return services


def read_chunks(rows: Iterable[Row], report: IndexReport,
                progress: bool) -> Iterator[list[Candidate | Rejection]]:
    """The rows to prepare, `CHUNK` at a time, in order: those held for review and each row's warnings go to
    `report` as they are read (of a row that makes no record, `Stated`, its warnings alone)."""
    chunk: list[Candidate | Rejection] = []
    held: dict[tuple[str, str | None], Held] = {}

    from tqdm import tqdm  # here: every server start imports this module, and only a build shows progress

    for row in tqdm(rows, desc="indexing", unit=" rows", disable=not progress, leave=False):
        if isinstance(row, Stated):
            _warned(row, report)
            continue
        if isinstance(row, Candidate) and row.synced:
            report.stored += 1
        else:
            report.read += 1
        if isinstance(row, Held):
            _warned(row.candidate, report)
            first = held.setdefault((row.candidate.origin.source, row.candidate.origin.source_id), row)
            if first is row:
                report.held.append(row)
            else:
                report.merged.append(_held_twice(first, row))
            continue
        if isinstance(row, Candidate):
            row = without_bad_contacts(row)
            _warned(row, report)
        chunk.append(row)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _warned(row: Candidate | Stated, report: IndexReport) -> None:
    """The row's warnings in `report`, each by its file and line: of a row indexed or held for review alike, as
    either keeps what the row says, and of a `none` row (`Stated`), which states what it says."""
    report.warnings += [f"{place(row.origin.file, row.origin.line)}: {w}" for w in row.warnings]


def candidates_of(chunk: list[Candidate | Rejection]) -> list[Candidate]:
    return [row for row in chunk if isinstance(row, Candidate)]


def collect(chunk: list[Candidate | Rejection], prepared: Iterable[T | Rejection], report: IndexReport,
            into: list[T]) -> None:
    """A chunk's outcomes in its rows' order: `prepared`, one for each of its candidates, and the rejections an
    importer made; rejections go to `report`, the rest `into`."""
    outcomes = iter(prepared)
    for row in chunk:
        outcome = row if isinstance(row, Rejection) else next(outcomes)
        if isinstance(outcome, Rejection):
            report.rejected.append(outcome)
        else:
            into.append(outcome)


def _noted(report: IndexReport, merging: Merging) -> None:
    """What the merge did in `report`: what was merged into what, and, as warnings, what it decided by the store's
    order alone (`Merging.guesses`), in an order that does not depend on the rows'."""
    report.merged += merging.make_notes()
    report.warnings += sorted(merging.guesses)


def _held_twice(first: Held, again: Held) -> MergeNote:
    """A row held for review with the id of one held before: one record per id in the review queue, which
    took the later without a word (the 2019 hospital list gives four Cygnet rows twice, the same but for their
    OrganisationID). Merged into the first, saying whether anything is lost."""
    at, origin = first.candidate.origin, again.candidate.origin
    same = (first.candidate.fields, first.candidate.label_text) == (again.candidate.fields, again.candidate.label_text)
    return same_id(place(at.file, at.line), place(origin.file, origin.line), f"{at.source}:{at.source_id}", same,
                   "which the review queue does not get")


def _check_keeps_live(report: IndexReport, merged: list[Service | Stored], writer: IndexWriter,
                      live: Replaced | None, max_drop_share: float, force: bool) -> None:
    """Raise ImportRefused unless the new index may replace the live one (see `build_index`)."""
    unreadable = [r for r in report.rejected if r.fatal]
    if unreadable:
        more = f" (and {len(unreadable) - 1} more sources listed in the report)" if len(unreadable) > 1 else ""
        first = unreadable[0]
        raise ImportRefused(f"nothing could be imported from {first.origin.file}: {first.reason}{more}; "
                            "the live index is unchanged.", report)
    if not merged:
        held = (f" The {len(report.held)} rows held for review go to the review queue only with an import that "
                "goes live: index them together with the directory's other sources." if report.held else "")
        raise ImportRefused(f"nothing to index: none of the {report.read} rows read became a service (see the "
                            f"rejections in the report); the live index is unchanged.{held}", report)
    if live is None:
        return
    carried = writer.carried_ids() if isinstance(writer, CarriesServices) else set()
    loss = report.loss = _loss(live, {s.id for s in merged} | carried | merged_ids(report.merged))
    if loss is not None and loss.share > max_drop_share and not force:
        raise ImportRefused(
            f"the new index would drop {len(loss.lost)} of the {loss.live} live services ({loss.share:.0%}), more "
            f"than the {max_drop_share:.0%} allowed, so the live index is unchanged. Check the sources; to accept "
            "the loss, index again with --force, or allow a larger share with --max-drop-share or "
            "REHABMAP_INDEX_MAX_DROP_SHARE.", report)


def _loss(live: Replaced, kept: set[str]) -> Loss | None:
    """What the live index holds that `kept` lacks; None when there is no live index to lose."""
    try:
        live_ids = live.ids()
    except IndexNotBuilt:  # none yet, or one this version cannot read (the rebuild is its cure)
        return None
    lost = sorted(set(live_ids) - kept)
    by_source = Counter(map(source_of, lost))
    return Loss(len(live_ids), lost, dict(by_source.most_common()),
                [(service_id, _name_in(live, service_id)) for service_id in lost[:LOSS_EXAMPLES]])


def _name_in(live: Replaced, service_id: str) -> str:
    """The service's name, for the report; an index written by an older rehabmap may hold a record this
    one refuses to read (say, a website that is not a web address), which is no reason to stop."""
    try:
        service = live.get(service_id)
    except (ValidationError, DomainError):
        return "(its record cannot be read)"
    return service.name if service is not None else ""


def chain(*sources: Iterable[Row]) -> Iterator[Row]:
    for source in sources:
        yield from source
