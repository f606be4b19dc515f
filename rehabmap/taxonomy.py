"""The rehab pathway vocabulary (DESIGN.md §2): service types, subtypes, legacy labels and needs.

Everything that names a type, a subtype or a need goes through this module, so the importers, the
matching rules, the API and the ORUK taxonomy all speak the same words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import Enum

from rehabmap.errors import UnknownNeed, UnknownServiceType, blank, shorten
from rehabmap.languages import (
    UnknownLanguage,
    find_language,
    language_name,
    record_code,
    suggestion_text,
    with_macrolanguages,
)
from rehabmap.textmatch import FoldedPattern, fold_case, words


class ServiceType(str, Enum):
    """Ordered least restrictive first: the order used for "any suitable option"."""

    vcfse = "vcfse"
    advocacy = "advocacy"
    ips_employment = "ips_employment"
    supported_accommodation = "supported_accommodation"
    community_rehab_team = "community_rehab_team"
    inpatient_rehab_level1 = "inpatient_rehab_level1"
    inpatient_rehab_level2 = "inpatient_rehab_level2"

    @property
    def restrictiveness(self) -> int:
        """Its place in the order, least restrictive first (asked per result and per type of every match)."""
        return _RESTRICTIVENESS[self]

    @property
    def is_inpatient(self) -> bool:
        return self in (ServiceType.inpatient_rehab_level1, ServiceType.inpatient_rehab_level2)


_RESTRICTIVENESS = {service_type: place for place, service_type in enumerate(ServiceType)}


def least_restrictive_first(types: Iterable[ServiceType]) -> list[ServiceType]:
    """The types sorted by `restrictiveness`, keyed by its table itself: the property through a key function was
    ~1.8k instructions a type, twice a match (bench/RESULTS.md, "outside the index pass", session 26)."""
    return sorted(types, key=_RESTRICTIVENESS.__getitem__)

# `ServiceType(code)` is two Python frames (the enum's metaclass, then `Enum.__new__`) around this very lookup
_TYPE_OF_CODE = {service_type.value: service_type for service_type in ServiceType}

TYPE_LABELS: dict[ServiceType, str] = {
    ServiceType.vcfse: "Voluntary, community, faith and social enterprise support",
    ServiceType.advocacy: "Advocacy",
    ServiceType.ips_employment: "Individual Placement and Support (employment)",
    ServiceType.supported_accommodation: "Supported accommodation",
    ServiceType.community_rehab_team: "Community mental health rehabilitation team",
    ServiceType.inpatient_rehab_level1: "Level 1 inpatient rehabilitation unit",
    ServiceType.inpatient_rehab_level2: "Level 2 inpatient rehabilitation unit (higher support)",
}

SUBTYPES: dict[ServiceType, tuple[str, ...]] = {
    ServiceType.advocacy: ("imha", "imca", "care_act", "community"),
    ServiceType.supported_accommodation: ("floating_outreach", "supported_housing", "residential_24h"),
}

SUBTYPE_LABELS: dict[str, str] = {
    "imha": "Independent Mental Health Advocate (IMHA)",
    "imca": "Independent Mental Capacity Advocate (IMCA)",
    "care_act": "Care Act advocacy",
    "community": "Community advocacy",
    "floating_outreach": "Floating outreach support",
    "supported_housing": "Supported housing (high support, on-site staff)",
    "residential_24h": "24-hour staffed residential care",
}


def type_words(service_type: str | None, subtype: str | None = None) -> str:
    """A type, and its subtype, as the pages name them, never by code ("Level 1 inpatient rehabilitation unit",
    "Advocacy: Independent Mental Health Advocate (IMHA)"); "no type" for none. The one home of these words for the
    review pages, `rehabmap review`, a sync's report and the coverage's categories (the commands and the report
    printed the codes, `inpatient_rehab_level1`, where the pages said the words)."""
    if not service_type:
        return "no type"
    label = TYPE_LABELS[ServiceType(service_type)]
    return f"{label}: {SUBTYPE_LABELS.get(subtype, subtype)}" if subtype else label


class Need(str, Enum):
    learning_disability = "learning_disability"
    autism = "autism"
    personality_disorder_diagnosis = "personality_disorder_diagnosis"
    detained_mha = "detained_mha"
    restricted_s37_41 = "restricted_s37_41"
    substance_misuse = "substance_misuse"
    older_adult = "older_adult"
    physical_health_complex = "physical_health_complex"
    acquired_brain_injury = "acquired_brain_injury"
    female_only = "female_only"
    male_only = "male_only"
    mixed_gender = "mixed_gender"
    step_free_access = "step_free_access"
    sensory_adapted = "sensory_adapted"


NEED_LABELS: dict[str, str] = {
    "learning_disability": "Learning disability",
    "autism": "Autism",
    "personality_disorder_diagnosis": "Diagnosis of personality disorder",
    "detained_mha": "Detained under the Mental Health Act",
    "restricted_s37_41": "Restricted patient (s37/41)",
    "substance_misuse": "Substance misuse",
    "older_adult": "Older adult",
    "physical_health_complex": "Complex physical health needs",
    "acquired_brain_injury": "Acquired brain injury",
    "female_only": "Women-only service",
    "male_only": "Men-only service",
    "mixed_gender": "Mixed-gender service",
    "step_free_access": "Step-free access",
    "sensory_adapted": "Sensory-adapted environment",
}

GENDER_NEEDS = (Need.female_only.value, Need.male_only.value, Need.mixed_gender.value)
# The needs a request may ask for, as the API documents them (`parse_asked_need`).
ASKED_NEEDS_WORDS = (", ".join(NEED_LABELS) + ", or language:<ISO 639 code or English name>: language:pl or "
                     "language:Polish (ISO 639's name, in any case; two or three letters read as a code), "
                     "answered as language:<code>")
_LANGUAGE = re.compile(r"^language:([a-z]{2,3})$")


def parse_type(value: str) -> ServiceType:
    """Accept a type code in any case; reject anything else with the list of valid codes."""
    service_type = _TYPE_OF_CODE.get(value.strip().lower())
    if service_type is None:
        raise unknown_type(value, f"{', '.join(t.value for t in ServiceType)}, or 'any'", field="types")
    return service_type


def unknown_type(code: str, valid: str, *, field: str, given: str | None = None) -> UnknownServiceType:
    """The error for a service type `code` that names none, in one wording wherever a type is read (`parse_type`,
    `rehabmap.gaps.categories.parse_category`). A blank code names what was given, `given` where the code was one of
    its comma-separated codes: "Unknown service type ''" did not say where the blank was, nor that it was one."""
    given = code if given is None else given
    if code.strip():
        said = f"Unknown service type '{shorten(code)}'"
    elif "," in given:
        said = f"'{shorten(given)}' has a blank service type beside a comma, which names no type"
    else:
        said = blank("service type", "type")
    return UnknownServiceType(f"{said}. Use one of: {valid}.", field=field)


def parse_need(value: str) -> str:
    """Normalise a need code as a record carries it; `language:<ISO 639 code>` is open-ended, the rest are
    fixed. A language is kept by the code records carry, whichever of ISO 639's codes or names a source gave
    (`language:pol` and `language:Polish` are `language:pl`): a search for it finds them all. A code ISO 639
    does not list is kept as it is. What a person asks for is read by `parse_asked_need`, which refuses one."""
    key = value.strip().lower()
    if key in NEED_LABELS:
        return key
    if key[:9] == "language:" and _LANGUAGE.match(need := f"language:{record_code(key[9:])}"):
        return need
    raise _unknown_need(value)


def stated_needs(values: set[str]) -> set[str]:
    """A record's stated needs (met) with the macrolanguage of each language among them: a service that speaks
    Cantonese meets a need for Chinese (`rehabmap.languages.with_macrolanguages`)."""
    codes = {n[9:] for n in values if n[:9] == "language:"}
    return values | {f"language:{code}" for code in with_macrolanguages(codes)} if codes else values


def parse_asked_need(value: str) -> str:
    """A need as a person asks for it: a fixed code, or `language:` and a language's English name or ISO 639
    code (`language:Polish`, `language:pol`), kept as the code records carry (`language:pl`). A language ISO
    639 does not list is refused, with the names nearest in spelling, rather than asked of every record."""
    key = value.strip()
    if key[:9].lower() != "language:":
        return parse_need(key)
    try:
        return language_need(key)
    except UnknownLanguage as error:
        raise UnknownNeed(f"Unknown language '{shorten(error.typed)}' in need '{shorten(value)}'. Give the "
                          f"language's English name or ISO 639 code, e.g. language:Polish or language:pl."
                          f"{suggestion_text(error)}", field="needs") from None


def language_need(typed: str) -> str:
    """The need for a language named by its English name or ISO 639 code, with or without `language:` before
    it; `UnknownLanguage` for none."""
    return f"language:{find_language(typed[9:] if typed[:9].lower() == 'language:' else typed).code}"


def _unknown_need(value: str) -> UnknownNeed:
    valid = ", ".join(f"{label} ({code})" for code, label in NEED_LABELS.items())
    said = f"Unknown need '{shorten(value)}'" if value.strip() else blank("need", "need")
    return UnknownNeed(f"{said}. Use one of: {valid}; or a language: language:<English "
                       "name or ISO 639 code> (e.g. language:Polish or language:pl).", field="needs")


def need_label(code: str) -> str:
    """A need in words: its label, or a language's English name ("Language: Polish")."""
    label = NEED_LABELS.get(code)  # no fixed code has a language's form
    if label is not None:
        return label
    match = _LANGUAGE.match(code)
    if match:
        return f"Language: {language_name(match.group(1))}"
    return NEED_LABELS[code]


def parse_subtypes(given: list[str] | tuple[str, ...] | None,
                   types: tuple[ServiceType, ...] | None) -> tuple[str, ...] | None:
    """Subtypes asked for in a search. Each narrows its own type only (IMHA narrows advocacy; other types
    asked for are untouched), so with types named, each subtype must belong to one of them."""
    if not given:
        return None
    allowed = {sub: t for t in (types or tuple(ServiceType)) for sub in SUBTYPES.get(t, ())}
    subtypes = tuple(dict.fromkeys(s.strip().lower() for s in given))
    for sub in subtypes:
        if sub in allowed:
            continue
        # A kind of a type not asked for is named as such: "Unknown subtype 'imha'. Use one of: none for the types
        # asked for" told a caller asking for VCFSE and IMHA neither that IMHA is advocacy nor what to change.
        owner = next((t for t, subs in SUBTYPES.items() if sub in subs), None)
        if owner is not None:
            raise UnknownServiceType(f"Subtype '{sub}' is a kind of {owner.value}, which is not among the types asked "
                                     f"for: add '{owner.value}' to the types, or leave the subtype out.",
                                     field="subtypes")
        options = ", ".join(allowed) or "none (the types asked for have no subtypes)"
        said = f"Unknown subtype '{shorten(sub)}'" if sub else blank("subtype", "subtype")
        raise UnknownServiceType(f"{said}. Use one of: {options}.", field="subtypes")
    return subtypes


def types_narrowed_by(subtypes: frozenset[str]) -> frozenset[ServiceType]:
    """The types that some of these subtypes belong to: a search asking for the subtypes keeps only those
    subtypes of these types, and leaves every other type as it is."""
    return frozenset(t for t, subs in SUBTYPES.items() if subtypes.intersection(subs))


def validate_subtype(service_type: ServiceType, subtype: str | None) -> str | None:
    if subtype is None:
        return None
    allowed = SUBTYPES.get(service_type, ())
    if subtype not in allowed:
        options = ", ".join(allowed) or "none"
        # a blank one named as blank, as the API's refusal of it is: "Subtype '' does not belong to …" (a review
        # decision's `--subtype ""`) quoted nothing, as if a subtype of another type were given
        said = f"Subtype '{shorten(subtype)}' does not belong to {service_type.value}" if subtype.strip() else \
            blank("subtype", f"subtype of {service_type.value}")
        raise UnknownServiceType(f"{said} (allowed: {options}).", field="subtype")
    return subtype


@dataclass(frozen=True)
class Classification:
    """What a source label means in the pathway; `legacy_locked` and `pd_specialist` flag labels
    the 2024 guidance says commissioners must see. `level_stated` is False for an inpatient unit the label
    names without its level ("rehabilitation unit", "inpatient rehab"): level 1 is then only the default, which
    a source that only may list rehab services does not confirm (a CQC hospital, a hospital or trust site list)."""

    service_type: ServiceType
    subtype: str | None = None
    legacy_locked: bool = False
    pd_specialist: bool = False
    level_stated: bool = True


class NotRehab(ValueError):
    """The label names a service that is not part of the rehab pathway (e.g. low/medium secure)."""


# The legacy inpatient labels DESIGN.md §2 lists; what each means comes from `classify_label`.
LEGACY_LABEL_TEXTS = ("community rehabilitation unit", "high dependency", "longer term high dependency",
                      "highly specialist high dependency", "complex care", "longer stay", "locked rehabilitation")

# Adult secure services are not rehab, whatever type a source gives them (`refuse_secure`).
_SECURE = FoldedPattern(words(r"\b(low|medium|high) secure\b|\bforensic secure\b"))

# Ordered: the first pattern that matches wins, so specific labels come before general ones. Patterns are
# lowercase and run on the folded label (rehabmap/textmatch.py): re.IGNORECASE's answers, faster. A space
# in a pattern stands for any gap between words: "locked rehab" matches "Locked-Rehab" and "locked/rehab".
_LABEL_RULES: tuple[tuple[FoldedPattern, Classification], ...] = tuple(
    (FoldedPattern(words(pattern)), cls) for pattern, cls in (
        (r"\blocked rehab", Classification(ServiceType.inpatient_rehab_level2, legacy_locked=True)),
        (r"\bhigh(ly)? (specialist )?(high )?dependency\b|\blonger term high dependency\b",
         Classification(ServiceType.inpatient_rehab_level2)),
        (r"\bcomplex care\b(?!.*\bteams?\b)", Classification(ServiceType.inpatient_rehab_level2)),
        (r"\blonger? stay\b", Classification(ServiceType.inpatient_rehab_level2)),
        (r"\blevel 2\b", Classification(ServiceType.inpatient_rehab_level2)),
        (r"\bcommunity rehab(ilitation)? unit\b", Classification(ServiceType.inpatient_rehab_level1)),
        (r"\blevel 1\b", Classification(ServiceType.inpatient_rehab_level1)),
        (r"\b(community )?(mental health )?rehab(ilitation)? (and recovery )?teams?\b"
         r"|\bcomm(unity)? rehab(ilitation)? $|^comm(unity)? rehab(ilitation)?\b",
         Classification(ServiceType.community_rehab_team)),
        (r"\bindividual placement and support\b|\bips\b|\bsupported employment\b",
         Classification(ServiceType.ips_employment)),
        (r"\bimha\b|independent mental health advoca",
         Classification(ServiceType.advocacy, "imha")),
        (r"\bimca\b|independent mental capacity advoca",
         Classification(ServiceType.advocacy, "imca")),
        (r"\bcare act advoca", Classification(ServiceType.advocacy, "care_act")),
        (r"\badvoca(cy|te)\b", Classification(ServiceType.advocacy, "community")),
        (r"\bfloating (support|outreach)\b|\boutreach support\b",
         Classification(ServiceType.supported_accommodation, "floating_outreach")),
        (r"\b24 hour\b.*\b(residential|care home|staffed)\b|\bresidential care\b|\bcare home\b",
         Classification(ServiceType.supported_accommodation, "residential_24h")),
        (r"\bsupported (housing|accommodation|living)\b",
         Classification(ServiceType.supported_accommodation, "supported_housing")),
        (r"\binpatient rehab|\brehab(ilitation)? (unit|ward|hospital)\b",
         Classification(ServiceType.inpatient_rehab_level1, level_stated=False)),
        (r"\bpeer support\b|\brecovery college\b|\bday (centre|service)s?\b|\bcarers?\b|"
         r"\bvoluntary\b|\bcommunity (group|support)\b|\bcharity\b|\bsocial enterprise\b|\bfaith\b",
         Classification(ServiceType.vcfse)),
    )
)
_PD = FoldedPattern(words(r"personality disorder|\bpd (service|unit)\b"))


def refuse_secure(label: str | None) -> None:
    """Raise NotRehab when the label names an adult secure service: no type a source or a mapping gives
    makes a low or medium secure unit part of the rehab pathway."""
    if label:
        _refuse_secure(label, fold_case(label))


def _refuse_secure(label: str, folded: str) -> None:
    if _SECURE.search(folded):
        raise NotRehab(f"'{shorten(label)}' is an adult secure service, which is not rehabilitation")


# Providers that are by definition not voluntary, community, faith or social enterprise organisations.
STATUTORY_PROVIDERS = frozenset({"nhs", "local_authority"})


def classify_provided(label: str, provider_type: str | None) -> Classification | None:
    """`classify_label` for a service whose provider a source states (`said_of`)."""
    return said_of(classify_label(label), provider_type)


def said_of(found: Classification | None, provider_type: str | None) -> Classification | None:
    """What a label's reading says of a service whose provider a source states. A label that reads as VCFSE
    ("… COMMUNITY SUPPORT & REHABILITATION SERVICE") says nothing about the service of an NHS trust or a
    council, which no voluntary or community organisation runs: None, as for a label that says nothing. A
    provider type that is not text (a list or an object from a JSON feed) names no provider: the reading
    stands, and the record's validation rejects the row for its provider type, as it does any it does not know."""
    if (isinstance(provider_type, str) and provider_type in STATUTORY_PROVIDERS and found is not None
            and found.service_type is ServiceType.vcfse):
        return None
    return found


def classify_label(label: str) -> Classification | None:
    """Map a source label (current or legacy) onto the taxonomy.

    Returns None when nothing in the label says what it is; raises NotRehab for services the
    guidance says are not rehab (adult secure), so importers can reject them with that reason.
    """
    folded = fold_case(label)
    _refuse_secure(label, folded)
    for pattern, classification in _LABEL_RULES:
        if pattern.search(folded):
            if _PD.search(folded) and classification.service_type.is_inpatient:
                return replace(classification, pd_specialist=True)
            return classification
    return None
