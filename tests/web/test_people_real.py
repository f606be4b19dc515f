"""A clinician's and a family's requests over a directory filled as a deployment fills it (`rehabmap sync cqc`
against the replay of the real recorded CQC API: tests/web/real_feeds_home.py's fixtures), served by
`rehabmap serve` on 127.0.0.1 and asked over HTTP as a monitoring tool, an API client or a browser asks."""

from __future__ import annotations

import html
import re
from pathlib import Path

import httpx
import pytest

from tests.commands import rehabmap_here
from tests.cqc_records import DOVETAIL_ID, DOVETAIL_POSTCODE
from tests.web.browser import axe
from tests.web.real_feeds_home import synced, synced_home  # noqa: F401  (the fixtures)

pytestmark = pytest.mark.slow

# Every GET the API, the ORUK feed and the pages answer, with real arguments.
GETS = ("/health", "/metrics", "/services", f"/services/{DOVETAIL_ID}", "/services.csv", "/services.geojson",
        "/areas/E54000060", "/gaps?level=icb", "/oruk/", "/oruk/services", f"/oruk/services/{DOVETAIL_ID}",
        "/oruk/taxonomies", "/openapi.json", "/", "/find", f"/find/housing?where={DOVETAIL_POSTCODE}",
        f"/service/{DOVETAIL_ID}", f"/shortlist?id={DOVETAIL_ID}", "/alternatives", "/privacy")


def server_log(home: Path) -> str:
    return "".join(log.read_text(errors="replace") for log in home.glob("server-*.log"))


def test_head_answers_where_get_does(synced, synced_home):  # noqa: F811
    """RFC 9110 §9.3.2: HEAD where GET works, as monitoring tools and link checkers ask. Before, every GET of the
    API and every page answered HEAD with 405 Method Not Allowed (only FastAPI's own /openapi.json and /docs
    did not)."""
    with httpx.Client(base_url=synced, timeout=120) as client:
        for path in GETS:
            got, head = client.get(path), client.head(path)
            assert got.status_code == 200, (path, got.status_code)
            assert (head.status_code, head.content) == (200, b""), (path, head.status_code)
            assert head.headers["content-type"] == got.headers["content-type"], path
            # A streamed export has no length, and its HEAD none either; the metrics have counted the GET since.
            if "content-length" in got.headers and path != "/metrics":
                assert head.headers["content-length"] == got.headers["content-length"], path
        # Where GET is not allowed, nor is HEAD: POST /match says which method it takes.
        refused = client.head("/match")
        assert (refused.status_code, refused.headers["allow"]) == (405, "POST")
        assert client.head("/services/cqc:no-such-service").status_code == 404
        # The OpenAPI documents still list each operation once: HEAD is not a second operation beside GET.
        for document in ("/openapi.json", "/oruk/openapi.json"):
            paths = client.get(document).json()["paths"]
            assert not [p for p, operations in paths.items() if "head" in operations], document
    # The request log names what was asked, by its route template.
    assert "HEAD /areas/{code} 200" in server_log(synced_home)


def test_a_place_name_says_which_place_it_was_read_as(synced, synced_home):  # noqa: F811
    """A misspelt place name is read as the one place spelt nearest to it, or asked about. Before, the reply
    said nothing of which place that was: the echo held the district (none, for a place) and the areas, so a
    clinician could not tell that "Sheffeld" was read as Sheffield, or which of the Prestons was taken."""
    def home_of(place: str) -> dict:
        body = {"home": {"place": place}, "types": ["supported_accommodation"], "max_distance_km": 100}
        reply = httpx.post(f"{synced}/match", json=body, timeout=120)
        assert reply.status_code == 200, reply.text
        return reply.json()["home"]

    sheffield = home_of("Sheffeld")
    assert (sheffield["place"], sheffield["precision"], sheffield["district"]) == ("Sheffield", "place", None)
    assert home_of("Preston")["place"] == "Preston, Lancashire"  # the Preston taken, with its county
    assert home_of("Harehills")["place"] == "Harehills, Leeds"  # a neighbourhood, with its local authority
    near = httpx.get(f"{synced}/services", params={"place": "Mansfeild", "radius_km": 20}, timeout=120).json()
    assert near["near"]["place"] == "Mansfield, Nottinghamshire" and near["results"][0]["id"] == DOVETAIL_ID
    # A postcode is echoed as its district only, as before: no place is named for it.
    body = {"home": {"postcode": DOVETAIL_POSTCODE}, "types": ["supported_accommodation"]}
    home = httpx.post(f"{synced}/match", json=body, timeout=120).json()["home"]
    assert (home["district"], home["place"]) == ("NG18", None)
    # Said in the reply, never logged.
    log = server_log(synced_home)
    assert "POST /match 200" in log
    assert not [word for word in ("Sheffeld", "Sheffield", "Mansfeild", "Harehills", "NG18 2AT") if word in log]


def test_a_body_that_is_not_json_is_told_what_to_send(synced):  # noqa: F811
    """Before, a body that did not parse was '34: JSON decode error' on field '34' (the character where it
    failed, read as a field's name), and a body sent as text or sent empty a bare 'Input should be a valid
    dictionary or object to extract fields from' or 'Field required': nothing to act on."""
    send_json = "Send a JSON object, with Content-Type: application/json."
    for content, content_type, said in (
            ('{"home": {"postcode": "NG18 2AT"},}', "application/json",
             f"The request body is not valid JSON: Expecting property name enclosed in double quotes at character "
             f"34. {send_json}"),
            ('{"home": {"postcode": "NG18 2AT"}}', "text/plain",
             f"The request body is not a JSON object, or was not sent as JSON. {send_json}"),
            ("", None, f"The request has no body. {send_json}")):
        headers = {"content-type": content_type} if content_type else {}
        reply = httpx.post(f"{synced}/match", content=content, headers=headers, timeout=120)
        assert reply.status_code == 422 and reply.json() == {"error": {"code": "invalid_request", "message": said}}
    # A field's error still names the field.
    reply = httpx.post(f"{synced}/match", json={"home": {"postcode": DOVETAIL_POSTCODE}, "limit": "x"}, timeout=120)
    assert reply.json()["error"] == {"code": "invalid_request", "message": "limit: Input should be a valid integer",
                                     "field": "limit"}


def test_the_clinicians_results_on_a_320_pixel_screen(browser, synced, axe_source):  # noqa: F811
    """WCAG 2.2 reflow: at 320 CSS pixels wide (a phone, or 1280 at 400% zoom) the "Across the pathway" table
    scrolls sideways inside its box. Before, the box could not take the keyboard's focus, so someone without a
    mouse could not scroll it to read the nearest of each type (axe: scrollable-region-focusable, serious)."""
    context = browser.new_context(viewport={"width": 320, "height": 800}, locale="en-GB")
    page = context.new_page()
    page.goto(f"{synced}/alternatives")
    page.fill("input[name=home]", DOVETAIL_POSTCODE)
    page.fill("input[name=placement]", "TR1 3LJ")  # a current placement in Cornwall
    page.check("input[name=needs][value='learning_disability']")
    page.locator("main form button[type=submit]").last.click()
    page.wait_for_url("**/alternatives/results/*")
    assert "Dovetail House" in page.locator("main").inner_text()
    assert page.evaluate("() => document.documentElement.scrollWidth") == 320  # nothing spills off the page
    assert axe(page, axe_source) == []
    table = page.get_by_role("region", name="Across the pathway")
    assert table.evaluate("e => e.scrollWidth > e.clientWidth")  # it does scroll, inside its box
    table.focus()
    page.keyboard.press("ArrowRight")  # the box scrolls (smoothly: waited for, up to the page timeout)
    page.wait_for_function("() => document.querySelector(\"[role=region][aria-labelledby=across-the-pathway]\")"
                           ".scrollLeft > 0")
    context.close()


def alternatives_page(url: str, form: dict[str, str | list[str]]) -> str:
    """The clinicians' results page for a form, as a browser gets it (POST, redirect, GET)."""
    with httpx.Client(base_url=url, timeout=120, follow_redirects=True) as client:
        reply = client.post("/alternatives", data=form)
    assert reply.status_code == 200 and "/alternatives/results/" in str(reply.url), reply.text[:500]
    return reply.text


def notes_text(page: str) -> str:
    """The plain text the page offers to paste into clinical notes."""
    return html.unescape(re.search(r"<textarea[^>]*>(.*?)</textarea>", page, re.S).group(1))


def text_of(page: str) -> str:
    """A page's words as a person reads them, one space between each."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def test_the_text_for_notes_says_where_rehabmap_holds_no_data(synced):  # noqa: F811
    """The text a clinician pastes into the person's notes said "None listed." under every type without an
    option: under advocacy, employment and community support, of which rehabmap holds no data for Mansfield,
    as under the inpatient units, of which CQC's complete listing holds none near. The page itself said
    which; the notes read as if there were none."""
    page = alternatives_page(synced, {"home": "Mansfeild", "placement": "TR1 3LJ", "needs": "learning_disability"})
    text = notes_text(page)
    assert "None listed" not in text
    assert "Advocacy: Not yet covered: the directory holds no Advocacy data for this area yet." in text
    # No distance given, so the search reaches all England: Field House, held for review 14.5 km away, may be one.
    assert ("Level 1 inpatient rehabilitation unit: None confirmed yet: 1 candidate awaits review by the directory's "
            "maintainers in England (the search has no distance limit), so none found does not mean there are "
            "none.") in text
    # The care homes listed are not all the supported accommodation there may be (CQC lists no supported housing):
    # the page and the notes said nothing of it beside the options, as the API's "Found, but …" does.
    more = ("Found, but the directory holds complete Supported accommodation data here only for 24-hour staffed "
            "residential care (as of ")
    assert f"Supported accommodation: showing 3 of 6. {more}" in text and "so there may be more.\n1. Dovetail" in text
    assert f"Showing 3 of 6. {more}" in page


def test_a_kind_of_accommodation_asked_for_is_covered_as_the_api_says(synced):  # noqa: F811
    """CQC lists every care home, not all supported accommodation. Asked for 24-hour residential care near
    Berwick-upon-Tweed, POST /match says none found there (CQC covers it); the clinicians' page said "Not yet
    covered: the directory holds no Supported accommodation data for this area yet", reading the coverage of
    supported accommodation as a whole, not of the kind asked for; and the API's words named supported
    accommodation as a whole where they said it was complete."""
    berwick = {"home": "TD15 1AB", "types": "supported_accommodation", "subtypes": "residential_24h", "within": "20"}
    body = {"home": {"postcode": "TD15 1AB"}, "types": ["supported_accommodation"], "subtypes": ["residential_24h"],
            "max_distance_km": 32}
    [summary] = httpx.post(f"{synced}/match", json=body, timeout=120).json()["summary"]
    assert summary["found"] == "none_found"
    # ... and says of what: before, "complete Supported accommodation data", as if CQC listed supported housing
    # and floating support too.
    assert (summary["coverage"]["category"], summary["coverage"]["says"][:125]) == (
        "supported_accommodation:residential_24h", "None found. The directory holds complete Supported "
        "accommodation: 24-hour staffed residential care data for this area (as of ")
    page = alternatives_page(synced, berwick)
    assert "Not yet covered" not in page
    assert "Supported accommodation: None found." in notes_text(page)
    # Without the kind, supported accommodation as a whole is covered only for the care homes: the page says which
    # (before: "Not yet covered: the directory holds no Supported accommodation data for this area yet.").
    page = alternatives_page(synced, {**berwick, "subtypes": []})
    assert ("None found, but the directory holds complete Supported accommodation data here only for 24-hour "
            "staffed residential care (as of ") in page and "Not yet covered" not in page


def test_a_page_not_found_does_not_guess_that_something_closed(synced):  # noqa: F811
    """Before: "That kind of support could not be found. It may have closed, or the link may be wrong.", and the
    same of a service the directory never listed (Field House awaits review) and of an area: a guess that
    something closed, which nothing here knows (a service the directory no longer lists has a page of its own
    that says so)."""
    for path, what in (("/find/gardening", "That kind of support"), ("/service/cqc:1-112845365", "That service"),
                       ("/service/cqc:no-such-id", "That service")):
        reply = httpx.get(f"{synced}{path}", timeout=120)
        assert reply.status_code == 404
        assert f"{what} could not be found here: check the link, which may be wrong or cut short." in reply.text
        assert "closed" not in reply.text


def test_families_are_told_which_parts_of_a_kind_the_directory_holds(synced):  # noqa: F811
    """CQC lists every care home, not supported housing or floating support; it lists every inpatient unit, not
    the community rehabilitation teams. Near Berwick-upon-Tweed, where none of the one is within reach, the
    families' pages said "We do not hold information about somewhere to live with support for this area yet":
    true of supported housing, untrue of care homes, of which the directory holds every one and found none."""
    def none_found(slug: str) -> str:
        reply = httpx.get(f"{synced}/find/{slug}", params={"where": "TD15 1AB", "within": 25}, timeout=120)
        assert reply.status_code == 200, reply.text
        return text_of(reply.text)

    housing = none_found("housing")
    assert ("We could not find care homes with staff day and night within 25 miles of TD15 1AB that cover where "
            "you live. We do not hold information about support at home (floating support) or supported housing "
            "for this area yet, so there may be some near you.") in housing
    assert "We do not hold information about somewhere to live with support" not in housing
    rehabilitation = none_found("rehabilitation")
    assert ("We could not find rehabilitation units or rehabilitation units with more support within 25 miles of "
            "TD15 1AB that cover where you live. We do not hold information about community rehabilitation teams "
            "for this area yet") in rehabilitation
    # Where the directory holds none of a kind at all, it says so of the whole kind, as before.
    assert "We do not hold information about getting back to work for this area yet" in none_found("work")
    # The everything page words each kind's none found the same way.
    assert "We could not find care homes with staff day and night within 25 miles" in none_found("everything")


def test_every_part_of_a_kind_has_public_words():
    """The families' words name each part coverage can claim: every type, and every subtype as type:subtype."""
    from rehabmap.taxonomy import SUBTYPES, ServiceType
    from web.present import PUBLIC_PART_WORDS

    parts = {t.value for t in ServiceType} | {f"{t.value}:{s}" for t, subs in SUBTYPES.items() for s in subs}
    assert set(PUBLIC_PART_WORDS) == parts


def test_a_count_where_rehabmap_holds_no_data_is_not_0(synced):  # noqa: F811
    """The "Across the pathway" table read "In home ICB: 0" for advocacy near Mansfield, beside "Not yet covered:
    the directory holds no Advocacy data for this area yet": a 0 claims none in the ICB, which no data says. Now
    the count there is "No data"; a type the directory covers keeps its number."""
    page = alternatives_page(synced, {"home": "Mansfeild", "needs": "learning_disability"})
    table = page[page.index('id="across-the-pathway"'):page.index("</table>")]
    rows = (re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", tr, re.S)
            for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", table.split("<tbody", 1)[1], re.S))
    cells = {text_of(row[0]): [text_of(c) for c in row[1:]] for row in rows}
    assert cells["Advocacy"][0] == "No data" and "Not yet covered" in cells["Advocacy"][1], cells
    # CQC's listing of inpatient units is complete: none in the ICB is a count.
    assert cells["Level 2 inpatient rehabilitation unit (higher support)"][0] == "0", cells
    assert text_of(page).count("No data") == sum(c[0] == "No data" for c in cells.values())


def test_a_cqc_registration_is_not_said_to_be_only_the_needs_rehabmap_reads(synced):  # noqa: F811
    """CQC registers Dovetail House for adults under 65, people whose rights are restricted under the Mental Health
    Act, learning disabilities, mental health conditions, physical disabilities and substance misuse problems. Its
    page listed two of them under "Registered with the Care Quality Commission (CQC) for", as if that were the
    whole registration: rehabmap reads only those two as needs. Now the heading says what they are, and the page
    says where the whole registration is."""
    page = text_of(httpx.get(f"{synced}/service/{DOVETAIL_ID}", timeout=120).text)
    assert "Registered with the Care Quality Commission (CQC) for" not in page
    assert ("Needs rehabmap reads from its Care Quality Commission (CQC) registration Learning disability Substance "
            "misuse Only the parts of its registration that rehabmap searches by: CQC's page for it has the whole "
            "registration.") in page
    assert 'href="https://www.cqc.org.uk/location/1-112779585"' in httpx.get(f"{synced}/service/{DOVETAIL_ID}",
                                                                             timeout=120).text


def test_distances_from_a_district_or_sector_say_they_run_from_its_middle(synced, synced_home,  # noqa: F811
                                                                          data_dir):
    """A district or sector is found at its point, the mean of its postcodes. Before, every face gave distances
    from it as exact: "12.3 miles (19.8 km) from home, …" in the API's explanations and the command line, "… from
    home" on the clinicians' cards and notes, "… away" and "… from NG18" on the public pages. Now each says about,
    and from where; the API's home says where (`distances_from`), echoing no more than the district."""
    def answer(postcode: str) -> dict:
        body = {"home": {"postcode": postcode}, "types": ["supported_accommodation"], "limit": 3}  # no distance
        reply = httpx.post(f"{synced}/match", json=body, timeout=120)
        assert reply.status_code == 200, reply.text
        return reply.json()

    sector = "the middle of the postcode sector searched"  # a reply echoes no more than the district
    for postcode, measured in (("NG18", "the middle of NG18"), ("NG18 2", sector), ("TR21", "the middle of TR21")):
        got = answer(postcode)
        assert (got["home"]["precision"], got["home"]["distances_from"]) == (
            "sector" if " " in postcode else "district", measured)
        assert got["results"], postcode
        for result in got["results"]:
            assert result["explanation"].startswith("about ") and f" from {measured}, " in result["explanation"]
    exact = answer(DOVETAIL_POSTCODE)
    assert exact["home"]["distances_from"] is None
    assert all(not r["explanation"].startswith("about ") and " from home, " in r["explanation"]
               for r in exact["results"])

    note = ("Distances are approximate: measured from the middle of NG18 (the mean of its postcodes), not from an "
            "address. Give the full postcode for exact distances.")
    page = alternatives_page(synced, {"home": "NG18", "types": "supported_accommodation", "placement": "TR1 3LJ"})
    assert note in text_of(page) and note in notes_text(page)
    assert re.search(r"Distance about [\d.]+ miles \([\d.]+ km\) from the middle of NG18, ", text_of(page))
    assert re.search(r"Current placement TR1 3LJ, about [\d.]+ miles \([\d.]+ km\) from the middle of NG18",
                     text_of(page))
    assert " from home" not in text_of(page) and " from home" not in notes_text(page)

    found = text_of(httpx.get(f"{synced}/find/housing", params={"where": "NG18", "within": 25}, timeout=120).text)
    away = re.findall(r"(\w+) [\d.]+ miles \([\d.]+ km\) away", found)
    assert note in found and away and set(away) == {"about"}, away
    service = text_of(httpx.get(f"{synced}/service/{DOVETAIL_ID}", params={"where": "NG18", "within": 25},
                                timeout=120).text)
    assert re.search(r"About [\d.]+ miles \([\d.]+ km\) from the middle of NG18", service)

    done = rehabmap_here(synced_home, data_dir, "match", "--postcode", "NG18", "--type", "supported_accommodation")
    assert done.returncode == 0, done.stderr
    assert note in done.stdout and " from the middle of NG18, " in done.stdout and " from home" not in done.stdout


def test_distances_from_a_place_name_say_they_run_from_its_middle(synced, synced_home, data_dir):  # noqa: F811
    """A place name is found at the place's point (a town's, or a council's or county's centre), as a district is
    at its middle. Before, every face gave distances from it as exact: "… from home" in the API's explanations, on
    the clinicians' cards and notes and on the command line, "… away" and "… from Mansfield" on the public pages,
    and the API's home said `distances_from` null. Now each says about, and from the middle of the place it was read
    as, which a reply echoes anyway (`place`); its note gives no "mean of its postcodes"."""
    measured = "the middle of Mansfield, Nottinghamshire"
    body = {"home": {"place": "Mansfield"}, "types": ["supported_accommodation"], "limit": 3}
    reply = httpx.post(f"{synced}/match", json=body, timeout=120)
    assert reply.status_code == 200, reply.text
    got = reply.json()
    assert (got["home"]["precision"], got["home"]["distances_from"]) == ("place", measured)
    assert got["results"] and all(r["explanation"].startswith("about ") and f" from {measured}, " in r["explanation"]
                                  for r in got["results"])

    note = (f"Distances are approximate: measured from {measured}, not from an address. Give a full postcode for "
            "exact distances.")
    page = alternatives_page(synced, {"home": "Mansfield", "types": "supported_accommodation", "placement": "TR1 3LJ"})
    assert note in text_of(page) and note in notes_text(page)
    assert re.search(rf"Distance about [\d.]+ miles \([\d.]+ km\) from {measured}, ", text_of(page))
    assert re.search(rf"Current placement TR1 3LJ, about [\d.]+ miles \([\d.]+ km\) from {measured}", text_of(page))
    assert " from home" not in text_of(page) and " from home" not in notes_text(page)

    found = text_of(httpx.get(f"{synced}/find/housing", params={"where": "Mansfield", "within": 25},
                              timeout=120).text)
    away = re.findall(r"(\w+) [\d.]+ miles \([\d.]+ km\) away", found)
    assert note in found and away and set(away) == {"about"}, away
    service = text_of(httpx.get(f"{synced}/service/{DOVETAIL_ID}", params={"where": "Mansfield", "within": 25},
                                timeout=120).text)
    assert re.search(rf"About [\d.]+ miles \([\d.]+ km\) from {measured}", service)
    shortlist = text_of(httpx.get(f"{synced}/shortlist", params={"s": DOVETAIL_ID, "where": "Mansfield"},
                                  timeout=120).text)
    assert note in shortlist

    done = rehabmap_here(synced_home, data_dir, "match", "--place", "Mansfield", "--type", "supported_accommodation")
    assert done.returncode == 0, done.stderr
    assert note in done.stdout and f" from {measured}, " in done.stdout and " from home" not in done.stdout


def test_a_current_placement_given_as_a_district_says_its_distance_is_about(synced):  # noqa: F811
    """A current placement given as a district (or sector) is found at its middle too, but the page and the notes
    read "Current placement: TR21, 312 miles (503 km) from home" and each option "… nearer than the current
    placement", as exact. Now they say about, and to where. A district home's "Across the pathway" distances said
    exact ones too; the shortlist said "with distances from the middle of NG18 (about: the mean of its postcodes)"
    and never asked for the full postcode."""
    form = {"home": DOVETAIL_POSTCODE, "types": "supported_accommodation", "placement": "TR21"}
    page = alternatives_page(synced, form)
    placement = r"TR21, about [\d.]+ miles \([\d.]+ km\) from home, to the middle of TR21"
    assert re.search(rf"Current placement {placement}", text_of(page)), text_of(page)
    assert re.search(rf"Current placement: {placement}", notes_text(page))
    saved = re.findall(r"(\w+) [\d.]+ miles \([\d.]+ km\) (?:nearer|further) than the current placement",
                       text_of(page) + notes_text(page))
    assert saved and set(saved) == {"about"}, saved
    assert re.search(r"Distance [\d.]+ miles \([\d.]+ km\) from home, ", text_of(page))  # the home is exact

    district = alternatives_page(synced, {"home": "NG18", "types": "supported_accommodation"})
    table = text_of(district[district.index('id="across-the-pathway"'):district.index("</table>")])
    distances = re.findall(r"(\w+) [\d.]+ miles \([\d.]+ km\)", table)
    assert distances and set(distances) == {"about"}, table

    # A district home and a full-postcode placement: the saving is the difference of an approximate distance too.
    district_home = alternatives_page(synced, {"home": "NG18", "types": "supported_accommodation",
                                               "placement": DOVETAIL_POSTCODE})
    saved = re.findall(r"(\w+) [\d.]+ miles \([\d.]+ km\) (?:nearer|further) than the current placement",
                       text_of(district_home) + notes_text(district_home))
    assert saved and set(saved) == {"about"}, saved

    shortlist = text_of(httpx.get(f"{synced}/shortlist", params={"s": DOVETAIL_ID, "where": "NG18"}, timeout=120).text)
    assert ("Distances are approximate: measured from the middle of NG18 (the mean of its postcodes), not from an "
            "address. Give the full postcode for exact distances.") in shortlist
    assert "(about: the mean of its postcodes)" not in shortlist


def test_the_command_line_names_the_sector_its_distances_run_from(synced_home, data_dir):  # noqa: F811
    """`rehabmap match --postcode "NG18 2"` said in its note "measured from the middle of NG18 2" and in each
    explanation "… from the middle of the postcode sector searched", the words of a reply, which echoes no more than
    the district. The command line is local: its explanations now name the sector as its note does."""
    done = rehabmap_here(synced_home, data_dir, "match", "--postcode", "NG18 2", "--type", "supported_accommodation")
    assert done.returncode == 0, done.stderr
    assert "measured from the middle of NG18 2 (the mean of its postcodes)" in done.stdout
    assert " from the middle of NG18 2, " in done.stdout and "postcode sector searched" not in done.stdout
