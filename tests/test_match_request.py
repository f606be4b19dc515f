"""What a person asks, read into a MatchRequest one way for the API, the pages and the command line."""

from __future__ import annotations

from dataclasses import fields
from typing import NamedTuple

import pytest

from geodata.areas import AreaCodes
from rehabmap.errors import InvalidValue, UnknownNeed, UnknownServiceType
from rehabmap.index.base import Coverage, ServiceQuery
from rehabmap.match import MatchRequest, _base_query, _coverage, parse_needs, parse_types
from rehabmap.taxonomy import ServiceType, least_restrictive_first


class _Home(NamedTuple):
    """A home as matching reads it (`HomeLike`)."""

    lat: float
    lon: float
    areas: AreaCodes
    precision: str = "postcode"
    district: str | None = None
    place: str | None = None


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


def test_from_input_makes_the_instance_the_dataclass_makes():
    """`from_input` sets the fields itself (no `object.__setattr__` per field): each field, in the dataclass's
    order, the same as `__init__` sets it, with the defaults where nothing is given."""
    given = MatchRequest.from_input(needs=["autism"], types=["advocacy"], subtypes=["imha"], age=30, gender="female",
                                    max_distance_km=40.0, own_icb_only=True, accepting_only=True,
                                    needs_confirmed=True, include_out_of_catchment=True, limit=5,
                                    current_placement=(50.26, -5.05), order="best_fit", each_type=True)
    made = MatchRequest(needs=("autism",), types=(ServiceType.advocacy,), subtypes=("imha",), age=30, gender="female",
                        max_distance_km=40.0, own_icb_only=True, accepting_only=True, needs_confirmed=True,
                        include_out_of_catchment=True, limit=5, current_placement=(50.26, -5.05), order="best_fit",
                        each_type=True)
    for request, init in ((given, made), (MatchRequest.from_input(), MatchRequest())):
        assert list(vars(request).items()) == list(vars(init).items())
        assert [field.name for field in fields(MatchRequest)] == list(vars(request))
        assert hash(request) == hash(init) and repr(request) == repr(init)
    with pytest.raises(InvalidValue) as wrong:  # `__post_init__`'s checks still run
        MatchRequest.from_input(order="farthest")  # type: ignore[arg-type]
    assert wrong.value.field == "order"


def test_a_matchs_query_and_coverage_are_the_instances_the_dataclasses_make():
    """`_base_query` and `_coverage` set the fields themselves (`_frozen`, no `object.__setattr__` per field): each
    field, in the dataclass's order, the same as `__init__` sets it, with the defaults where nothing is given."""
    home = _Home(51.5, -0.12, AreaCodes(icb_code="E54000027", icb_name="London", lad_code="E09000033"))
    request = MatchRequest.from_input(needs=["autism"], types=["advocacy"], subtypes=["imha"], age=30, gender="male",
                                      accepting_only=True, needs_confirmed=True)
    coverage = _coverage(request, home)
    made_coverage = Coverage(frozenset({"E54000027", "E09000033"}), 51.5, -0.12)
    query = _base_query(request, coverage, frozenset({ServiceType.advocacy}))
    made_query = ServiceQuery(types=frozenset({ServiceType.advocacy}), subtypes=frozenset({"imha"}), needs=("autism",),
                              needs_confirmed=True, age=30, gender="male", covers=made_coverage, accepting_only=True)
    for got, init in ((coverage, made_coverage), (query, made_query),
                      (_base_query(MatchRequest(), None, None), ServiceQuery())):
        assert list(vars(got).items()) == list(vars(init).items())
        assert [field.name for field in fields(type(init))] == list(vars(got))
        assert hash(got) == hash(init) and repr(got) == repr(init)


def test_types_least_restrictive_first_as_their_restrictiveness_orders_them():
    """`least_restrictive_first` (a match's groups and summary) sorts by the property's own table: every set of
    types, given in either order, comes back as `restrictiveness` sorts it, the enum's order."""
    every = list(ServiceType)
    for mask in range(1 << len(every)):
        chosen = [t for i, t in enumerate(every) if mask >> i & 1]
        for given in (chosen, chosen[::-1], frozenset(chosen)):
            assert least_restrictive_first(given) == sorted(given, key=lambda t: t.restrictiveness) == chosen
