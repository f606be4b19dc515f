"""Everything near me: every kind of support on one page, the nearest few of each, the kind with the nearest
service first, numbered across the page as its map is."""

from __future__ import annotations

import html
import re

from tests.web.results_map import assert_legible, pins_of

KINDS = ("Getting back to work", "Somewhere to live with support", "Someone to speak up for you",
         "Peer and community support", "Rehabilitation teams and units")


def test_everything_near_lists_every_kind_nearest_first_numbered_as_the_map(client):
    page = client.get("/find/everything", params={"where": "LS9 7TF", "within": "25"}).text
    headings = re.findall(r'<h3 class="nhsuk-heading-s rm-group-heading" id="kind-[^"]+">([^<]*)</h3>', page)
    kinds = [html.unescape(k) for k in headings]
    assert sorted(kinds) == sorted(KINDS)
    sections = page.split('class="nhsuk-heading-s rm-group-heading"')[1:]
    firsts = []
    numbers = []
    for section in sections:
        distances = re.findall(r"<br>(?:less than 0\.1 miles|([\d.]+) miles?) \(", section)
        miles = [float(m) if m else 0.0 for m in distances]
        assert miles == sorted(miles) and len(miles) <= 3
        firsts.append(miles[0] if miles else float("inf"))
        pins = re.findall(r'<span class="rm-result__number" aria-hidden="true">(\d+)</span>', section)
        numbers += [int(n) for n in pins]
    assert firsts == sorted(firsts), "the kind with the nearest service comes first"
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 10
    svg = page[page.index('<svg class="rm-map"'):page.index("</svg>")]
    assert sorted(pins_of(svg)) == numbers
    assert_legible(svg, len(numbers))
    assert "See all" in page


def test_everything_near_is_a_tile_and_a_link_from_each_kind(client):
    assert 'href="/find/everything">Everything near you</a>' in client.get("/find").text
    page = client.get("/find/work", params={"where": "LS9 7TF", "within": "10"}).text
    assert '<a href="/find/everything?where=LS9+7TF&amp;within=10">Everything near LS9 7TF</a>' in page


def test_everything_near_with_a_bad_place_is_an_error_on_the_field(client):
    response = client.get("/find/everything", params={"where": "Nowhereville Xyz"})
    assert response.status_code == 400
    assert 'href="#where"' in response.text


def test_a_service_opened_from_everything_near_leads_back_to_it(client):
    """Before, a service's link from "Everything near" carried no view, so its page's breadcrumb and the way back
    led to the tiles of "Find support near you", and the list the person came from was lost."""
    page = client.get("/find/everything", params={"where": "LS9 7TF", "within": "25"}).text
    links = re.findall(r'<h3 class="nhsuk-heading-s rm-result__name"><a href="([^"]+)"', page)
    assert links and all(html.unescape(link).endswith("?where=LS9+7TF&within=25&cat=everything") for link in links)
    service = client.get(html.unescape(links[0])).text
    crumb = '<a class="nhsuk-breadcrumb__link" href="/find/everything?where=LS9+7TF&amp;within=25">Everything near LS9'
    assert crumb in service
