"""One service as rows of NHS.UK summary lists: how to get in touch, opening times, who it is for, details for
professionals; and the link out for directions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, time
from urllib.parse import urlencode

from markupsafe import Markup

from rehabmap.explanation import (
    ADDED_BY_TEAM,
    GENDER_BASIS_WORDS,
    GENDER_WORDS,
    NOT_CONFIRMED,
    gender_basis,
    gender_read_text,
    needs_by_basis,
    quoted,
    removed_gender_text,
    without_gender,
)
from rehabmap.record import WEEKDAYS, Schedule, Service, Weekday
from rehabmap.taxonomy import GENDER_NEEDS
from rehabmap.words import and_list
from web import present

Row = tuple[str, "str | Markup"]

DAY_NAMES = dict(zip(WEEKDAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")))
# The needs a CQC registration states (`needs_by_basis`): the parts of it rehabmap reads as needs, not all of it.
REGISTERED_HEADING = "Needs rehabmap reads from its Care Quality Commission (CQC) registration"
CQC_LOCATION_URL = "https://www.cqc.org.uk/location/"  # CQC's public page of a location, by its location ID
SELF_REFERRAL_WORDS = {True: "Yes, you can contact the service yourself",
                       False: "No, you need a referral from a professional (such as your GP or care coordinator)",
                       None: "Not known: ask the service"}


def _link(href: str, text: str) -> Markup:
    return Markup('<a href="{}">{}</a>').format(href, text)


def _bullets(items: list[str]) -> Markup:
    return Markup('<ul class="nhsuk-list nhsuk-list--bullet">{}</ul>').format(
        Markup("").join(Markup("<li>{}</li>").format(i) for i in items))


def contact_rows(service: Service) -> list[Row]:
    """How to reach the service and be referred to it; one no longer listed (retired) is not offered, so it gets
    no referral rows (its old details stay, for a person looking into a past placement)."""
    rows: list[Row] = []
    if service.phone:
        rows.append(("Phone", _link(present.tel_href(service.phone), present.phone_text(service.phone))))
    if service.email:
        rows.append(("Email", _link(f"mailto:{service.email}", service.email)))
    if service.website and service.website.startswith(("https://", "http://")):
        rows.append(("Website", _link(service.website, present.website_text(service.website))))
    address = ", ".join(p for p in (service.address, service.postcode) if p)
    if address:
        rows.append(("Address", address))
    if service.status == "active":
        rows.append(("Can you refer yourself?", SELF_REFERRAL_WORDS[service.self_referral]))
        rows.append(("How to be referred", service.referral_route or "Contact the service to ask"))
        rows.append(("Taking new referrals", present.referrals_text(service)))
    return rows


def directions_url(service: Service) -> str:
    """A plain link out to a maps site for directions to the service, as NHS.UK's service pages have. The
    destination is the service's own coordinates; no origin is sent (the person's postcode stays with us), and
    nothing on our pages asks the maps site for anything (Google's documented Maps URLs, api=1)."""
    lat, lon = service.published_point
    return "https://www.google.com/maps/dir/?" + urlencode({"api": "1", "destination": f"{lat},{lon}"})


def clock(value: time) -> str:
    """As NHS.UK writes times: 9am, 5:30pm, midday, midnight."""
    if value.hour == 0 and value.minute == 0:
        return "midnight"
    if value.hour == 12 and value.minute == 0:
        return "midday"
    hour = value.hour % 12 or 12
    return f"{hour}{f':{value.minute:02d}' if value.minute else ''}{'am' if value.hour < 12 else 'pm'}"


def day_range(days: list[Weekday]) -> str:
    """'Monday to Friday' for a run of three or more days, else the days listed ('Tuesday and Thursday')."""
    ordered = sorted(set(days), key=WEEKDAYS.index)
    positions = [WEEKDAYS.index(d) for d in ordered]
    if len(ordered) >= 3 and positions == list(range(positions[0], positions[-1] + 1)):
        return f"{DAY_NAMES[ordered[0]]} to {DAY_NAMES[ordered[-1]]}"
    return and_list([DAY_NAMES[d] for d in ordered])


def opening_rows(schedules: list[Schedule]) -> list[Row]:
    """The opening times the record holds, one row per schedule; none when the source states none (the page
    then says they are not known, never "closed")."""
    rows: list[Row] = []
    for schedule in schedules:
        if schedule.byday and schedule.opens_at and schedule.closes_at:
            hours = f"{clock(schedule.opens_at)} to {clock(schedule.closes_at)}"
            rows.append((day_range(schedule.byday), hours + (f" ({schedule.description})"
                                                             if schedule.description else "")))
        elif schedule.description:
            rows.append(("Times", schedule.description))
    return rows


def who_rows(service: Service) -> list[Row]:
    """Who the service is for. Its gender is said once, in people's words ("Men only"), not as the three gender
    needs it derives ("Not suitable for: Women-only service, Mixed-gender service" read as nonsense); a gender
    or a need read from its own words is never shown as suitable or not: a guess, with the words quoted."""
    rows: list[Row] = []
    ages = present.age_range(service)
    if ages:
        rows.append(("Ages", ages))
    if takes := who_it_takes(service):
        rows.append(takes)
    met, not_met = ([n for n in needs if n not in GENDER_NEEDS] if service.gender else needs
                    for needs in (service.needs_met, service.needs_not_met))
    registered, added = needs_by_basis(service, met)  # each said on its basis, as a match's explanation says it
    if registered:
        rows.append((REGISTERED_HEADING, _bullets(present.needs_list(registered)) + _whole_registration(service)))
    if met := [n for n in met if n not in registered and n not in added]:
        rows.append(("Suitable for", _bullets(present.needs_list(met))))
    if added:
        rows.append((f"Suitable for ({ADDED_BY_TEAM})", _bullets(present.needs_list(added))))
    if not_met:
        rows.append(("Not suitable for", _bullets(present.needs_list(not_met))))
    read, read_not = without_gender(service.needs_read_from_text), without_gender(service.needs_read_not_met)
    if read:
        rows.append((f"Its listing mentions ({NOT_CONFIRMED})", _bullets(quoted(read, read))))
    if read_not:
        rows.append((f"Its listing suggests it may not take ({NOT_CONFIRMED})", _bullets(quoted(read_not, read_not))))
    return rows


def _whole_registration(service: Service) -> Markup:
    """Where CQC's whole registration is: rehabmap reads as needs only the bands and activities its vocabulary
    names (Dovetail House's learning disabilities and substance misuse, not its adults under 65, mental health
    conditions or physical disabilities), and a list under "Registered with CQC for" read as all of it."""
    words = "Only the parts of its registration that rehabmap searches by: {} has the whole registration."
    if not service.cqc_location_id:
        return Markup('<p class="nhsuk-body-s">{}</p>').format(words.format("CQC's register"))
    link = _link(CQC_LOCATION_URL + service.cqc_location_id, "CQC's page for it")
    return Markup('<p class="nhsuk-body-s">{}</p>').format(Markup(words).format(link))


def who_it_takes(service: Service) -> Row | None:
    """The "Who it takes" row, said on whose word it is: the service page's, and the keepers' pages of the record
    (`web.keepers`), which say the same, so a maintainer never reads "not stated" where the public reads that the
    source said otherwise. None where no gender is stated, removed or read."""
    # A gender the maintainers cleared says the source's, removed: never the source's silence (a source that states a
    # gender gives none read from its words, so the two never meet).
    said = GENDER_WORDS[service.gender] if service.gender else removed_gender_text(service) or gender_read_text(service)
    if not said:
        return None
    # a maintainer's gender on a source's record said as theirs, as the needs a maintainer added are
    basis = GENDER_BASIS_WORDS[gender_basis(service)] if service.gender else ""
    return (f"Who it takes ({basis})" if basis else "Who it takes", said)


def professional_rows(service: Service, area_name: Callable[[str], str], today: date,
                      source_title: Callable[[str], str]) -> list[Row]:
    """`area_name` and `source_title` name an area and a source as a person reads them (`AppState.area_name`,
    `AppState.source_title`); the record's id stays, for a professional to quote."""
    rows: list[Row] = [("Service type", present.type_label(service))]
    if service.original_label:
        rows.append(("Listed by the source as", service.original_label))
    flags = []
    if service.legacy_locked_label:
        flags.append("Uses the legacy 'locked rehabilitation' label, which national guidance says should no "
                     "longer be commissioned")
    if service.pd_specialist:
        flags.append("Commissioned for people with a diagnosis of personality disorder")
    if flags:
        rows.append(("Flags", _bullets(flags)))
    if service.provider_type:
        rows.append(("Provider type", present.PROVIDER_WORDS[service.provider_type]))
    if service.beds is not None:
        rows.append(("Beds", str(service.beds)))
    rows.append(("Vacancy", present.capacity_text(service, today)))
    rated = present.cqc_rating_text(service)
    if rated:
        rows.append(("CQC rating", rated))
    if service.cqc_location_id:
        rows.append(("CQC location ID", service.cqc_location_id))
    areas = service.areas
    where = ", ".join(n for n in (areas.lad_name, areas.icb_name) if n)
    if where:
        rows.append(("Located in", where))
    catchment = service.service_area
    if catchment.restricted:
        names = [area_name(c) for c in catchment.codes]
        if catchment.polygon is not None:
            names.append(catchment.description or "an area drawn on a map")
        rows.append(("Serves people living in", _bullets(names)))
    else:
        rows.append(("Serves people living in", "No restriction stated"))
    # A file's records are named as their import named the file (`FileEdition.title`), its mapping renamed or not
    sources = sorted({p.edition.title if p.edition and p.edition.title else source_title(p.source)
                      for p in service.provenance})
    rows.append(("Source" if len(sources) == 1 else "Sources", ", ".join(sources)))
    rows.append(("rehabmap ID", service.id))
    return rows
