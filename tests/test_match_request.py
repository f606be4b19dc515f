"""What a person asks, read into a MatchRequest one way for the API, the pages and the command line."""

from __future__ import annotations

import pytest

from rehabmap.errors import InvalidValue, UnknownNeed, UnknownServiceType
from rehabmap.match import MatchRequest, parse_needs, parse_types
from rehabmap.taxonomy import ServiceType


@pytest.mark.parametrize("given", [None, "any", "ANY", [], ["any"], [" Any "]])
def test_no_type_or_any_alone_asks_for_any_suitable_option(given):
    assert parse_types(given) is None


def test_named_types_each_once_in_order_and_any_beside_them_adds_nothing():
    assert parse_types(["advocacy", "any", " VCFSE ", "advocacy"]) == (ServiceType.advocacy, ServiceType.vcfse)
    assert parse_types("ips_employment") == (ServiceType.ips_employment,)


def test_an_unknown_type_names_the_types_field():
    with pytest.raises(UnknownServiceType) as raised:
        parse_types(["vcfse", "flying"])
    assert raised.value.field == "types" and "'flying'" in raised.value.message


def test_needs_each_once_in_order():
    assert parse_needs(["Autism", "language:PL", "autism"]) == ("autism", "language:pl")
    with pytest.raises(UnknownNeed):
        parse_needs(["autism", "flying"])


def test_from_input_reads_every_field_and_checks_the_request():
    request = MatchRequest.from_input(needs=["autism"], types=["advocacy", "any"], subtypes=["IMHA"], age=30,
                                      limit=5, current_placement=(50.26, -5.05))
    assert request == MatchRequest(needs=("autism",), types=(ServiceType.advocacy,), subtypes=("imha",), age=30,
                                   limit=5, current_placement=(50.26, -5.05))
    with pytest.raises(UnknownServiceType) as raised:  # a kind of service of a type not asked for
        MatchRequest.from_input(types=["vcfse"], subtypes=["imha"])
    assert raised.value.field == "subtypes"
    with pytest.raises(InvalidValue) as too_many:
        MatchRequest.from_input(limit=101)
    assert too_many.value.field == "limit"
