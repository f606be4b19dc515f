"""GET /health: is the index loaded, how big, how fresh."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import State

router = APIRouter(tags=["health"])


@router.get("/health", summary="Service health and index facts")
def health(state: State) -> dict:
    info = state.backend.info()
    return {"status": "ok", "backend": info.backend, "services": info.count,
            "built_at": info.built_at.isoformat() if info.built_at else None, "sources": info.sources}
