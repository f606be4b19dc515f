"""Words and numbers as the pages show them: plain-English categories for the public, distances,
capacity with its age, and the labels of the vocabulary (DESIGN.md §2)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from geodata.distance import miles_and_km
from geodata.distance import format_km as km
from geodata.geography import Home
from rehabmap.coverage import Coverage, CoverageMap, request_kinds
from rehabmap.explanation import (NOT_CONFIRMED, about, area_served_not_known, distance_figure, distance_text,
                                  gender_read_text, long_date, measured_from, measured_note, met_text, needs_by_basis,
                                  quoted, stated_gender_text)
from rehabmap.gaps.indicators import indicator_text, km_text, share_text
from rehabmap.gaps.population import short_name
from rehabmap.record import capacity_max_age_days, id_in_path
from rehabmap.match import OUT_OF_AREA_MARGIN_KM, LeftOut, MatchRequest, MatchResult
from rehabmap.phones import phone_text
from rehabmap.record import Service
from rehabmap.taxonomy import GENDER_NEEDS, SUBTYPE_LABELS, TYPE_LABELS, ServiceType, need_label


@dataclass(frozen=True)
class SupportCategory:
    """A tile on "Find support near you": plain words over one or more service types. (Not a gap analysis
    category, `rehabmap.gaps.categories.Category`: a type or subtype.)"""

    slug: str
    title: str
    description: str
    types: tuple[ServiceType, ...]


CATEGORIES: tuple[SupportCategory, ...] = (
    SupportCategory("work", "Getting back to work",
             "Help to find and keep a paid job, alongside your mental health care.",
             (ServiceType.ips_employment,)),
    SupportCategory("housing", "Somewhere to live with support",
             "Supported housing, support at home and care homes with staff.",
             (ServiceType.supported_accommodation,)),
    SupportCategory("advocacy", "Someone to speak up for you",
             "Independent advocates who help you have your say and know your rights.",
             (ServiceType.advocacy,)),
    SupportCategory("peer-support", "Peer and community support",
             "Peer support groups, recovery colleges, day services and help for carers.",
             (ServiceType.vcfse,)),
    SupportCategory("rehabilitation", "Rehabilitation teams and units",
             "NHS and other mental health rehabilitation teams in the community, and rehabilitation units.",
             (ServiceType.community_rehab_team, ServiceType.inpatient_rehab_level1,
              ServiceType.inpatient_rehab_level2)),
)
CATEGORY_BY_SLUG = {c.slug: c for c in CATEGORIES}
# The view of every kind of support near a place (`/find/everything`): a path of its own, not a category, but a
# service opened from it leads back to it, as one opened from a category's list does.
EVERYTHING = SupportCategory("everything", "Everything", "The nearest few of every kind of support.",
                             tuple(t for c in CATEGORIES for t in c.types))
VIEW_BY_SLUG = {**CATEGORY_BY_SLUG, EVERYTHING.slug: EVERYTHING}

# What each type is called on the public pages.
PUBLIC_TYPE_LABELS: dict[ServiceType, str] = {
    ServiceType.vcfse: "Peer and community support",
    ServiceType.advocacy: "Advocacy",
    ServiceType.ips_employment: "Employment support (Individual Placement and Support)",
    ServiceType.supported_accommodation: "Supported accommodation",
    ServiceType.community_rehab_team: "Community rehabilitation team",
    ServiceType.inpatient_rehab_level1: "Rehabilitation unit",
    ServiceType.inpatient_rehab_level2: "Rehabilitation unit with more support",
}

# What the parts of a kind of support are called where a public page says which of them the directory holds
# all of near a home and which none of yet: mid-sentence plural words, keyed as coverage names a part (a type,
# or "type:subtype").
PUBLIC_PART_WORDS: dict[str, str] = {
    "vcfse": "peer and community support services",
    "advocacy": "advocates",
    "advocacy:imha": "Independent Mental Health Advocates (IMHAs)",
    "advocacy:imca": "Independent Mental Capacity Advocates (IMCAs)",
    "advocacy:care_act": "Care Act advocates",
    "advocacy:community": "community advocates",
    "ips_employment": "employment support services",
    "supported_accommodation": "supported accommodation",
    "supported_accommodation:residential_24h": "care homes with staff day and night",
    "supported_accommodation:supported_housing": "supported housing",
    "supported_accommodation:floating_outreach": "support at home (floating support)",
    "community_rehab_team": "community rehabilitation teams",
    "inpatient_rehab_level1": "rehabilitation units",
    "inpatient_rehab_level2": "rehabilitation units with more support",
}

# Column headings where seven parts of the pathway sit side by side.
SHORT_TYPE_LABELS: dict[str, str] = {
    "vcfse": "Voluntary and community",
    "advocacy": "Advocacy",
    "ips_employment": "Employment (IPS)",
    "supported_accommodation": "Supported accommodation",
    "community_rehab_team": "Community rehab team",
    "inpatient_rehab_level1": "Inpatient level 1",
    "inpatient_rehab_level2": "Inpatient level 2",
}

# Column headings for the gap indicators a commissioner compares areas by.
SHORT_INDICATOR_LABELS: dict[str, str] = {
    "mean_km": "Mean distance (km)",
    "p90_km": "90% of adults within (km)",
    "share_beyond_threshold": "Adults beyond threshold",
    "per_100k_adults": "Per 100,000 adults",
    "count": "Services",
    "share_nearest_outside_area": "Nearest is outside the area",
}

PUBLIC_SUBTYPE_LABELS: dict[str, str] = {
    "imha": "Advocacy for people detained under the Mental Health Act (IMHA)",
    "imca": "Advocacy about decisions when you cannot decide for yourself (IMCA)",
    "care_act": "Advocacy about care and support from the council (Care Act)",
    "community": "Community advocacy",
    "floating_outreach": "Support in your own home (floating support)",
    "supported_housing": "Supported housing with staff on site",
    "residential_24h": "Care home with staff 24 hours a day",
}

# Within how many miles the public search looks (the default first).
PUBLIC_RADII_MILES: tuple[int, ...] = (25, 5, 10, 50)

# The ranking rule of rehabmap.match, in plain words.
RANKING: tuple[str, ...] = (
    ("Only services that meet every need given, or have not said either way, are listed. A service that says "
     "it cannot meet a need is never listed; needs it has not stated are shown as unknown. A need its listing "
     "only mentions (rehabmap read it from its name or description) is shown as read, not confirmed: it is "
     "never counted as met, and never keeps a service off the list."),
    ("Services whose catchment does not include the person's home are left out, unless you ask to see them: "
     "they are then marked 'out of catchment'."),
    ("Nearest first, by straight-line distance. Services in the person's own integrated care board (ICB) come "
     f"first, unless one outside it is more than {miles_and_km(OUT_OF_AREA_MARGIN_KM)} nearer."),
    ("Each type of service is listed in turn, least restrictive first: community and voluntary support, "
     "advocacy, employment, supported accommodation, community rehabilitation teams, then level 1 and level 2 "
     "inpatient units."),
    ("Best fit first, when chosen, puts first the services that confirm more of the needs given, then those "
     "taking referrals (then those that have not said), then those with a vacancy reported in the last "
     f"{capacity_max_age_days()} days (then limited, not known, none), and only then the nearest, as above."),
)

# The two orders of rehabmap.match (`MatchRequest.order`): what each is called, and what it does.
ORDER_WORDS: dict[str, tuple[str, str]] = {
    "best_fit": ("Best fit first", "Needs confirmed, taking referrals, a recent vacancy, then distance"),
    "nearest": ("Nearest first", "Distance only, in the person's own ICB first"),
}

# The clinicians' "only show" options (MatchRequest flags), in the words of the form.
MATCH_OPTIONS: dict[str, str] = {
    "own_icb_only": "Only services in the person's own ICB",
    "accepting_only": "Only services taking new referrals",
    "needs_confirmed": "Only services that have confirmed every need (hide 'not known' and needs only "
                       "mentioned in a listing)",
    "include_out_of_catchment": "Also show services whose catchment does not include the person's home",
}

CAPACITY_WORDS = {"available": "Vacancy", "limited": "Limited vacancy", "none": "No vacancy"}
PROVIDER_WORDS = {"nhs": "NHS", "independent": "Independent sector", "local_authority": "Local authority",
                  "vcfse": "Voluntary, community, faith or social enterprise"}


def type_label(service: Service) -> str:
    """The clinician's label: type, and subtype where there is one."""
    label = TYPE_LABELS[service.service_type]
    if service.subtype:
        return f"{label}: {SUBTYPE_LABELS[service.subtype]}"
    return label


def public_type_label(service: Service) -> str:
    if service.subtype:
        return PUBLIC_SUBTYPE_LABELS[service.subtype]
    return PUBLIC_TYPE_LABELS[service.service_type]


def days_ago(value: date, today: date) -> str:
    days = (today - value).days
    if days <= 0:
        return "today"
    if days == 1:
        return "yesterday"
    return f"{days} days ago"


def capacity_text(service: Service, today: date) -> str:
    """Capacity and how old the report is; a report older than the freshness window reads as unknown."""
    if service.capacity is None or service.capacity_as_of is None:
        return "Not reported"
    word = CAPACITY_WORDS[service.capacity]
    when = f"{days_ago(service.capacity_as_of, today)}, on {long_date(service.capacity_as_of)}"
    if service.capacity_now(today) is None:
        return f"Unknown: the last report ({word.lower()}, {when}) is older than {capacity_max_age_days()} days"
    return f"{word}, reported {when}"


def capacity_tag(service: Service, today: date) -> tuple[str, str]:
    """(text, NHS tag colour) for a short badge."""
    now = service.capacity_now(today)
    if now is None:
        return "Vacancy unknown", "grey"
    return CAPACITY_WORDS[now], {"available": "green", "limited": "yellow", "none": "red"}[now]


def referrals_tag(service: Service) -> tuple[str, str]:
    if service.accepting_referrals is None:
        return "Referrals: not known", "grey"
    return ("Taking referrals", "green") if service.accepting_referrals else ("Not taking referrals", "red")


def fit_tag(matched: list[str], needs: tuple[str, ...]) -> tuple[str, str] | None:
    """How many of the needs given the service confirms; None when none were given."""
    if not needs:
        return None
    if len(matched) == len(needs):
        return ("Confirms the need" if len(needs) == 1 else f"Confirms all {len(needs)} needs"), "green"
    if not matched:
        return "No need confirmed", "grey"
    return f"Confirms {len(matched)} of {len(needs)} needs", "yellow"


def meets_text(result: MatchResult, asked: tuple[str, ...]) -> str:
    """The needs asked for that an option states it meets, for the card and the notes."""
    if not result.matched_needs:
        return "None confirmed" if asked else "No needs given"
    return met_text(result.matched_needs, *needs_by_basis(result.service, result.matched_needs))


def cqc_rating_text(service: Service) -> str | None:
    """CQC's rating and the date it was given, as the card, the service page and the notes say it; None unrated."""
    if not service.cqc_rating:
        return None
    return service.cqc_rating + (f" ({long_date(service.cqc_rating_date)})" if service.cqc_rating_date else "")


def listed_type_text(service: Service) -> str:
    """The clinician's type label, with the source's own label where it differs and the personality disorder
    flag: what the explanation says of a service's type, for the card that shows no explanation."""
    text = type_label(service)
    label = service.original_label
    if label and label.casefold() != TYPE_LABELS[service.service_type].casefold():
        text += f" (listed as '{label}')"
    if service.pd_specialist:
        text += "; commissioned for people with a diagnosis of personality disorder"
    return text


def read_needs_text(result: MatchResult) -> str | None:
    """The needs asked for that the option's listing only mentions (or mentions not taking), and the gender it
    suggests, said to be read and not confirmed: never under "Meets", never a tag. None when it mentions none
    of them. A read gender is said once, in people's words, not also as the gender needs asked for."""
    service = result.service
    gender = gender_read_text(service)
    read, read_not = result.needs_read_from_text, result.needs_read_not_met
    if gender:
        read, read_not = (tuple(n for n in needs if n not in GENDER_NEEDS) for needs in (read, read_not))
    words = []
    if read:
        words.append("mentions " + ", ".join(quoted(read, service.needs_read_from_text)))
    if read_not:
        words.append("suggests it may not take " + ", ".join(quoted(read_not, service.needs_read_not_met)))
    said = f"Its listing {'; '.join(words)}: {NOT_CONFIRMED}" if words else None
    if gender is None:
        return said
    return f"{said}. {gender}" if said else gender


def not_known_needs(result: MatchResult) -> list[str]:
    """The needs asked for that the option neither states nor mentions (`read_needs_text` says the others)."""
    read = {*result.needs_read_from_text, *result.needs_read_not_met}
    return [n for n in result.unknown_needs if n not in read]


def distances_from(home: Home) -> str | None:
    """Where a page's distances run from when not the home itself, with the sector or district as the person
    typed it, which the page shows anyway (`measured_from`)."""
    return measured_from(home.precision, home.district, home.label)


def distance_from_home(result: MatchResult, measured: str | None = None, placement_measured: str | None = None) -> str:
    """An option's distance from home (`measured`: from where, when not the home: `distances_from`), and how much
    nearer or further than the current placement, "about" where either end was measured to a sector's or district's
    middle (`placement_measured`: the placement's `distances_from`): a district home's saving was said exact."""
    text = distance_text(result.distance_km, measured)
    saved = result.distance_saved_km
    if saved == 0:
        text += f", {about(measured, placement_measured)}as far as the current placement"
    elif saved is not None:
        text += (f", {distance_figure(abs(saved), measured, placement_measured)} "
                 f"{'nearer than' if saved > 0 else 'further than'} the current placement")
    return text


def placement_text(placement: Home, placement_km: float, measured: str | None = None) -> str:
    """The current placement and its distance from home (`measured`: from where, when not the home), each end worded
    from its own precision: "TR21, about 312 miles (503 km) from home, to the middle of TR21". A placement given as a
    district or sector read as exact ("TR21, 312 miles (503 km) from home") though measured to its middle."""
    to = distances_from(placement)
    return f"{placement.label}, {distance_text(placement_km, measured, to)}" + (f", to {to}" if to else "")


def nothing_found(request: MatchRequest, answers: Mapping[ServiceType, Coverage],
                  left_out: Mapping[ServiceType, LeftOut], fewer_needs: bool) -> str:
    """What a clinicians' search that lists no option at all found, and what to widen: none of the types asked
    for (`answers`: each one's coverage at home), within the distance asked (and meeting the needs, when some were
    given). Whether that means there are none, or that the directory holds nothing there, is each type's to say
    (`none_listed`); where it holds no data for any of them and the options left none out, the headline says so
    too, not that none meets the needs.
    Where the search's own options left out services of a type (`left_out`, `rehabmap.match.left_out`), those
    options are why none is listed; 'needs confirmed' among them, whether those left out meet the needs is not
    known, so it is not said. "Fewer needs" is offered where it lists some (`fewer_needs`,
    `rehabmap.match.fewer_needs_list_some`), whatever the options did: before, any service left out by an option
    dropped it, also where the options left out units that autism alone lists (LS9 7TF, 'needs confirmed')."""
    kinds = "of these types" if request.types else "of any type"
    where = f" within {miles_and_km(request.max_distance_km)}" if request.max_distance_km else ""
    where += " inside the person's ICB" if request.own_icb_only else ""
    if left_out and request.needs and any("needs_confirmed" in left.by for left in left_out.values()):
        found = f"No service {kinds}{where} passes the search's options with these needs."
    elif left_out:
        found = (f"No service {kinds}{where}{' that meets all of these needs' if request.needs else ''} passes the "
                 "search's options.")
    elif not any(_has_data(answer) for answer in answers.values()):
        found = (f"No service {kinds} was found{where}, and the directory holds no data for "
                 f"{'these types' if request.types else 'any type'} for this area yet: finding none does not mean "
                 "there are none.")
    else:
        found = (f"No service {kinds}{where} meets all of these needs." if request.needs
                 else f"No service {kinds} was found{where}.")
    narrowed = request.accepting_only or request.needs_confirmed or request.own_icb_only
    widen = [words for asked, words in ((fewer_needs, "fewer needs"),
                                        (request.types, "more types of service"),
                                        (request.max_distance_km, "a larger distance"),
                                        (narrowed, "fewer 'only show' options")) if asked]
    if not widen:
        return found
    return f"{found} Try {', '.join(widen[:-1])}{' or ' if len(widen) > 1 else ''}{widen[-1]}."


def _has_data(answer: Coverage) -> bool:
    """Whether the directory holds any of a type's data at home (all, part, or candidates awaiting review)."""
    return answer.status != "not_covered" or bool(answer.kinds_covered or answer.pending_review)


def none_listed(answer: Coverage, needs_given: bool, left_out: str | None = None) -> str:
    """What a type of the clinicians' results with no option means, on the page and in the text for the notes:
    none where the directory covers the home's area, no candidate awaits review and the search's options left
    none out (`left_out`: what they did, in words), else the coverage's own words ('Not yet covered: ...'),
    never a bare "none" where rehabmap holds nothing or an option hid one."""
    if not answer.may_be_more and left_out is None:
        return "None meet these needs." if needs_given else "None found."
    return answer.none_shown(left_out)


def in_home_icb_text(count: int, coverage: CoverageMap, icb_code: str | None, service_type: ServiceType,
                     subtypes: Iterable[str] | None = ()) -> str:
    """The clinicians' "Across the pathway" count of a type in the home's ICB, judged on the ICB's own coverage of
    what the search asked (the type, or each of its subtypes asked) by the gaps rows' rule (`Coverage.may_be_more`):
    a number alone only where the directory holds all of it there and none awaits review; where it holds some, the
    count "(may be more)"; where none, "No data" (a 0 read as none in the ICB beside "Not yet covered"). Judged at
    the home, a claim for Mansfield's district alone made 3 found in its ICB read as all there are."""
    kinds = request_kinds(service_type, subtypes)
    answers = [coverage.for_area(icb_code or "", kind) for kind in kinds or [service_type.value]]
    if not any(answer.may_be_more for answer in answers):
        return str(count)
    return f"{count} (may be more)" if count or any(_has_data(a) for a in answers) else "No data"


def show_left_out(left: LeftOut) -> str:
    """The button that searches again without the options that left services out of a type."""
    dropped = [MATCH_OPTIONS[o] for o in left.by if o in MATCH_OPTIONS and o != "include_out_of_catchment"]
    words = ["without " + " and ".join(f"'{label}'" for label in dropped)] if dropped else []
    if "include_out_of_catchment" in left.by:
        words.append("also showing services whose catchment does not include the person's home")
    return f"Show {'it' if left.total == 1 else 'them'}: search again {' and '.join(words)}"


def referrals_text(service: Service) -> str:
    if service.accepting_referrals is None:
        return "Not known"
    return "Yes" if service.accepting_referrals else "No, not at the moment"


def age_range(service: Service) -> str | None:
    if service.min_age is None and service.max_age is None:
        return None
    if service.max_age is None:
        return f"{service.min_age} and over"
    if service.min_age is None:
        return f"Up to {service.max_age}"
    return f"{service.min_age} to {service.max_age}"


def needs_list(codes: Iterable[str]) -> list[str]:
    return [need_label(c) for c in codes]


def tel_href(phone: str) -> str:
    return "tel:" + "".join(ch for ch in phone if ch.isdigit() or ch == "+")


def website_text(url: str) -> str:
    return url.split("://", 1)[-1].rstrip("/")


def first_sentences(text: str, limit: int = 220) -> str:
    """A short summary of a description, cut at a sentence end where one is near."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text.rfind(". ", 0, limit)
    return text[: cut + 1] if cut > limit // 3 else text[:limit].rsplit(" ", 1)[0] + "…"


def fmt_share(value: float | None) -> str:
    """In tables: whole percent from 10% up (and for none at all), one decimal below."""
    return share_text(value, whole=True)


def fmt_indicator(name: str, value: float | None) -> str:
    return indicator_text(name, value, whole_shares=True)


def filters() -> dict[str, object]:
    """Jinja filters and globals the templates use."""
    return {
        "km": km, "miles_and_km": miles_and_km, "long_date": long_date, "type_label": type_label,
        "public_type_label": public_type_label, "tel_href": tel_href, "phone_text": phone_text,
        "website_text": website_text,
        "first_sentences": first_sentences, "age_range": age_range, "referrals_text": referrals_text,
        "need_label": need_label, "type_name": lambda t: TYPE_LABELS[t], "subtype_label": SUBTYPE_LABELS.get,
        "capacity_text": capacity_text,
        "capacity_tag": capacity_tag, "referrals_tag": referrals_tag, "gender_tag": stated_gender_text,
        "fit_tag": fit_tag, "distance_from_home": distance_from_home, "read_needs_text": read_needs_text,
        "distances_from": distances_from, "distance_text": distance_text, "measured_note": measured_note,
        "placement_text": placement_text, "distance_figure": distance_figure,
        "not_known_needs": not_known_needs, "nothing_found": nothing_found, "listed_type_text": listed_type_text,
        "meets_text": meets_text, "cqc_rating_text": cqc_rating_text,
        "area_served_not_known": area_served_not_known,
        "option_label": lambda o: MATCH_OPTIONS.get(o, o),
        "fmt_km": km_text, "fmt_share": fmt_share, "short_name": short_name,
        "short_type": lambda key: SHORT_TYPE_LABELS.get(key, key), "id_in_path": id_in_path,
    }
