"""The web pages' routes, as one router: `app.include_router(web.routes.router)`.

Every page, by feature (the feature's word names its module here, its templates, its domain module and
its API route; a page's address is in the words its people use, because the JSON API holds the feature's
own path):

* find (people): `/find`, `/find/{category}`, `/shortlist`, `/service/{id}`; templates `find/`,
  `service.html`; domain `rehabmap.match`; JSON `GET /services`.
* match (clinicians): `/alternatives` (GET the form, POST it); templates `match/`; domain `rehabmap.match`;
  JSON `POST /match`.
* gaps (commissioners): `/pathway-gaps`, `/pathway-gaps/area`, `/pathway-gaps/compare`,
  `/pathway-gaps/{code}`; templates `gaps/`; domain `rehabmap.gaps`; JSON `GET /gaps…` (the maps and
  downloads the pages link to).
* pages (everyone): `/`, `/privacy`, `/accessibility`, `/about-the-data`; templates `pages/`.
* keepers (providers, maintainers, admins; signed in): everything under `/keepers`, the only pages with a
  cookie; routes in `web/keepers/` (see its docstring), templates `keepers/`; domain `rehabmap.maintain`;
  JSON `/maintain`.

None is in the OpenAPI document: the JSON API is documented there, the pages are not part of it.
"""

from __future__ import annotations

import inspect

from fastapi import APIRouter, FastAPI, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response

import web.keepers
from web.routes import find, gaps, match, pages

router = APIRouter(include_in_schema=False)
router.include_router(pages.router)
router.include_router(find.router)
router.include_router(match.router)
router.include_router(gaps.router)
router.include_router(web.keepers.router)


def answer_missing_pages(app: FastAPI) -> None:
    """A browser asking for an address nothing answers (a link mistyped, cut short, or grown a part:
    `/find/work/extra`) is shown the "Page not found" page, in the site's own frame with its way back; anything
    else asking (a client, curl's `*/*`) keeps the API's JSON error. Before, a person got the JSON. Called by the
    composition root once the API's handlers are installed: the pages do not import the API."""
    api_answer = app.exception_handlers[HTTPException]

    async def answer(request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPException) and exc.status_code == 404 \
                and "text/html" in request.headers.get("accept", ""):
            return find.not_found(request, "That page")
        answered = api_answer(request, exc)
        return await answered if inspect.isawaitable(answered) else answered

    app.add_exception_handler(HTTPException, answer)
