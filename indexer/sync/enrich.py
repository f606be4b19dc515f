"""Facts from one source laid on records another source owns (`Enrichment`): ODS site names and addresses,
CQC rehabilitation-ward ratings of a provider.

An enrichment matches a record when every one of its `match` keys (CQC location or provider id, ODS code) is
among the record's own `keys`. It fills only what the record lacks: the owning source's own values win, and it
never gives a type (service type, subtype and the type flags are never taken from it). Its evidence is added
to the record's, for the review queue: it may support an inferred type, but a maintainer decides.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from indexer.sync.items import Enrichment, SourceItem

NEVER_ENRICHED = frozenset({"id", "service_type", "subtype", "legacy_locked_label", "pd_specialist", "provenance",
                            "field_sources", "status"})


def _empty(value: object) -> bool:
    return value is None or value == "" or value == [] or value == {}


class Enrichments:
    """The enrichments in force, found by the keys a record is known by."""

    def __init__(self, enrichments: Iterable[Enrichment]) -> None:
        self._by_key: dict[tuple[str, str], list[Enrichment]] = defaultdict(list)
        for enrichment in enrichments:
            if enrichment.match:  # one that names no key would match every record
                first = sorted(enrichment.match.items())[0]
                self._by_key[first].append(enrichment)

    def matching(self, keys: Mapping[str, str]) -> list[Enrichment]:
        found = [e for pair in keys.items() for e in self._by_key.get(pair, ()) if _matches(e, keys)]
        return sorted(found, key=lambda e: e.key)  # each is filed under one key, so found once


def _matches(enrichment: Enrichment, keys: Mapping[str, str]) -> bool:
    return bool(enrichment.match) and all(keys.get(k) == v for k, v in enrichment.match.items())


def enriched(item: SourceItem, found: Sequence[Enrichment]) -> SourceItem:
    """The item with what the enrichments add: fields it lacks, and their evidence after its own."""
    if not found:
        return item
    fields = dict(item.candidate.fields)
    sources = dict(item.field_sources)
    for enrichment in found:
        for name, value in enrichment.fields.items():
            if name in NEVER_ENRICHED or _empty(value) or not _empty(fields.get(name)):
                continue
            fields[name] = value
            sources[name] = enrichment.field_sources.get(name, f"{enrichment.source}:{enrichment.source_id}")
    evidence = item.evidence + tuple(e for enrichment in found for e in enrichment.evidence)
    return replace(item, candidate=replace(item.candidate, fields=fields), evidence=evidence, field_sources=sources)
