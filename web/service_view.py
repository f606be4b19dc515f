"""One service as rows of NHS.UK summary lists: how to get in touch, who it is for, details for professionals."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from markupsafe import Markup

from geodata.errors import GeodataError
from rehabmap.record import Service
from web import present

if TYPE_CHECKING:
    from geodata import Geography

Row = tuple[str, "str | Markup"]


def _link(href: str, text: str) -> Markup:
    return Markup('<a href="{}">{}</a>').format(href, text)


def _bullets(items: list[str]) -> Markup:
    return Markup('<ul class="nhsuk-list nhsuk-list--bullet">{}</ul>').format(
        Markup("").join(Markup("<li>{}</li>").format(i) for i in items))


def contact_rows(service: Service) -> list[Row]:
    rows: list[Row] = []
    if service.phone:
        rows.append(("Phone", _link(present.tel_href(service.phone), service.phone)))
    if service.email:
        rows.append(("Email", _link(f"mailto:{service.email}", service.email)))
    if service.website and service.website.startswith(("https://", "http://")):
        rows.append(("Website", _link(service.website, present.website_text(service.website))))
    address = ", ".join(p for p in (service.address, service.postcode) if p)
    if address:
        rows.append(("Address", address))
    rows.append(("How to be referred", service.referral_route or "Contact the service to ask"))
    rows.append(("Taking new referrals", present.referrals_text(service)))
    return rows


def who_rows(service: Service) -> list[Row]:
    rows: list[Row] = []
    ages = present.age_range(service)
    if ages:
        rows.append(("Ages", ages))
    if service.needs_met:
        rows.append(("Suitable for", _bullets(present.needs_list(service.needs_met))))
    if service.needs_not_met:
        rows.append(("Not suitable for", _bullets(present.needs_list(service.needs_not_met))))
    return rows


def area_name(geography: Geography, code: str) -> str:
    try:
        return geography.areas.get(code).name
    except (GeodataError, AttributeError):
        return code


def professional_rows(service: Service, geography: Geography, today: date) -> list[Row]:
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
    if service.cqc_rating:
        rated = f"{service.cqc_rating}" + (f" ({present.long_date(service.cqc_rating_date)})"
                                           if service.cqc_rating_date else "")
        rows.append(("CQC rating", rated))
    if service.cqc_location_id:
        rows.append(("CQC location ID", service.cqc_location_id))
    areas = service.areas
    where = ", ".join(n for n in (areas.lad_name, areas.icb_name) if n)
    if where:
        rows.append(("Located in", where))
    catchment = service.service_area
    if catchment.restricted:
        names = [area_name(geography, c) for c in catchment.codes]
        if catchment.polygon is not None:
            names.append(catchment.description or "an area drawn on a map")
        rows.append(("Serves people living in", _bullets(names)))
    else:
        rows.append(("Serves people living in", "No restriction stated"))
    if service.last_verified:
        rows.append(("Last checked", present.long_date(service.last_verified)))
    sources = sorted({p.source for p in service.provenance})
    rows.append(("Source", ", ".join(sources) + f" (id {service.id})"))
    return rows
