"""The source-agnostic pipeline: candidate rows → validated, placed, classified, merged records → index.

Nothing is dropped silently: every row ends up indexed, merged into another, or rejected with its file,
line and reason in the report.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Protocol

from pydantic import ValidationError
from tqdm import tqdm

from geodata import Geography
from geodata.areas import AreaCodes
from indexer.merge import MergeNote, merge_duplicates
from indexer.needs import extract_gender, extract_needs
from indexer.rows import Candidate, Rejection
from rehabmap.errors import DomainError
from rehabmap.index.base import IndexWriter
from rehabmap.record import Provenance, Service
from rehabmap.taxonomy import NotRehab, ServiceType, classify_label


class Placer(Protocol):
    """The slice of geography the pipeline needs: a service's point from its postcode, areas from a point."""

    def place_postcode(self, postcode: str) -> tuple[float, float, str | None]: ...

    def area_codes(self, lat: float, lon: float, lad_code: str | None) -> AreaCodes: ...


class GeographyPlacer:
    """Places services with the offline geodata. Only a full postcode is precise enough for a service."""

    def __init__(self, geography: Geography) -> None:
        self.geography = geography

    def place_postcode(self, postcode: str) -> tuple[float, float, str | None]:
        point = self.geography.postcodes.lookup(postcode)
        if point.precision != "postcode":
            raise ValueError(f"postcode '{postcode}' is only a {point.precision}; a full postcode is needed "
                             "to place a service")
        return point.lat, point.lon, point.lad_code

    def area_codes(self, lat: float, lon: float, lad_code: str | None) -> AreaCodes:
        return self.geography.locate(lat, lon, lad_code)


@dataclass
class IndexReport:
    read: int = 0
    indexed: int = 0
    merged: list[MergeNote] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    by_type: dict[str, int] = field(default_factory=dict)

    def summary_lines(self) -> list[str]:
        lines = [f"read {self.read}, indexed {self.indexed}, merged {len(self.merged)}, "
                 f"rejected {len(self.rejected)}"]
        lines += [f"  {t}: {n}" for t, n in sorted(self.by_type.items())]
        lines += [f"merged {m.merged} into {m.kept} (same {m.key})" for m in self.merged]
        lines += [f"warning {w}" for w in self.warnings]
        lines += [f"rejected {r}" for r in self.rejected]
        return lines


def _classify(candidate: Candidate) -> None:
    fields = candidate.fields
    label = fields.get("original_label") or candidate.label_text or ""
    classification = classify_label(label) if label else None
    if fields.get("service_type") is None:
        if classification is None:
            raise ValueError(f"cannot tell the service type from '{label or fields.get('name', '')}'"
                             "; give a service_type or a recognised label")
        fields["service_type"] = classification.service_type
        fields.setdefault("subtype", classification.subtype)
    if classification is not None and ServiceType(fields["service_type"]) == classification.service_type:
        fields["legacy_locked_label"] = fields.get("legacy_locked_label") or classification.legacy_locked
        fields["pd_specialist"] = fields.get("pd_specialist") or classification.pd_specialist
        if fields.get("subtype") is None:
            fields["subtype"] = classification.subtype


def _extract_needs(candidate: Candidate) -> None:
    fields = candidate.fields
    text = " ".join(filter(None, [fields.get("name"), fields.get("description"), candidate.label_text]))
    met, not_met = extract_needs(text)
    fields["needs_met"] = sorted(set(fields.get("needs_met") or []) | (met - set(fields.get("needs_not_met") or [])))
    fields["needs_not_met"] = sorted(set(fields.get("needs_not_met") or []) | (not_met - set(fields["needs_met"])))
    if fields.get("gender") is None:
        fields["gender"] = extract_gender(text)


def _place(candidate: Candidate, placer: Placer) -> None:
    fields = candidate.fields
    lad = None
    if fields.get("lat") is None or fields.get("lon") is None:
        postcode = fields.get("postcode")
        if not postcode:
            raise ValueError("no coordinates and no postcode to place the service")
        fields["lat"], fields["lon"], lad = placer.place_postcode(postcode)
    fields["areas"] = placer.area_codes(float(fields["lat"]), float(fields["lon"]), lad)


def prepare(candidate: Candidate, placer: Placer) -> Service | Rejection:
    """One candidate row → a valid record, or a rejection that says why."""
    origin = candidate.origin
    candidate = replace(candidate, fields=dict(candidate.fields))  # the caller's row stays as it was
    try:
        _classify(candidate)
        _extract_needs(candidate)
        _place(candidate, placer)
        fields = dict(candidate.fields)
        fields.setdefault("id", f"{origin.source}:{origin.source_id}")
        fields["provenance"] = [Provenance(
            source=origin.source, source_id=str(origin.source_id), licence=origin.licence,
            fetched_at=origin.fetched_at or datetime.now(timezone.utc), file=origin.file, line=origin.line)]
        return Service.model_validate(fields)
    except NotRehab as exc:
        return Rejection(origin, f"not indexed: {exc}")
    except DomainError as exc:
        return Rejection(origin, exc.message)
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg']}" for e in exc.errors())
        return Rejection(origin, reasons)
    except (ValueError, TypeError) as exc:
        return Rejection(origin, str(exc))


def build_index(rows: Iterable[Candidate | Rejection], placer: Placer, writer: IndexWriter, *,
                progress: bool = True) -> IndexReport:
    """Run the whole pipeline; the writer swaps the new index in only once it is complete."""
    report = IndexReport()
    services: list[Service] = []
    for row in tqdm(rows, desc="indexing", unit=" rows", disable=not progress, leave=False):
        report.read += 1
        if isinstance(row, Candidate):
            report.warnings += [f"{row.origin.file}:{row.origin.line}: {w}" for w in row.warnings]
        outcome = row if isinstance(row, Rejection) else prepare(row, placer)
        if isinstance(outcome, Rejection):
            report.rejected.append(outcome)
        else:
            services.append(outcome)
    merged, report.merged = merge_duplicates(services)
    report.indexed = writer.replace_all(merged)
    for service in merged:
        report.by_type[service.service_type.value] = report.by_type.get(service.service_type.value, 0) + 1
    return report


def chain(*sources: Iterable[Candidate | Rejection]) -> Iterator[Candidate | Rejection]:
    for source in sources:
        yield from source
