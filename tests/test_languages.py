"""The language need as a clinician asks for it: a language's English name or its ISO 639 code, read against ISO
639-3 as pycountry ships it (the real table, not a list of a few), kept as the code records carry and shown by its
name. Before: "Polish" was an unknown need, "xx" a language, and every page said "Language: pl"."""

from __future__ import annotations

import pytest

from rehabmap.errors import UnknownNeed
from rehabmap.oruk import oruk_to_fields, service_to_oruk
from rehabmap.languages import find_language
from rehabmap.taxonomy import need_label, parse_asked_need, parse_need
from tests.oruk_records import FULL


@pytest.mark.parametrize("asked, code", [
    ("language:Polish", "language:pl"), ("language:pl", "language:pl"), ("LANGUAGE: polish ", "language:pl"),
    ("language:pol", "language:pl"),  # ISO 639-2/3's code, kept as the two letters records carry
    ("language:per", "language:fa"),  # ISO 639-2's bibliographic code (Persian)
    ("language:Bangla", "language:bn"),  # ISO 639-3's common name of Bengali
    ("language:British Sign Language", "language:bfi"), ("language:Sylheti", "language:syl"),  # ISO 639-3 only
    ("language:ga", "language:ga"),  # two letters are a code (Irish), never the name of the language Ga (gaa)
    # Names people use that ISO 639-3 names otherwise (before, each was refused: "Did you mean Panjabi (pa)?")
    ("language:Punjabi", "language:pa"), ("language:Farsi", "language:fa"), ("language:cantonese", "language:yue"),
    ("language:Mandarin", "language:cmn"), ("language:Greek", "language:el"), ("language:Pashto", "language:ps"),
    # ... and ISO 639-3's names for them still read (a feed or a bookmark may carry one)
    ("language:Yue Chinese", "language:yue"), ("language:Panjabi", "language:pa"), ("language:Persian", "language:fa"),
])
def test_a_language_is_asked_by_its_english_name_or_iso_639_code(asked, code):
    assert parse_asked_need(asked) == code


@pytest.mark.parametrize("asked, words", [
    ("language:xx", "Unknown language 'xx' in need 'language:xx'. Give the language's English name or ISO 639 code, "
                    "e.g. language:Polish or language:pl."),
    ("language:und", "or ISO 639 code, e.g. language:Polish or language:pl."),  # ISO 639's "Undetermined"
    ("language:Panjaby", "Did you mean Punjabi (pa)?"),
    ("language:Polsih", "Did you mean Polish (pl)?"),
    ("language:Greek Sign", "Did you mean Greek Sign Language (gss) or Greek (el)?"),
    ("language:Chinese Cantonese", "Did you mean Chinese (zh) or Cantonese (yue)?"),  # offered by the name people use
    ("language:Farsee", "e.g. language:Polish or language:pl."),  # nothing near enough to offer ("Arosi" is not)
])
def test_a_language_iso_639_does_not_list_is_refused_with_the_names_nearest_in_spelling(asked, words):
    with pytest.raises(UnknownNeed) as refused:
        parse_asked_need(asked)
    assert refused.value.message.endswith(words) and refused.value.field == "needs"


def test_an_unknown_need_names_each_need_in_words_with_the_code_the_api_takes():
    with pytest.raises(UnknownNeed) as refused:
        parse_asked_need("flying")
    assert refused.value.message.startswith(
        "Unknown need 'flying'. Use one of: Learning disability (learning_disability), Autism (autism), ")
    assert refused.value.message.endswith(
        "; or a language: language:<English name or ISO 639 code> (e.g. language:Polish or language:pl).")


def test_a_need_is_shown_by_the_language_name_and_a_records_code_is_kept_as_records_carry_it():
    assert need_label("language:pl") == need_label("language:pol") == "Language: Polish"
    assert need_label("language:bfi") == "Language: British Sign Language"
    # Before, a record kept the code its source gave ("pol"), and a search for Polish ("pl") never found it.
    assert parse_need("language:pol") == parse_need("language:Polish") == parse_need("LANGUAGE:PL") == "language:pl"
    # A record's code ISO 639 does not list is not refused (a source gave it): shown as it is.
    assert parse_need("language:xx") == "language:xx" and need_label("language:xx") == "Language: xx"
    with pytest.raises(UnknownNeed):  # nor is a name no language has ever a record's language
        parse_need("language:Polsih")


def test_a_language_is_shown_by_the_name_people_and_families_use_not_iso_639s():
    """NHS interpreting lists say Cantonese, Punjabi, Farsi; ISO 639-3 says Yue Chinese, Panjabi, Persian (before,
    every page said "Language: Yue Chinese"). The code is ISO's either way."""
    assert [need_label(f"language:{code}") for code in ("yue", "pa", "fa", "cmn", "el", "sw", "ps", "pl")] == [
        "Language: Cantonese", "Language: Punjabi", "Language: Farsi", "Language: Mandarin", "Language: Greek",
        "Language: Swahili", "Language: Pashto", "Language: Polish"]
    assert need_label("language:pes") == "Language: Iranian Persian"  # ISO's name where people use no other


def test_every_macrolanguage_member_is_an_iso_639_3_language():
    """The macrolanguages' table is rehabmap's own (pycountry ships none): each code in it must be ISO 639-3's,
    or a service stating it would never be found by the macrolanguage."""
    from rehabmap.languages import _MACROLANGUAGES, record_code

    codes = [code for macro, members in _MACROLANGUAGES.items() for code in (macro, *members.split())]
    # Each is ISO 639-3's, by the code records carry (two letters where ISO 639-1 has them).
    assert all(find_language(code).code == record_code(code) == code for code in codes)


def test_the_oruk_term_names_the_language_and_a_feed_without_codes_is_read_back_by_that_name_or_the_old_one():
    """An ORUK feed following the profile drops `code` (tests/test_oruk_roundtrip.py reads today's names back);
    one exported before names a language term by its code ("Language: pl"), and still reads."""
    for name in ("Language: Polish", "Language: pl"):
        published = service_to_oruk(FULL)
        [term] = [a["taxonomy_term"] for a in published["attributes"] if a["taxonomy_term"]["code"] == "language:pl"]
        assert term["name"] == "Language: Polish"
        del term["code"], term["id"]
        term["name"] = name
        for attribute in published["attributes"]:
            attribute.pop("taxonomy_term_id", None)
        assert "language:pl" in oruk_to_fields(published)[0]["needs_met"]
