"""Each source's name as a person reads it: a module of its own, so that a connector (CQC's deregistration words)
can name its source without importing the package that imports every connector."""

from __future__ import annotations

from rehabmap.index.names import OVERLAY_SOURCE

# CQC's API and its files' connectors (`indexer.sync.connectors.cqc_files`), by the names their runs are recorded under.
CQC, CQC_RATINGS, CQC_DIRECTORY, CQC_HSCA = "cqc", "cqc-ratings", "cqc-directory", "cqc-hsca"
# CQC's own files, by source, named after the regulator: a file records what CQC registers and registers nothing
# itself (a home retired off a care directory read "Care Quality Commission (CQC) care directory now registers it …").
CQC_FILES = {CQC_RATINGS: "ratings file", CQC_DIRECTORY: "care directory", CQC_HSCA: "register of active locations"}
# Those of CQC's files that list its locations: each row is the record the API gives (`cqc:<location id>`), and a
# refusal of one names that record.
CQC_LOCATION_FILES = (CQC_DIRECTORY, CQC_HSCA)
# Each source as a person reads it (a family on a service page, a keeper on theirs), by the name its records'
# ids, provenance and `field_sources` carry: the one home of these words. An ORUK feed is named by its file's
# `label` (the council's own name for it); a curated table by what it is (`TableSpec.title`).
TITLES = {CQC: "Care Quality Commission (CQC)",
          **{source: f"Care Quality Commission (CQC) {kind}" for source, kind in CQC_FILES.items()},
          "ods": "NHS Organisation Data Service", "nhs-service-search": "NHS website (Service Search)",
          "charity": "Charity Commission register",
          # The bundled sample (`rehabmap index sample/`), which a deployment may serve beside its sources: its
          # records' ids say "sample:", and the pages said "Source: sample" and "Sources: … sample (60)".
          OVERLAY_SOURCE: "rehabmap's maintainers", "sample": "rehabmap's sample directory (fictional services)"}
