"""Upload a curated table, for maintainers: choose its kind, send the CSV file, and read what an import would
do with every row (`indexer.upload.check_table`, the import's own checks) before anything is written. The
file is held server-side by a random id (`indexer.upload.HeldUploads`) for the confirm step.

Every confirm is audited under the maintainer's token, whether the table was added or refused (with the
reason), and the upload page lists them, so whoever keeps the directory sees who tried what and why it did
not land. The first step, the check, is not: it changes nothing and its answer is the page the maintainer
reads at once. Nor is a confirm whose rebuild could not begin, for nothing in the table (another rebuild runs, or a
mapping's `supersedes` is wrong): the upload stays held, to be sent again.

An added table replaces the kept table of its kind whole (`indexer.upload.replaced_by`): the report lists the
services and the areas' coverage it would take out, and a confirm that takes any out needs the maintainer to
say so, or it is shown again with nothing written."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol, cast
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from indexer.pipeline import GeographyPlacer, ImportRefused
from indexer.precedence import PrecedenceInvalid
from indexer.sources.curated import TABLES, blank_template
from indexer.sync.live import NotYetShown
from indexer.sync.runner import RunNotStarted, RunNotWritten, SyncReport
from indexer.upload import (HOLD_MINUTES, HeldUploads, Replaced, TableCheck, TableNotKept, TableRefused,
                            TableUnreadable, UnknownTable, check_table, kept_table, kept_tables, replaced_by,
                            spec_filed_as, spec_named)
from rehabmap.coverage import category_label
from rehabmap.errors import DomainError, RebuildRunning, for_operator, tell_operator
from rehabmap.maintain.audit import Change
from rehabmap.maintain.uploads import ADDED, REFUSED, TABLE, PastUpload, recent_uploads, removed_services
from rehabmap.words import and_list
from web.deps import get_state
from web.forms import Errors
from web.keepers.maintainer_review import MAINTAINERS, UNSHOWN, held_back_said
from web.keepers.navigation import SECTIONS, Section
from web.keepers.session import (PATH, UPLOAD_MAX_BYTES, Keeper, KeepersRoute, directory_of, form_errors, message_page,
                                 refusal_page, render, requires)
from web.keepers.words import said


class _Failed(Protocol):
    """A failed run as the page reads it (`app.sync.FailedRun`)."""

    @property
    def source(self) -> str: ...

    @property
    def error(self) -> Exception: ...


class _Runs(Protocol):
    """What the page reads of the review queue's runs (`app.sync.SourceRuns`), named here: the pages are a layer
    below `app`, which imports them (docs/adr/0002), and may not import it, even for a type."""

    @property
    def unwritten(self) -> Sequence[RunNotWritten | RunNotStarted]: ...

    @property
    def failed(self) -> Sequence[_Failed]: ...

    @property
    def reports(self) -> Sequence[SyncReport]: ...

    def failed_alike(self) -> Sequence[Sequence[_Failed]]: ...

log = logging.getLogger(__name__)

router = APIRouter(route_class=KeepersRoute)
UPLOAD = f"{PATH}/upload"
TEMPLATES = f"{UPLOAD}/templates"
KEPT_TABLES = f"{UPLOAD}/kept"
SECTIONS.append(Section(UPLOAD, "Upload a curated table", "IPS services per ICB, statutory advocacy per council, "
                        "community rehabilitation teams per trust: check a table row by row, then add it to the "
                        "directory.", frozenset(MAINTAINERS)))
KIND_LABELS = {"curated-ips": "IPS services, per ICB (ips_services.csv)",
               "curated-advocacy": "Statutory advocacy, per upper-tier local authority (statutory_advocacy.csv)",
               "curated-crt": "Community rehabilitation teams, per NHS trust (community_rehab_teams.csv)"}


REMOVES = "removes"  # the box a maintainer ticks to add a table that takes services or coverage out
UNREAD_SAID = "the table it replaced could not be read, so what it took out is not known"  # Replaced.unread, after


def _counts(check: TableCheck) -> list[Change]:
    """What the table held, as the audit records it for an upload added or refused."""
    return [Change("services", None, len(check.good)), Change("areas_with_none", None, len(check.none_rows)),
            Change("rejected", None, len(check.rejected))]


def _taken_out(request: Request, replaced: Replaced) -> list[Change]:
    """What an added table took out, as the audit records it: how many, and which (each service's id and name,
    each area's code, name and the coverage it lost), so a maintainer can see later what went and put it back.
    These are services and areas, never a person's details; where the table it replaced could not be read, why (what
    it took out is not known)."""
    area_name = get_state(request).area_name
    return [*([Change("replaced_unread", None, replaced.unread)] if replaced.unread else []),
            Change("services_removed", None, len(replaced.services)),
            Change("areas_uncovered", None, len(replaced.coverage)),
            removed_services([(row.id, row.name) for row in replaced.services]),
            Change("uncovered_areas", None, [{"code": c.area_code, "name": area_name(c.area_code),
                                              "category": c.category} for c in replaced.coverage])]


def _refused(request: Request, keeper: Keeper, table: str, refused: TableRefused | ImportRefused,
             counts: list[Change]) -> HTMLResponse:
    """A confirm refused: audited, with the reason, and the page saying why."""
    directory_of(request).audit.record(keeper.principal.who, REFUSED, TABLE, table,
                                       [Change("reason", None, refused.message), *counts])
    return refusal_page(request, keeper, "The table was not added", refused)


def past_uploads(request: Request) -> list[PastUpload]:
    """The audit's record of the tables confirmed (added, or refused with the reason), newest first."""
    return recent_uploads(directory_of(request).audit)


def held_uploads(request: Request) -> HeldUploads:
    return HeldUploads(get_state(request).settings.home / "uploads")


def _form_page(request: Request, keeper: Keeper, errors: Errors, kind: str) -> HTMLResponse:
    kept = kept_tables(get_state(request).settings.home)
    blanks = [{"href": f"{TEMPLATES}/{t.file_name}", "text": KIND_LABELS[t.source], "file_name": t.file_name,
               "columns": t.dictionary, "kept": f"{KEPT_TABLES}/{t.file_name}" if t.file_name in kept else ""}
              for t in TABLES]
    return render(request, keeper, "keepers/maintainer/upload.html",
                  {"errors": errors, "kind": kind, "kinds": KIND_LABELS, "max_kb": UPLOAD_MAX_BYTES // 1024,
                   "blanks": blanks,
                   "done": _done(request) if request.method == "GET" else "",
                   "held_back": held_back_said(request) if request.method == "GET" else "",
                   "past": past_uploads(request), "added": ADDED, "category_label": category_label,
                   "unread_said": UNREAD_SAID},
                  status=400 if errors else 200)


def _done(request: Request) -> str:
    """What the redirect after an upload says was done, and what became of its review queue's runs cut short."""
    done = request.query_params.get("done", "")[:300]
    return done + _cut_short_said(request) if done else ""


def too_large() -> str:
    """Not "split it into smaller tables", as before: each upload replaces the whole table of its kind, so the
    parts uploaded one after another left only the last in the directory."""
    return (f"The file is larger than {UPLOAD_MAX_BYTES // 1024} KB, the most this page takes. A table is added "
            "whole, in one file: each upload replaces the whole table of its kind, so do not split it into parts. "
            "Ask whoever runs the server to index it with rehabmap index, which has no such limit")


def _csv_download(data: bytes | str, file_name: str, charset: str = "utf-8") -> Response:
    """A CSV file saved under its table's name (a template, or a kept table in the encoding it was added in)."""
    return Response(data, media_type=f"text/csv; charset={charset}",
                    headers={"Content-Disposition": f'attachment; filename="{file_name}"'})


@router.get(f"{TEMPLATES}/{{file_name}}")
def blank_table(request: Request, file_name: str, keeper: Keeper = requires(*MAINTAINERS)) -> Response:
    """A table's blank template, to fill in and upload: before, the page pointed to `templates/curated/`, a folder
    of the code that a maintainer using the pages may never have seen."""
    spec = spec_filed_as(file_name)
    if spec is None:
        return message_page(request, keeper, 404, "No such template",
                            "There is no curated table of that name: download a template from the upload page.")
    return _csv_download(blank_template(spec), spec.file_name)


@router.get(f"{KEPT_TABLES}/{{file_name}}")
def kept_download(request: Request, file_name: str, keeper: Keeper = requires(*MAINTAINERS)) -> Response:
    """The table of this kind the directory holds, byte for byte as it was added: a new upload replaces it whole,
    so a maintainer changing one row starts from it (uploaded again unchanged, it takes nothing out)."""
    try:
        table = kept_table(get_state(request).settings.home, file_name)
    except (UnknownTable, TableNotKept) as missing:
        return refusal_page(request, keeper, "No table to download", missing)
    except TableUnreadable as unreadable:
        return refusal_page(request, keeper, "The table cannot be downloaded", unreadable,
                            link=(UPLOAD, "Upload a curated table"))
    return _csv_download(table.data, table.spec.file_name, table.charset)


@router.get(UPLOAD)
def upload_form(request: Request, keeper: Keeper = requires(*MAINTAINERS)) -> HTMLResponse:
    return _form_page(request, keeper, Errors(), "")


@router.post(UPLOAD)
def upload(request: Request, keeper: Keeper = requires(*MAINTAINERS)) -> HTMLResponse:
    errors = form_errors(keeper.form)
    kind = keeper.form.get("kind")
    spec = spec_named(kind)
    if spec is None:
        errors.add("kind", "Choose the kind of table you are uploading")
    sent = keeper.files.get("table")
    if sent is None or not sent.filename:
        errors.add("table", "Choose the CSV file to upload")
    elif sent.too_large:
        errors.add("table", too_large())
    elif not sent.data.strip():
        errors.add("table", "The file is empty")
    if errors or spec is None or sent is None:
        return _form_page(request, keeper, errors, kind)
    state = get_state(request)
    try:
        check = check_table(sent.data, spec, spec.file_name, GeographyPlacer(state.geography))
    except TableRefused as refused:
        errors.add("table", said(refused))
        return _form_page(request, keeper, errors, kind)
    upload_id = held_uploads(request).hold(sent.data, spec) if check.usable else ""
    replaced = _replaced(request, check, GeographyPlacer(state.geography)) if check.usable else Replaced(False)
    return _report_page(request, keeper, check, replaced, upload_id, sent.filename)


def _replaced(request: Request, check: TableCheck, placer: GeographyPlacer) -> Replaced:
    """What adding the checked table takes out (`replaced_by`), a kept table that cannot be read told to the operator
    with its file's place, as the report shown names none."""
    replaced = replaced_by(check, get_state(request).settings.home, placer)
    if replaced.unreadable is not None:
        tell_operator(replaced.unreadable)
    return replaced


def _report_page(request: Request, keeper: Keeper, check: TableCheck, replaced: Replaced, upload_id: str,
                 filename: str, *, not_yet: RebuildRunning | PrecedenceInvalid | None = None,
                 errors: Errors | None = None, changed: bool = False) -> HTMLResponse:
    """What an import would do with every row, what it would take out of the directory, and the confirm button
    while the upload is held; `not_yet` when a confirm could not begin its rebuild, for nothing in the table (the
    upload is still held, to be confirmed again: in a minute, once another rebuild under way has finished; once
    the mapping is put right, where a mapping's `supersedes` is wrong), `errors` when it was sent without saying
    yes to what it takes out, `changed` when what it takes out changed since it was shown. Each area is named beside
    its code, so that a mistyped code that is another real area (E08000036, Wakefield, for E08000035, Leeds) shows
    before anything is written."""
    status = not_yet.status if not_yet else 409 if changed else 400 if errors else 200
    again = "in a minute or two" if isinstance(not_yet, RebuildRunning) else "once that is put right"
    return render(request, keeper, "keepers/maintainer/upload_report.html",
                  {"check": check, "replaced": replaced, "kind_label": KIND_LABELS[check.spec.source],
                   "upload_id": upload_id, "filename": filename[:200], "not_yet": said(not_yet) if not_yet else "",
                   "again": again,
                   "errors": errors or Errors(), "changed": changed, "removes": REMOVES,
                   "area_name": get_state(request).area_name, "category_label": category_label},
                  status=status)


@router.post(f"{UPLOAD}/confirm")
def confirm(request: Request, keeper: Keeper = requires(*MAINTAINERS)) -> Response:
    uploads = held_uploads(request)
    upload_id = keeper.form.get("upload")
    table = uploads.path(upload_id)
    spec = spec_filed_as(table.name) if table is not None else None  # (a held table is always one)
    if table is None or spec is None:
        return message_page(request, keeper, 410, "This upload has ended",
                            f"It was added already, or it was held for more than {HOLD_MINUTES} minutes. "
                            "Upload the file again.")
    rebuild = cast("Callable[..., Any] | None", getattr(request.app.state, "rebuild_with_table", None))
    if rebuild is None:
        return message_page(request, keeper, 503, "Tables cannot be added here",
                            "This server was started without the index builder.")
    state = get_state(request)
    placer = GeographyPlacer(state.geography)
    try:
        check = check_table(table.read_bytes(), spec, spec.file_name, placer)
    except TableRefused as refused:  # it was checked before it was held: only a change on the server's disk
        uploads.discard(upload_id)
        return _refused(request, keeper, spec.file_name, refused, [])
    replaced = _replaced(request, check, placer)
    if keeper.form.get("replaces") != replaced.digest:  # the kept table changed since the report was shown
        return _report_page(request, keeper, check, replaced, upload_id, spec.file_name, changed=True)
    if replaced.loses and keeper.form.get(REMOVES) != "yes":
        errors = Errors()
        errors.add(REMOVES, "Say that you mean to take these out of the directory, or add the missing rows to "
                            "your file and upload it again")
        return _report_page(request, keeper, check, replaced, upload_id, spec.file_name, errors=errors)
    held = False
    try:
        rebuilt = rebuild(table, actor=keeper.principal.who)
    except (RebuildRunning, PrecedenceInvalid) as not_yet:
        held = True
        tell_operator(not_yet)  # a mapping put wrong: its file, which the page never names
        return _report_page(request, keeper, check, replaced, upload_id, spec.file_name, not_yet=not_yet)
    except ImportRefused as refused:
        return _refused(request, keeper, spec.file_name, refused, _counts(check))
    finally:
        if not held:
            uploads.discard(upload_id)
    directory_of(request).audit.record(keeper.principal.who, ADDED, TABLE, spec.file_name,
                                       [*_counts(check), *_taken_out(request, replaced),
                                        Change("indexed", None, rebuilt.report.indexed)])
    taken = (f"; {UNREAD_SAID}" if replaced.unread else
             f"; it took out {len(replaced.services)} services and the coverage of {len(replaced.coverage)} "
             "areas that the table it replaced held" if replaced.loses else "")
    done = (f"{spec.file_name} is in the directory: {len(check.good)} services added from it, "
            f"{len(check.rejected)} rows rejected{taken}. The index now holds {rebuilt.report.indexed} services.")
    _tell_failed(rebuilt.queued, spec.file_name)
    return RedirectResponse(f"{UPLOAD}?" + urlencode({"done": done, **_cut_short(rebuilt.queued),
                                                      **_unshown(rebuilt.queued.unshown)}), status_code=303)


# What became of the review queue's runs of the rows the upload's rebuild held, where they did not simply apply, each
# said of the sources it concerns (`_cut_short`): stored, but their live write failed (`RunNotWritten`: the index busy
# or down after it went live; the server's own catch-up, `app.converge`, writes them, no person needed); not started
# (`RunNotStarted`: the index could not be written at its start, the new index live; nothing of it was stored, and only
# a rebuild holds the rows again, as the command's `error:` line says); failed (the store could not be opened after
# the swap, its disk full: logged by `_tell_failed`); stopped at the share of changes a run may make (a release that
# reads a list otherwise, as session 53's provider types did the 2018 list's: before, the page said nothing of it).
UNWRITTEN_SAID = ("were stored, but the index could not yet follow them: the server catches it up on its own once the "
                  "index answers.")
UNSTARTED_SAID = ("were not stored: the index could not be written when their run into the review queue began, so "
                  "nothing of it was applied. The next rebuild stores them (the next upload, or 'rehabmap index'), "
                  "once the index answers.")
FAILED_SAID = ("were not stored: their run into the review queue failed, for a reason the server's log gives. The next "
               "rebuild stores them (the next upload, or 'rehabmap index'), once that is mended.")
STOPPED_SAID = ("were not stored: their run into the review queue would change more of the records it holds than a "
                "run may, so it stopped, applying nothing. Check the change is the list's own (a new edition, or a "
                "new rehabmap release reading it otherwise), then run 'rehabmap index' again with --force-queue to "
                "apply it; 'rehabmap sync-status' says how much it changes.")
CUT_SHORT = {"unwritten": UNWRITTEN_SAID, "unstarted": UNSTARTED_SAID, "failed": FAILED_SAID,
             "stopped": STOPPED_SAID}


def _cut_short(runs: _Runs) -> dict[str, str]:
    """The query that has the page say what became of the review queue's runs that did not simply apply, by source
    (`CUT_SHORT`). Before, a run that did not start was said stored, as one whose live write alone failed; a run that
    failed was not said at all (the page said only that the table was in); and with one source's run unwritten and
    another's unstarted, the page said both sentences, naming neither source. Said as the page is shown
    (`_cut_short_said`), not in the `done` text, which the page cuts at 300 characters."""
    named = {"unwritten": [run.report.source for run in runs.unwritten if isinstance(run, RunNotWritten)],
             "unstarted": [run.source for run in runs.unwritten if isinstance(run, RunNotStarted)],
             "failed": [failure.source for failure in runs.failed],
             "stopped": [report.source for report in runs.reports if report.stopped]}
    return {name: ",".join(sources) for name, sources in named.items() if sources}


def _cut_short_said(request: Request) -> str:
    """`_cut_short`'s sentences, as of the upload: the redirect's address keeps them, so the page shown again days
    later says what was so when it was uploaded, not what is so now."""
    return "".join(f" When it was uploaded, its rows held for review from {and_list(sources.split(','))} {words}"
                   for name, words in CUT_SHORT.items() if (sources := _sources(request.query_params.get(name, ""))))


def _sources(query: str) -> str:
    """The sources a query names, at most 300 characters of them, cut at a comma: before, cut at the 300th
    character, the last source's name could end mid-word on the page."""
    return query if len(query) <= 300 else query[:301].rpartition(",")[0] or query[:300]


def _tell_failed(runs: _Runs, file_name: str) -> None:
    """Each failed run of the review queue's to the server's log (ERROR, with the traceback, once for the runs one
    error ended): the page says only that their rows were not stored. Before, nothing was logged."""
    for alike in runs.failed_alike():
        error = alike[0].error
        log.error("the review queue's run of %s, of the rows the upload of %s held, failed: %s",
                  ", ".join(failure.source for failure in alike), file_name,
                  for_operator(error) if isinstance(error, DomainError) else f"{type(error).__name__}: {error}",
                  exc_info=error)


def _unshown(refused: Sequence[NotYetShown]) -> dict[str, str]:
    """The query that has the page say what is held back from searches (`UNSHOWN`), where the review queue's runs of
    the rows the rebuild held (`Rebuilt.queued`) had their live write refused: each told to the operator with the
    mapping's file, as a refused decision is. The table is in the new index, live; those runs' changes are stored,
    and not yet shown. Before, the page said nothing of them."""
    for unshown in refused:
        tell_operator(unshown)
    return {UNSHOWN: "1"} if refused else {}
