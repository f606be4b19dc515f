"""The Charity Commission register's daily extract: local mental health charities (a local Mind, a clubhouse,
an advocacy charity) as VCFSE and advocacy candidates, always held for review.

The register has no "mental health" class, so candidates are chosen by their name and stated activities; what
they are (advocacy, supported housing, or VCFSE support) is read from the same words, and their classification
("Provides advocacy/advice/information") and areas of operation are shown as evidence. None is ever typed as
confirmed: a charity's words are not a statement that it runs a service on the pathway.

Three JSON extracts (zips, conditional GET): `publicextract.charity` (one row per charity; linked charities
are left out, their main charity stands for them), `publicextract.charity_classification`,
`publicextract.charity_area_of_operation`. The register's other charities (~170,000) are not candidates and are
counted (`skipped`), not reported one by one.
"""

from __future__ import annotations

import json
import re
import tempfile
import zipfile
from collections import defaultdict
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from indexer.rows import Candidate
from indexer.sources.common import RowParser, compact, join_address
from indexer.sync.connectors.base import BaseConnector, origin, utc_now
from indexer.sync.http import SourceClient, SourceError, Validators
from indexer.sync.items import Evidence, Gone, Outcome, Refused, SourceItem, SyncState
from rehabmap.taxonomy import NotRehab, ServiceType, classify_label

NAME = "charity"
LICENCE = "OGL-UK-3.0"
ATTRIBUTION = "Contains information from the Charity Commission for England and Wales, Open Government Licence v3.0"
EXTRACTS = ("publicextract.charity", "publicextract.charity_classification", "publicextract.charity_area_of_operation")
# What makes a charity a candidate: its name or activities speak of mental health (a local "Mind" by name).
CANDIDATE_WORDS = re.compile(
    r"(?i:mental\s+(?:health|illness|distress|wellbeing)|psychosis|schizophreni|bipolar|recovery\s+college|"
    r"hearing\s+voices|clubhouse|psychiatric)|\bMind\b|\bMIND\b")
ADVOCACY_CLASS = re.compile(r"advocacy", re.I)


class CharityConnector(BaseConnector):
    name = NAME
    licence = LICENCE
    attribution = ATTRIBUTION

    def __init__(self, http: SourceClient) -> None:
        super().__init__(http)
        self.skipped = 0     # charities read that are not candidates

    def covers(self) -> Mapping[str, frozenset[str]]:
        return {}   # candidates only: a charity's listing says nothing complete about an area's services

    def fetch(self, state: SyncState, *, full: bool = False) -> Iterator[Outcome]:
        """Nothing when the register extract is unchanged since the last complete read, unless `full`."""
        self._complete = False
        self.skipped = 0
        saved = dict(state.load(self.name))
        with tempfile.TemporaryDirectory(prefix="rehabmap-") as folder:
            paths: dict[str, Path] = {}
            validators: dict[str, dict[str, str]] = {}
            for n, extract in enumerate(EXTRACTS):
                url = self.http.url(f"{extract}.zip")
                asked = None if full or n else Validators.from_state(saved.get(extract))
                fetched = self.http.get(url, validators=asked, into=Path(folder) / f"{extract}.zip")
                if fetched.not_modified:   # the register is published whole each day: one check is enough
                    return
                assert fetched.path is not None
                paths[extract], validators[extract] = fetched.path, fetched.validators.to_state()
            yield from self._read(paths, fetched_at=utc_now())
        state.save(self.name, validators)
        self._complete = True

    def _read(self, paths: Mapping[str, Path], fetched_at: datetime) -> Iterator[Outcome]:
        classes = _by_charity(_rows(paths[EXTRACTS[1]], self.http.url(f"{EXTRACTS[1]}.zip")),
                              "classification_description")
        areas = _by_charity(_rows(paths[EXTRACTS[2]], self.http.url(f"{EXTRACTS[2]}.zip")),
                            "geographic_area_description")
        url = self.http.url(f"{EXTRACTS[0]}.zip")
        for number, row in enumerate(_rows(paths[EXTRACTS[0]], url), start=1):
            if int(row.get("linked_charity_number") or 0) != 0:
                continue
            text = " ".join(str(row.get(k) or "") for k in ("charity_name", "charity_activities"))
            found = CANDIDATE_WORDS.search(text)
            if not found:
                self.skipped += 1
                continue
            number_text = str(row.get("registered_charity_number") or "")
            yield map_charity(row, found.group(0), classes.get(number_text, []), areas.get(number_text, []),
                              url, number, fetched_at)


def _rows(path: Path, url: str) -> list[dict[str, Any]]:
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.lower().endswith(".json")]
            if not names:
                raise SourceError(f"Charity Commission: {url} holds no .json file")
            data = json.loads(archive.read(names[0]).decode("utf-8-sig"))
    except (zipfile.BadZipFile, ValueError) as exc:
        raise SourceError(f"Charity Commission: {url} is not a zipped JSON extract: {exc}") from None
    if not isinstance(data, list):
        raise SourceError(f"Charity Commission: {url} is not a list of rows")
    return [r for r in data if isinstance(r, dict)]


def _by_charity(rows: list[dict[str, Any]], column: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        if int(row.get("linked_charity_number") or 0) == 0 and row.get(column):
            found[str(row.get("registered_charity_number"))].append(str(row[column]))
    return found


def map_charity(row: Mapping[str, Any], word: str, classes: list[str], areas: list[str], url: str, item: int,
                fetched_at: datetime) -> Outcome:
    """One charity that speaks of mental health (`word`) → an inferred candidate, Gone if removed, or refused."""
    where = f"{url} item {item}"
    number = str(row.get("registered_charity_number") or "")
    name = str(row.get("charity_name") or "").strip()
    if not number:
        return Refused(NAME, None, where, f"'{name}' has no registered charity number")
    status = str(row.get("charity_registration_status") or "Registered")
    if status.lower() != "registered":
        removed = str(row.get("date_of_removal") or "")[:10]
        return Gone(NAME, number, f"removed from the register{' on ' + removed if removed else ''}",
                    datetime.fromisoformat(removed).date() if removed else None)
    parser = RowParser()
    parser.set("address", join_address(*(row.get(f"charity_contact_address{n}") for n in range(1, 6))),
               "charity_contact_address1")
    for field_name, key in (("postcode", "charity_contact_postcode"), ("phone", "charity_contact_phone"),
                            ("email", "charity_contact_email"), ("website", "charity_contact_web")):
        parser.set(field_name, row.get(key), key)
    if parser.errors:
        return Refused(NAME, number, where, "; ".join(parser.errors), unreadable=True)
    if not parser.fields.get("postcode"):
        return Refused(NAME, number, where, f"'{name}' is a candidate ({word}) but the register gives no postcode "
                                            "to place it", unplaced=True)
    activities = " ".join(str(row.get("charity_activities") or "").split())
    service_type, subtype = _kind(name, activities, classes)
    evidence = [Evidence(NAME, "charity_name/charity_activities", word,
                         f"speaks of mental health: a {service_type.value} candidate, to be confirmed")]
    evidence += [Evidence(NAME, "classification", c[:80], "the charity says it provides advocacy") for c in classes
                 if ADVOCACY_CLASS.search(c)]
    if areas:
        evidence.append(Evidence(NAME, "area_of_operation", "; ".join(areas)[:80], "where it says it operates"))
    fields = compact({**parser.fields, "name": name, "description": activities, "provider_type": "vcfse",
                      "service_type": service_type, "subtype": subtype, "organisation": name,
                      "service_area": {"description": "Area of operation: " + "; ".join(areas)} if areas else None})
    field_sources = {f: f"{NAME}:{k}" for f, k in (("address", "charity_contact_address1-5"),
                                                   ("postcode", "charity_contact_postcode"),
                                                   ("phone", "charity_contact_phone"),
                                                   ("email", "charity_contact_email"),
                                                   ("website", "charity_contact_web"), ("name", "charity_name"),
                                                   ("description", "charity_activities"),
                                                   ("service_area", "charity_area_of_operation"),
                                                   ("service_type", "charity_name/charity_activities")) if f in fields}
    candidate = Candidate(fields, origin(NAME, url, item, number, LICENCE, fetched_at), f"{name} | {activities}")
    return SourceItem(candidate, "inferred", tuple(evidence), raw=dict(row), field_sources=field_sources)


def _kind(name: str, activities: str, classes: list[str]) -> tuple[ServiceType, str | None]:
    """Advocacy, supported accommodation, IPS … as the words name it; VCFSE support otherwise. A charity is not
    read as an inpatient unit or an NHS team, whatever its words."""
    try:
        found = classify_label(f"{name} | {activities}")
    except NotRehab:
        found = None
    if (found is not None and not found.service_type.is_inpatient
            and found.service_type is not ServiceType.community_rehab_team):
        return found.service_type, found.subtype
    if any(ADVOCACY_CLASS.search(c) for c in classes) and re.search(r"(?i)advoca", f"{name} {activities}"):
        return ServiceType.advocacy, "community"
    return ServiceType.vcfse, None
