"""The keepers' pages: for the providers, maintainers and admins who keep the directory true (issue 14).

Everything is under `/keepers` (`session.PATH`), the only path the sign-in cookie is sent to: the public
and clinician pages never set or receive a cookie. The router here is included by `web.routes`.

How to add a page (the whole interface):

* **A module of routes** (`web/keepers/<feature>.py`) makes its router with
  `APIRouter(route_class=KeepersRoute)` and is included below. Its templates live in
  `web/templates/keepers/<feature>/` and extend `keepers/layout.html`.
* **Require a signed-in role**: a parameter `keeper: Keeper = requires(Role.maintainer, Role.admin)` (no
  roles: anyone signed in). Not signed in, or the session ended: the browser goes to the sign-in page and
  back after. Another role: a 403 page. `keeper.principal` is the token's `Principal`, the same one the
  maintainers' API gets, so pass it to the library (`rehabmap.maintain.edits`) as the API does.
* **Forms**: every form on a keepers' page is `method="post"` and carries `{{ csrf_input }}` (the hidden
  `csrf` field). On a POST, `requires` reads the urlencoded form and checks its CSRF token before the
  route runs; the route reads the fields from `keeper.form` (a `web.forms.Fields`). A bad or missing
  token is a 403 page; the route never runs. Follow a good POST with a redirect (303).
* **Render**: `render(request, keeper, "keepers/<feature>/page.html", {...})` gives the keepers' layout
  (who is signed in, their pages, sign out), `no-store`, and the CSRF field. For errors use the NHS
  error summary (`web.forms.Errors`, `macros/nhsuk.html`), status 400.
* **Navigation**: append a `navigation.Section(path, title, description, roles)` to `navigation.SECTIONS`
  in the feature's module; the layout and the keepers' home list it for those roles.
* **Refuse from anywhere** inside a route or dependency: `raise Refusal(response)`.

Sessions and sign-in links are `rehabmap.maintain.sessions` (the store); cookies and CSRF are
`web.keepers.session`. The pages: `sign_in` (sign in and out, the keepers' home), `provider` (my services),
`reports` (the public "report a problem" form, outside `/keepers` and cookie-free, and the maintainers'
queue), `admin` (tokens, organisations). The maintainers' own pages go in `maintainer_*.py` modules with
templates in `keepers/maintainer/`.
"""

from __future__ import annotations

from fastapi import APIRouter

from web.keepers import (admin, maintainer_history, maintainer_review, maintainer_services, maintainer_sources,
                         maintainer_upload, maintainer_verification, provider, reports, sign_in)

router = APIRouter(include_in_schema=False)
router.include_router(sign_in.router)
router.include_router(provider.router)
router.include_router(reports.router)
router.include_router(admin.router)
router.include_router(maintainer_review.router)
router.include_router(maintainer_services.router)
router.include_router(maintainer_verification.router)
router.include_router(maintainer_upload.router)
router.include_router(maintainer_sources.router)
router.include_router(maintainer_history.router)  # after the services pages, whose paths it must not shadow
router.include_router(reports.public)  # the public form, outside /keepers: no cookie
