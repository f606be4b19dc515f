"""What importers hand the pipeline: candidate rows with their origin, or rejections with a reason."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rehabmap.record import FileEdition

_JSON_FILE = re.compile(r"\.json(\.gz)?$", re.I)


def place(file: str | None, line: int | None) -> str:
    """Where a row is, as the report and the merge notes say it: `hospitals.csv:12`, the line a person opens a
    table at, but `locations.json record 17` for a JSON file's 17th item, as its number is no line of the file
    (before, `locations.json:17` sent people to line 17 of a file whose record 17 began on line 2,000). JSON is
    known by the name, as only `.json` (or `.json.gz`) files are read as JSON. Line 0 is the whole file."""
    if line and file and _JSON_FILE.search(file):
        return f"{file} record {line}"
    return f"{file}:{line}"


@dataclass(frozen=True)
class Origin:
    """Where a row came from, kept on the record (provenance) and on any rejection."""

    source: str          # short source name, also the id prefix: "oruk", "cqc", "csv-hospitals" ...
    file: str
    line: int            # 1-based line (CSV) or item number (JSON): `place` says which
    source_id: str | None = None
    licence: str | None = None
    fetched_at: datetime | None = None
    edition: FileEdition | None = None  # a dated file read through a CSV mapping: kept in the provenance


@dataclass
class Candidate:
    """Canonical field names (see rehabmap.record.Service); anything may be missing until the pipeline
    fills it in (point from postcode, areas from point, type from label, needs from text)."""

    fields: dict[str, Any]
    origin: Origin
    label_text: str = ""   # free text the classifier and needs extraction may read
    warnings: list[str] = field(default_factory=list)
    # How a reason about the row's postcode names it: a table a person fills in names its column ("column
    # postcode"), as its source's other reasons do
    postcode_named: str = "postcode"
    # A row read short that a line break may have cut in two (`indexer.sources.common.CsvRow.landed`): so, said
    # first by a reason the pipeline rejects it for that is about a field the cells it may have lost give
    # (`lost_fields`), as such a cell may be why; None: not known which (an item stored before they were kept), so
    # said first by every reason
    short: str = ""
    lost_fields: frozenset[str] | None = None
    # Read from the sync's store (a rebuild's synced record, `indexer.sync.rebuild.synced_rows`): the base of its id's
    # copies, whose keys and state alone are its id's (`indexer.merge.Merging`), as a sync's live write merges it
    synced: bool = False

    def rejected(self, reason: str, about: frozenset[str] | None) -> str:
        """The reason the row is rejected for, about the record's fields `about` (None: not known which), said first
        to be of a row read short (`short`) where a cell it may have lost gives one of them; each reason says so
        alone, not every reason of a row once warned of (a site type a name cannot tell, where the cut left its
        website out)."""
        if self.short and (about is None or self.lost_fields is None or about & self.lost_fields):
            return f"{self.short}: {reason}"
        return reason


@dataclass(frozen=True)
class Rejection:
    """A row (or, at line 0, a whole file) that is not indexed, and why. `fatal` marks a source the caller
    named that gave nothing readable at all: an import with one is refused, so the live index stays."""

    origin: Origin
    reason: str
    fatal: bool = False

    def __str__(self) -> str:
        return f"{place(self.origin.file, self.origin.line)}: {self.reason}"


@dataclass(frozen=True)
class Held:
    """A row whose type its source only suggests (a list that may hold rehab services, such as a hospital
    list): not indexed, but held in the review queue with what makes it a candidate, until a maintainer
    accepts it as a type or rejects it. A proposed type, if any, is in `candidate.fields["service_type"]`."""

    candidate: Candidate
    field: str         # the column(s) the source says it in
    value: str         # what it says there
    means: str         # what we read into it, and why that is not enough to show it as a type
    raw: dict[str, str] | None = None  # the source's own row, shown beside the evidence for review
    id_is: str | None = None  # what its id is beyond its source (an ODS code), as its mapping says (`SourceItem`)


@dataclass(frozen=True)
class Stated:
    """A row that makes no record but states something: a curated table's `none` row, which says its area has no
    such service (the claim is read from the table: `indexer.sources.curated.table_claims`). It is not counted as
    read, as it is no service, but its warnings are reported by file and line as a service's row's are: before,
    they travelled on a record, which a `none` row never makes, so its mistyped trust code said nothing."""

    origin: Origin
    warnings: tuple[str, ...] = ()


Row = Candidate | Held | Stated | Rejection  # what an importer gives the pipeline, row by row
