"""What the tests in real headless Chromium share, whatever pages they read: axe-core's check of a page, the
README's screenshots (written only when REHABMAP_SCREENSHOTS is set: 1 for docs/img/pages/, or a directory),
and a keyboard user's Tab to a control.

Not a test module: importing it brings no tests or fixtures of another module along (these lived in
tests/web/test_browser.py, which some fifteen modules imported)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.web.site import ROOT

AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
SHOTS = os.environ.get("REHABMAP_SCREENSHOTS")
SHOT_DIR = (ROOT / "docs" / "img" / "pages") if SHOTS == "1" else Path(SHOTS) if SHOTS else None


def axe(page, axe_source: str) -> list[str]:
    """axe-core's violations on the page as it is now, one line each (empty when there are none)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source)
    result = page.evaluate(
        "async (tags) => { const r = await axe.run(document, {runOnly: {type: 'tag', values: tags}, "
        "resultTypes: ['violations']}); return r.violations.map(v => `${v.id} (${v.impact}): ${v.help} — ` "
        "+ v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', ')); }", AXE_TAGS)
    return result


def shot(page, name: str) -> None:
    if SHOT_DIR is None:
        return
    SHOT_DIR.mkdir(parents=True, exist_ok=True)
    height = page.evaluate("() => document.documentElement.scrollHeight")
    width = page.viewport_size["width"]
    page.screenshot(path=str(SHOT_DIR / f"{name}.png"), full_page=True,
                    clip={"x": 0, "y": 0, "width": width, "height": min(height, 2200)})


def tab_to(page, selector: str, limit: int = 80) -> None:
    """Press Tab until the focused element matches `selector`; every stop must show a visible focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            style = page.evaluate(
                "() => { const s = getComputedStyle(document.activeElement); "
                "return [s.outlineStyle, s.boxShadow, s.backgroundColor]; }")
            assert style[0] != "none" or style[1] != "none", f"no visible focus on {selector}: {style}"
            return
    raise AssertionError(f"could not reach {selector} with Tab")
