"""A service's id in an address, one spelling for every face (`rehabmap.record.id_in_path`: encoded, its ':' and '/'
kept), and every route that takes an id reads it either way (the '/' kept, or %2F as the public links wrote it).

An ORUK feed's ids are the feed's own, so an id may hold what a path must encode: the real Field House record, given
by a source as "Maison/é#2", held and shown as listed:Maison/é#2."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from urllib.parse import urlsplit

from rehabmap.maintain.store import open_database
from rehabmap.taxonomy import ServiceType
from tests.keepers.conftest import make_keepers
from tests.maintain.conftest import make_site
from tests.sync.store_fixtures import ListedConnector, field_house_item, runner_for

SERVICE_ID, RENAMED_FROM = "listed:Maison/é#2", "listed:Maison/é#1"
WRITTEN = "listed:Maison/%C3%A9%232"  # as every face writes it now
WRITTEN_BEFORE = "listed:Maison%2F%C3%A9%232"  # as the public links and the renames' redirects wrote it


def linked_paths(page: str) -> list[str]:
    """The paths the page's links lead to, as written (their queries left off)."""
    return [urlsplit(html.unescape(href)).path for href in re.findall(r'href="([^"]+)"', page)]


def test_an_id_holding_a_slash_a_hash_and_an_accent_is_written_one_way_and_read_either_way(
        sample_index, geodata_dir, data_dir, geography, tmp_path):
    """Before, the public pages' links (a shortlist's, the search's) wrote its '/' as %2F, the report form's link back
    wrote the id as it is (its '#' ending the path), and a link to the id it was renamed from was sent to
    "/service/listed:Maison/listed:Maison%2F…" (the '#' of the old id, written %23 in the path it was looked for in,
    hid it), where the keepers' pages and the API's words keep the '/'."""
    site = make_site(tmp_path / "home", sample_index, geodata_dir, data_dir)
    item = field_house_item(data_dir / "feeds", type_status="confirmed",
                            service_type=ServiceType.inpatient_rehab_level1)
    origin = replace(item.candidate.origin, source_id=SERVICE_ID.removeprefix("listed:"))
    runner_for(site.settings, geography).run(ListedConnector([replace(item, candidate=replace(item.candidate,
                                                                                              origin=origin))]))
    with open_database(site.settings).transaction() as conn:  # as migration 15 writes a renaming
        conn.execute("INSERT INTO service_renames VALUES (?, ?, '2026-12-01T10:00:00+00:00', 'a test')",
                     (RENAMED_FROM, SERVICE_ID))
    keepers = make_keepers(site)
    public = keepers.client()

    shortlist = public.get("/shortlist", params={"s": SERVICE_ID})
    assert shortlist.status_code == 200 and f"/service/{WRITTEN}" in linked_paths(shortlist.text)
    report_form = public.get("/report-a-problem", params={"service": SERVICE_ID})
    assert report_form.status_code == 200 and f"/service/{WRITTEN}" in linked_paths(report_form.text)
    for spelling in (WRITTEN, WRITTEN_BEFORE):
        assert public.get(f"/service/{spelling}").status_code == 200, spelling
        assert public.get(f"/services/{spelling}").json()["id"] == SERVICE_ID, spelling

    renamed = "listed:Maison/%C3%A9%231"
    page = public.get(f"/service/{renamed}", params={"where": "NG18"})
    assert (page.status_code, page.headers["location"]) == (301, f"/service/{WRITTEN}?where=NG18")
    record = public.get(f"/services/{renamed}")
    assert (record.status_code, record.headers["location"]) == (308, f"/services/{WRITTEN}")

    keepers.sign_in(maintainer := keepers.client(), "maintainer")
    for spelling in (WRITTEN, WRITTEN_BEFORE):
        for path in (f"/keepers/services/{spelling}", f"/keepers/history/{spelling}"):
            answer = maintainer.get(path)
            assert answer.status_code == 200 and "listed:Maison/é#2" in html.unescape(answer.text), path
