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

from fastapi import APIRouter

import web.keepers
from web.routes import find, gaps, match, pages

router = APIRouter(include_in_schema=False)
router.include_router(pages.router)
router.include_router(find.router)
router.include_router(match.router)
router.include_router(gaps.router)
router.include_router(web.keepers.router)
