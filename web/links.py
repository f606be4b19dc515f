"""URLs that carry a public search and a shortlist: the state lives in the link, never on the server."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse

from indexer.sync.moved import moved
from rehabmap.maintain.renames import moved_to
from rehabmap.record import id_in_path
from web.forms import Fields
from web.present import PUBLIC_RADII_MILES, VIEW_BY_SLUG

if TYPE_CHECKING:
    from rehabmap.record import Service
    from rehabmap.state import AppState

MAX_SHORTLIST = 20
MAX_ID = 200


@dataclass(frozen=True)
class SearchContext:
    """Where a person searched, what for, how far, and what they shortlisted (all from the URL)."""

    where: str = ""
    within: int = PUBLIC_RADII_MILES[0]
    category: str = ""
    shortlist: tuple[str, ...] = ()

    @classmethod
    def of(cls, fields: Fields, category: str = "") -> SearchContext:
        within_text = fields.get("within")
        within = int(within_text) if within_text.isdigit() and int(within_text) in PUBLIC_RADII_MILES \
            else PUBLIC_RADII_MILES[0]
        category = category or fields.get("cat")
        ids = tuple(dict.fromkeys(i for i in fields.getlist("s") if len(i) <= MAX_ID and ":" in i))
        return cls(fields.get("where"), within, category if category in VIEW_BY_SLUG else "",
                   ids[:MAX_SHORTLIST])

    def params(self, *, category: bool = False) -> list[tuple[str, str]]:
        pairs: list[tuple[str, str]] = []
        if self.where:
            pairs += [("where", self.where), ("within", str(self.within))]
        if category and self.category:
            pairs.append(("cat", self.category))
        pairs += [("s", i) for i in self.shortlist]
        return pairs

    def toggled(self, service_id: str) -> SearchContext:
        if service_id in self.shortlist:
            return replace(self, shortlist=tuple(i for i in self.shortlist if i != service_id))
        return replace(self, shortlist=(*self.shortlist, service_id)[:MAX_SHORTLIST])

    def widened(self, within: int) -> SearchContext:
        return replace(self, within=within)

    def searched_from(self, where: str) -> SearchContext:
        return replace(self, where=where)

    # -- the pages --------------------------------------------------------------------------------------

    def start_url(self) -> str:
        query = urlencode(self.params())
        return "/find" + (f"?{query}" if query else "")

    def results_url(self, category: str | None = None, fragment: str = "") -> str:
        slug = category or self.category
        query = urlencode(self.params())
        return f"/find/{slug}" + (f"?{query}" if query else "") + (f"#{fragment}" if fragment else "")

    def service_url(self, service_id: str, fragment: str = "") -> str:
        query = urlencode(self.params(category=True))
        return f"/service/{id_in_path(service_id)}" + (f"?{query}" if query else "") + \
            (f"#{fragment}" if fragment else "")

    def shortlist_url(self, fragment: str = "") -> str:
        query = urlencode(self.params(category=True))
        return "/shortlist" + (f"?{query}" if query else "") + (f"#{fragment}" if fragment else "")

    def shortlist_only_url(self) -> str:
        """The link to share: the shortlist alone, without where it was searched from (postcode or place)."""
        return "/shortlist?" + urlencode([("s", i) for i in self.shortlist])


def report_problem_url(service_id: str) -> str:
    """The one address of the public "report a problem with this page" form for a service.

    A query string, not a path under `/service/{id}`: service ids may hold slashes, and that route takes the
    whole rest of the path as the id."""
    return "/report-a-problem?" + urlencode({"service": service_id})


def sent_on(request: Request, state: AppState, service_id: str, found: Service | None) -> RedirectResponse | None:
    """A page of a service by an id it is no longer listed under (`found`, the index's record by it, if any), sent on
    to the same page of the id it is listed under now (`indexer.sync.moved`, the rule the API and the shortlist
    follow), its query kept: for good if renamed (301), for as long as the two are one record if merged (307, as they
    may part again); None where it is listed under it, or never was. The public service page and the keepers'."""
    now = moved(state, service_id, found)
    if now is None:
        return None
    return RedirectResponse(moved_to(request.scope["path"], request.url.query, service_id, now.service_id),
                            301 if now.for_good else 307)
