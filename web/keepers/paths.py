"""Where a service's own keepers' pages are: its page under Services (change, retire or restore it) and its history.
A home of their own, below the pages' modules, so that any of them can link to a service (the review queue sends a
record whose source confirms its type to its page, and the services' page links back to the queue)."""

from __future__ import annotations

from rehabmap.record import id_in_path
from web.keepers.session import PATH

SERVICES = f"{PATH}/services"
HISTORY = f"{PATH}/history"  # each service's history: web.keepers.maintainer_history


def service_path(service_id: str, action: str = "") -> str:
    return f"{SERVICES}/{id_in_path(service_id)}" + (f"/{action}" if action else "")


def history_path(service_id: str) -> str:
    return f"{HISTORY}/{id_in_path(service_id)}"
