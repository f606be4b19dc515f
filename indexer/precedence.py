"""Which source's word a merged record keeps where two of its records give a field (docs/adr/0017), read where the
sources are defined: the one place a rebuild (`indexer.pipeline.build_index`) and a sync's or a review decision's
live write (`indexer.sync.live`, once a write, for `indexer.sync.publish.shown_merged`) both take it from, so the
records they write are the same. Which id a merged record keeps does not depend on it (the first record's in the
store's order), so a link to a merged-away id is sent on without reading it (`indexer.sync.publish.merged_into`).

* A mapping (mappings/*.toml) names the sources it supersedes (`[source] supersedes`): the NHS website's 2018
  hospital list supersedes its 2014–15 list. Only the mappings of this folder are read: a sidecar mapping that
  declares one is refused (`indexer.sources.csv_mapping.find_mapping`), as no live write would read it.
* `ABOVE_DATED_FILES`: the live sources whose records supersede those of any dated file (a CSV read through a
  mapping, wherever it was read from).

Sources that declare nothing keep the store's order: the first record's value wins, as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from indexer.merge import Precedence
from indexer.sources.cqc import SOURCE as CQC
from indexer.sources.csv_mapping import MAPPINGS_DIR, MappingError, mappings
from rehabmap.errors import DomainError, Remedy

# CQC's record of a location (a `cqc:` id, whether read from its API, its care directory or its register of active
# locations) is the regulator's own, kept current by each sync; a dated file (an NHS hospital list, the ODS sites)
# says what stood on its date. Where both give a field of one service, CQC's value is shown.
ABOVE_DATED_FILES = frozenset({CQC})


class PrecedenceInvalid(DomainError):
    """The mappings' `supersedes` cannot be read into an order: nothing is merged until they are put right, as the
    records merged would not be those a rebuild makes."""

    status = 503
    code = "source_precedence_invalid"

    def __init__(self, message: str, *, where: str) -> None:
        super().__init__(message, where=where, remedy=Remedy.MAPPING)  # only whoever runs the syncs can mend it


def source_precedence(mappings_dir: Path = MAPPINGS_DIR) -> Precedence:
    """The precedence the mappings in `mappings_dir` and `ABOVE_DATED_FILES` declare, each source's superseded ones
    closed over (a supersedes b, b supersedes c: a supersedes c). Raises `PrecedenceInvalid` naming the mapping file
    and key for a mapping that cannot be read, a source no mapping here gives, or a cycle, with that file (or, for
    one that cannot be read, the folder) as its `where`: the server's log says it (`tell_operator`), as the operator
    must mend it before a live write can follow what a sync or a decision committed."""
    try:
        found = mappings(mappings_dir)
    except MappingError as exc:
        raise PrecedenceInvalid(f"which source supersedes which cannot be read: {exc}",
                                where=str(mappings_dir)) from None
    declared: dict[str, set[str]] = {}
    files: dict[str, Path] = {}  # the mapping file of each source that supersedes another
    known = {mapping.source for mapping in found}
    for mapping in found:
        for name in mapping.supersedes:
            if name not in known:
                raise PrecedenceInvalid(
                    f"mapping {mapping.path.name}: [source] supersedes names '{name}', which no mapping in "
                    f"{mappings_dir.name}/ gives; it names the sources of the mappings there "
                    f"({', '.join(sorted(known))})", where=str(mapping.path))
            declared.setdefault(mapping.source, set()).add(name)
            files[mapping.source] = mapping.path
    return Precedence({source: _below(source, declared, files, (source,)) for source in declared}, ABOVE_DATED_FILES)


def _below(source: str, declared: Mapping[str, set[str]], files: Mapping[str, Path],
           path: tuple[str, ...]) -> frozenset[str]:
    """Every source `source` supersedes, directly or through another; `path`: the sources that led here, of which
    one met again is a cycle (each would win over the other)."""
    found: set[str] = set()
    for name in sorted(declared.get(source, ())):
        if name in path:
            chain = " supersedes ".join((*path[path.index(name):], name))
            raise PrecedenceInvalid(f"mapping {files[source].name}: [source] supersedes '{name}' makes a cycle "
                                    f"({chain}, in mappings {', '.join(sorted({files[s].name for s in path}))}): a "
                                    "source cannot be both above and below another; take one of them out",
                                    where=str(files[source]))
        found |= {name, *_below(name, declared, files, (*path, name))}
    return frozenset(found)
