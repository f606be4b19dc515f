"""The web pages' routes, as one router: `app.include_router(web.routes.router)`.

Paths: `/` (start), `/find…`, `/shortlist`, `/service/{id}` (people); `/alternatives` (clinicians);
`/pathway-gaps…` (commissioners); `/privacy`, `/accessibility`, `/about-the-data`. None is in the
OpenAPI document: the JSON API is documented there, the pages are not part of it.
"""

from __future__ import annotations

from fastapi import APIRouter

from web.routes import find, gaps, match, pages

router = APIRouter(include_in_schema=False)
router.include_router(pages.router)
router.include_router(find.router)
router.include_router(match.router)
router.include_router(gaps.router)
