"""Any CSV → candidate rows, through a TOML mapping that says which column holds which canonical field.

A mapping (format in mappings/README.md) names the source and its licence, the columns that identify the
layout (`match_header`, for auto-detection), canonical field → column(s), constants, defaults, value maps
(a cell's whole value, or patterns of it) and row filters. Rows a filter leaves out are reported as rejections
"filtered out by mapping: …", so the report always accounts for every row of the file. From a list that only *may*
hold rehab services (`type_unconfirmed`), a row whose label names no type is `Held` for review, never indexed as a
guess.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from indexer.rows import Candidate, Held, Origin, Rejection
from indexer.sources.common import (UNSTATED_LEVEL, CsvProblem, CsvRow, CsvTable, RowParser, compact, join_address,
                                    label_reading, named_more_than_once, named_more_than_once_reason, os_reason,
                                    slugify, unstated_level)
from indexer.sync.items import MatchKey
from rehabmap.errors import DomainError, shorten
from rehabmap.record import FileEdition, Service
from rehabmap.taxonomy import parse_type

MAPPINGS_DIR = Path(__file__).resolve().parents[2] / "mappings"
SPECIAL_COLUMNS = ("id", "label_text")  # the source id; free text for the classifier (not stored)
_NOT_MAPPABLE = {"id", "areas", "provenance", "field_sources", "service_area",
                 "schedules",  # opening times are structured (HSDS schedules): ORUK feeds carry them, a column does not
                 "cqc_registered_needs", "source_needs_met", "source_gender"}  # what an edit keeps of the source's
MAPPABLE_FIELDS = frozenset(set(Service.model_fields) - _NOT_MAPPABLE)
_SECTIONS = {"source", "columns", "constants", "defaults", "values", "patterns", "filter", "hold"}
_SOURCE_NAME = re.compile(r"^[a-z0-9_-]+$")


class MappingError(ValueError):
    """The mapping file itself is wrong; nothing in the CSV can be read through it."""


@dataclass(frozen=True)
class FilterRule:
    """Matches a row when the pattern is found in any of its columns."""

    columns: tuple[str, ...]
    pattern: re.Pattern[str]
    why: str

    def matches(self, values: dict[str, str]) -> bool:
        return any(self.pattern.search(values.get(c, "")) for c in self.columns)

    def explain(self, values: dict[str, str]) -> str:
        shown = " | ".join(values.get(c, "") for c in self.columns)
        return f"{'/'.join(self.columns)} '{shorten(shown)}' {self.why}"


@dataclass(frozen=True)
class Mapping:
    path: Path
    source: str
    licence: str | None
    match_header: tuple[str, ...]
    columns: dict[str, tuple[str, ...]]
    constants: dict[str, Any]
    defaults: dict[str, Any]
    values: dict[str, dict[str, str]]
    patterns: dict[str, tuple[tuple[re.Pattern[str], str], ...]]  # value by the cell's shape (`_patterns`)
    include: tuple[FilterRule, ...]
    exclude: tuple[FilterRule, ...]
    type_unconfirmed: str | None = None  # why a row whose label names no service type is held for review
    proposed_type: str | None = None     # the type such a row may be, proposed to the maintainer
    hold: tuple[FilterRule, ...] = ()    # rows held for what else they are (`why`), with no type proposed
    title: str | None = None             # the source as a person reads it (a service page's "Source")
    files: tuple[str, ...] = ()          # the file names it is for (patterns): one export layout, two editions
    dated: str | None = None             # when the file's data stood, as a person reads it ("September 2018")
    id_is: str | None = None             # what the id column's values are beyond this source (`_id_is`)
    supersedes: tuple[str, ...] = ()     # sources whose values this one's replace when merged (`_supersedes`)

    def edition(self) -> FileEdition:
        """The file as its records carry it (`Provenance.edition`): what it is, of when, and what it gives."""
        return FileEdition(title=self.title, dated=self.dated, gives=tuple(sorted({*self.columns, *self.constants})))

    def matches(self, header: list[str]) -> bool:
        return bool(self.match_header) and set(self.match_header) <= set(header)

    def names(self, csv_path: Path) -> bool:
        """Whether the file's name is one this mapping says it is for (`files`, matched ignoring case)."""
        return any(fnmatch.fnmatch(csv_path.name.lower(), pattern.lower()) for pattern in self.files)

    @cached_property
    def used_columns(self) -> tuple[str, ...]:
        """Every column the mapping reads: for a field, or in a filter. Once a mapping: a kept row that may be cut
        in two is warned of where its reader reads a cell it may have lost (`CsvRow.landed`)."""
        return tuple(dict.fromkeys([c for cols in self.columns.values() for c in cols] + [
            c for rule in self.include + self.exclude for c in rule.columns]))

    def missing_columns(self, header: list[str]) -> list[str]:
        return [c for c in self.used_columns if c not in header]

    def filtered_out(self, values: dict[str, str]) -> FilterRule | None:
        """The rule that leaves the row out, or None to keep it: every include rule must match, no exclude rule."""
        failed = next((r for r in self.include if not r.matches(values)), None)
        return failed or next((r for r in self.exclude if r.matches(values)), None)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise MappingError(f"cannot read mapping {path.name}: {os_reason(exc)}") from exc


def _with_base(doc: dict[str, Any], path: Path) -> dict[str, Any]:
    """A mapping `[source] based_on = "<other>.toml"` (in the same folder) is that mapping with its own entries
    over it: each key of a table it gives replaces the base's ([values] field by field), and a list of tables it
    gives ([[hold]]) replaces the base's whole. So another edition of one export (the NHS website hospital list of
    2014–15, of 2018) says only how it differs, and the two cannot drift apart. One level: a base has no base."""
    based_on = doc.get("source", {}).get("based_on")
    if based_on is None:
        return doc
    where = f"mapping {path.name}"
    if not (isinstance(based_on, str) and based_on.endswith(".toml") and Path(based_on).name == based_on):
        raise MappingError(f"{where}: [source] based_on names another mapping file in {path.parent.name}/ "
                           "(e.g. 'nhs_website_hospitals_2018.toml')")
    base = _read_toml(path.parent / based_on)
    if "based_on" in base.get("source", {}):
        raise MappingError(f"{where}: its base {based_on} is based on another mapping; base it on that one")
    merged = dict(base)
    # Which sources an edition supersedes is its own to say: the 2018 list's `supersedes` is not the 2014–15 list's.
    merged["source"] = {key: value for key, value in base.get("source", {}).items() if key != "supersedes"}
    for section, value in doc.items():
        merged[section] = {**merged[section], **value} if isinstance(value, dict) and section in merged else value
    if merged["source"].get("name") == base.get("source", {}).get("name"):
        raise MappingError(f"{where}: [source] name must differ from its base {based_on}'s: each source's records "
                           "are its own")
    del merged["source"]["based_on"]
    return merged


def load_mapping(path: Path) -> Mapping:
    doc = _with_base(_read_toml(path), path)
    where = f"mapping {path.name}"
    unknown = set(doc) - _SECTIONS
    if unknown:
        raise MappingError(f"{where}: unknown section(s) {sorted(unknown)}; use {sorted(_SECTIONS)}")
    source = doc.get("source", {})
    name = source.get("name", "")
    if not _SOURCE_NAME.match(name):
        raise MappingError(f"{where}: [source] name '{name}' must be lower-case letters, digits, '-' or '_'")
    columns = {field: _column_list(value, f"{where} [columns] {field}")
               for field, value in doc.get("columns", {}).items()}
    constants, defaults = doc.get("constants", {}), doc.get("defaults", {})
    _check_fields(columns, where, "columns", MAPPABLE_FIELDS | set(SPECIAL_COLUMNS))
    _check_fields(constants, where, "constants", MAPPABLE_FIELDS)
    _check_fields(defaults, where, "defaults", MAPPABLE_FIELDS)
    clash = set(columns) & set(constants)
    if clash:
        raise MappingError(f"{where}: {sorted(clash)} in both [columns] and [constants]; "
                           "a constant replaces the column")
    values = _value_tables(doc.get("values", {}), "values", where)
    if set(values) - set(columns):
        raise MappingError(f"{where}: [values] for {sorted(set(values) - set(columns))}, which [columns] does not map")
    patterns = _patterns(doc.get("patterns", {}), columns, values, where)
    type_unconfirmed = source.get("type_unconfirmed")
    if type_unconfirmed is not None and not (isinstance(type_unconfirmed, str) and type_unconfirmed.strip()):
        raise MappingError(f"{where}: [source] type_unconfirmed must say what such a row may be and why that is "
                           "not enough (the maintainer reads it in the review queue)")
    proposed_type = _proposed_type(source.get("proposed_type"), type_unconfirmed, where)
    hold = tuple(_rule(r, f"{where} [[hold]]", "matches") for r in doc.get("hold", []))
    if hold and type_unconfirmed is None:
        raise MappingError(f"{where}: [[hold]] says what else a row held for review may be; give [source] "
                           "type_unconfirmed too (what the rows held for review are)")
    if type_unconfirmed is not None and "service_type" in defaults:
        raise MappingError(f"{where}: [source] type_unconfirmed and a [defaults] service_type contradict each "
                           "other: a row whose label names no type either waits for confirmation or takes the "
                           "default")
    filters = doc.get("filter", {})
    files = source.get("files", [])
    if not (isinstance(files, list) and all(isinstance(f, str) and f for f in files)):
        raise MappingError(f"{where}: [source] files must be a list of file name patterns "
                           "(e.g. ['hospitals_2018*.csv'])")
    return Mapping(
        path=path, source=name, licence=source.get("licence"),
        match_header=tuple(source.get("match_header", ())),
        columns=columns, constants=constants, defaults=defaults, values=values, patterns=patterns,
        include=tuple(_rule(r, f"{where} [[filter.include]]", "does not match") for r in filters.get("include", [])),
        exclude=tuple(_rule(r, f"{where} [[filter.exclude]]", "matches") for r in filters.get("exclude", [])),
        type_unconfirmed=type_unconfirmed, proposed_type=proposed_type, hold=hold,
        title=source.get("title"), files=tuple(files), dated=_dated(source.get("dated"), where),
        id_is=_id_is(source.get("id_is"), columns, where),
        supersedes=_supersedes(source.get("supersedes"), name, where),
    )


def _value_tables(tables: Any, section: str, where: str) -> dict[str, dict[str, str]]:
    """`[values]` or `[patterns]`: per field, a table of a cell's value (or pattern) → a value the field takes, each
    field's checked at load: a table, not empty, and for a field of a few values (`provider_type`, `gender`, …: the
    record's) one of them. Before, `[patterns] provider_type = "nhs"` raised AttributeError (a traceback from
    `rehabmap index`, and from `readable_mappings` and `source_precedence`, which let only MappingError by), and a
    value the record refuses ("NHS") rejected every row instead of the mapping."""
    if not isinstance(tables, dict):
        raise MappingError(f"{where}: [{section}] must be a table of fields, each a table ([{section}.provider_type])")
    read = {}
    for field, table in tables.items():
        if not (isinstance(table, dict) and table):
            raise MappingError(f"{where}: [{section}] {field} must be a table of {_SAYS[section]} → value, with at "
                               f"least one entry ([{section}.{field}]), not {shorten(repr(table), 60)}")
        allowed = _few_values(field)
        for key, value in table.items():
            if isinstance(value, (dict, list)) or (allowed and value not in allowed):
                takes = f"{field} is one of {', '.join(allowed)}" if allowed else "a value is text"
                raise MappingError(f"{where}: [{section}.{field}] '{shorten(key, 60)}' gives "
                                   f"{shorten(repr(value), 60)}: {takes}")
        read[field] = {str(k): str(v) for k, v in table.items()}
    return read


_SAYS = {"values": "a cell's value", "patterns": "pattern"}


def _few_values(field: str) -> tuple[str, ...]:
    """The values a record's field may take where they are few (a Literal: provider type, gender, capacity, status),
    else none (any text its parser reads)."""
    info = Service.model_fields.get(field)
    kinds = get_args(info.annotation) if info is not None else ()
    literal = next((k for k in kinds if get_origin(k) is Literal), info.annotation if info is not None else None)
    return tuple(str(v) for v in get_args(literal)) if get_origin(literal) is Literal else ()


def _patterns(tables: Any, columns: dict[str, tuple[str, ...]], values: dict[str, dict[str, str]],
              where: str) -> dict[str, tuple[tuple[re.Pattern[str], str], ...]]:
    """`[patterns.<field>]`: pattern → canonical value, the first whose pattern is found in the cell. For a column
    whose values are too many to list but whose shape says the value (the hospital lists' parent ODS code: an NHS
    trust's begins with R or T), not for guessing one from words."""
    tables = _value_tables(tables, "patterns", where)
    if unmapped := set(tables) - set(columns):
        raise MappingError(f"{where}: [patterns] for {sorted(unmapped)}, which [columns] does not map")
    if both := set(tables) & set(values):
        raise MappingError(f"{where}: {sorted(both)} in both [values] and [patterns]; give one")
    try:
        return {name: tuple((re.compile(pattern), value) for pattern, value in table.items())
                for name, table in tables.items()}
    except re.error as exc:
        raise MappingError(f"{where}: [patterns] bad pattern: {exc}") from None


def _dated(value: Any, where: str) -> str | None:
    if value is not None and not (isinstance(value, str) and value.strip()):
        raise MappingError(f"{where}: [source] dated must say when the file's data stood, as a person reads it "
                           "(e.g. 'September 2018')")
    return value


def _id_is(value: Any, columns: dict[str, tuple[str, ...]], where: str) -> str | None:
    """What the id column's values are beyond this source, if they are one of the identifiers sources share
    (`indexer.sync.items.MatchKey`: "ods_code"): the review queue says two sources that give a record the same such
    id may give one service, and never says so of ids that mean something to their own source only (a council
    list's row numbers)."""
    if value is None:
        return None
    if value not in get_args(MatchKey):
        raise MappingError(f"{where}: [source] id_is says which shared identifier the id column holds, one of "
                           f"{', '.join(get_args(MatchKey))}; '{value}' is none of them (leave it out for an id of "
                           "this source's own)")
    if "id" not in columns:
        raise MappingError(f"{where}: [source] id_is says what the id column holds; map [columns] id too")
    return str(value)


def _supersedes(value: Any, name: str, where: str) -> tuple[str, ...]:
    """The sources this one supersedes (docs/adr/0017): where a merged record has a field from both, this source's
    value is shown. A source name or a list of them; which exist, and that none supersedes itself through another,
    is checked against the other mappings (`indexer.precedence`)."""
    names = (value,) if isinstance(value, str) else tuple(value) if isinstance(value, list) else None
    if value is None:
        return ()
    if not names or not all(isinstance(n, str) and _SOURCE_NAME.match(n) for n in names):
        raise MappingError(f"{where}: [source] supersedes names the sources whose values this one's replace where a "
                           "merged record has both: a source name or a list of them (e.g. ['nhs-hospitals-2015'])")
    if name in names:
        raise MappingError(f"{where}: [source] supersedes names '{name}', this mapping's own source: a source "
                           "supersedes others, never itself")
    return tuple(dict.fromkeys(names))


def _proposed_type(value: Any, type_unconfirmed: str | None, where: str) -> str | None:
    if value is None:
        return None
    if type_unconfirmed is None:
        raise MappingError(f"{where}: [source] proposed_type is proposed for the rows type_unconfirmed holds for "
                           "review; give type_unconfirmed too (or a [defaults] service_type, if every row is one)")
    try:
        return parse_type(str(value)).value
    except DomainError as exc:
        raise MappingError(f"{where}: [source] proposed_type: {exc.message}") from None


def _column_list(value: Any, where: str) -> tuple[str, ...]:
    columns = (value,) if isinstance(value, str) else tuple(value) if isinstance(value, list) else ()
    if not columns or not all(isinstance(c, str) and c for c in columns):
        raise MappingError(f"{where}: give a column name or a list of column names")
    return columns


def _check_fields(table: dict[str, Any], where: str, section: str, allowed: frozenset[str] | set[str]) -> None:
    unknown = set(table) - allowed
    if unknown:
        raise MappingError(f"{where}: [{section}] has unknown field(s) {sorted(unknown)}; "
                           f"canonical fields are {sorted(allowed)}")


def _rule(rule: dict[str, Any], where: str, verb: str) -> FilterRule:
    try:
        pattern = re.compile(rule["pattern"])
        return FilterRule(_column_list(rule["column"], f"{where} column"), pattern,
                          rule.get("why") or f"{verb} /{rule['pattern']}/")
    except KeyError as exc:
        raise MappingError(f"{where}: needs {exc}") from None
    except re.error as exc:
        raise MappingError(f"{where}: bad pattern: {exc}") from None


def find_mapping(csv_path: Path, header: list[str], explicit: Path | None = None,
                 mappings_dir: Path = MAPPINGS_DIR) -> Mapping | None:
    """The explicit mapping, else a sidecar `<file>.mapping.toml`, else the most specific mapping in
    `mappings/` whose `match_header` columns are all in the header; of several equally specific, the one whose
    `files` names this file. Two editions of one export share a header (the NHS website's hospital lists of
    2014–15 and of 2018): chosen by the header alone, the older file's records were dated by the newer's
    mapping, and a tie left unresolved by name is an error rather than a guess."""
    if explicit is not None:
        return _outside(load_mapping(explicit), mappings_dir)
    stem = re.sub(r"\.csv(\.gz)?$", "", csv_path.name, flags=re.I)
    for sidecar in (csv_path.with_name(csv_path.name + ".mapping.toml"), csv_path.with_name(stem + ".mapping.toml")):
        if sidecar.is_file():
            return _outside(load_mapping(sidecar), mappings_dir)
    matching = [m for m in mappings(mappings_dir) if m.matches(header)]
    if not matching:
        return None
    best = max(len(m.match_header) for m in matching)
    chosen = [m for m in matching if len(m.match_header) == best]
    named = [m for m in chosen if m.names(csv_path)]
    if len(chosen) > 1 and len(named) != 1:
        raise MappingError(f"several mappings fit this header equally ({', '.join(m.path.name for m in chosen)}) "
                           f"and {'none' if not named else 'more than one'} names the file {csv_path.name} in its "
                           "[source] files: they are for different editions of one export, dated differently; "
                           "pass the one for this file with --mapping")
    return named[0] if named else chosen[0]


def _outside(mapping: Mapping, mappings_dir: Path) -> Mapping:
    """A mapping given for one file, unless it says it supersedes another source: which source supersedes which is
    read from the mappings in `mappings_dir` alone, by a rebuild and a live write alike (`indexer.precedence`), so
    this one's `supersedes` would go unread."""
    if mapping.supersedes and mapping.path.resolve().parent != mappings_dir.resolve():
        raise MappingError(f"mapping {mapping.path.name}: [source] supersedes is read only from the mappings in "
                           f"{mappings_dir.name}/ (a live write merges by them as a rebuild does); put the mapping "
                           "there, or leave supersedes out")
    return mapping


def mappings(mappings_dir: Path = MAPPINGS_DIR) -> list[Mapping]:
    return [load_mapping(path) for path in sorted(mappings_dir.glob("*.toml"))]


def readable_mappings(mappings_dir: Path = MAPPINGS_DIR) -> list[Mapping]:
    """The mappings that can be read; one that cannot is left out (its records read by their source name, as
    files of no stated date) rather than keep the server from starting: `rehabmap index` says what is wrong."""
    found = []
    for path in sorted(mappings_dir.glob("*.toml")):
        try:
            found.append(load_mapping(path))
        except MappingError:
            continue
    return found


def mapping_titles(mappings_dir: Path = MAPPINGS_DIR) -> dict[str, str]:
    """Each mapping's source as a person reads it, by source name."""
    return {mapping.source: mapping.title for mapping in readable_mappings(mappings_dir) if mapping.title}


# The standard headerless layout of NHS ODS reports (`etr`, `ets`, `ephp`, …): an organisation code, its name,
# then its national grouping and high level health geography codes, ..., an open date (YYYYMMDD) in column 11.
_ODS_CODE, _ODS_DATE = re.compile(r"^[A-Z0-9]{3,6}$"), re.compile(r"^(19|20)\d{6}$")


def no_mapping(csv_path: Path, header: list[str]) -> str:
    """Why no mapping reads the file, and what to do. A headerless ODS report's first row is an organisation,
    not a header: "no mapping for columns R0A, MANCHESTER UNIVERSITY NHS FOUNDATION TRUST, …" named no column
    a person could map, and sent them to write a mapping for a layout whose columns have no names."""
    if len(header) >= 11 and _ODS_CODE.match(header[0]) and _ODS_DATE.match(header[10]):
        return (f"no mapping for this CSV: it has no header row. It looks like an NHS ODS report in the standard "
                f"headerless layout (its first row is organisation {header[0]}, {shorten(header[1], 80)}, opened "
                f"{header[10]}), which `rehabmap sync ods` reads (REHABMAP_ODS_REPORTS); to import it as a file, "
                "add a header row naming its columns (org_code, name, national_grouping, hlhg, addr1 … addr5, "
                "postcode, open_date, close_date, …) and a mapping for them (see mappings/README.md)")
    return ("no mapping for this CSV: pass a mapping file (--mapping), "
            f"put {csv_path.name}.mapping.toml beside it, or add one to mappings/ (see mappings/README.md); "
            f"columns found: {shorten(header, 300)}")


def read_mapped(table: CsvTable, mapping: Mapping, file: str, source: str | None = None
                ) -> Iterator[Candidate | Held | Rejection]:
    source = source or mapping.source
    missing = mapping.missing_columns(table.header)
    if missing:
        yield Rejection(Origin(source, file, 0, licence=mapping.licence),
                        f"mapping {mapping.path.name} names column(s) {shorten(missing, 300)} that the file does "
                        f"not have; columns found: {shorten(table.header, 300)}")
        return
    if doubled := named_more_than_once(table.header, mapping.used_columns):
        yield Rejection(Origin(source, file, 0, licence=mapping.licence),
                        named_more_than_once_reason(f"mapping {mapping.path.name}", doubled))
        return
    edition = mapping.edition()
    for row in table.rows:
        if isinstance(row, CsvProblem):
            yield Rejection(Origin(source, file, row.line, licence=mapping.licence), row.reason)
            continue
        yield _row(row, mapping, file, source, edition)


def _row(row: CsvRow, mapping: Mapping, file: str, source: str, edition: FileEdition
         ) -> Candidate | Held | Rejection:
    origin = Origin(source, file, row.line, licence=mapping.licence)
    rule = mapping.filtered_out(row.values)
    if rule:
        return Rejection(origin, row.rejected(f"filtered out by mapping {mapping.path.name}: "
                                              f"{rule.explain(row.values)}", rule.columns))
    result = _mapped(row, mapping, origin, edition)
    if row.cut and not isinstance(result, Rejection):  # kept: said where its values may be in another row
        row.landed(result.candidate if isinstance(result, Held) else result, mapping.used_columns, mapping.columns)
    return result


def _mapped(row: CsvRow, mapping: Mapping, origin: Origin, edition: FileEdition) -> Candidate | Held | Rejection:
    """A row the mapping's filters keep, as its fields say. A rejection for a column a short row leaves out says
    first that the row is short (`CsvRow.rejected`), as does one for the value of the cell a line break may have cut
    it in (the last it holds, where the next row would complete it); one for another value a cell holds does not,
    as a cell left out is read as empty and an empty cell is never parsed. `origin`: the row's, before its id is
    known."""
    parser = RowParser()
    refused: list[str] = []  # the columns of the values the parser refuses
    for field, columns in mapping.columns.items():
        if field not in SPECIAL_COLUMNS and not _map_cell(parser, mapping, field, columns, row.values):
            refused += columns
    fields = {**compact(parser.fields), **mapping.constants}
    name_column = ", ".join(mapping.columns.get("name", ("name",)))
    if not fields.get("name"):
        return Rejection(origin, row.rejected(f"no name (column '{name_column}')", mapping.columns.get("name", ())))
    source_id = _source_id(mapping, row.values, fields)
    origin = Origin(origin.source, origin.file, origin.line, source_id=source_id, licence=origin.licence,
                    edition=edition)
    if not source_id:
        return Rejection(origin, row.rejected(f"no id (column '{mapping.columns['id'][0]}')", mapping.columns["id"]))
    if parser.errors:
        return Rejection(origin, row.rejected("; ".join(parser.errors), refused))
    unplaced = _unplaced(mapping, fields, row)
    if unplaced:
        return Rejection(origin, unplaced)
    label_columns = mapping.columns.get("label_text")
    label_text = " | ".join(filter(None, (row.values[c] for c in label_columns))) if label_columns else fields["name"]
    for field, value in mapping.defaults.items():
        if fields.get(field) is None and (field != "service_type" or label_reading(fields, label_text) is None):
            fields[field] = value
    if mapping.type_unconfirmed and fields.get("service_type") is None:
        # Until a maintainer confirms what it is (the review queue), a guessed type is not presented as fact.
        means = mapping.type_unconfirmed
        reading = label_reading(fields, label_text)  # once a row: the label's rules are most of a row's work here
        other = next((rule for rule in mapping.hold if rule.matches(row.values)), None)
        if reading is None and other is not None:
            # "Chantry House Day Hospital", in a list of mental health hospitals: no inpatient unit, so the
            # type proposed for the list's hospitals is not its; held with what it is instead, no type proposed.
            means = other.why
        elif reading is None:
            if mapping.proposed_type:
                fields["service_type"] = mapping.proposed_type
        elif unstated_level(reading):
            # An inpatient unit named without its level: level 1 is only the classifier's default, which a list
            # that only may hold rehab services does not confirm, as a CQC mental health hospital's reading
            # does not (indexer/sources/cqc.py).
            fields["service_type"], means = reading.service_type.value, UNSTATED_LEVEL
        else:
            return Candidate(fields, origin, label_text)
        return Held(Candidate(fields, origin, label_text), ", ".join(label_columns) if label_columns else name_column,
                    shorten(label_text), means, dict(row.values), mapping.id_is)
    return Candidate(fields, origin, label_text)


def _map_cell(parser: RowParser, mapping: Mapping, field: str, columns: tuple[str, ...],
              values: dict[str, str]) -> bool:
    """The field's value from its cells into `parser`; False where it is refused (`RowParser.set`)."""
    what = ", ".join(columns)
    raw = join_address(*(values[c] for c in columns)) if len(columns) > 1 else values[columns[0]]
    table = mapping.values.get(field)
    if (patterns := mapping.patterns.get(field)) and raw:
        found = next((value for pattern, value in patterns if pattern.search(raw)), None)
        if found is None:
            parser.errors.append(f"{what}: '{shorten(raw)}' matches none of the mapping's [patterns.{field}] "
                                 f"({', '.join(p.pattern for p, _ in patterns)})")
            return False
        raw = found
    elif table is not None and raw:
        folded = {k.casefold(): v for k, v in table.items()}
        if raw.casefold() not in folded:
            parser.errors.append(f"{what}: '{shorten(raw)}' is not in the mapping's [values.{field}] "
                                 f"(known: {', '.join(table)})")
            return False
        raw = folded[raw.casefold()]
    return parser.set(field, raw, what)


def _source_id(mapping: Mapping, values: dict[str, str], fields: dict[str, Any]) -> str | None:
    """The id column's value; without an id column, a slug of name and postcode (stable across editions)."""
    if "id" in mapping.columns:
        return values[mapping.columns["id"][0]] or None
    return slugify(f"{fields['name']} {fields.get('postcode', '')}")


def _unplaced(mapping: Mapping, fields: dict[str, Any], row: CsvRow) -> str | None:
    """Why a row with neither a postcode nor coordinates cannot be placed, and how a maintainer gives it one. It
    was held for review and then rejected by the queue as "no coordinates and no postcode to place the service":
    no word of which site it is (18 rows of the 2014–15 hospital list, Bethlem Royal Hospital among them), nor
    that no edit reaches a row that is not in the directory: the file is where its place is given. A short row
    that leaves out one of those columns says so first (`CsvRow.rejected`): the cell may have held the place."""
    if fields.get("postcode") or (fields.get("lat") is not None and fields.get("lon") is not None):
        return None
    columns = [c for field in ("postcode", "lat", "lon") for c in mapping.columns.get(field, ())]
    site = fields.get("address") or "no address either"
    named = ", ".join(f"'{c}'" for c in columns) + " empty" if columns else "its mapping maps neither"
    return row.rejected(
        f"cannot be placed: {shorten(fields['name'])} ({shorten(site)}) has no postcode and no coordinates "
        f"({named}). To list it, give the site's postcode (or latitude and longitude) on line {row.line} of a copy "
        "of the file and import that copy: no maintainer's edit reaches a row the directory does not hold", columns)


