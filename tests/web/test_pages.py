"""The pages, in process: status, structure a screen reader relies on, the error-summary pattern, the
shortlist in the URL, headers (CSP, no-store, no cookies) and nothing about a search in the logs; and,
against a real server, a share link that never takes the Host header."""

from __future__ import annotations

import base64
import html
import logging
import re
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.web.site import FORM, make_app, outside_ciphertext, serve
from web.render import CONTENT_SECURITY_POLICY

AIRE = "sample:aire-valley-rehabilitation-unit"
HAREHILLS = "sample:harehills-high-dependency-rehabilitation-unit"
WEST_YORKSHIRE = "E54000054"

PAGES = [
    "/", "/find", "/find/work", "/find/housing?where=Leeds", "/find/rehabilitation?where=LS9+7TF",
    "/find/advocacy?where=M1+3BG&within=50", "/find/peer-support?where=TR18+4BQ&within=5",
    f"/shortlist?s={AIRE}&s={HAREHILLS}&where=LS9+7TF", "/shortlist",
    f"/service/{AIRE}", f"/service/{AIRE}?where=LS9+7TF&cat=rehabilitation&s={AIRE}",
    "/service/sample:former-chapel-allerton-rehabilitation-unit",
    "/alternatives", "/pathway-gaps", f"/pathway-gaps/{WEST_YORKSHIRE}",
    f"/pathway-gaps/{WEST_YORKSHIRE}?type=inpatient_rehab_level2&community_km=20", "/pathway-gaps/E08000035",
    "/pathway-gaps/compare", "/pathway-gaps/compare?level=la&type=vcfse&indicator=share_beyond_threshold",
    "/privacy", "/accessibility", "/about-the-data",
]


class Page(HTMLParser):
    """What the tests look at in a page: tags with their attributes, heading levels, text of scripts."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.headings: list[int] = []
        self.inline_scripts: list[str] = []
        self._in_script = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.inline_scripts.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag]

    def by_id(self, element_id: str) -> tuple[str, dict[str, str | None]] | None:
        return next(((t, a) for t, a in self.tags if a.get("id") == element_id), None)


def parse(response) -> Page:
    return Page(response.text)


@pytest.mark.parametrize("path", PAGES)
def test_page_is_well_formed_for_people_and_assistive_technology(client, path):
    response = client.get(path)
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    page = parse(response)
    # One h1, and no heading level skipped on the way down.
    assert page.headings.count(1) == 1, page.headings
    for before, after in zip(page.headings, page.headings[1:]):
        assert after <= before + 1, page.headings
    # Unique ids; every visible control has a label.
    ids = [a["id"] for _, a in page.tags if a.get("id")]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
    labelled = {a.get("for") for a in page.all("label")}
    for tag in ("input", "select", "textarea"):
        for control in page.all(tag):
            if control.get("type") != "hidden":
                assert control.get("id") in labelled, control
    # No inline script, style or event handler (the CSP would block them anyway).
    assert not page.inline_scripts
    assert all(a.get("src") for a in page.all("script"))
    assert not [a for _, a in page.tags if "style" in a or any(k.startswith("on") for k in a)]
    assert page.all("html")[0].get("lang") == "en"


@pytest.mark.parametrize("path", ["/", "/find/work?where=LS9+7TF", "/alternatives", "/pathway-gaps"])
def test_headers_protect_the_person(client, path):
    response = client.get(path)
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY and "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "set-cookie" not in response.headers


def test_pages_showing_a_search_are_not_stored(client):
    assert client.get("/find/work?where=LS9+7TF").headers["cache-control"] == "no-store"
    searched = client.post("/alternatives", data={"home": "LS9 7TF"})
    assert searched.headers["cache-control"] == "no-store"
    assert client.get(searched.headers["location"]).headers["cache-control"] == "no-store"
    assert client.get(f"/shortlist?s={AIRE}").headers["cache-control"] == "no-store"


def test_static_assets_are_served(client):
    for path in ("/static/nhsuk/nhsuk-frontend.min.css", "/static/nhsuk/nhsuk-frontend.min.js",
                 "/static/rehabmap.css", "/static/rehabmap.js", "/static/favicon.svg"):
        assert client.get(path).status_code == 200, path


def test_the_api_document_beside_the_pages_lists_each_operation_once_and_no_page(client):
    """The site's OpenAPI document holds the gap API and none of the pages or their assets, and builds without a
    duplicate operation (an error in the tests: pyproject's filterwarnings). Before, the tests' app added the gap
    API and the pages a second time beside `create_app`'s (it looked for their routes where FastAPI no longer
    lists them), and the document's build warned of 12 duplicate operation IDs."""
    paths = client.get("/openapi.json").json()["paths"]
    assert "/gaps" in paths and "/gaps/{area_code}" in paths
    assert not [p for p in paths if p.startswith(("/find", "/pathway-gaps", "/alternatives", "/static", "/shortlist"))]


# --- find support near you --------------------------------------------------------------------------

def test_category_results_are_nearest_first_with_distance_and_a_map(client):
    page = client.get("/find/rehabilitation?where=LS9+7TF").text
    names = re.findall(r'<h3 class="nhsuk-heading-s rm-result__name"><a href="([^"]+)">', page)
    assert names and names[0].startswith(f"/service/{AIRE}")
    distances = [float(d) for d in re.findall(r"\(([\d.]+) km\) away", page)]
    assert distances == sorted(distances) or distances[0] <= min(distances) + 5  # own ICB may come first
    assert 'class="rm-map"' in page and 'role="img"' in page
    assert "Harehills" in page and "Bodmin" not in page  # within 25 miles only


def test_no_result_offers_a_wider_search(client):
    page = client.get("/find/work?where=LS9+7TF&within=5").text
    assert "No services found within 5 miles" in page
    assert "within=10" in page


@pytest.mark.parametrize("where, message", [
    ("ZZ99 9ZZ", "Postcode &#39;ZZ99 9ZZ&#39; was not found"),
    ("LS9 7T", "is not a valid UK postcode"),
    ("Nowheresville", "&#39;Nowheresville&#39; is not a town, city or council area rehabmap knows in England"),
    ("", "Enter a postcode or town"),
])
def test_bad_location_gives_an_error_summary_naming_the_field(client, where, message):
    response = client.get("/find/work", params={"where": where, "within": "10", "s": AIRE})
    assert response.status_code == 400
    page = Page(response.text)
    assert message in response.text
    summary = response.text.split('class="nhsuk-error-summary"', 1)[1].split("</div>", 3)
    assert 'href="#where"' in "".join(summary)
    field = page.by_id("where")
    assert field and field[1]["value"] == where and "nhsuk-input--error" in field[1]["class"]
    assert "where-error" in field[1]["aria-describedby"]
    assert page.by_id("within-2") is None  # a select, not radios
    assert 'value="10" selected' in response.text  # nothing lost
    assert [a for a in page.all("input") if a.get("name") == "s" and a.get("value") == AIRE]
    assert response.text.count("<title>Error: ") == 1


def test_shortlist_lives_only_in_the_link(client):
    page = client.get(f"/find/rehabilitation?where=LS9+7TF&s={AIRE}").text
    assert "On your shortlist" in page
    add = re.search(r'<a href="([^"]+)">Add<span class="nhsuk-u-visually-hidden"> Harehills', page)
    assert add
    url = add.group(1).replace("&amp;", "&")
    assert parse_qs(urlsplit(url).query)["s"] == [AIRE, HAREHILLS]
    shortlist = client.get(f"/shortlist?s={AIRE}&s={HAREHILLS}&where=LS9+7TF")
    assert shortlist.text.count('class="nhsuk-card rm-shortlist-card"') == 2
    share = Page(shortlist.text).by_id("share-link")[1]["value"]
    assert share == f"/shortlist?s={AIRE.replace(':', '%3A')}&s={HAREHILLS.replace(':', '%3A')}"
    assert "LS9" not in share  # the link to share carries no postcode
    assert "0113 496 0001" in shortlist.text  # how to get in touch, printable


def test_the_share_link_never_takes_the_host_header(live_server, web_home, data_dir):
    """Against a real server with a forged Host: relative by default, absolute only on the configured
    public address (REHABMAP_PUBLIC_BASE_URL)."""
    path = f"/shortlist?s={AIRE.replace(':', '%3A')}"
    forged = {"Host": "attacker.example", "X-Forwarded-Host": "attacker.example"}
    reply = httpx.get(f"{live_server}{path}&where=LS9+7TF", headers=forged, timeout=60)
    assert Page(reply.text).by_id("share-link")[1]["value"] == path
    assert "attacker" not in reply.text
    with serve(make_app(web_home, data_dir, public_base_url="https://rehabmap.example.org")) as url:
        reply = httpx.get(f"{url}{path}&where=LS9+7TF", headers=forged, timeout=60)  # a cold app, a busy machine
    assert Page(reply.text).by_id("share-link")[1]["value"] == f"https://rehabmap.example.org{path}"
    assert "attacker" not in reply.text


def test_unknown_ids_in_a_shortlist_are_reported_not_fatal(client):
    """Before, an id never listed (a typo) read "no longer listed", as if a service had gone."""
    response = client.get(f"/shortlist?s={AIRE}&s=sample:gone")
    assert response.status_code == 200
    text = " ".join(response.text.split())
    assert "1 service in this link is not in this directory: the link may be incomplete or mistyped." in text
    assert "no longer listed" not in text


def test_service_page_says_how_to_get_in_touch(client):
    page = client.get(f"/service/{AIRE}?where=LS9+7TF&cat=rehabilitation").text
    for text in ("How to get in touch", "0113 496 0001", "Referral by the person", "Details for professionals",
                 "Vacancy", "less than 0.1 miles"):
        assert text in page, text
    assert 'href="/find/rehabilitation?where=LS9+7TF&amp;within=25"' in page  # back to the results


def test_the_sample_is_named_as_a_person_reads_it(client):
    """Before: "Source: sample" on its services' pages and "Sources: sample (60)" about the data."""
    def text(path: str) -> str:
        return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", client.get(path).text)))

    sample = "rehabmap's sample directory (fictional services)"
    assert f"Source {sample} rehabmap ID" in text(f"/service/{AIRE}")
    assert f"Sources {sample} (60)" in text("/about-the-data")


def test_about_the_data_counts_only_the_services_listed(client):
    """Before: "Services listed 60", the sample's closed unit among them, whose page says it is no longer listed."""
    counted = r"Services listed</dt>\s*<dd[^>]*>\s*59 \(and 1 no longer listed, whose pages stay for old links\)"
    assert re.search(counted, client.get("/about-the-data").text)


def test_unknown_service_is_a_404_page(client):
    response = client.get("/service/sample:no-such-service")
    assert response.status_code == 404
    assert "<h1>Page not found</h1>" in response.text


@pytest.mark.parametrize("path", ["/find/work/extra", "/alternatives/results/", "/pathway-gaps/E54000054/x",
                                  "/no-such-page"])
def test_an_address_nothing_answers_is_a_page_for_a_browser_and_json_for_a_client(client, path):
    """Before, a browser following a mistyped or cut-short link was shown the API's JSON error
    ({"error": {"code": "not_found", …}}), with no way back into the site."""
    shown = client.get(path, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert (shown.status_code, shown.headers["content-type"]) == (404, "text/html; charset=utf-8")
    assert "<h1>Page not found</h1>" in shown.text and 'href="/find"' in shown.text and "rm-urgent" in shown.text
    asked = client.get(path, headers={"Accept": "*/*"})
    assert (asked.status_code, asked.json()["error"]["code"]) == (404, "not_found")


@pytest.mark.parametrize("path", PAGES)
def test_urgent_help_comes_first_on_every_page_with_tap_to_call(client, path):
    """Before: only /find had it, below the fold, without tel: links."""
    page = client.get(path).text
    urgent = page.index('class="rm-urgent')
    assert urgent < page.index('id="maincontent"')
    for number in ('href="tel:999"', 'href="tel:111"', 'href="tel:116123"'):
        assert number in page[urgent:urgent + 800], number
    assert "option 2" in page[urgent:urgent + 800]


@pytest.mark.parametrize(("where", "nation"), [("EH1 1YZ", "Scotland"), ("CF10 1EP", "Wales")])
def test_find_tells_a_postcode_elsewhere_that_it_covers_england(client, where, nation):
    response = client.get("/find/work", params={"where": where})
    assert response.status_code == 400
    summary = response.text.split('class="nhsuk-error-summary"', 1)[1].split("</ul>", 1)[0]
    assert f"is a postcode in {nation}. rehabmap lists services in England only" in summary
    assert "Check it" not in summary


def test_find_tells_a_town_elsewhere_where_it_is(client):
    """Before: 'Swansea' was read as a typo of Wanstead, and the page listed services around east London."""
    response = client.get("/find/work", params={"where": "Swansea"})
    assert response.status_code == 400 and "Wanstead" not in response.text
    summary = response.text.split('class="nhsuk-error-summary"', 1)[1].split("</ul>", 1)[0]
    assert "is a place in Wales. rehabmap lists services in England only" in summary and "111.wales.nhs.uk" in summary


def test_find_where_the_directory_has_no_data_says_so_and_points_to_national_help(client):
    """Before: a Devon postcode got no services and no next step."""
    page = client.get("/find/rehabilitation", params={"where": "EX1 1HS", "within": "5"}).text
    assert "No services found within 5 miles" in page
    assert "this does not mean there is none near you" in page
    assert 'href="tel:03001233393"' in page and "Hub of Hope" in page


def test_find_says_a_service_near_takes_only_its_own_areas_residents(client):
    """Ilford's floating support (the sample's) is ~3 miles from a home in Barking, and serves Redbridge's residents
    only. Before, the page said "No services found within 5 miles" and nothing of it: a family read "none near".
    It is still not listed (it would not take the person), but said; a home in Redbridge is offered it."""
    page = " ".join(client.get("/find/housing", params={"where": "IG11 8PD", "within": "5"}).text.split())
    assert "No services found within 5 miles" in page
    assert ("1 service within 5 miles takes only people who live in its own area, which does not include IG11 8PD, so "
            "it is not listed here.") in page
    assert "Ilford" not in page
    inside = " ".join(client.get("/find/housing", params={"where": "IG1 1BG", "within": "5"}).text.split())
    assert "Ilford" in inside and "takes only people who live" not in inside


def test_find_takes_a_typo_and_asks_which_of_a_shared_name(client):
    assert "near Leeds" in client.get("/find/work", params={"where": "Leds"}).text
    asked = client.get("/find/work", params={"where": "Richmond"})
    assert asked.status_code == 400
    assert "There is more than one Richmond in England: Richmond, Greater London; Richmond, North Yorkshire" in \
        asked.text
    assert "near Richmond" in client.get("/find/work", params={"where": "Richmond, North Yorkshire"}).text


@pytest.mark.parametrize(("typed", "offered"), [
    ("Richmond", ["Richmond, Greater London", "Richmond, North Yorkshire"]),  # asked which
    ("Brighton, West Sussex", ["Brighton, Brighton and Hove"]),  # a county it is not in
    ("Atlantis", ["Hartland, Devon"])])  # not known: the nearest names
def test_find_offers_each_place_it_names_as_a_link_to_search_from(client, typed, offered):
    """Before, the places a message named had to be typed back. Each link keeps the distance and the shortlist,
    and answers from that place."""
    asked = client.get("/find/work", params={"where": typed, "within": "10", "s": "cqc:1-1"})
    assert asked.status_code == 400
    links = re.findall(r'<li><a href="([^"]+)">([^<]+)</a></li>',
                       asked.text.split('id="where-offered"', 1)[1].split("</ul>", 1)[0])
    assert [text for _, text in links] == offered
    for href, place in links:
        assert html.unescape(href) == "/find/work?" + urlencode({"where": place, "within": "10", "s": "cqc:1-1"})
        answer = client.get(html.unescape(href))
        assert answer.status_code == 200 and f"near {place.split(', ')[0]}" in answer.text
    assert 'id="where-offered"' not in client.get("/find/work", params={"where": "Leds"}).text


def test_find_asks_which_st_ives_with_the_county(client):
    """Before: St Ives went to Cornwall without asking (the place list had only that one)."""
    asked = client.get("/find/work", params={"where": "St Ives"})
    assert asked.status_code == 400
    assert "There is more than one St Ives in England: Saint Ives, Cambridgeshire; St Ives, Cornwall" in asked.text
    assert "near St Ives, Cornwall" in client.get("/find/work", params={"where": "St Ives, Cornwall"}).text


def test_find_names_the_nearest_places_to_one_it_does_not_know(client):
    answer = client.get("/find/work", params={"where": "Atlantis"})
    assert answer.status_code == 400
    summary = answer.text.split('class="nhsuk-error-summary"', 1)[1].split("</ul>", 1)[0]
    assert "The nearest names rehabmap knows are Hartland, Devon" in summary and "type the postcode" in summary


def test_find_knows_a_neighbourhood_by_the_name_locals_use(client):
    """Before: ''Harehills' is not a town, city or council area rehabmap knows', though Harehills is a part
    of Leeds (the HoC Library's MSOA Names call two MSOAs of Leeds 'Harehills North' and 'Harehills South')."""
    page = client.get("/find/work", params={"where": "Harehills"})
    assert page.status_code == 200
    assert "near Harehills, Leeds" in page.text


def test_alternatives_takes_a_neighbourhood_as_the_home_and_asks_which_of_a_shared_one(client):
    """Before: a clinician typing the home as 'Harehills' was asked for a postcode."""
    found = client.post("/alternatives", data={**FORM, "home": "Harehills", "placement": ""},
                        follow_redirects=True)
    assert found.status_code == 200
    assert "<h1>Local alternatives near Harehills, Leeds</h1>" in found.text
    asked = client.post("/alternatives", data={**FORM, "home": "Woodhouse", "placement": ""},
                        follow_redirects=True)
    assert asked.status_code == 400
    assert "There is more than one Woodhouse in England:" in asked.text and "Woodhouse, Leeds" in asked.text


def test_a_service_no_longer_listed_says_so(client):
    page = client.get("/service/sample:former-chapel-allerton-rehabilitation-unit").text
    assert "This service is no longer listed" in page and "It may have closed, changed provider" in page


# --- find local alternatives ------------------------------------------------------------------------

def test_match_results_say_why_each_matched(client):
    response = client.post("/alternatives", data=FORM, follow_redirects=True)
    assert response.status_code == 200
    page = response.text
    assert "<h1>Local alternatives near LS9 7TF</h1>" in page
    assert "Autism, Detained under the Mental Health Act" in page
    assert "Not known" in page and "nearer than the current placement" in page
    # Each fact once: the rows say what the explanation says, which the card no longer repeats under them.
    assert "Why it is listed:" not in page
    assert re.search(r"Outside home ICB \([A-Z][\w ,]+\)", page)  # its ICB named, as the explanation names it
    assert re.search(r"Type</dt>\s*<dd[^>]*>\s*Level 2 inpatient rehabilitation unit \(higher support\) \(listed as "
                     r"&#39;Locked rehabilitation ward&#39;\)", page)
    assert "In home ICB" in page and "Outside home ICB" in page
    assert "Kirkstall Locked Rehabilitation Ward" in page and "Legacy &#39;locked&#39; label" in page
    assert "Halifax Women" not in page  # a women-only unit is not offered to a man
    assert re.search(r"Vacancy</dt>\s*<dd[^>]*>\s*(Vacancy|Limited vacancy|No vacancy|Unknown|Not reported)", page)
    # The form comes back filled in, to change the search.
    again = Page(page)
    assert again.by_id("home")[1]["value"] == "LS9 7TF"
    assert "checked" in again.by_id("needs-2")[1]  # autism


def test_match_with_types_lists_only_those(client):
    page = client.post("/alternatives", data={**FORM, "types": ["inpatient_rehab_level1"], "placement": ""},
                       follow_redirects=True).text
    assert "Aire Valley Rehabilitation Unit" in page
    assert "Leeds Recovery College" not in page.split("Options</h2>", 1)[1].split("Change the search", 1)[0]


WOMEN_ONLY = {**FORM, "needs": ["female_only"], "gender": "female", "age": "", "placement": "",
              "types": ["inpatient_rehab_level1", "inpatient_rehab_level2"], "limit": "3"}


def options_of(page: str) -> str:
    return page.split("Options</h2>", 1)[1].split("Change the search", 1)[0]


def test_every_type_asked_for_gets_its_own_group_with_how_many_there_are(client):
    """Before: level 1 and level 2 together were cut to 3 in all, and the only confirmed women-only unit,
    with a vacancy, fifth nearest, was not shown."""
    page = client.post("/alternatives", data=WOMEN_ONLY, follow_redirects=True).text
    options = options_of(page)
    level1 = options.split('id="group-inpatient_rehab_level1"', 1)[1].split('id="group-inpatient_rehab_level2"')[0]
    level2 = options.split('id="group-inpatient_rehab_level2"', 1)[1]
    assert len(re.findall(r'class="nhsuk-card rm-option"', level1)) == 3
    showing = re.search(r"Showing 3 of (\d+)", level1)
    assert showing and int(showing.group(1)) > 3
    assert "Moss Side Longer Term High Dependency Unit" in level2
    # Best fit first: the one unit that confirms "women only" and has a vacancy leads its group.
    first = re.search(r'<h4 class="nhsuk-card__heading[^>]*><a [^>]*>1\. ([^<]+)</a>', options).group(1)
    assert first.startswith("Halifax Women")
    assert "Confirms the need" in level1 and "Women only" in level1 and "Taking referrals" in options
    assert "Ordered <strong>best fit first</strong>" in options
    # Show all: every level 1 unit for the search, and the order kept.
    more = re.search(r'href="(/alternatives/results/[^"#]+show=all)#group-inpatient_rehab_level1"', level1)
    everything = options_of(client.get(more.group(1).replace("&amp;", "&")).text)
    total = int(showing.group(1))
    level1_all = everything.split('id="group-inpatient_rehab_level2"')[0]
    assert len(re.findall(r'class="nhsuk-card rm-option"', level1_all)) == total
    assert f"Showing {total} of {total}" in level1_all


def test_nearest_first_is_a_link_away_and_said(client):
    searched = client.post("/alternatives", data=WOMEN_ONLY)
    page = client.get(searched.headers["location"] + "?order=nearest").text
    options = options_of(page)
    assert "Ordered <strong>nearest first</strong>" in options
    first = re.search(r'<a [^>]*>1\. ([^<]+)</a>', options).group(1)
    assert first.startswith("Seacroft")  # 4.2 km from LS9 7TF, where Halifax Women's is 24.5


def test_a_search_is_held_encrypted_under_its_address_and_nothing_searched_is_in_it(client, web_app):
    """POST, redirect, GET: the address carries a key, not the search; the results can be read again (Back,
    reload) and the store holds only ciphertext."""
    searched = client.post("/alternatives", data={**FORM, "needs": ["restricted_s37_41"]})
    assert searched.status_code == 303 and "set-cookie" not in searched.headers
    location = searched.headers["location"]
    assert re.fullmatch(r"/alternatives/results/[\w=-]{44}", location)
    # The address is 32 random bytes (a Fernet key), not the search: the same search again gets another one.
    # (Looking for "34" or "LS9" in it failed ~1 run in 100, when the random key happened to spell them.)
    assert len(base64.urlsafe_b64decode(location.rsplit("/", 1)[1])) == 32
    assert client.post("/alternatives", data={**FORM, "needs": ["restricted_s37_41"]}).headers["location"] != location
    first, again = client.get(location), client.get(location)
    assert first.status_code == again.status_code == 200
    assert "<h1>Local alternatives near LS9 7TF</h1>" in again.text
    store = outside_ciphertext((web_app.state.rehabmap.settings.home / "held-searches.sqlite").read_bytes())
    for secret in (b"LS9", b"restricted", b"TR1 3LJ"):
        assert secret not in store


def test_a_held_search_ends_after_its_time(client, monkeypatch):
    import time

    from web.held_searches import HOLD_MINUTES
    location = client.post("/alternatives", data=FORM).headers["location"]
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + HOLD_MINUTES * 60 + 1)
    ended = client.get(location)
    assert ended.status_code == 404 and "This search has ended" in ended.text
    monkeypatch.setattr(time, "time", lambda: now)
    assert client.get(location).status_code == 404  # deleted, not merely hidden
    assert client.get("/alternatives/results/not-a-key").status_code == 404


def test_bad_postcode_keeps_everything_typed(client):
    data = {**FORM, "home": "XX9 9XX", "age": "abc", "language": "polsih", "within": "50",  # "polish" is a language
            "options": ["accepting_only"]}
    response = client.post("/alternatives", data=data)
    assert response.status_code == 400
    page = Page(response.text)
    summary = response.text.split('class="nhsuk-error-summary"', 1)[1].split("</ul>", 1)[0]
    assert [h for h in re.findall(r'href="#([\w-]+)"', summary)] == ["home", "language", "age"]
    assert "Postcode &#39;XX9 9XX&#39; was not found" in summary
    assert page.by_id("home")[1]["value"] == "XX9 9XX"
    assert page.by_id("age")[1]["value"] == "abc" and page.by_id("language")[1]["value"] == "polsih"
    assert "Did you mean Polish (pl)?" in summary
    assert page.by_id("placement")[1]["value"] == "TR1 3LJ"
    assert page.by_id("within")[1]["value"] == "50"
    assert "checked" in page.by_id("needs-2")[1] and "checked" in page.by_id("needs-4")[1]
    male = next(a for a in page.all("input") if a.get("name") == "gender" and a.get("value") == "male")
    assert "checked" in male
    accepting = next(a for a in page.all("input")
                     if a.get("name") == "options" and a.get("value") == "accepting_only")
    assert "checked" in accepting


def test_types_and_any_together_is_an_error_on_types(client):
    response = client.post("/alternatives", data={**FORM, "types": ["vcfse", "any"]})
    assert response.status_code == 400
    assert 'href="#types"' in response.text


def test_a_kind_narrows_its_own_type_only(client):
    data = {**FORM, "needs": [], "types": ["advocacy", "community_rehab_team"], "subtypes": ["imha"],
            "placement": "", "limit": "5"}
    page = client.post("/alternatives", data=data, follow_redirects=True).text
    options = page.split("Options</h2>", 1)[1].split("Change the search", 1)[0]
    assert "Leeds IMHA Service" in options
    assert "Care Act Advocacy" not in options and "Community Advocacy" not in options
    assert "Leeds East Community Rehabilitation Team" in options  # the other type is not narrowed
    assert "Only these kinds" in page and "Independent Mental Health Advocate (IMHA)" in page
    assert "checked" in Page(page).by_id("subtypes")[1]  # the form comes back with the kind ticked


def test_a_kind_outside_the_types_chosen_is_an_error_on_kinds(client):
    response = client.post("/alternatives", data={**FORM, "types": ["vcfse"], "subtypes": ["imha"]})
    assert response.status_code == 400
    assert 'href="#subtypes"' in response.text


# --- pathway gaps -----------------------------------------------------------------------------------

def test_area_picker_goes_to_the_area(client):
    response = client.get("/pathway-gaps/area", params={"area": WEST_YORKSHIRE})
    assert response.status_code == 303 and response.headers["location"] == f"/pathway-gaps/{WEST_YORKSHIRE}"
    assert client.get("/pathway-gaps/area", params={"area": "Leeds"}).headers["location"] == \
        "/pathway-gaps/E08000035"


def test_area_picker_takes_england_and_a_countys_short_form(client):
    """Before, "England" went on to England's code, a 404 ("A scorecard for all of England could not be found
    here"): England's page is the comparison of its areas. "Herts" opened Hertsmere, the one name holding it, a
    district, where a commissioner meant Hertfordshire, as "Herts" after a place already means."""
    for typed in ("England", "england", "E92000001"):
        assert client.get("/pathway-gaps/area", params={"area": typed}).headers["location"] == "/pathway-gaps/compare"
    for path in ("/pathway-gaps/E92000001", "/pathway-gaps/e92000001/summary"):
        assert client.get(path).headers["location"] == "/pathway-gaps/compare"
    assert client.get("/pathway-gaps/compare").status_code == 200
    # A part of a name is whole words of it: "Hull" was asked among Kingston upon Hull, Solihull and Birmingham and
    # Solihull's ICB, "Stoke" offered Basingstoke and Deane.
    for typed, code in (("Herts", "E10000015"), ("Notts", "E10000024"), ("Co Durham", "E06000047"),
                        ("Hertsmere", "E07000098"), ("Hull", "E06000010")):
        assert client.get("/pathway-gaps/area", params={"area": typed}).headers["location"] == \
            f"/pathway-gaps/{code}", typed
    stoke = client.get("/pathway-gaps/area", params={"area": "Stoke"})  # the city and its ICB: asked which
    assert stoke.status_code == 400 and ("&#39;Stoke&#39; matches several areas: Stoke-on-Trent (E06000021); NHS "
                                         "Staffordshire and Stoke-on-Trent Integrated Care Board (E54000010). Give "
                                         "the code.") in stoke.text


def test_area_picker_without_an_area_is_an_error(client):
    response = client.get("/pathway-gaps/area", params={"area": ""})
    assert response.status_code == 400
    assert 'href="#area"' in response.text


def test_scorecard_shows_the_pathway_and_flags(client):
    page = client.get(f"/pathway-gaps/{WEST_YORKSHIRE}").text
    assert "All seven parts of the rehabilitation pathway" in page
    assert "Kirkstall Locked Rehabilitation Ward" in page  # legacy label, for commissioners
    assert "Huddersfield Personality Disorder" in page
    assert f'src="/gaps/{WEST_YORKSHIRE}/map.svg?type=community_rehab_team"' in page
    assert "The small areas furthest from" in page
    for link in (f"/gaps/{WEST_YORKSHIRE}/smallareas.csv", "/gaps/areas.csv?level=icb"):
        assert f'href="{link}"' in page


def test_englands_figure_beside_an_area_says_partly_covered_not_a_dash(client):
    """Before, the area page's and its summary's England columns read '–' for every part, with no word of why: the
    sample's data of each part are held for some of England only, so England's figure is not a fact. Now each
    such cell says "Partly covered", and the note under the table says what that means."""
    for address in (f"/pathway-gaps/{WEST_YORKSHIRE}", f"/pathway-gaps/{WEST_YORKSHIRE}/summary"):
        page = client.get(address).text
        table = page[page.index('id="compare-caption"'):page.index("</table>", page.index('id="compare-caption"'))]
        rows = re.findall(r'<th class="nhsuk-table__header" scope="row">.*?</tr>', table, flags=re.S)
        cells = [re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S) for row in rows]
        assert len(cells) == 7 and {(row[2].strip(), row[5].strip()) for row in cells} == {
            ("Partly covered", "Partly covered")}, address
        assert "Partly covered (England): rehabmap holds that part's data for only some of England" in page


def test_exports_link_the_sheet_and_its_data_dictionary(client):
    for address in (f"/pathway-gaps/{WEST_YORKSHIRE}", "/pathway-gaps/compare?level=la"):
        page = client.get(address).text
        level = "la" if "level=la" in address else "icb"
        links = (f"/gaps/areas.csv?level={level}&amp;headers=human", "/gaps/dictionary", "/gaps/dictionary.csv")
        for link in links:
            assert f'href="{link}"' in page, link
            reply = client.get(link.replace("&amp;", "&"))
            assert reply.status_code == 200, link
        assert "data dictionary" in page


def test_area_with_gaps_names_the_nearest_provider(client):
    page = client.get("/pathway-gaps/E54000008").text  # Cheshire and Merseyside: nothing in the sample
    # Nothing covers it either: rehabmap cannot say the parts are missing, only that it holds no data there.
    assert "7 of 7 parts of the pathway are not yet covered" in page and "are missing" not in page
    assert "the nearest we know of is" in page


def test_bad_threshold_is_an_error_and_keeps_the_value(client):
    response = client.get(f"/pathway-gaps/{WEST_YORKSHIRE}", params={"community_km": "far"})
    assert response.status_code == 400
    assert 'href="#community_km"' in response.text
    assert Page(response.text).by_id("community_km")[1]["value"] == "far"


def test_unknown_area_is_a_404_page_saying_what_the_code_is(client):
    """Before, a region's code read "That area could not be found here: check the link", as a typo would: now the
    picker says what the code is and which codes the pages take, as its own form does."""
    assert client.get("/pathway-gaps/E99999999").status_code == 404
    for path in ("/pathway-gaps/E12000004", "/pathway-gaps/E12000004/summary"):
        reply = client.get(path)
        assert reply.status_code == 404 and Page(reply.text).by_id("area")
        assert ("is a region&#39;s code (E12…, one of England&#39;s nine regions, larger than any ICB); gap analysis "
                "takes an ICB code (E54…)") in reply.text
    # A metropolitan county's code is a real code too, of an area with no county council (it read "No English ICB,
    # local authority or county council has the code", as a typo's), in the page and in the picker's form alike.
    picked = client.get("/pathway-gaps/area", params={"area": "E11000006"})
    for reply in (client.get("/pathway-gaps/E11000006"), picked):
        assert reply.status_code in (400, 404) and ("is a metropolitan county&#39;s code (E11…, which has no county "
                                                    "council") in reply.text and "has the code" not in reply.text


def test_comparison_sorts_and_links_downloads(client):
    page = client.get("/pathway-gaps/compare", params={"sort": "missing", "order": "asc"}).text
    rows = re.findall(r'<th class="nhsuk-table__header" scope="row"><a href="/pathway-gaps/(E\d+)"', page)
    assert len(rows) == 42
    missing = [int(n) for n in re.findall(
        r'</a></th>\s*<td class="nhsuk-table__cell nhsuk-table__cell--numeric">(\d)</td>', page)]
    assert len(missing) == 42 and missing == sorted(missing) and missing[0] == 0  # complete ones first
    assert "E54000054" in rows[:5]
    assert 'aria-sort="ascending"' in page
    assert 'href="/gaps/areas.csv?level=icb"' in page
    assert 'src="/gaps/england.svg?type=community_rehab_team&amp;indicator=mean_km&amp;level=icb"' in page


def test_comparison_never_ranks_an_uncovered_area_as_zero(client):
    """Cheshire and Merseyside: nothing in the sample and no source covers it. Sorted by services per
    100,000 adults it is listed last, as not covered, and its absent parts are not counted as missing."""
    for order in ("asc", "desc"):
        page = client.get("/pathway-gaps/compare", params={"type": "inpatient_rehab_level2",
                                                           "indicator": "per_100k_adults", "sort": "indicator",
                                                           "order": order}).text
        rows = re.findall(r'<a href="/pathway-gaps/(E\d+)">.*?</tr>', page, flags=re.S)
        cells = re.findall(r'<a href="/pathway-gaps/E\d+">[^<]*</a></th>\s*<td[^>]*>(\d+)</td>.*?'
                           r'<td class="nhsuk-table__cell nhsuk-table__cell--numeric">([^<]*)</td>\s*</tr>',
                           page, flags=re.S)
        assert len(rows) == len(cells) == 42
        chester = rows.index("E54000008")
        assert cells[chester] == ("0", "Not covered")
        covered = [i for i, (_, value) in enumerate(cells) if value != "Not covered"]
        assert covered and max(covered) < chester  # every area with a figure comes before it


# --- privacy ----------------------------------------------------------------------------------------

def test_nothing_searched_for_reaches_the_logs(client, caplog):
    caplog.set_level(logging.DEBUG)
    client.get("/find/work", params={"where": "LS9 7TF"})
    client.get("/find/work", params={"where": "ZZ99 9ZZ"})
    client.post("/alternatives", data={**FORM, "needs": ["restricted_s37_41"]}, follow_redirects=True)
    client.get(f"/shortlist?s={AIRE}&where=LS9+7TF")
    ours = [r.getMessage() for r in caplog.records if not r.name.startswith("httpx")]
    assert ours, "expected access log lines"
    for secret in ("LS9", "ZZ99", "TR1", "restricted", "s37", "aire-valley"):
        assert not [line for line in ours if secret in line], secret

