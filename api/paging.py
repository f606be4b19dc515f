"""The `page` query parameter, declared once for every route that answers a page of a list: from 1, and never
past the browse window (`rehabmap.browse.MAX_WINDOW`), the furthest any paged answer reaches."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from rehabmap.browse import MAX_WINDOW

PageNumber = Annotated[int, Query(ge=1, le=MAX_WINDOW, description="Page number, from 1.")]
