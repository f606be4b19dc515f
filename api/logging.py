"""Request logging that never keeps special-category data.

A search carries health needs and where someone lives, so the log line has the method, the route
template, the status and the time — never the query string or body. Uvicorn's own access log is off.
"""

from __future__ import annotations

import logging
import time

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount

log = logging.getLogger("rehabmap.access")


class PrivacyLogMiddleware(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        # Under a mounted app (/oruk) the route is the sub-app's, and root_path holds the mount point.
        template = None if isinstance(route, Mount) else getattr(route, "path_format", None)
        path = request.scope.get("root_path", "") + template if template else "unmatched"
        log.info("%s %s %s %.1fms", request.method, path, response.status_code,
                 (time.perf_counter() - started) * 1000)
        return response
