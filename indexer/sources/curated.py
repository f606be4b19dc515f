"""Curated tables: what no open source lists, filled in and verified by maintainers from the CSV templates in
`templates/curated/` (each table's data dictionary is `TableSpec.dictionary`; their README repeats it).

* `ips_services.csv` — Individual Placement and Support services, per ICB (`icb_code`, E54…);
* `statutory_advocacy.csv` — IMHA, IMCA and Care Act advocacy, per upper-tier local authority (`utla_code`:
  a county or unitary authority, E06/E08/E09/E10…), one row per provider and `kind`;
* `community_rehab_teams.csv` — community mental health rehabilitation teams, per NHS trust (`trust_ods_code`),
  each with the ONS areas it serves.

`rehabmap index` recognises a table by its header. Every row is checked (required columns, postcodes, dates,
ONS codes against the real geography: the ICBs, local authorities and sub-ICB locations of England's small-area
table) and a bad row is rejected naming the file, line, column and reason, while good rows are indexed. A row
whose name is `none` says the area has no such service: it is not a record, but it lets the area be covered.

A table is *verified* for an area when every one of its rows for that area has `verified_by` and
`verified_on`; then the area is covered for the table's type (`rehabmap.coverage`), as of the oldest of those
dates. `table_claims` gives those claims; `rehabmap index` records them.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from geodata.england import ENGLAND
from indexer.rows import Candidate, Origin, Rejection, Row, Stated
from indexer.sources.common import (
    CsvProblem,
    CsvRow,
    CsvTable,
    FileUnreadable,
    RowParser,
    compact,
    csv_table,
    named_more_than_once,
    named_more_than_once_reason,
    parse_date,
    parse_list,
    read_text,
    slugify,
)
from rehabmap.config import get_settings
from rehabmap.coverage import CURATED, Claim, SmallAreaTable
from rehabmap.england_day import england_today
from rehabmap.taxonomy import ServiceType

LICENCE = "maintainers' own (verified by the named person)"
NONE = "none"
ODS_TRUSTS_FILE = Path("services") / "ods_trusts_2021_etr.csv"
_CONTACT = {"organisation": "organisation", "address": "address", "postcode": "postcode", "phone": "phone",
            "email": "email", "website": "website", "referral_route": "referral_route", "description": "description"}
ADVOCACY_KINDS = ("imha", "imca", "care_act")


@dataclass(frozen=True)
class Column:
    """A template's column as its data dictionary gives it: the one home of that guide, which the keepers' upload
    page shows beside the blank templates and `templates/curated/README.md` repeats (a test holds it to this).
    Code, values and column names are between backticks."""

    name: str
    needed: str                       # when a row must fill it in; "" when never
    holds: str


_AREAS = "(ICB `E54…`, sub-ICB location `E38…` or local authority)"
_COMMON = (
    Column("organisation", "", "who runs it (an NHS trust, a charity, a council)"),
    Column("address", "", "its street address, lines separated by commas"),
    Column("postcode", "for a service", "the full postcode of its base, which places it on the map (`LS9 7TF`)"),
    Column("phone", "", "a phone number people can call"),
    Column("email", "", "an email address people can write to"),
    Column("website", "", "its web page (one without `https://` gets it)"),
    Column("referral_route", "", "how to refer, in a sentence (\"self-referral or through the community mental "
                                 "health team\")"),
    Column("description", "", "what it does, in plain words; needs it states (\"autism\", \"does not accept "
                              "restricted patients\") are read from it as from every source"),
    Column("verified_by", "to cover the area, and on a `none` row",
           "who checked the row with the service or commissioner (a name or role)"),
    Column("verified_on", "with `verified_by`", "when, `YYYY-MM-DD` (or `DD/MM/YYYY`); not in the future"),
    Column("notes", "", "for maintainers; not published"),
)
_NAME = "the service's name as people know it, or `none` to record that the area has no such service"


@dataclass(frozen=True)
class TableSpec:
    """One template: its source name, the column naming the area, its name column, and its type."""

    source: str
    file_name: str
    area: Column
    area_levels: tuple[str, ...]      # coverage levels the area code must be one of
    name_column: str
    service_type: ServiceType
    title: str                        # the table as a person reads it, where a service's source is named
    extra: tuple[Column, ...] = ()

    @property
    def area_column(self) -> str:
        return self.area.name

    @property
    def dictionary(self) -> tuple[Column, ...]:
        """Every column in the template's order, with when it is needed and what it holds."""
        return (self.area, *self.extra, Column(self.name_column, "yes", _NAME), *_COMMON)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.dictionary)

    @property
    def required(self) -> tuple[str, ...]:
        return (self.area_column, *(c.name for c in self.extra), self.name_column, "verified_by", "verified_on")


TABLES = (
    TableSpec("curated-ips", "ips_services.csv",
              Column("icb_code", "yes", "the ICB the service is commissioned for: `E54…` (e.g. `E54000054`, West "
                                        "Yorkshire)"),
              ("icb",), "service_name", ServiceType.ips_employment,
              "rehabmap's table of IPS employment services, kept by its maintainers",
              extra=(Column("serves", "", f"the ONS codes of the areas it serves {_AREAS}, separated by `;`; empty "
                                          "means the whole ICB"),)),
    TableSpec("curated-advocacy", "statutory_advocacy.csv",
              Column("utla_code", "yes", "the upper-tier local authority that commissions it, whose whole area it "
                                         "serves: a county (`E10…`), unitary (`E06…`), metropolitan district "
                                         "(`E08…`) or London borough (`E09…`)"),
              ("utla",), "service_name", ServiceType.advocacy,
              "rehabmap's table of statutory advocacy services, kept by its maintainers",
              extra=(Column("kind", "yes", "`imha` (Independent Mental Health Advocacy), `imca` (Independent Mental "
                                           "Capacity Advocacy) or `care_act` (Care Act advocacy); one row per kind"),)),
    TableSpec("curated-crt", "community_rehab_teams.csv",
              Column("trust_ods_code", "yes", "the NHS trust's ODS code (e.g. `RGD`, Leeds and York Partnership NHS "
                                              "Foundation Trust)"),
              (), "team_name", ServiceType.community_rehab_team,
              "rehabmap's table of community rehabilitation teams, kept by its maintainers",
              extra=(Column("serves", "yes", f"the ONS codes of the areas the team serves {_AREAS}, separated by "
                                             "`;`"),)),
)
_LEVEL_NAMES = {"icb": "an ICB code (E54…)",
                "utla": "an upper-tier local authority code (E06…, E08…, E09…, E10…)",
                "lad": "a local authority code", "sub_icb": "a sub-ICB location code (E38…)"}
_SERVES_LEVELS = ("icb", "sub_icb", "lad", "utla")


def blank_template(spec: TableSpec) -> str:
    """The table's template as a maintainer starts from it: its header row alone, as `templates/curated/` holds it
    (the keepers' upload page offers it for download, to maintainers who have no copy of the code)."""
    return ",".join(spec.columns) + "\n"


def _column_name(heading: str) -> str:
    """A column of a table's header as its spec names it: a heading is read whatever its case and spaces."""
    return heading.strip().lower()


def header_refusal(header: Sequence[str], spec: TableSpec) -> str | None:
    """Why a table of `spec`'s kind with this header is refused whole: it names one of the table's columns twice, so
    which of them a row's cell is read from cannot be told (an import's check, and an upload's before its rows)."""
    if doubled := named_more_than_once(header, spec.columns, _column_name):
        return named_more_than_once_reason(f"the {spec.file_name} table", doubled)
    return None


def spec_for(header: Sequence[str]) -> TableSpec | None:
    present = set(map(_column_name, header))
    return next((t for t in TABLES if set(t.required) <= present), None)


@dataclass(frozen=True)
class CuratedRow:
    """One row read and checked: the record it makes (None for a `none` row), the areas it speaks for, its
    category, whether it is verified (who, when), or why it is rejected; a `none` row's warnings (a record's
    travel on its candidate)."""

    line: int
    category: str
    areas: tuple[str, ...]
    candidate: Candidate | None
    verified_by: str | None
    verified_on: date | None
    problem: str | None
    warnings: tuple[str, ...] = ()


def read_curated(table: CsvTable, spec: TableSpec, file: str, source: str | None = None) -> Iterator[Row]:
    """The table's rows as candidates; a bad row as a rejection naming its line, column and reason."""
    return rows_of(check_rows(table, spec, file, source), spec, file, source)


def rows_of(checked: Iterable[CuratedRow], spec: TableSpec, file: str, source: str | None = None) -> Iterator[Row]:
    """Checked rows as the import takes them: a record's candidate, or the rejection; a `none` row is `Stated`,
    which makes no record (so a table whose every row says `none` is not an empty source) and whose warnings the
    import reports."""
    for row in checked:
        origin = Origin(source or spec.source, file, row.line, licence=LICENCE)
        if row.problem is not None:
            yield Rejection(origin, row.problem)
        elif row.candidate is not None:
            yield row.candidate
        else:
            yield Stated(origin, row.warnings)


def check_rows(table: CsvTable, spec: TableSpec, file: str, source: str | None = None) -> Iterator[CuratedRow]:
    geography = SmallAreaTable.load(get_settings().data_dir)
    trusts = _ods_trusts(get_settings().data_dir)
    if refusal := header_refusal(table.header, spec):
        yield CuratedRow(0, spec.service_type.value, (), None, None, None, refusal)
        return
    columns = {_column_name(h): h for h in table.header}
    for raw in table.rows:
        if isinstance(raw, CsvProblem):
            yield CuratedRow(raw.line, spec.service_type.value, (), None, None, None, raw.reason)
            continue
        yield _check(raw, spec, file, source, columns, geography, trusts)


def _check(raw: CsvRow, spec: TableSpec, file: str, source: str | None, columns: dict[str, str],
           geography: SmallAreaTable, trusts: frozenset[str] | None) -> CuratedRow:
    cell = {c: raw.values.get(columns.get(c, c), "").strip() for c in spec.columns}
    errors: list[str] = []
    warnings: list[str] = []
    failed: list[str] = []  # the columns of the errors, as the file names them

    def fail(column: str, reason: str) -> None:
        errors.append(f"column {column}: {reason}")
        failed.append(columns.get(column, column))

    area = cell[spec.area_column].upper()
    if not area:
        fail(spec.area_column, "empty; give the code of the area this row is for")
    elif spec.area_levels and not any(area in geography.codes_of(level) for level in spec.area_levels):
        fail(spec.area_column, f"'{area}' is not {' or '.join(_LEVEL_NAMES[lv] for lv in spec.area_levels)} "
                               "in England's current geography")
    elif not spec.area_levels and trusts is not None and area not in trusts:
        warnings.append(f"column {spec.area_column}: '{area}' is not in the 2021 list of NHS trusts "
                        "(a newer trust is fine; check the code)")
    kind = cell.get("kind", "").lower()
    category = spec.service_type.value
    if "kind" in spec.columns:
        if kind not in ADVOCACY_KINDS:
            fail("kind", f"'{cell['kind']}' is not one of {', '.join(ADVOCACY_KINDS)}")
        else:
            category = f"{category}:{kind}"
    serves = [code.upper() for code in parse_list(cell.get("serves", ""), "serves")]
    for code in serves:
        if code != ENGLAND and not any(code in geography.codes_of(level) for level in _SERVES_LEVELS):
            fail("serves", f"'{code}' is not an ONS code of an English ICB, sub-ICB location or local authority")
    if spec.area_column == "trust_ods_code" and not serves:
        fail("serves", "empty; give the ONS codes of the areas the team serves (ICB, sub-ICB or local authority)")
    areas = tuple(serves) if spec.area_column == "trust_ods_code" else (area,)
    verified_by, verified_on = cell["verified_by"] or None, None
    if cell["verified_on"]:
        try:
            verified_on = parse_date(cell["verified_on"], "verified_on")
        except ValueError as exc:
            fail("verified_on", str(exc).split(": ", 1)[1])
        else:
            if verified_on > england_today():
                fail("verified_on", f"{verified_on.isoformat()} is in the future")
    if bool(verified_by) != bool(cell["verified_on"]):
        fail("verified_by" if not verified_by else "verified_on",
             "give both verified_by and verified_on, or neither (a row without them is listed but not verified)")
    name = cell[spec.name_column]
    candidate = None
    if not name:
        fail(spec.name_column, f"empty; give the name, or '{NONE}' to record that the area has none")
    elif name.lower() != NONE:
        candidate, problems, given = _candidate(cell, spec, file, raw.line, source, name, kind, serves or [area],
                                                verified_on)
        errors += problems
        if not cell.get("postcode"):
            fail("postcode", "empty; a service needs the full postcode of its base")
    elif not verified_by:
        fail("verified_by", f"a '{NONE}' row says the area has no such service: it needs who verified it, and when")
    # A cell a short row leaves out is read as empty: where an error is of one, the row says first that it is short.
    problem = raw.rejected("; ".join(errors), failed) if errors else None
    read = [columns.get(c, c) for c in spec.columns]
    if candidate is not None:
        candidate.warnings.extend(warnings)
        raw.landed(candidate, read, {field: tuple(columns.get(c, c) for c in cut) for field, cut in given.items()})
    stated = tuple(warnings + raw.cut_of(read)) if candidate is None else ()  # a `none` row's: it has no candidate
    return CuratedRow(raw.line, category, areas, None if problem else candidate, verified_by, verified_on, problem,
                      stated)


def _candidate(cell: dict[str, str], spec: TableSpec, file: str, line: int, source: str | None, name: str,
               kind: str, serves: list[str], verified_on: date | None
               ) -> tuple[Candidate, list[str], dict[str, tuple[str, ...]]]:
    """The row's record, the errors of its contact cells, and each field the row gives (its label text and id too)
    with the template's columns it is read from: given together, one field a line, so that no field is given without
    them, as a rejection about it says first that the row is short by them where a cell it may have lost is one
    (`CsvRow.landed`). The service type is the table's own, read from no column."""
    parser = RowParser()
    for column, field in _CONTACT.items():
        parser.set(field, cell.get(column), f"column {column}")
    area = spec.area_column
    given: dict[str, tuple[Any, tuple[str, ...]]] = {
        **{field: (parser.fields.get(field), (column,)) for column, field in _CONTACT.items()},
        "name": (name, (spec.name_column,)),
        "label_text": (name, (spec.name_column,)),
        "subtype": (kind or None, ("kind",)),
        "service_area": ({"codes": serves}, (area, "serves")),
        "last_verified": (verified_on, ("verified_on",)),
        "id": (slugify("-".join(filter(None, (cell[area], kind, name)))), (area, "kind", spec.name_column)),
    }
    values = {field: value for field, (value, _) in given.items()}
    label_text, source_id = values.pop("label_text"), values.pop("id")
    origin = Origin(source or spec.source, file, line, source_id=source_id, licence=LICENCE)
    candidate = Candidate(compact({**values, "service_type": spec.service_type}), origin, label_text=label_text,
                          postcode_named="column postcode")
    return candidate, parser.errors, {field: columns for field, (_, columns) in given.items()}


def _ods_trusts(data_dir: Path) -> frozenset[str] | None:
    """The 2021 NHS trust codes (the real ODS `etr` report), to warn of a mistyped trust code."""
    path = Path(data_dir) / ODS_TRUSTS_FILE
    if not path.is_file():
        return None
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        return frozenset(row[0].strip().upper() for row in csv.reader(handle) if row)


def table_claims(paths: Sequence[Path], rejected: Mapping[Path, Collection[int]] | None = None) -> list[Claim]:
    """Coverage claims of the curated tables among `paths` (`claims_of` each). `rejected`: per table, the lines of
    rows its checks passed that the import then rejected (a postcode no directory holds): such a row made no service,
    so its area is not covered by it. Before, its verified area read "covered, none found" where its one service had
    failed to import."""
    claims: list[Claim] = []
    for path in paths:
        found = _table(Path(path))
        if found is not None:
            table, spec = found
            claims += claims_of(check_rows(table, spec, str(path)), Path(path).name,
                                (rejected or {}).get(Path(path), ()))
    return claims


def claims_of(checked: Iterable[CuratedRow], file_name: str, rejected: Collection[int] = ()) -> list[Claim]:
    """A table's coverage claims: per category and area, one claim when every row for that area is usable and
    verified (as of the oldest date; by everyone who verified). A row whose line is in `rejected` (the import's
    rejections past the table's checks) is not usable. Apart from `table_claims` so that an upload's check can say
    which areas a new table would stop covering, before anything is written, by the rule the rebuild claims by."""
    rows: dict[tuple[str, str], list[CuratedRow]] = defaultdict(list)
    for row in checked:
        for area in row.areas:
            rows[(row.category, area)].append(row)
    claims = []
    for (category, area), group in sorted(rows.items()):
        if all(r.problem is None and r.line not in rejected and r.verified_on is not None for r in group):
            dates = [r.verified_on for r in group if r.verified_on is not None]
            who = "; ".join(dict.fromkeys(r.verified_by for r in group if r.verified_by))
            claims.append(Claim(category, area, f"{CURATED}{file_name}", min(dates).isoformat(), who))
    return claims


def _table(path: Path) -> tuple[CsvTable, TableSpec] | None:
    if not path.is_file() or not path.name.lower().endswith((".csv", ".csv.gz")):
        return None
    try:
        table = csv_table(read_text(path), short_rows=True)
    except FileUnreadable:  # reported by the import, which reads every source first
        return None
    spec = spec_for(table.header) if table is not None else None
    return (table, spec) if table is not None and spec is not None else None
