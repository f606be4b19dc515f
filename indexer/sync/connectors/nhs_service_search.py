"""NHS website Service Search API v3: clinics offering "Community mental health services" (SRV0020), as
community rehabilitation team candidates.

The NHS website lists where trusts deliver community mental health care, not which of those bases hold a
rehabilitation team, so each is held for review (inferred) unless its own name says rehabilitation. Paged with
`$top`/`$skip` (an Azure Search OData index); every run reads the whole filtered list, resumable by page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from indexer.rows import Candidate
from indexer.sources.common import RowParser, compact, join_address
from indexer.sync.connectors.base import BaseConnector, Crawl, origin, utc_now
from indexer.sync.http import SourceClient
from indexer.sync.items import Evidence, Gone, Outcome, Refused, SourceItem, SyncState
from rehabmap.record import WEEKDAYS
from rehabmap.taxonomy import NotRehab, ServiceType, classify_label

NAME = "nhs-service-search"
LICENCE = "OGL-UK-3.0"
ATTRIBUTION = "Contains information from NHS England (NHS website Service Search), Open Government Licence v3.0"
KEY_HEADER = "apikey"
KEY_SETTING = "REHABMAP_NHS_SERVICE_SEARCH_KEY"
KEY_HOW = "an application-restricted key for the Service Search API v3, from NHS England's API catalogue"
SERVICE_CODE = "SRV0020"      # "Community mental health services"
PAGE_SIZE = 50                # the API's default and its usual maximum for $top
_DAYS = dict(zip(("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"), WEEKDAYS))
_CLOCK = re.compile(r"(?:[01]\d|2[0-3]):[0-5]\d")  # "08:30"; the API's "24:00" is no time of day


class NhsServiceSearchConnector(BaseConnector):
    name = NAME
    licence = LICENCE
    attribution = ATTRIBUTION

    def __init__(self, http: SourceClient, *, page_size: int = PAGE_SIZE, service_code: str = SERVICE_CODE) -> None:
        super().__init__(http)
        self.page_size = page_size
        self.service_code = service_code

    def covers(self) -> Mapping[str, frozenset[str]]:
        """Nothing: these are candidates, and not every rehab team is listed on the NHS website."""
        return {}

    def fetch(self, state: SyncState, *, full: bool = False) -> Iterator[Outcome]:
        self._complete = False
        crawl = Crawl(state, self.name, "skip", 0)
        skip = crawl.at
        url = self.http.url("")
        while True:
            params = {"api-version": 3, "$filter": f"Services/any(s: s/ServiceCode eq '{self.service_code}')",
                      "$top": self.page_size, "$skip": skip, "$count": "true"}
            listing = self.http.get_page("", params, "value")
            total = listing.count("@odata.count")
            got = len(listing.items)
            last = got < self.page_size or (total is not None and skip + got >= total)
            crawl.tally(listing, last, "@odata.count", "organisations",
                        f"$skip={skip} ({got} of the {self.page_size} asked for)")
            for number, organisation in enumerate(listing.items, start=skip + 1):
                yield map_organisation(organisation, f"{url}?$skip={skip}", number, utc_now())
            if last:
                break
            skip += got
            crawl.next(skip)
        crawl.done()
        self._complete = True


def map_organisation(org: Mapping[str, Any], where: str, number: int, fetched_at: datetime) -> Outcome:
    ods_code = str(org.get("ODSCode") or "")
    name = str(org.get("OrganisationName") or "").strip()
    if not ods_code:
        return Refused(NAME, None, f"{where} item {number}", f"'{name}' has no ODS code")
    status = str(org.get("OrganisationStatus") or "Visible")
    if status.lower() != "visible":
        return Gone(NAME, ods_code, f"the NHS website lists it as '{status}'", None)
    if not name:
        return Refused(NAME, ods_code, f"{where} item {number}", "the organisation has no name", unreadable=True)
    parser = RowParser()
    parser.set("address", join_address(*(org.get(k) for k in ("Address1", "Address2", "Address3", "City", "County"))),
               "Address1")
    for field_name, key in (("town", "City"), ("county", "County"), ("postcode", "Postcode"), ("lat", "Latitude"),
                            ("lon", "Longitude")):
        parser.set(field_name, org.get(key), key)
    contacts = {c.get("ContactMethodType"): c.get("ContactValue") for c in reversed(org.get("Contacts") or [])
                if isinstance(c, dict) and c.get("ContactType") == "Primary"}
    parser.set("phone", contacts.get("Telephone"), "Contacts.Telephone")
    parser.set("website", contacts.get("Website"), "Contacts.Website")
    parser.set("email", contacts.get("Email"), "Contacts.Email")  # the PALS team's is the trust's, not the clinic's
    if parser.errors:
        return Refused(NAME, ods_code, f"{where} item {number}", "; ".join(parser.errors), unreadable=True)
    parent = (org.get("ParentOrganisation") or {}).get("OrganisationName")
    service: Mapping[str, Any] = next(
        (s for s in org.get("Services") or [] if s.get("ServiceCode") == SERVICE_CODE), {})
    # The service's own hours where the NHS website gives them, else the clinic's.
    own_hours = opening_times(service.get("OpeningTimes"))
    schedules = own_hours or opening_times(org.get("OpeningTimes"))
    evidence = [Evidence(NAME, "Services", f"{SERVICE_CODE} {service.get('ServiceName') or ''}".strip(),
                         "a community mental health service: a candidate community rehabilitation team")]
    # The clinic's other services say whom its teams serve ("Older people's services", CAMHS): a maintainer
    # deciding whether it holds an adult rehabilitation team needs them, and they type nothing by themselves.
    evidence += [Evidence(NAME, "Services", f"{s.get('ServiceCode')} {s.get('ServiceName') or ''}".strip(),
                          "another service the NHS website lists at this clinic")
                 for s in org.get("Services") or [] if isinstance(s, Mapping) and s.get("ServiceCode")
                 and s.get("ServiceCode") != SERVICE_CODE]
    try:
        named = classify_label(name)
    except NotRehab:
        named = None
    said = named is not None and named.service_type is ServiceType.community_rehab_team
    if said:
        evidence.append(Evidence(NAME, "OrganisationName", name, "the name says it is a rehabilitation team"))
    fields = compact({**parser.fields, "name": name, "organisation": parent, "schedules": schedules,
                      "service_type": ServiceType.community_rehab_team,
                      "provider_type": "nhs" if "nhs" in str(org.get("OrganisationSubType") or "").lower() else None})
    field_sources = {f: f"{NAME}:{k}" for f, k in (("address", "Address1..County"), ("town", "City"),
                                                   ("county", "County"), ("postcode", "Postcode"),
                                                   ("lat", "Latitude"), ("lon", "Longitude"), ("phone", "Contacts"),
                                                   ("website", "Contacts"), ("email", "Contacts"),
                                                   ("name", "OrganisationName"),
                                                   ("organisation", "ParentOrganisation"),
                                                   ("provider_type", "OrganisationSubType"),
                                                   ("service_type", "Services"),
                                                   ("schedules", "Services.OpeningTimes" if own_hours
                                                    else "OpeningTimes")) if f in fields}
    candidate = Candidate(fields, origin(NAME, where, number, ods_code, LICENCE, fetched_at), name)
    return SourceItem(candidate, "confirmed" if said else "inferred", tuple(evidence), raw=dict(org),
                      field_sources=field_sources, keys={"ods_code": ods_code})


def opening_times(times: Any) -> list[dict[str, Any]]:
    """The NHS website's usual week ("General" opening times; "Additional" ones are dated exceptions, such as a
    bank holiday, and a day marked closed is not open) as weekly HSDS schedules, one per pair of opening and
    closing times. The connector read none, so a synced clinic's page said "Opening times not known" while the
    NHS website gave its hours. An entry whose day or times do not read is left out, not the clinic."""
    by_hours: dict[tuple[str, str], list[str]] = {}
    for item in times if isinstance(times, list) else ():
        if not isinstance(item, Mapping) or item.get("OpeningTimeType") != "General" or item.get("IsOpen") is not True:
            continue
        day = _DAYS.get(str(item.get("Weekday") or "").strip().lower())
        opens, closes = (str(item.get(k) or "").strip() for k in ("OpeningTime", "ClosingTime"))
        days = by_hours.setdefault((opens, closes), []) if _CLOCK.fullmatch(opens) and _CLOCK.fullmatch(closes) else []
        if day and day not in days:
            days.append(day)
    weekly = [{"byday": sorted(days, key=WEEKDAYS.index), "opens_at": opens, "closes_at": closes}
              for (opens, closes), days in by_hours.items() if days]
    return sorted(weekly, key=lambda s: (WEEKDAYS.index(s["byday"][0]), s["opens_at"]))
