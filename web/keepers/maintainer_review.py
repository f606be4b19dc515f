"""The review queue, for maintainers: what sync holds because its type is only inferred, each record beside
the evidence for it, to accept as a type or reject with a reason, one at a time or in bulk where that is safe.

A thin face over `indexer.sync.review.ReviewQueue`, the library `rehabmap review` calls: a decision here is the
same transaction, audit rows and live-index update as one made at the command line. The queue is opened per
request by the opener the composition root leaves on the application (`app.state.open_review`), because the
pages may not import the root; it opens the sync store (a read, cheap) over the server's own loaded index. Bulk
decisions: rejecting many with one reason is always safe; accepting many is offered only when every record
chosen is proposed as the same type, and accepts each as that type.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import cast
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from indexer.sync.items import Evidence
from indexer.sync.review import Alike, DecisionNotShown, ReviewItem, ReviewQueue
from indexer.sync.status import held_back_in
from indexer.sync.store import Paged, SyncStore
from rehabmap.errors import DomainError, Remedy, ServiceNotFound, tell_operator
from rehabmap.maintain.audit import REASON_MAX
from rehabmap.maintain.auth import Role
from rehabmap.record import id_in_path
from rehabmap.taxonomy import NEED_LABELS, TYPE_LABELS, ServiceType, need_label, type_words
from web.deps import get_state
from web.forms import Errors
from web.keepers.navigation import SECTIONS, Section
from web.keepers.paths import service_path
from web.keepers.session import (PATH, Keeper, KeepersRoute, Refusal, form_errors, message_page_plain, page_number,
                                 refusal_page, render, requires)
from web.keepers.words import said

router = APIRouter(route_class=KeepersRoute)
REVIEW = f"{PATH}/review"
MAINTAINERS = (Role.maintainer, Role.admin)
SECTIONS.append(Section(REVIEW, "Review queue", "Records from sync whose type is only inferred: accept them as a "
                        "type, or reject them with a reason.", frozenset(MAINTAINERS)))
TYPE_CHOICES = [(t.value, TYPE_LABELS[t]) for t in ServiceType]
BULK_LIMIT = 500
PER_PAGE = 100  # rows of the queue a page shows: the others each may be are worked out for these alone
CHANGED = "changed"  # `?list=changed`: the page asked for is of the decisions whose evidence changed since
PAST_END = "asked"  # `?asked=`: the page past the end a GET asked for, sent to the last page (`_to_last_page`)


def queue_of(request: Request) -> ReviewQueue:
    opener = cast("Callable[[], ReviewQueue] | None", getattr(request.app.state, "open_review", None))
    if opener is None:
        raise Refusal(message_page_plain(request, 503, "The review queue is unavailable",
                                         "This server was started without the sync store."))
    return opener()


def held(request: Request, service_id: str) -> ServiceNotFound | None:
    """A synced record in no search (it awaits review, or was rejected) refused saying so (`ReviewItem.held`), as a
    page that looked for it by id says it; None for an id no sync holds back, or where the server has no sync
    store."""
    try:
        item = queue_of(request).item(service_id)
    except (DomainError, Refusal):
        return None
    return item.held(get_state(request).source_title(item.source))


def item_path(service_id: str) -> str:
    return f"{REVIEW}/{id_in_path(service_id)}"


def alike_path(other: Alike) -> str:
    """Where another record that may be the same service is seen: its page in the queue, if it has one, else its
    page under Services."""
    return item_path(other.service_id) if other.queued else service_path(other.service_id)


# What a record's type status means, in a maintainer's words (the queue keeps the code).
STATUS_WORDS = {"inferred": "inferred from what it says", "unknown": "neither its source nor what it says names one",
                "confirmed": "named by its source"}
_STATES_NEED = re.compile(r"^states the need (\S+)$")


def means_words(evidence: Evidence) -> str:
    """What a piece of evidence means, with a need by its name, not its code. The connectors write the code, and the
    digest that tells a maintainer the evidence changed covers it, so the words change here, on the page."""
    stated = _STATES_NEED.match(evidence.means)
    if stated and (stated.group(1) in NEED_LABELS or stated.group(1).startswith("language:")):
        return f"states a need: {need_label(stated.group(1))}"
    return evidence.means


@router.get(REVIEW)
def review_list(request: Request, keeper: Keeper = requires(*MAINTAINERS)) -> Response:
    return _list_page(request, keeper, Errors(), status=200, moves_past_end=True)


def _list_page(request: Request, keeper: Keeper, errors: Errors, *, status: int,
               chosen: frozenset[str] = frozenset(), moves_past_end: bool = False) -> Response:
    """The queue and, below it, the decisions whose evidence changed since, each a page at a time: the list
    `?list=` names (`CHANGED`, else the queue) at `?page=`, the other at its first. A page past the end of its list
    is its last that has rows (`SyncStore.reviews_page`), the page saying so (`_past_end`); `moves_past_end` (a
    GET's) sends the browser to that page's address first (`_to_last_page`)."""
    queue, asked = queue_of(request), page_number(request)
    changed_asked = request.query_params.get("list") == CHANGED
    waiting = queue.page(1 if changed_asked else asked, PER_PAGE)
    # a decision stands through later syncs, but one whose evidence the source has since changed needs another look
    changed = queue.page(asked if changed_asked else 1, PER_PAGE, states=("accepted", "rejected"),
                         evidence_changed=True)
    shown = changed if changed_asked else waiting
    if moves_past_end and asked > shown.number:
        return _to_last_page(request, shown.number, asked)
    done = request.query_params.get("done", "")
    return render(request, keeper, "keepers/maintainer/review_list.html",
                  {"items": queue.with_alike(waiting.rows),  # each beside the others it may be
                   "total": waiting.total, "page_number": waiting.number, "per_page": PER_PAGE,
                   "asked": _past_end(request, shown, asked), "changed_asked": changed_asked,
                   "changed_query": f"list={CHANGED}&",
                   "changed": changed, "errors": errors, "type_words": type_words,
                   "item_path": item_path, "alike_path": alike_path, "status_words": STATUS_WORDS,
                   "chosen": chosen, "done": done[:200], "held_back": held_back_said(request),
                   "reason_max": REASON_MAX,
                   "reason": keeper.form.get("reason")}, status=status)


def _to_last_page(request: Request, number: int, asked: int) -> RedirectResponse:
    """A GET of a page past the end of its list (a bulk decision emptied the last page, a bookmark outlived its rows)
    sent to the list's last page that has rows, `number`, its other query (`list=`, a decision's `done=`) kept and the
    page asked for noted (`PAST_END`), so that the address, the browser's history and a bookmark say the page shown.
    Before, the last page was shown at the address of the page past the end."""
    kept = [(key, value) for key, value in request.query_params.multi_items() if key not in ("page", PAST_END)]
    to_changed = "#evidence-changed" if request.query_params.get("list") == CHANGED else ""  # as its links go there
    return RedirectResponse(_list_address(kept, number, asked) + to_changed, status_code=303)


def _list_address(kept: list[tuple[str, str]], number: int, asked: int) -> str:
    """The queue's page `number` with the query `kept`, noting the page `asked` for where that is past the end
    (`PAST_END`); page 1 asked for is the queue's own address."""
    moved = [("page", number), (PAST_END, asked)] if asked > number else [("page", number)] if number > 1 else []
    return f"{REVIEW}?{urlencode([*kept, *moved])}"


def _past_end(request: Request, shown: Paged[ReviewItem], asked: int) -> int:
    """The page past the end of the list `shown` that the page says there is no more of (the `past_end` macro): the
    page asked for, where a decision refused is shown again at its page, or the one a GET asked for before it was
    sent to the last page (`PAST_END`), while `shown` is that last page; 0 where none is."""
    last = max(1, -(-shown.total // PER_PAGE))
    said = max(asked, page_number(request, PAST_END))
    return said if said > last and shown.number == last else 0


@router.post(f"{REVIEW}/bulk")
def review_bulk(request: Request, keeper: Keeper = requires(*MAINTAINERS)) -> Response:
    form = keeper.form
    ids = form.getlist("id")[:BULK_LIMIT]
    action = form.get("action")
    errors = form_errors(form)
    if not ids:
        errors.add("id", "Choose at least one record")
    queue = queue_of(request)
    done: list[ReviewItem] = []
    unshown: dict[str, str] = {}
    if errors:
        pass  # nothing is decided: a reason too long is refused, not cut
    elif action == "reject":
        done, unshown = _decided(errors, _CHOSEN, lambda: queue.reject(ids, actor=keeper.principal.who,
                                                                       reason=form.get("reason")))
    elif action == "accept":
        kinds = {i.proposed_type for i in queue.items(service_ids=ids)}  # the chosen alone, not the whole queue
        if None in kinds:  # before, told they were not all proposed as one type, where none was proposed
            errors.add("id", "No type is proposed for a record chosen: open it and accept it as the type it is")
        elif len(kinds) != 1:
            errors.add("id", "Accept many at once only when every record chosen is proposed as the same type; "
                             "accept the others one at a time")
        else:
            done, unshown = _decided(errors, _CHOSEN, lambda: queue.accept(ids, actor=keeper.principal.who))
    else:
        errors.add("id", "Choose accept or reject")
    if errors:
        return _list_page(request, keeper, errors, status=400, chosen=frozenset(ids))
    verb = "Accepted" if action == "accept" else "Rejected"
    counted = f"{len(done)} record{'' if len(done) == 1 else 's'}"
    # back to the page the records were chosen on, which the rows after them now fill; if none are left after them,
    # to the queue's last page, which says so (`_past_end`): before, to the page emptied, whose GET was sent on there
    # (`_to_last_page`), two redirects where one does
    asked = page_number(request)
    number = queue.store.reviews_page(asked, PER_PAGE, states=("pending",)).number if asked > 1 else 1
    return RedirectResponse(_list_address([("done", f"{verb} {counted}."), *unshown.items()], number, asked),
                            status_code=303)


# Where a page puts a decision's refusal: against the box it names, if the page has it, else against the record(s)
# it is about (the list's choice of records; the item's record, or, for one not in the queue, a page saying so). A
# reject naming a record not in the queue was filed against the reason's box.
_CHOSEN = (("reason",), "id")
_ITEM = (("reason", "type", "subtype"), "record")
# The query a page's redirect after a decision or an upload carries where its live write was refused (`NotYetShown`):
# the page it leads to says what is held back (`held_back_said`)
UNSHOWN = "unshown"


def held_back_said(request: Request) -> str:
    """Where the redirect that led here says a live write was refused (`UNSHOWN`), what the store's applied changes
    a mapping holds back are, in the Sources page's words (`indexer.sync.status.held_back_in`: the mapping's file and
    key, never its folder, and that whoever runs the syncs must put it right); nothing where nothing is held back any
    more. Read when the page is shown, as the refusal's words (hundreds of characters) do not fit its address. Before,
    the review page said "a mapping on the server is wrong, which the server's log names", naming none."""
    store = SyncStore.served(get_state(request)) if request.query_params.get(UNSHOWN) == "1" else None
    unshown = held_back_in(store) if store is not None else None
    return said(unshown) if unshown else ""


def _decided(errors: Errors, page: tuple[tuple[str, ...], str], decide: Callable[[], list[ReviewItem]]
             ) -> tuple[list[ReviewItem], dict[str, str]]:
    """The decision, and the query that says its live write was refused (`UNSHOWN`, or none); or its refusal as an
    error where `page` puts it (nothing is written then: all or none). Before, a decision stored whose live write was
    refused was said as a refusal, as if nothing were decided."""
    boxes, record = page
    try:
        return decide(), {}
    except DecisionNotShown as error:
        tell_operator(error)
        return error.items, {UNSHOWN: "1"}
    except DomainError as error:
        errors.add(error.field if error.field in boxes else record, said(error))
        return [], {}


@router.get(REVIEW + "/{service_id:path}")
def review_item(request: Request, service_id: str, keeper: Keeper = requires(*MAINTAINERS)) -> HTMLResponse:
    return _item_page(request, keeper, service_id, Errors(), status=200)


def _item_page(request: Request, keeper: Keeper, service_id: str, errors: Errors, *, status: int) -> HTMLResponse:
    try:
        queue = queue_of(request)
        [item] = queue.with_alike([queue.item(service_id)])
    except DomainError as error:  # at its own status: a record its source types is no 404, it is there
        return refusal_page(request, keeper, "Not in the review queue", error, link=_way_on(error, service_id))
    form = keeper.form
    return render(request, keeper, "keepers/maintainer/review_item.html",
                  {"item": item, "errors": errors, "type_words": type_words, "types": TYPE_CHOICES,
                   "status_words": STATUS_WORDS, "means_words": means_words, "unshown": item.why_unshown(),
                   "alike_path": alike_path,
                   "chosen_type": form.get("type") or item.decided_type or item.proposed_type or "",
                   "subtype": form.get("subtype") if "subtype" in form else (
                       item.decided_subtype or item.proposed_subtype or ""),
                   "reason": form.get("reason"), "reason_max": REASON_MAX, "action": item_path(service_id),
                   "done": request.query_params.get("done", "")[:200], "held_back": held_back_said(request)},
                  status=status)


def _way_on(error: DomainError, service_id: str) -> tuple[str, str]:
    """Where a record the queue refuses is dealt with: one its source types, on its own page (its remedy says so);
    any other, back in the queue."""
    if error.remedy is Remedy.SERVICE_EDITS:
        return service_path(service_id), "Change or retire this service"
    return REVIEW, "Back to the review queue"


@router.post(REVIEW + "/{service_id:path}")
def review_decide(request: Request, service_id: str, keeper: Keeper = requires(*MAINTAINERS)) -> Response:
    form = keeper.form
    queue = queue_of(request)
    errors = form_errors(form)
    unshown: dict[str, str] = {}
    if errors:
        pass  # nothing is decided: a reason too long is refused, not cut
    elif form.get("action") == "reject":
        _, unshown = _decided(errors, _ITEM, lambda: queue.reject([service_id], actor=keeper.principal.who,
                                                                  reason=form.get("reason")))
    elif form.get("action") == "accept":
        chosen = form.get("type")
        if chosen not in {value for value, _ in TYPE_CHOICES}:
            errors.add("type", "Choose the type to accept it as")
        else:
            _, unshown = _decided(errors, _ITEM, lambda: queue.accept(
                [service_id], actor=keeper.principal.who, service_type=chosen, subtype=form.get("subtype") or None))
    else:
        errors.add("type", "Choose accept or reject")
    if errors:
        return _item_page(request, keeper, service_id, errors, status=400)
    verb = "Accepted" if form.get("action") == "accept" else "Rejected"
    return RedirectResponse(f"{item_path(service_id)}?" + urlencode({"done": f"{verb}.", **unshown}), status_code=303)
