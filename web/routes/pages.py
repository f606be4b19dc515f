"""The start page and the pages about the service itself."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse

from rehabmap.index.base import ServiceQuery
from web.deps import State
from web.present import RANKING, long_date
from web.render import PageRoute, page

router = APIRouter(route_class=PageRoute)


@router.get("/")
def home(request: Request) -> HTMLResponse:
    return page(request, "pages/home.html", private=False)


@router.get("/privacy")
def privacy(request: Request) -> HTMLResponse:
    return page(request, "pages/privacy.html", private=False)


@router.get("/accessibility")
def accessibility(request: Request) -> HTMLResponse:
    return page(request, "pages/accessibility.html", private=False)


@router.get("/about-the-data")
def about_data(request: Request, state: State) -> HTMLResponse:
    info = state.backend.info()
    # The index keeps retired records for old links; the pages say they are no longer listed, so the count did not
    # hold them as listed ("Services listed 60" of the sample's 59 and its one closed unit).
    listed = sum(state.backend.count_by_type(ServiceQuery()).values())
    kept = info.count - listed
    facts = [("Services listed", f"{listed:,}" + (f" (and {kept:,} no longer listed, whose pages stay for old links)"
                                                  if kept else "")),
             ("Index built", long_date(info.built_at.date()) if info.built_at else "unknown")]
    if info.sources:
        named = sorted((state.source_title(name), count) for name, count in info.sources.items())
        facts.append(("Sources", ", ".join(f"{title} ({count:,})" for title, count in named)))
    return page(request, "pages/about_data.html", {"facts": facts, "ranking": RANKING}, private=False)
