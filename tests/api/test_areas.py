"""GET /areas/{code}: an ONS area, its services and their counts per type."""

from __future__ import annotations

from collections import Counter

import pytest

from rehabmap.taxonomy import ServiceType


def located_in(backend, code: str) -> list:
    return [s for s in backend.all() if s.status == "active" and code in s.areas.codes()]


@pytest.mark.parametrize("code,name,level", [("E08000035", "Leeds", "lad"), ("e54000054", None, "icb")])
def test_area_with_its_services_and_counts(client, backend, code, name, level):
    body = client.get(f"/areas/{code}", params={"per_page": 100}).json()
    assert body["code"] == code.upper() and body["level"] == level
    if name:
        assert body["name"] == name
    expected = located_in(backend, code.upper())
    assert body["total"] == len(expected) > 0
    assert body["counts"] == {t.value: Counter(s.service_type.value for s in expected)[t.value] for t in ServiceType}
    assert list(body["counts"]) == [t.value for t in ServiceType]
    ids = [s["id"] for s in body["services"]]
    assert set(ids) <= {s.id for s in expected} and len(ids) == min(100, len(expected))
    assert [s["name"].casefold() for s in body["services"]] == sorted(s["name"].casefold() for s in body["services"])
    west, south, east, north = body["bbox"]
    assert west < -1.5 < east and south < 53.8 < north


def test_lower_case_code_is_the_same_area(client):
    assert client.get("/areas/e08000035").json() == client.get("/areas/E08000035").json()


def test_area_paging(client, backend):
    first = client.get("/areas/E54000054", params={"per_page": 10}).json()
    second = client.get("/areas/E54000054", params={"per_page": 10, "page": 2}).json()
    assert first["total_pages"] == -(-first["total"] // 10)
    assert not {s["id"] for s in first["services"]} & {s["id"] for s in second["services"]}


@pytest.mark.parametrize("code", ["E99999999", "X", "LS9 7TF"])
def test_unknown_area_is_a_404_with_a_message(client, code):
    reply = client.get(f"/areas/{code}")
    assert reply.status_code == 404
    error = reply.json()["error"]
    assert error["code"] == "unknown_area" and "has the code" in error["message"]


@pytest.mark.parametrize(("code", "nation"), [("W06000015", "Wales"), ("S12000036", "Scotland"),
                                              ("N09000003", "Northern Ireland")])
def test_another_nations_area_code_is_told_as_that_nations(client, code, nation):
    """Cardiff, the City of Edinburgh and Belfast: before, "No ICB, sub-ICB, local authority or region has the
    code", as for a mistyped one; the code is right, but rehabmap covers England only."""
    reply = client.get(f"/areas/{code}")
    assert reply.status_code == 404
    error = reply.json()["error"]
    assert error["code"] == "unknown_area" and error["field"] == "area"
    assert error["message"].startswith(f"'{code}' is the ONS code of an area in {nation}. rehabmap covers England")


@pytest.mark.parametrize(("code", "kind"), [
    ("E01033010", "a lower layer super output area's code (LSOA, E01…, one small area of about 1,500 people)"),
    ("E02006875", "a middle layer super output area's code (MSOA, E02…"),
    ("E11000006", "a metropolitan county's code (E11…, which has no county council: its metropolitan boroughs are "
                  "local authorities, E08…)"),
    ("E13000002", "Inner or Outer London's code (E13…"),
])
def test_a_code_of_a_kind_no_area_here_is_is_named_as_what_it_is(client, code, kind):
    """West Yorkshire's metropolitan county (E11000006) was "No ICB, sub-ICB, local authority or region has the code",
    as a typo would be, and so were a small area's codes and Outer London's; and the county councils the route takes
    went unmentioned. Now the code is named as what it is, with every kind of area the route takes."""
    reply = client.get(f"/areas/{code}")
    assert reply.status_code == 404
    error = reply.json()["error"]
    assert error["code"] == "unknown_area" and error["field"] == "area"
    assert error["message"].startswith(f"'{code}' is {kind}") and error["message"].endswith(
        "; an area here is an ICB (E54…), a sub-ICB location (E38…), a local authority (E06–E09…), a county council "
        "(E10…) or a region (E12…)."), error["message"]
