"""The clinicians' summary as plain text, to paste into clinical notes: the facts the printed page gives, in its
words (`web.present`), a few lines an option. It is written into the results page itself, never into an
address or a log: it holds the person's needs and home."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING

from rehabmap.explanation import area_served_not_known, measured_note, stated_gender_text
from rehabmap.match import MatchRequest, MatchResponse
from rehabmap.taxonomy import TYPE_LABELS, ServiceType, need_label
from web import present

if TYPE_CHECKING:
    from geodata.geography import Home


def summary_text(home: Home, placement: Home | None, request: MatchRequest, response: MatchResponse,
                 today: date, none_words: Mapping[ServiceType, str],
                 more_words: Mapping[ServiceType, str] | None = None) -> str:
    """`none_words`: what a type with no option means, in the page's words (`web.present.none_listed`): pasted
    into notes, 'None listed' read as none there, also where rehabmap holds no data for the area. `more_words`:
    for a type with options, whether there may be more (its coverage's `some_found`), where there may."""
    measured = present.distances_from(home)
    placement_measured = present.distances_from(placement) if placement is not None else None
    lines = [f"Local alternatives near {home.label} (rehabmap, {present.long_date(today)})",
             f"Home: {home.label}" + (f" ({home.areas.lad_name})" if home.areas.lad_name else "")
             + (f", {home.areas.icb_name}" if home.areas.icb_name else "")]
    if measured:
        lines.append(measured_note(measured, home.precision))
    if placement is not None and response.current_placement_km is not None:
        lines.append(f"Current placement: {present.placement_text(placement, response.current_placement_km, measured)}")
    lines.append("Needs: " + (", ".join(need_label(n) for n in request.needs) or "None given"))
    if request.max_distance_km:
        lines.append(f"Maximum distance: {present.miles_and_km(request.max_distance_km)}")
    lines.append(f"Ordered {present.ORDER_WORDS[request.order][0].lower()}: "
                 f"{present.ORDER_WORDS[request.order][1].lower()}.")
    number = 0
    for group in response.groups:
        service_type = min(group.types, key=lambda t: t.restrictiveness)
        if not group.results:
            lines += ["", f"{TYPE_LABELS[service_type]}: {none_words[service_type]}"]
        else:
            more = (more_words or {}).get(service_type)
            lines += ["", f"{TYPE_LABELS[service_type]}: showing {len(group.results)} of {group.total}"
                      + (f". {more}" if more else "")]
        for result in group.results:
            number += 1
            service = result.service
            unknown = ", ".join(need_label(n) for n in present.not_known_needs(result))
            read = present.read_needs_text(result)
            lines += [f"{number}. {service.name}" + (f" ({service.organisation})" if service.organisation else ""),
                      f"   {present.distance_from_home(result, measured, placement_measured)}; "
                      + ("in the home ICB" if result.in_home_icb else "outside the home ICB"
                         + (f", in {service.areas.icb_name}" if service.areas.icb_name else ""))
                      + ("; area served not known: ask whether it takes people from the home's area"
                         if not result.in_home_icb and area_served_not_known(service) else "")
                      + ("; out of catchment: its catchment does not include the home" if result.out_of_catchment
                         else ""),
                      f"   Type: {present.listed_type_text(service)}"
                      + ("; uses the legacy 'locked rehabilitation' label" if service.legacy_locked_label else "")]
            dated = result.dated_listing  # the card's "Source" row
            if dated:
                lines.append(f"   Source: {dated}")
            gender = stated_gender_text(service)  # the card's tag; a gender only read is said with the needs read
            if gender:
                lines.append(f"   Who it takes: {gender}")
            lines += [f"   Meets: {present.meets_text(result, request.needs)}" + (f". {read}" if read else "")
                      + (f". Not known: {unknown} (ask the service)" if unknown else ""),
                      f"   Vacancy: {present.capacity_text(service, today)}. "
                      f"Taking referrals: {present.referrals_text(service)}.",
                      f"   How to refer: {service.referral_route or 'Contact the service'}"]
            rated = present.cqc_rating_text(service)
            if rated:
                lines.append(f"   CQC rating: {rated}")
            contact = ", ".join(c for c in (service.phone and present.phone_text(service.phone), service.email) if c)
            if contact:
                lines.append(f"   Contact: {contact}")
    lines += ["", "Check details with each service before making a referral."]
    return "\n".join(lines)
