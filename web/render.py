"""Rendering a page: one Jinja2 environment, and the headers every page carries.

Privacy and safety headers are set here, once: a Content-Security-Policy that allows scripts, styles and
images from this site only (no inline scripts, no inline styles, no third parties), no referrer sent to
other sites (a results URL holds a postcode), and `no-store` on pages that show what someone searched for.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import date
from pathlib import Path
from typing import Any

from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from geodata.errors import GeodataNotBuilt
from rehabmap import __version__
from rehabmap.errors import DomainError, tell_operator, told
from rehabmap.record import capacity_max_age_days
from web import present
from web.deps import get_state

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

CONTENT_SECURITY_POLICY = "; ".join((  # noqa: FLY002 - one directive a line
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "font-src 'self'",
    "connect-src 'self'",
    "manifest-src 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
))

BASE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "geolocation=(), camera=(), microphone=(), payment=(), interest-cohort=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}

environment = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(("html", "svg")),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.filters.update(present.filters())
environment.globals.update(version=__version__, categories=present.CATEGORIES, fmt_indicator=present.fmt_indicator,
                           capacity_max_age_days=capacity_max_age_days)


def page(request: Request, template: str, context: dict[str, Any] | None = None, *, status: int = 200,
         private: bool = True, today: date | None = None) -> HTMLResponse:
    """Render `template`; `private` pages (anything showing a search) are never stored by browsers or proxies.
    A page's "today" is the app's one clock (`Settings.current_date`, REHABMAP_TODAY) unless given, as `today` or
    in `context`: read once a request, so that a page made across midnight is of one day."""
    context = context or {}
    values = {"request": request, "path": request.url.path,
              "today": today or context.get("today") or get_state(request).today(), **context}
    html = environment.get_template(template).render(values)
    headers = dict(BASE_HEADERS)
    headers["Cache-Control"] = "no-store" if private else "public, max-age=300"
    return HTMLResponse(html, status_code=status, headers=headers)



class PageRoute(APIRoute):
    """A page's route. A domain error saying the server cannot answer now (503: no index or one that cannot be
    read, the search cluster out of reach, a data file missing), or a geodata folder gone from under the server (a
    keeper's upload or review decision places records), is a page that says so: the API's JSON error, which the app
    answers anything else with, is nothing a person reading a page can use."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except (DomainError, GeodataNotBuilt) as error:
                if isinstance(error, DomainError) and error.status != 503:
                    raise
                tell_operator(error)
                reply = page(request, "unavailable.html", {"error": error, "told": told(error)}, status=503)
                reply.headers.update(getattr(error, "headers", {}))  # Retry-After, where the error gives one
                return reply
        return answer
