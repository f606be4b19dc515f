"""GET /health: is the index loaded, how big (active services, and the retired ones apart), how fresh."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.deps import State
from api.schemas import ERRORS
from rehabmap.index.base import ServiceQuery

router = APIRouter(tags=["health"], responses=ERRORS)


class HealthOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "status": "ok", "backend": "embedded", "services": 858, "inactive": 2, "built_at": "2026-11-23T18:36:16+00:00",
        "sources": {"cqc": 800, "sample": 60}}]})

    status: str
    backend: str
    services: int = Field(description="Active services: those searches and GET /services can return.")
    inactive: int = Field(description="Retired (inactive) records the index keeps, so their ids and history still "
                          "answer; not counted in `services`.")
    built_at: datetime | None
    sources: dict[str, int] = Field(description="Records per source (the id prefix), active or not.")


@router.get("/health", response_model=HealthOut, summary="Service health and index facts")
def health(state: State) -> HealthOut:
    """200 with the index's size and build time when it is loaded; 503 when it has not been built."""
    info = state.backend.info()
    active = sum(state.backend.count_by_type(ServiceQuery()).values())
    return HealthOut(status="ok", backend=info.backend, services=active, inactive=info.count - active,
                     built_at=info.built_at, sources=info.sources)
