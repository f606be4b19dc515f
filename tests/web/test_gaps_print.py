"""The commissioners' pages on paper, in real headless Chromium against a real uvicorn server: every table
of the area and compare pages fits the A4 printable width (nothing clipped by a scrolling box or cut at the
page edge), measured in print media emulation; the one-page summary prints as exactly one A4 page."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.web.browser import axe

pytestmark = pytest.mark.slow

WEST_YORKSHIRE = "E54000054"
MM = 96 / 25.4  # CSS pixels per millimetre
# A4 is 210 mm wide; rehabmap.css sets 12 mm page margins, Chromium's default for printing is about 10 mm:
# the narrower of the two printable widths.
PRINTABLE_PX = int((210 - 2 * 12) * MM)

PAGES = [f"/pathway-gaps/{WEST_YORKSHIRE}", "/pathway-gaps/E08000035?type=inpatient_rehab_level2",
         "/pathway-gaps/E54000036?add=inpatient_rehab_level2@TR1+3LJ@12", "/pathway-gaps/compare",
         "/pathway-gaps/compare?level=la&sort=indicator&order=desc", f"/pathway-gaps/{WEST_YORKSHIRE}/summary",
         "/pathway-gaps/E54000008/summary"]

# Per table: how far it reaches beyond the printable width, and how much its scrolling box hides.
_OVERFLOW = """(width) => [...document.querySelectorAll('main table')].map(t => {
  const wrap = t.closest('.rm-table-wrap');
  return {caption: (t.caption ? t.caption.innerText : t.className).slice(0, 60),
          beyond: t.getBoundingClientRect().right - width,
          hidden: wrap ? wrap.scrollWidth - wrap.clientWidth : 0,
          clipped: wrap ? getComputedStyle(wrap).overflowX !== 'visible' && wrap.scrollWidth > wrap.clientWidth
                        : false};
})"""


@pytest.fixture
def printed(browser, live_server) -> Iterator:
    """A page laid out at the A4 printable width, in print media."""
    context = browser.new_context(viewport={"width": PRINTABLE_PX, "height": 1000}, locale="en-GB")
    page = context.new_page()
    page.emulate_media(media="print")
    yield page, live_server
    context.close()


def pdf_pages(pdf: bytes) -> int:
    """The number of pages of a PDF Chromium wrote: its page objects (`/Type /Page`, not `/Pages`)."""
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf))


@pytest.mark.parametrize("path", PAGES)
def test_every_table_fits_the_a4_printable_width(printed, path):
    page, base = printed
    assert page.goto(base + path).status == 200
    tables = page.evaluate(_OVERFLOW, PRINTABLE_PX)
    assert tables, path
    for table in tables:
        assert table["beyond"] <= 0.5 and table["hidden"] <= 1 and not table["clipped"], (path, table)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PRINTABLE_PX + 1


def test_the_indicator_table_was_clipped_on_screen_width_paper(printed):
    """The measure is sound: the same page in screen media keeps its tables in scrolling boxes, and the
    indicator table is wider than the printable width there (it is what printing clipped before)."""
    page, base = printed
    page.emulate_media(media="screen")
    page.goto(base + f"/pathway-gaps/{WEST_YORKSHIRE}")
    tables = page.evaluate(_OVERFLOW, PRINTABLE_PX)
    assert any(t["clipped"] for t in tables), tables


@pytest.mark.parametrize("code", [WEST_YORKSHIRE, "E54000008", "E08000035", "E54000036"])
def test_the_summary_prints_on_one_a4_page(printed, code):
    page, base = printed
    page.goto(base + f"/pathway-gaps/{code}/summary")
    assert "rehabilitation pathway summary" in page.get_by_role("heading", level=1).inner_text()
    assert page.locator("#answer").inner_text().endswith(".")
    assert pdf_pages(page.pdf(format="A4")) == 1
    # The full area page does not fit one page: the count is a real one.
    page.goto(base + f"/pathway-gaps/{code}")
    assert pdf_pages(page.pdf(format="A4")) > 1


def test_axe_finds_nothing_on_the_summary(watched, axe_source):
    for code in (WEST_YORKSHIRE, "E54000008"):
        watched.goto(f"/pathway-gaps/{code}/summary")
        assert axe(watched.page, axe_source) == [], code
    watched.goto("/pathway-gaps/E99999999/summary")
    expect(watched.page.get_by_role("heading", level=1)).to_be_visible()
    watched.assert_clean()
