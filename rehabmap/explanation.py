"""A result's explanation (DESIGN.md §4): one short paragraph a clinician can read aloud in a placement review.

One `Explainer` writes every explanation of one match. The parts that depend only on the request (the home
ICB's phrase, the capacity window's sentence, the needs' wording for each set of stated needs a service
meets) are written once per match, when first needed, and go with the match; only the distance and the
service's own parts are written per result. A match shows ~10 results that mostly share their needs'
wording, so that wording, not each result, is where the joining and labelling is worth doing once.

A need read from a service's own words (`Service.needs_read_from_text`) is one of the service's own parts: it
is quoted ("Its listing mentions: Autism ('autistic'); not confirmed: ask the service."), never worded as met.
So is a gender read from them (`Service.gender_read_from_text`): a caution ("Its listing suggests it takes women
only ('women-only'); not confirmed: ask the service."), where a stated one says "Women only.".

Each need met is said on its own basis (`needs_by_basis`, the one rule; `met_text`, the one wording): those a
CQC registration states as registered (`REGISTERED`), those a maintainer's edit added to any source's record as the
rehabmap team's (`ADDED_BY_TEAM`, the service page's row of them too), so a match meeting both says both: "Meets:
Learning disability (as registered with CQC); Autism (added by the rehabmap team).". The API's record, the exports and
the ORUK feed list the registered ones and the added ones (`needs_said_by`: `needs_registered`,
`needs_added_by_maintainers`). Needs another source states are said plainly, beside the team's: "Meets: Step-free
access; Autism (added by the rehabmap team).". A record made in the directory says all its needs plainly: all of it
is the team's, with no source's word.

A gender a maintainer stated on a source's record is the team's word too (`gender_said_by`; the record, the exports
and the feed say so as `gender_stated_by_maintainers`), said so in the same words: "Men only (added by the rehabmap
team)." here, on the clinicians' card and in their text for notes (`stated_gender_text`), "Who it takes (added by
the rehabmap team)" on the service page; where the source stated another gender, which the record keeps
(`Service.source_gender`), "changed by the rehabmap team" (`gender_basis`). Those words are written once, in one
table (`_GENDER_TEXTS`), not per result, and asked of a synced record only. Where a maintainer cleared the gender its
source states, the page says so ("Not stated (the source said men only; removed by the rehabmap team)",
`removed_gender_text`); a match says no gender, as it filters on none. The machine-readable outputs give the basis
and the source's word it replaced (`gender_said_by`: `gender_basis`, `gender_from_source`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Literal, NamedTuple, Protocol

from geodata.distance import miles_and_km
from rehabmap.index.names import OVERLAY_SOURCE
from rehabmap.per_record import RECORDS_KEPT, PerRecord
from rehabmap.record import Capacity, Gender, Service, dating
from rehabmap.taxonomy import GENDER_NEEDS, TYPE_LABELS, ServiceType, need_label



class Unconfirmed(Protocol):
    """What `unconfirmed_listing` asks of the store's listings (`rehabmap.maintain.freshness.Listings`), named here
    so the words of a match import nothing of the store's: with that import, the two drew a circle of thirteen
    modules (explanation → freshness → coverage → … → explanation)."""

    @property
    def listed(self) -> Mapping[str, tuple[str, str, date]]:
        """None while every source syncs: a match then asks nothing of them."""

    def unconfirmed(self, service: Service) -> tuple[tuple[str, date], ...]: ...

# Who a service takes, in the words the guidance and people use: never "Not suitable for: Women-only service,
# Mixed-gender service" of a men-only unit (the gender needs' labels, which name services, not people).
GENDER_WORDS: dict[Gender, str] = {"female_only": "Women only", "male_only": "Men only",
                                   "mixed_gender": "Women and men"}
# Each type's label folded once, for the comparison with a record's own label.
_FOLDED_TYPE_LABELS = {t: label.casefold() for t, label in TYPE_LABELS.items()}
NOT_CONFIRMED = "not confirmed: ask the service"  # said of every need read from a service's words
_MENTIONS = " Its listing mentions: "
_MAY_NOT_TAKE = " Its listing suggests it may not take: "
_OUT_OF_CATCHMENT = " Out of catchment: the home is outside the area this service says it serves."
# The types whose services usually serve only the people of their own area (DESIGN.md §3): one that states no area
# is not known to take a person from outside its ICB. Glebelands Centre (Sussex, from the NHS website) was offered
# to a Nottingham home, 153 miles away, with nothing to say that a community team may not take them.
SERVE_THEIR_AREA = frozenset({ServiceType.community_rehab_team})
AREA_SERVED_NOT_KNOWN = (" Area served not known: a community team usually serves only its own area, and this one "
                         "states none; ask whether it takes people from the home's area.")
# A service that has never reported its capacity: the results table said "unknown" while its explanation said
# nothing of capacity at all, as if there were nothing to know. Worded as the stale report's sentence is.
_NO_CAPACITY_REPORT = " Capacity unknown: no report."
REGISTERED = " (as registered with CQC)"  # said after the needs a CQC registration states (`needs_said_by`)
# Whose word a need a maintainer's edit added to a source's record is: the rehabmap team's, as the service page names
# the maintainers ("Checked by the rehabmap team or the service"); said after those needs here and heads the page's row.
ADDED_BY_TEAM = "added by the rehabmap team"
_ADDED = f" ({ADDED_BY_TEAM})"
# Whose word a gender a maintainer stated in place of another its source states is (`gender_basis`): "added" would
# say the source stated none.
CHANGED_BY_TEAM = "changed by the rehabmap team"
# Whose word a record's lack of a gender is where a maintainer cleared the one its source states: "not stated" alone
# would pass the team's edit for the source's silence.
REMOVED_BY_TEAM = "removed by the rehabmap team"
# Whose word a record's gender is (`gender_basis`), as the machine-readable outputs give it (`gender_basis`, beside
# `gender_stated_by_maintainers`): its source's, or the maintainers' added where the source states none, changed
# where it states another, removed where they cleared it. None: no gender, and none removed.
GenderBasis = Literal["source", "added_by_maintainers", "changed_by_maintainers", "removed_by_maintainers"]
_SOURCE: GenderBasis = "source"
_ADDED_GENDER: GenderBasis = "added_by_maintainers"
_CHANGED_GENDER: GenderBasis = "changed_by_maintainers"
_REMOVED_GENDER: GenderBasis = "removed_by_maintainers"
# Each basis in people's words, as a page and a match say it after the gender ("" for its source's word, or none).
GENDER_BASIS_WORDS: dict[GenderBasis | None, str] = {
    None: "", _SOURCE: "", _ADDED_GENDER: ADDED_BY_TEAM, _CHANGED_GENDER: CHANGED_BY_TEAM,
    _REMOVED_GENDER: REMOVED_BY_TEAM}
# The bases that make a record's gender, or its lack of one, the rehabmap team's word rather than its source's.
TEAMS_GENDER_BASES: frozenset[GenderBasis | None] = frozenset({_ADDED_GENDER, _CHANGED_GENDER, _REMOVED_GENDER})
# The genders a match's explanation, the card's tag and the text for notes say (a mixed one goes without saying).
_SINGLE_GENDERS: tuple[Gender, ...] = ("female_only", "male_only")
# Each single gender in people's words, by whose word it is (`gender_basis` of a stated gender): the one wording
# of the card's tag and the text for notes (`stated_gender_text`), and as a sentence of a match's explanation.
_GENDER_TEXTS: dict[GenderBasis | None, dict[Gender, str]] = {
    basis: {gender: GENDER_WORDS[gender] + (f" ({words})" if (words := GENDER_BASIS_WORDS[basis]) else "")
            for gender in _SINGLE_GENDERS}
    for basis in (_SOURCE, _ADDED_GENDER, _CHANGED_GENDER)}
_GENDER_NOTES = {basis: {gender: f" {said}." for gender, said in texts.items()}
                 for basis, texts in _GENDER_TEXTS.items()}
# A record with no field sources: the source's word, or all the team's.
_SOURCES_GENDER_NOTES = _GENDER_NOTES[_SOURCE]
_NO_BASIS: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
# The source name of CQC's records (`indexer/sources/cqc.py`): their `field_sources` read "cqc:specialisms".
_CQC = "cqc"
_CQC_CONNECTOR = f"{_CQC}-"  # cqc-directory, cqc-hsca: CQC's own files of its register


class RecordWords(NamedTuple):
    """What a record alone gives each of its results (`ResultMaker.result`, `Explainer.explain`): its own parts of
    an explanation worded, and the fields a result reads. Made once per record object (`RECORD_WORDS`), not once
    per result: a match shows ~10 results, each of which read ~12 fields and wrote these words again
    (bench/RESULTS.md, "a match's results", session 28). A record's data alone, never a search's."""

    icb_code: str | None
    elsewhere: str  # said to a home outside its ICB: ", outside the person's ICB, in …." (and the area it serves
    # not known, `SERVE_THEIR_AREA`), after where the distance runs from (`Explainer`)
    own: str  # its own parts of an explanation: a dated file's age, its type where listed as another, legacy label, …
    dated: str | None  # `dated_listing`: the age of the dated files that alone list it
    needs_met: frozenset[str]
    read: dict[str, str]  # `needs_read_from_text`
    read_not: dict[str, str]  # `needs_read_not_met`
    synced: bool  # it has field sources (a synced record): the basis of its needs met is asked (`needs_by_basis`)
    capacity: Capacity | None  # as reported, whenever
    as_of: date | None
    reported: str  # the report's sentence (" Capacity limited as of 2026-11-01."); "" without a report


def record_words(service: Service) -> RecordWords:
    """`RecordWords` of the record, its fields read from `__dict__`, without pydantic's attribute hook."""
    fields = service.__dict__
    dated = dated_listing(service)
    own = f" {dated}" if dated else ""  # a file's age, before what the record says
    label = fields["original_label"]
    if label and label.casefold() != _FOLDED_TYPE_LABELS[fields["service_type"]]:
        own += f" {TYPE_LABELS[fields['service_type']]} (listed as '{label}')."
    if fields["legacy_locked_label"]:
        own += " Uses the legacy 'locked rehabilitation' label."
    if fields["pd_specialist"]:
        own += " Commissioned for people with a diagnosis of personality disorder."
    gender = fields["gender"]
    if gender in _SOURCES_GENDER_NOTES:
        own += _GENDER_NOTES[gender_basis(service)][gender]
    elif gender is None and (read_gender := fields["gender_read_from_text"]):
        own += " " + _gender_read(read_gender)  # a guess: a caution, never a filter
    capacity, as_of = fields["capacity"], fields["capacity_as_of"]
    areas = fields["areas"]
    return RecordWords(
        areas.icb_code, f", outside the person's ICB, in {areas.icb_name or 'another area'}."
        + (AREA_SERVED_NOT_KNOWN if area_served_not_known(service) else ""), own, dated,
        frozenset(fields["needs_met"]), fields["needs_read_from_text"], fields["needs_read_not_met"],
        bool(fields["field_sources"]), capacity, as_of,
        f" Capacity {capacity} as of {as_of.isoformat()}." if capacity and as_of is not None else "")


# Each record's words, kept while the index hands out the same record object (`rehabmap.per_record`): ~0.75 KB a
# record, for as many records as the index keeps.
RECORD_WORDS = PerRecord(record_words, size=RECORDS_KEPT)


class Explainer:
    """The explanations of one match's results. `max_age_days`: the capacity window, read once per match."""

    __slots__ = ("_about", "_from", "_inside", "_needs", "_needs_wording", "_based_wording", "_stale_capacity")

    def __init__(self, home_icb_name: str | None, needs: tuple[str, ...], max_age_days: int,
                 measured: str | None = None) -> None:
        """`measured`: where the distances run from when not the home itself (`measured_from`)."""
        self._about, self._from = distance_words(measured)
        self._inside = f"{self._from}, inside the person's ICB ({home_icb_name})."
        self._needs = needs
        self._needs_wording: dict[tuple[str, ...], str] = {}
        # The needs met with a basis to say (`needs_by_basis`), by the needs met and those of each basis.
        self._based_wording: dict[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]], str] = {}
        self._stale_capacity = f" Capacity unknown: the last report is more than {max_age_days} days old."

    def explain(self, service: Service, words: RecordWords, distance_km: float, in_icb: bool,
                matched: tuple[str, ...], out_of_catchment: bool, capacity: Capacity | None,
                read: tuple[str, ...] = (), read_not: tuple[str, ...] = (), unconfirmed: str = "") -> str:
        """`words`: the record's own (`RECORD_WORDS`), as the caller (`ResultMaker.result`) read them;
        `unconfirmed`: " " and `unconfirmed_listing`'s words, where they say anything (said where a dated file's
        age is);
        `matched`: the stated needs the service says it meets (the others are not known: a service
        that says it does not meet one never matches); `capacity`: as `Service.capacity_now` reads it;
        `read`, `read_not`: of the others, those its own words suggest it meets, or does not (a guess: worded
        as one, with the words quoted, and never as "Meets")."""
        wording = ""
        if self._needs:  # no needs asked, none matched or read: no wording
            # Asked of a record with field sources only (a synced one; most are a file's, with none), in line: a
            # call per result costs more than the test.
            registered, added = needs_by_basis(service, matched) if matched and words.synced else _NO_BASIS
            if read or read_not:  # the words quoted are the service's own: not shared, not kept
                wording = self._word_needs(matched, registered, added, service, read, read_not)
            elif registered or added:
                wording = self._based_wording.get((matched, registered, added)) or \
                    self._word_needs(matched, registered, added)
            else:  # never "" (a need asked is met or not known): a kept wording is never made again
                wording = self._needs_wording.get(matched) or self._word_needs(matched)
        # One string made of its parts at once (an f-string joins them in one step), not grown a part at a time: each
        # `+` made a new string and copied the text so far (~1k instructions a result, bench/RESULTS.md, session 30).
        return (f"{self._about}{miles_and_km(distance_km)}"
                f"{self._inside if in_icb else self._from + words.elsewhere}{unconfirmed}{words.own}"
                f"{wording}"
                f"{_OUT_OF_CATCHMENT if out_of_catchment else ''}"
                f"{words.reported if capacity else self._stale_capacity if words.capacity else _NO_CAPACITY_REPORT}")

    def _word_needs(self, matched: tuple[str, ...], registered: tuple[str, ...] = (), added: tuple[str, ...] = (),
                    service: Service | None = None, read: tuple[str, ...] = (), read_not: tuple[str, ...] = ()) -> str:
        """The needs' wording; kept for the match when it quotes no service's words (`service` None).
        `registered`, `added`: of the needs met, those said on a basis (`needs_by_basis`)."""
        unknown = [n for n in self._needs if n not in matched and n not in read and n not in read_not]
        wording = ""
        if matched:
            wording += " Meets: " + met_text(matched, registered, added) + "."
        if service is not None:
            wording += _read(_MENTIONS, read, service.needs_read_from_text)
            wording += _read(_MAY_NOT_TAKE, read_not, service.needs_read_not_met)
        if unknown:
            wording += " Not known: " + ", ".join(need_label(n) for n in unknown) + " (ask the service)."
        if service is None and (registered or added):
            self._based_wording[matched, registered, added] = wording
        elif service is None:
            self._needs_wording[matched] = wording
        return wording


# The homes whose distances run from a middle, not from the home (`measured_from`).
_FROM_A_MIDDLE = frozenset({"sector", "district", "place"})


def measured_from(precision: str, district: str | None, shown: str | None = None) -> str | None:
    """Where a search's distances run from when that is not the home: a postcode sector's or district's point, the
    mean of its postcodes (`geodata.postcodes`), "the middle of TR21"; a place's, its town's point or its council's
    or county's population-weighted centre, "the middle of Sheffield". `shown`: the sector, district or place as a
    page or the command line shows it (the home's label), or a reply echoes it (a place: `Home.place`). A reply names
    a district by `district`, and no sector, as it echoes no more than the district (README "Privacy"): "the
    postcode sector searched". None for a full postcode or a point. Before, "12.3 miles from home" read as exact
    where the home was TR21's point, and until session 53 where it was a place's."""
    if precision not in _FROM_A_MIDDLE:
        return None
    named = shown or (district if precision == "district" else None)
    if not named:  # a reply names no sector; nothing else should reach here unnamed, and never as "None"
        return f"the middle of the {'postcode ' if precision != 'place' else ''}{precision} searched"
    return f"the middle of {named}"


def about(*measured: str | None) -> str:
    """"about " before a distance either end of which was measured from a point that is not its own (`measured`:
    each end's `measured_from` words, or None), else nothing. The one rule of it, for the pages' tables, results
    and shortlist (`distance_figure`), the clinicians' cards and notes and POST /match (`distance_words`): the
    templates and web/present.py each decided it themselves before."""
    return "about " if any(measured) else ""


def distance_figure(distance_km: float, *measured: str | None) -> str:
    """A distance as a figure, "about" where either end was measured from a middle (`about`): "about 1.3 miles
    (2.1 km)"; the pages say what it runs from themselves ("… away")."""
    return f"{about(*measured)}{miles_and_km(distance_km)}"


def distance_words(measured: str | None, to: str | None = None) -> tuple[str, str]:
    """What is said before and after a distance from the home ("N miles (M km)"): ("", " from home"), or
    ("about ", " from the middle of TR21") where it was measured from a point that is not the home (`measured`:
    `measured_from`'s words), and "about " too where the far end was (`to`: a current placement's). The one home
    of that wording, for the pages (`distance_text`) and the explanations of POST /match (`Explainer`, which keeps
    both parts for a match's results); each had its own copy before."""
    return about(measured, to), f" from {measured}" if measured else " from home"


def distance_text(distance_km: float, measured: str | None, to: str | None = None) -> str:
    """A distance from the home as every face says it: "12.3 miles (19.8 km) from home", or "about …" from where
    it was measured, or to a middle (`distance_words`)."""
    before, after = distance_words(measured, to)
    return f"{before}{miles_and_km(distance_km)}{after}"


def measured_note(measured: str, precision: str) -> str:
    """Said once beside distances that run from a sector's, district's or place's point (`measured_from`; `precision`:
    the home's). A place's is no mean of postcodes, and gave none."""
    mean, postcode = (" (the mean of its postcodes)", "the full") if precision != "place" else ("", "a full")
    return (f"Distances are approximate: measured from {measured}{mean}, not from an address. "
            f"Give {postcode} postcode for exact distances.")


def area_served_not_known(service: Service) -> bool:
    """Whether the service is of a type that usually serves only its own area (`SERVE_THEIR_AREA`) and states no
    area it serves: a match says so of it to a home outside its ICB (the explanation, the card's tag, the notes)."""
    fields = service.__dict__
    return fields["service_type"] in SERVE_THEIR_AREA and not fields["service_area"].restricted


def dated_listing(service: Service) -> str | None:
    """Where every source of the record is a dated file (`FileEdition`) and no person has checked it, its age in
    the words of the service page's listing (web/templates/macros/listing.html): "Listed only in NHS website
    hospital list (September 2018), a file of September 2018, not confirmed since."; else None. A match's
    explanation, its card and its text for notes say it beside the option, and the API's result gives it: only the
    service page said it, so a clinician could take a listing eight years old, which no sync nor person has
    confirmed since, for a current one. A record a live source also lists, or a person checked (`last_verified`),
    rests on more than the file. A feed that relays the file's listing (another rehabmap's ORUK feed, `Relay`) is no
    live source: it lists the record on the day it is read, the file being as old as it says ("…, a file of
    September 2018, as relayed by first rehabmap, not confirmed since.")."""
    editions = [p.edition for p in dating(service.provenance)]
    if service.last_verified is not None or not editions or None in editions:
        return None
    return f"Listed only {' and '.join(_files(service))}, not confirmed since."


def unconfirmed_listing(service: Service, listings: Unconfirmed) -> str | None:
    """Where every live source of the record (CQC, NHS Service Search, an ORUK feed, CQC's monthly files) last
    confirmed it more than the listing window ago (`listings`: `rehabmap.maintain.freshness.unconfirmed_listings`),
    any other source being a dated file, and no person has checked it: how old its listing is, in `dated_listing`'s
    words, "Listed only by Care Quality Commission (CQC), last confirmed 2 June 2026, not confirmed since."; else
    None. A match says it where it says a file's age: a source whose sync stopped (or fails every run) left its
    listings reading as current, and only the service page said when the source last confirmed them."""
    if service.last_verified is not None or not (live := listings.unconfirmed(service)):
        return None
    said = [f"by {name}, last confirmed {long_date(day)}" for name, day in live] + _files(service)
    return f"Listed only {' and '.join(said)}, not confirmed since."


def _files(service: Service) -> list[str]:
    """The dated files among the record's sources, each once, as "in <title>, a file of <date>"."""
    return list(dict.fromkeys(f"in {e.title or 'a dated file'}, a file of {e.dated or 'no stated date'}"
                              + (f", as relayed by {relay.named}" if (relay := p.relayed_by) else "")
                              for p in service.provenance if (e := p.edition) is not None))


def long_date(value: date | None) -> str:
    """A day as a person reads it, "2 June 2026" (the pages' and a match's words)."""
    return f"{value.day} {value:%B %Y}" if value else "unknown"


def met_text(matched: Sequence[str], registered: tuple[str, ...] = (), added: tuple[str, ...] = ()) -> str:
    """The needs met, in the order asked within each basis (`needs_by_basis`): those CQC registered, then those
    with none to say, then those the rehabmap team added, each group followed by its basis: "Learning disability
    (as registered with CQC); Autism (added by the rehabmap team)". The explanation's "Meets:" and the card's."""
    plain = [n for n in matched if n not in registered and n not in added] if registered or added else matched
    return "; ".join(", ".join(map(need_label, needs)) + basis
                     for needs, basis in ((registered, REGISTERED), (plain, ""), (added, _ADDED)) if needs)


def needs_said_by(service: Service) -> tuple[list[str], list[str]]:
    """Of the needs the service states, those its CQC registration states and those a maintainer's edit added to a
    source's record (`needs_by_basis` of its needs met, once for both): the API's record, the exports and the ORUK
    feed give them as `needs_registered` and `needs_added_by_maintainers`.

    The registered ones are stated because CQC registered the location to care for them (its specialisms and
    regulated activities), not as the provider's or a maintainer's word on whom it takes: stated needs still (the
    regulator holds it to them: not a guess read from its words), said as what they are; a record merged with
    another source's states every source's needs, so none of them. The added ones are the maintainers' word, which
    a match's explanation says as "added by the rehabmap team", never CQC's, the source's or the provider's; a
    gender a maintainer stated there is among them as its gender need (`Service.needs_met` holds it); none for a
    record no maintainer added a need to, nor for one made in the directory (all of it theirs, with no source's
    word to tell it from)."""
    registered, added = needs_by_basis(service, service.needs_met)
    return list(registered), list(added)


class GenderSaid(NamedTuple):
    """Whose word a record's gender is, as the API's record, each `/match` result, the exports and the ORUK feed
    give it (`gender_said_by`)."""

    by_team: bool  # `gender_stated_by_maintainers`: the gender the record states is a maintainer's word on a
    # source's record (added or changed), not the source's; false where they removed the source's (none stated)
    basis: GenderBasis | None  # `gender_basis`
    from_source: Gender | None  # `gender_from_source`: the source's gender the team's word changed or removed


def gender_said_by(service: Service) -> GenderSaid:
    """Whose word the record's gender is (`gender_basis`, the one rule, asked once) and the gender its source states
    where the maintainers' word replaced it: so a consumer tells "changed" from "added" and sees what the source
    said, and a gender the team cleared never reads as the source's silence. Never a filter: a match filters on the
    record's gender, the team's word."""
    basis = gender_basis(service)
    return GenderSaid(basis in (_ADDED_GENDER, _CHANGED_GENDER), basis,
                      service.source_gender if basis in (_CHANGED_GENDER, _REMOVED_GENDER) else None)


def gender_basis(service: Service) -> GenderBasis | None:
    """Whose word the record's gender is. The team's where `field_sources` calls it the directory's (a maintainer
    stated or cleared it on a source's record): added where the source states no gender, as the needs a maintainer
    added are said; changed where it states another (`Service.source_gender`), which the team's word replaced
    ("added" would say the source stated none); removed where the record states none and the source one (the
    team cleared it: "not stated" alone would pass their edit for the source's silence). Else the source's
    (`"source"`): a gender the source states, one it has since come to state too, and one on a record made in the
    directory, which has no field sources (all of it is the team's, with no source's word to tell it from). None: no
    gender, and none removed."""
    fields = service.__dict__  # as `Explainer.explain` reads them, without pydantic's attribute hook
    gender = fields["gender"]
    if fields["field_sources"].get("gender") != OVERLAY_SOURCE:
        return None if gender is None else _SOURCE
    said = fields["source_gender"]
    if gender is None:
        return None if said is None else _REMOVED_GENDER
    return _ADDED_GENDER if said is None else _SOURCE if said == gender else _CHANGED_GENDER


def removed_gender_text(service: Service) -> str | None:
    """Where the maintainers cleared the gender the source states (`gender_basis`), that in people's words: "Not
    stated (the source said men only; removed by the rehabmap team)", the service page's "Who it takes". None
    otherwise. A match does not say it: it filters on no gender, the team's word."""
    _, basis, said = gender_said_by(service)
    if basis != _REMOVED_GENDER or said is None:
        return None
    return f"Not stated (the source said {GENDER_WORDS[said].lower()}; {GENDER_BASIS_WORDS[basis]})"


def stated_gender_text(service: Service) -> str | None:
    """The single gender the service states, in people's words, said as the maintainers' where it is theirs
    (`gender_basis`): "Men only (added by the rehabmap team)", else "Men only", as a match's explanation says it.
    The clinicians' card's tag and their text for notes. None for none, a mixed one, or one only read from its
    words (`gender_read_text` words that as a caution)."""
    gender = service.gender
    if gender not in _SOURCES_GENDER_NOTES:
        return None
    return _GENDER_TEXTS[gender_basis(service)][gender]


def needs_by_basis(service: Service, needs: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Of `needs`, stated by the service, those its CQC registration states (`cqc_registration`) and those a
    maintainer's edit added, once `field_sources` calls its needs lists the directory's (a PATCH of the lists, a
    need or a gender stated on `/maintain`): on a CQC record, the needs but its registration (kept apart from such
    an edit: `Service.cqc_registered_needs`); on another source's record, the needs but those its source stated
    before the first such edit (`Service.source_needs_met`), which are the source's word, said plainly (neither).
    So each need met has its own basis, never one for all; a need the source stated that the edit took out is not
    met, and not among `needs`. None of either on a record made in the directory (all of it the team's, with no
    source's word to tell it from), nor on one an edit reached before the source's needs were kept."""
    fields = service.__dict__  # as `cqc_registration` reads them
    registration = cqc_registration(service)
    by_team = fields["field_sources"].get("needs_met") == OVERLAY_SOURCE
    if registration or (by_team and _from_cqc(service)):
        registered = tuple(n for n in needs if n in registration)
        return registered, tuple(n for n in needs if n not in registration) if by_team else ()
    if not by_team or (said := fields["source_needs_met"]) is None:
        return _NO_BASIS
    return (), tuple(n for n in needs if n not in said)


def cqc_registration(service: Service) -> list[str]:
    """The needs CQC's registration states for the record: those kept apart when a maintainer's edit laid its own
    lists (`Service.cqc_registered_needs`), else its needs met while its field sources say they are a CQC
    connector's (the API's `cqc`, the care directory's `cqc-directory`, the register's `cqc-hsca`); none for a
    record with another source's provenance."""
    fields = service.__dict__  # as `Service._consistent` reads them, without pydantic's attribute hook
    if not _from_cqc(service):
        return []
    if fields["cqc_registered_needs"]:
        return fields["cqc_registered_needs"]
    said_by = fields["field_sources"].get("needs_met", "").split(":", 1)[0]
    if said_by != _CQC and not said_by.startswith(_CQC_CONNECTOR):
        return []
    return [n for n in fields["needs_met"] if _registrable(n)]


def _from_cqc(service: Service) -> bool:
    """Whether every source of the record is CQC: a record merged with another source's is not CQC's word alone."""
    return all(p.source == _CQC for p in service.__dict__["provenance"])


def _registrable(need: str) -> bool:
    """A need a registration can state: its specialisms' and regulated activities' (`indexer/sources/cqc.py`
    `_SPECIALISM_NEEDS`), never a gender or a language (a maintainer's word on a CQC record)."""
    return need not in GENDER_NEEDS and need[:9] != "language:"


def gender_read_text(service: Service) -> str | None:
    """The gender read from the service's own words, said to be read, with the words quoted ("Its listing
    suggests it takes women only ('women-only'); not confirmed: ask the service."); None when none was read.
    A match never leaves a person out on it: this caution is all it says."""
    read = service.gender_read_from_text
    return _gender_read(read) if read else None


def _gender_read(read: dict[Gender, str]) -> str:
    ((gender, words),) = read.items()
    return f"Its listing suggests it takes {GENDER_WORDS[gender].lower()} ('{words}'); {NOT_CONFIRMED}."


def read_needs_note(service: Service) -> str:
    """Every need and the gender read from the service's own words, said to be read ("" when none): the ORUK
    feed's note, worded as a match's explanation words them (the gender once, not as its three needs)."""
    read, read_not = without_gender(service.needs_read_from_text), without_gender(service.needs_read_not_met)
    note = _read(_MENTIONS, tuple(read), read) + _read(_MAY_NOT_TAKE, tuple(read_not), read_not)
    return " ".join(filter(None, (gender_read_text(service), note.strip())))


def without_gender(needs: dict[str, str]) -> dict[str, str]:
    """Read needs but the three gender needs, which a page or note words once as who the service takes."""
    return {n: words for n, words in needs.items() if n not in GENDER_NEEDS}


def quoted(needs: Iterable[str], words: dict[str, str]) -> list[str]:
    """Needs read from a service's words, each with the words that suggested it: "Autism ('autistic')"."""
    return [f"{need_label(n)} ('{words[n]}')" for n in needs]


def _read(opening: str, needs: tuple[str, ...], words: dict[str, str]) -> str:
    """Needs read from a service's words, each with the words quoted: a guess, said to be one."""
    if not needs:
        return ""
    return opening + ", ".join(quoted(needs, words)) + "; " + NOT_CONFIRMED + "."
