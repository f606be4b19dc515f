"""Server-rendered web pages for people, clinicians and commissioners (Jinja2 + NHS.UK frontend).

Wire into the API app with:

    import web, web.routes
    web.mount_static(app)
    app.include_router(web.routes.router)

Every core journey works without JavaScript; nothing a person searches for is stored or logged.
"""

from __future__ import annotations

from pathlib import Path

from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_PATH = "/static"


def mount_static(app) -> None:  # app: fastapi.FastAPI
    """Serve web/static (vendored NHS.UK frontend, rehabmap.css/js) at /static, once."""
    if any(getattr(route, "path", None) == STATIC_PATH for route in app.routes):
        return
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="static")
