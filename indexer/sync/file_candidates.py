"""The rows of an import (`rehabmap index`) whose type their source only suggests (`indexer.rows.Held`: a
mental health hospital in the 2018 NHS hospital list, say) into the review queue.

Each source's held rows are given to the sync runner as one connector's complete listing, so that they are
stored, held, accepted and rejected exactly as a live source's candidates are (`indexer.sync.review`): not
shown anywhere until a maintainer accepts one as a type, and a decision outlives the next import of the file.
A row that the next import no longer holds for review (gone from a newer edition of the file) is retired.
Run only once the import's new index is live, so that a refused import changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from indexer.rows import Held
from indexer.sync.items import Evidence, SourceItem, SyncState


class FileCandidates:
    """One source's held rows, as a connector."""

    attribution = ""
    read_all: str | None = None  # every row held is given, each run: nothing is skipped to say why not
    short_of_count: str | None = None  # nor counted: the rows held are all there is
    warnings: tuple[str, ...] = ()  # nor configured: the import's own report says what its files held

    def __init__(self, source: str, rows: Sequence[Held], title: str | None = None) -> None:
        """`title`: the source as people know it (its mapping's or curated table's, `source_titles`), which a
        record the file's next edition no longer lists is retired in the words of ("no longer listed by NHS website
        hospital list (September 2018)"); before, none was given, and the public read the source's code."""
        self.name = source
        self.rows = rows
        self.title = title
        self.licence = next((r.candidate.origin.licence for r in rows if r.candidate.origin.licence), "")

    def fetch(self, state: SyncState, *, full: bool = False) -> Iterator[SourceItem]:
        for row in self.rows:
            candidate = row.candidate
            yield SourceItem(candidate, "inferred" if candidate.fields.get("service_type") else "unknown",
                             (Evidence(self.name, row.field, row.value, row.means),), row.raw, id_is=row.id_is)
        state.save(self.name, {"files": sorted({r.candidate.origin.file for r in self.rows}),
                               "held_rows": len(self.rows)})

    @property
    def complete(self) -> bool:
        return True

    def covers(self) -> Mapping[str, frozenset[str]]:
        return {}  # a list that only may hold a type covers nothing


def by_source(rows: Sequence[Held], titles: Mapping[str, str]) -> list[FileCandidates]:
    """One connector per source (the id prefix), in the order the sources first appear, each titled as `titles`
    (`source_titles`) name it."""
    grouped: dict[str, list[Held]] = {}
    for row in rows:
        grouped.setdefault(row.candidate.origin.source, []).append(row)
    return [FileCandidates(source, held, titles.get(source)) for source, held in grouped.items()]
