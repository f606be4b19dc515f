"""Legacy rehab labels map onto level 1/2 and keep what commissioners must see."""

from __future__ import annotations

import pytest

from indexer.needs import extract_gender, extract_needs
from rehabmap.errors import UnknownNeed, UnknownServiceType
from rehabmap.taxonomy import NotRehab, ServiceType, classify_label, parse_need, parse_type

L1, L2 = ServiceType.inpatient_rehab_level1, ServiceType.inpatient_rehab_level2


@pytest.mark.parametrize("label, expected, locked", [
    ("Community Rehabilitation Unit", L1, False),
    ("High Dependency Rehabilitation Unit", L2, False),
    ("Longer term high dependency rehabilitation", L2, False),
    ("Highly specialist high dependency unit", L2, False),
    ("Complex care rehabilitation", L2, False),
    ("Longer stay rehabilitation ward", L2, False),
    ("Locked rehabilitation", L2, True),
    ("LOCKED REHAB unit for men", L2, True),
    ("Level 1 inpatient rehabilitation", L1, False),
    ("Level 2 rehabilitation unit", L2, False),
])
def test_legacy_inpatient_labels(label, expected, locked):
    c = classify_label(label)
    assert c.service_type is expected
    assert c.legacy_locked is locked


def test_personality_disorder_units_are_flagged():
    c = classify_label("Locked rehabilitation for women with a personality disorder")
    assert (c.service_type, c.legacy_locked, c.pd_specialist) == (L2, True, True)


@pytest.mark.parametrize("label", ["Low secure ward", "Medium Secure Unit", "forensic secure service"])
def test_secure_services_are_not_rehab(label):
    with pytest.raises(NotRehab, match="not rehabilitation"):
        classify_label(label)


@pytest.mark.parametrize("label, service_type, subtype", [
    ("Community Mental Health Rehabilitation Team", ServiceType.community_rehab_team, None),
    ("Individual Placement and Support service", ServiceType.ips_employment, None),
    ("IMHA advocacy", ServiceType.advocacy, "imha"),
    ("Independent Mental Capacity Advocate", ServiceType.advocacy, "imca"),
    ("Care Act advocacy", ServiceType.advocacy, "care_act"),
    ("Floating support", ServiceType.supported_accommodation, "floating_outreach"),
    ("24-hour staffed residential care home", ServiceType.supported_accommodation, "residential_24h"),
    ("Supported housing scheme", ServiceType.supported_accommodation, "supported_housing"),
    ("Rehab teams (north and south)", ServiceType.community_rehab_team, None),
    ("KCW COMMUNITY REHAB", ServiceType.community_rehab_team, None),
    ("COMM REHAB HARROW", ServiceType.community_rehab_team, None),
    ("Recovery College", ServiceType.vcfse, None),
    ("Peer support group", ServiceType.vcfse, None),
])
def test_community_labels(label, service_type, subtype):
    c = classify_label(label)
    assert (c.service_type, c.subtype) == (service_type, subtype)


def test_unrecognised_label_is_none():
    assert classify_label("Kingfisher House") is None
    # A community "complex care" team is not the legacy inpatient label.
    assert classify_label("Complex care & treatment team") is None


def test_needs_from_text_positive_and_negative():
    met, not_met = extract_needs(
        "Accepts people detained under the Mental Health Act and autistic adults. "
        "Does not accept restricted patients. Step-free access throughout.")
    assert met == {"detained_mha", "autism", "step_free_access"}
    assert not_met == {"restricted_s37_41"}
    assert extract_needs("A friendly place.") == (set(), set())


def test_gender_from_text():
    assert extract_gender("A women-only service") == "female_only"
    assert extract_gender("Mixed gender ward") == "mixed_gender"
    assert extract_gender("For men and for women only on Tuesdays") is None  # ambiguous stays unknown


def test_vocabulary_errors_name_the_value():
    assert parse_type("Inpatient_Rehab_Level2") is L2
    with pytest.raises(UnknownServiceType, match="'hospital'"):
        parse_type("hospital")
    assert parse_need("language:pl") == "language:pl"
    with pytest.raises(UnknownNeed, match="'dementia'"):
        parse_need("dementia")


@pytest.mark.parametrize("label, expected, locked", [
    ("Fir Locked-Rehabilitation Ward", L2, True),
    ("Pine High-Dependency Rehab Unit", L2, False),
    ("Larch highly-specialist high-dependency unit", L2, False),
    ("Birch Longer-Stay Rehabilitation", L2, False),
    ("Ash Complex-Care Unit", L2, False),
    ("Maple Community-Rehabilitation-Unit", L1, False),
    ("Rowan Rehabilitation-Ward", L1, False),
])
def test_hyphenated_labels(label, expected, locked):
    c = classify_label(label)
    assert (c.service_type, c.legacy_locked) == (expected, locked)


@pytest.mark.parametrize("separator", [" ", "  ", "-", " - ", "/", "", "_", "\u2013", "\n"])
@pytest.mark.parametrize("words, expected", [
    (("locked", "rehabilitation"), (L2, True)),
    (("high", "dependency"), (L2, False)),
    (("community", "rehabilitation", "unit"), (L1, False)),
    (("supported", "housing"), (ServiceType.supported_accommodation, False)),
    (("peer", "support"), (ServiceType.vcfse, False)),
    (("care", "act", "advocacy"), (ServiceType.advocacy, False)),
])
def test_labels_match_whatever_the_separator(separator, words, expected):
    c = classify_label(f"Oak {separator.join(words)} service")
    assert (c.service_type, c.legacy_locked) == expected


@pytest.mark.parametrize("separator", [" ", "-", "/", "", "\u2010"])
@pytest.mark.parametrize("level", ["low", "medium", "high", "Medium", "LOW"])
def test_secure_services_are_not_rehab_whatever_the_separator(separator, level):
    with pytest.raises(NotRehab, match="not rehabilitation"):
        classify_label(f"Holly {level}{separator}secure unit")


@pytest.mark.parametrize("text, need", [
    ("Accepts people with learning-disabilities", "learning_disability"),
    ("Step free access", "step_free_access"),
    ("stepfree entrance", "step_free_access"),
    ("Complex physical-health needs", "physical_health_complex"),
    ("dual-diagnosis welcome", "substance_misuse"),
    ("Older-adults", "older_adult"),
    ("restricted-patients (s37/41)", "restricted_s37_41"),
    ("Sensory/friendly rooms", "sensory_adapted"),
])
def test_needs_match_whatever_the_separator(text, need):
    met, not_met = extract_needs(text)
    assert need in met and not not_met


def test_negated_hyphenated_needs_are_not_met():
    assert extract_needs("We do not accept restricted-patients")[1] == {"restricted_s37_41"}
    assert extract_gender("A women-only ward") == "female_only"
    assert extract_gender("Mixed/gender ward") == "mixed_gender"


@pytest.mark.parametrize("text, met", [
    ("Support for people on a community treatment order under the Mental Health Act", set()),
    ("Advice on guardianship and s17 leave under the MHA", set()),
    ("Accepts people detained under the Mental Health Act", {"detained_mha"}),
    ("For people who have been sectioned", {"detained_mha"}),
    ("Patients on section 3 or section 37", {"detained_mha"}),
    ("Patients on section 2", {"detained_mha"}),
    ("Section 117 aftercare", set()),
])
def test_only_words_of_detention_state_detained_mha(text, met):
    """The Act's name alone also covers a community treatment order, guardianship and leave (as CQC's band does,
    README "Sources"): it says nothing of whether a service takes people detained."""
    assert extract_needs(text) == (met, set())
