"""Domain errors, in one place.

Every error a person can cause (an unknown need, an out-of-range value, a service that is not there) is
raised in the domain as one of these and turned into a precise 4xx exactly once, in the API's exception
handler. The message is written for a person to act on; `field` names the input that was wrong. What
geodata cannot place (a bad postcode, a point outside England) raises geodata's own errors
(`geodata.errors`); `CALLER_ERRORS` names both kinds, for the faces that report either the same way.
"""

from __future__ import annotations

import difflib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from enum import Enum
from typing import Self

from geodata.errors import GeodataError, blank, shorten

# Every message quotes what a person gave, and names a blank one, by one rule: geodata's (it stands alone).
__all__ = ["blank", "shorten"]


class Remedy(Enum):
    """What a person can do about an error, named apart from its message. The domain is shared by three faces,
    the command line, the maintainers' API and the keepers' pages, whose users can do different things: a message
    that named a command ('rehabmap tokens list' shows them) told a keeper on a web page to run it. So a message
    says the fact, and each face words the remedy as its user can take it (a command, a route, a choice on the
    page) from a table of its own, read by `with_remedy`; a face with no words for one says the fact alone. Words
    that name what the error is about (the record's id in a command to run) say `{subject}` for it: the error's own
    `subject`."""

    TOKENS = "tokens"  # where the tokens are listed
    REVIEW_QUEUE = "review_queue"  # where the synced records awaiting a decision are listed
    ORGANISATIONS = "organisations"  # where the organisations are listed, and one is added
    TOKEN_ORGANISATION = "token_organisation"  # how a token is given its organisation (a provider's only)
    TOKEN_KEY = "token_key"  # the token key file, lost or not this store's: only the server's operator can act
    SERVICE_EDITS = "service_edits"  # where a service's own record is changed or retired, outside the review queue
    REVIEW_DECISION = "review_decision"  # where a record held back for review is accepted or rejected
    PROBLEM_REPORTS = "problem_reports"  # where the problem reports still open are listed
    TOKEN_SHOWN_ONCE = "token_shown_once"  # a token made already, its secret shown once: revoked and made again
    KEPT_TABLE = "kept_table"  # a kept curated table the server cannot read: restored from a backup, or replaced whole
    MAPPING = "mapping"  # a mapping's `[source] supersedes` put wrong, holding saved changes back: for the operator
    EDIT_KEPT = "edit_kept"  # an edit the search index refused or failed, kept in the directory's edits
    SERVICE_KEPT = "service_kept"  # a new service the index refused or failed, kept under its id (`subject`)


class DomainError(Exception):
    """Base of the domain's errors a caller can cause; `status` is the HTTP status the API maps it to.
    `where` is the place on the server it concerns (a file's path): the operator's console and the server's log
    say it, a reply never does, since a public page has no business naming the server's folders. `remedy` is
    what a person can do about it, which each face words for itself (`Remedy`); `subject` what it is about (a
    record's id), for a face's words of the remedy that name it."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, field: str | None = None, where: str | None = None,
                 remedy: Remedy | None = None, subject: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.where = where
        self.remedy = remedy
        self.subject = subject


class UnknownServiceType(DomainError):
    code = "unknown_service_type"


class UnknownNeed(DomainError):
    code = "unknown_need"


class InvalidValue(DomainError):
    code = "invalid_value"


class ServiceNotFound(DomainError):
    status = 404
    code = "service_not_found"


class NoPlacementData(DomainError):
    """No month of out-of-area placements data has been imported."""

    status = 404
    code = "no_placement_data"


class IndexNotBuilt(DomainError):
    status = 503
    code = "index_not_built"


# What a build's refusal says of the index it would have replaced (`search.elastic`'s writes, `app.rebuild`'s read).
SERVED_UNCHANGED = " The index being served is unchanged."


class OfTheIndex(DomainError):
    """An error of the search index (`IndexUnavailable`, `IndexRefused`), said as its fact and who must mend it, kept
    apart: a face adds the words asking for the request again between them (`told`), and a rebuild what it knows of
    the index served (`served_unchanged`)."""

    def __init__(self, fact: str, who_mends: str | None) -> None:
        super().__init__(f"{fact} {who_mends}" if who_mends else fact)
        self.fact, self.who_mends = fact, who_mends

    def served_unchanged(self) -> Self:
        """The error, met by a rebuild before it began anything, said so (between the fact and who mends it), as a
        build's own writes say it; of its own kind, and else as it was. Before, a refused check said nothing of it."""
        said = type(self).__new__(type(self))
        said.__dict__.update(vars(self))
        OfTheIndex.__init__(said, f"{self.fact}{SERVED_UNCHANGED}", self.who_mends)
        return said


class IndexUnavailable(OfTheIndex):
    """The search cluster did not answer, answered that it is overloaded, or failed (a fault of its own, a 5xx).
    Nothing is wrong with the request: the same request can be sent again later, so the API adds `Retry-After`.

    The message says the fact and, where `who_mends` names them, who must mend it, and no word of sending the
    request again: each face that asks for it (the API's 503, the pages, the command line) adds those words from one
    place, `told`, and one that must not (a create kept, `not_to_be_sent_again`) says the message as it is.
    Before, the engines wrote "Try again …" into the message, and the kept create's answer took it out by a pattern,
    which a new wording would have escaped. `passes`: whether the fault may pass by itself (a cluster's 5xx: try
    again in a minute, and if it fails again, who must mend it), or waits for `who_mends` (credentials refused: try
    again later). `again`: the message's own words of what to send again, where "try again in a minute" is not what
    mends it (a build whose new index was deleted under it: "Run the build again."), said in their place; before,
    `told` added "Try again in a minute." after them."""

    status = 503
    code = "index_unavailable"
    retry_after_s = 30

    def __init__(self, message: str, *, who_mends: str | None = None, passes: bool = True,
                 again: str | None = None) -> None:
        super().__init__(message, who_mends)
        self.passes, self.again = passes, again
        self.to_send_again = True
        self.headers = {"Retry-After": str(self.retry_after_s)}

    def switch_not_known(self, settles_s: int) -> SwitchNotKnown:
        """The fault, met by a build's switch to its new index, which may apply yet (`SwitchNotKnown`)."""
        unknown = SwitchNotKnown(self.fact, who_mends=self.who_mends, passes=self.passes, again=self.again)
        unknown.settles_s = settles_s
        return unknown

    def not_to_be_sent_again(self) -> None:
        """Of a write that made a service and kept it (`Remedy.SERVICE_KEPT`): the same request sent again makes a
        second service, so the error says neither `Retry-After` nor to try again (before, a client obeying either
        made a second). What it says of the index and who must mend it stays."""
        self.headers = {}
        self.to_send_again = False

    def said_again(self) -> str:
        """The message with the words asking for the same request again, where they are to be said."""
        if not self.to_send_again:
            return self.message
        if self.again is not None:
            return f"{self.message} {self.again}"
        if self.who_mends is None:
            return f"{self.fact} Try again in a minute."
        if self.passes:
            mends = self.who_mends[:1].lower() + self.who_mends[1:]
            return f"{self.fact} Try again in a minute; if it fails again, {mends}"
        return f"{self.fact} {self.who_mends.removesuffix('.')}; try again later."


class SwitchNotKnown(IndexUnavailable):
    """A build's switch to its new index that the cluster did not answer (no answer, a 5xx, a 408) and does not show
    applied: it may apply yet (a gateway that gave up while the cluster queued it), so whether the new index serves
    is not known until the live index is read again later. A rebuild meeting it keeps its note for that later read
    (`app.pending_rebuild.forget_unless_live`): read at once, a switch applied after the read was taken for refused,
    and the rebuild forgotten, its uploaded table with it, though its index went live. `settles_s`: within how long
    of this error the cluster has applied the switch or given it up (it was sent with a timeout for its queue), so
    that later read is not made before then."""

    settles_s = 0


def told(error: DomainError | GeodataError) -> str:
    """An error's message as a face tells it to a person: an `IndexUnavailable`'s with the words asking for the same
    request again (`IndexUnavailable.said_again`), every other's as it is."""
    return error.said_again() if isinstance(error, IndexUnavailable) else error.message


class IndexRefused(OfTheIndex):
    """The search index refused to store records the record's own rules accept (`search.elastic`: a document its
    mapping does not fit, or the whole request that carried them). Nothing the person asking can change, and no
    fault of rehabmap's code either: a 503 saying who must act (before, a 500 and a traceback). `answered`: the
    cluster's status; `fact`, what it refused, and `who_mends`, kept apart as `IndexUnavailable` keeps them."""

    status = 503
    code = "index_refused_record"

    def __init__(self, answered: int, fact: str, who_mends: str) -> None:
        super().__init__(fact, who_mends)
        self.answered = answered


# --- maintainers: authentication, authorisation, edits ------------------------------------------------

class Unauthenticated(DomainError):
    """No token, or one that is not (or no longer) valid. The API adds `WWW-Authenticate: Bearer`."""

    status = 401
    code = "unauthenticated"

    def __init__(self, message: str, *, error: str = "invalid_token") -> None:
        super().__init__(message, field="Authorization")
        self.headers = {"WWW-Authenticate": f'Bearer realm="rehabmap", error="{error}"'}


class Forbidden(DomainError):
    """A valid token whose role or organisation does not allow this."""

    status = 403
    code = "forbidden"


class InvalidEdit(DomainError):
    """An edit the service record refuses; nothing is written."""

    status = 422
    code = "invalid_edit"


class ServiceMerged(DomainError):
    """A change of a record merged into another (the same service from another source, listed under the other's id,
    `subject`): the record merged away is no longer shown, so a change of it would change nothing any page shows, and
    a restore would list the service twice; nothing is written."""

    status = 409
    code = "service_merged"


class StaleEdit(DomainError):
    """An edit made to a version of the service record that is no longer the live one (`If-Match`); nothing is
    written."""

    status = 412
    code = "precondition_failed"


class PreconditionRequired(DomainError):
    """A change of what decides who a search lists (needs, gender) sent without the version it was made from
    (`If-Match`, RFC 6585's 428): from a stale reading it would silently undo a newer edit; nothing is written."""

    status = 428
    code = "precondition_required"


class QuestionNotFound(DomainError):
    """A maintainer keeps an edit no source has questioned (`rehabmap.maintain.overlay.Overlay.open_questions`)."""

    status = 404
    code = "question_not_found"


class ServiceExists(DomainError):
    status = 409
    code = "service_exists"


class UnknownOrganisation(DomainError):
    status = 404
    code = "unknown_organisation"


class NotLinked(DomainError):
    """An unlink of a service the organisation does not own (another does, or none): nothing is unlinked, and the
    answer names its owner, so a mistyped organisation is seen rather than taken as done."""

    status = 404
    code = "not_linked"


class UnknownToken(DomainError):
    status = 404
    code = "unknown_token"


class TokenAlreadyMade(DomainError):
    """The form that makes a token was sent again (reloaded, or submitted twice): its token exists, and its
    secret, shown once, is not shown again. `token_id` names it."""

    status = 409
    code = "token_already_made"

    def __init__(self, message: str, *, token_id: str) -> None:
        super().__init__(message, remedy=Remedy.TOKEN_SHOWN_ONCE)
        self.token_id = token_id


class RebuildRunning(DomainError):
    """Another full rebuild of the index (an upload, `rehabmap index`) is under way, here or on another host.
    Two at once would each go live without the other's new table; the second is refused, changing nothing."""

    status = 409
    code = "rebuild_running"


class SwitchUnsettled(RebuildRunning):
    """A rebuild's switch to its new index left unanswered (`SwitchNotKnown`) that the cluster may still apply: until
    it has applied it or given it up, the rebuild cannot be judged, so a new rebuild is refused as one running is
    (the same code: it is to be sent again later), and a look leaves it. Before, the first look judged it: one made
    before the queued switch applied found the old index and forgot the rebuild, its table with it, and the index
    then served the table's services with no table kept."""


class DirectoryUnavailable(DomainError):
    """The maintainers' store could not be opened (REHABMAP_HOME not writable)."""

    status = 503
    code = "directory_unavailable"


class DataFileMissing(DomainError, FileNotFoundError):
    """An official data file the server needs is not in its data folder (REHABMAP_DATA_DIR). Nothing is wrong with
    the request and no request can be answered honestly without the file, so it is a 503 with what to do, not a
    500. Also a `FileNotFoundError`, for the callers that take any missing file as "not available"."""

    status = 503
    code = "data_file_missing"

    def __init__(self, name: str, needed_for: str, *, where: str | None = None) -> None:
        super().__init__(f"The data folder (REHABMAP_DATA_DIR) has no {name}, which rehabmap needs {needed_for}. "
                         "If you run this service, put the file there.", where=where)


# Everything a caller can cause, from the domain or from geodata below it: what a face reports to the person.
CALLER_ERRORS: tuple[type[DomainError], type[GeodataError]] = (DomainError, GeodataError)


def sentence(text: str) -> str:
    """The text ended as a sentence, so that another can follow it: a message built of a source's words and what
    to do next ran the two together ("… (status 500) What was fetched …"). An ending of its own is kept."""
    return text if text.rstrip().endswith((".", "!", "?", "…")) else f"{text}."


def did_you_mean(word: str, known: Iterable[str], where: str = "") -> str:
    """The known word nearest a mistyped one (difflib's), as a message naming a word rehabmap does not read offers
    it: " (did you mean 'trust_count'?)", `where` after the word; "" where none is close, for the message to end as
    it was."""
    close = difflib.get_close_matches(word, list(known), n=1)
    return f" (did you mean '{close[0]}'{where}?)" if close else ""


def with_remedy(error: DomainError | GeodataError, remedies: Mapping[Remedy, str],
                written: Callable[[str], str] = str) -> str:
    """The message (as a person is told it: `told`) followed by what the face's user can do about it, in that face's
    words (`remedies`, its own table: `Remedy`, naming the error's `subject` where they say `{subject}`, as the face
    `written` it: the API's words name a page, so an id in its path); the message alone where the error names no
    remedy or the face has no words for it."""
    remedy = error.remedy if isinstance(error, DomainError) else None
    words = remedies.get(remedy) if remedy is not None else None
    if words and isinstance(error, DomainError) and error.subject is not None:
        words = words.replace("{subject}", written(error.subject))
    return f"{sentence(told(error))} {words}" if words else told(error)


def for_operator(error: DomainError | GeodataError, said: str | None = None) -> str:
    """The message (or `said`, a face's words of it: `with_remedy`) with the place on the server it concerns:
    what the command line and the server's log say, where a reply says the message alone."""
    said = error.message if said is None else said
    return f"{said} ({error.where})" if error.where else said


_server_log = logging.getLogger("rehabmap.api")  # the server's log, where its other faults are


class OperatorLog:
    """The server's word to its operator of a problem only the operator can mend, or one that passes by itself but
    meets every request while it lasts: one of its files (`tell_operator`), the search cluster refusing or failing a
    request (ERROR), out of reach or answering "not now" (INFO) (`search.elastic`): each distinct problem (its line)
    logged at most once per `every_s` in a process, where it was logged once a request, so an outage (a lost token
    key refusing every request) filled the log with the same line; the first line logged once `every_s` has passed
    since the last (whether the problem was met in between or not) says how many more times it was met unlogged in
    between: by requests, or by the server's catch-up (`app.sync.converge`) or a sync's, which are no requests
    (before, the line called them all requests). `clock`: monotonic seconds (a test gives its own)."""

    MOST_REMEMBERED = 1000  # distinct problems remembered before the memory starts again (a few files: never reached)

    def __init__(self, every_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s = every_s
        self.clock = clock
        self._told: dict[str, tuple[float, int]] = {}  # a line: when it was last logged, times met unlogged since
        self._lock = threading.Lock()  # told from the event loop and the thread pool's threads alike

    def tell(self, line: str, level: int = logging.ERROR, *, words: str = "") -> None:
        """Log the line at `level` (INFO: a cluster out of reach or overloaded, which passes by itself), unless it
        was logged less than `every_s` ago. `words`: the problem's own words, which may differ each time it is met (a
        cluster's reason naming the document it could not read), said after the line where it is logged but no part
        of the problem remembered: in the line, each read of a shard outage was a problem of its own, logged each."""
        now = self.clock()
        with self._lock:
            last = self._told.get(line)
            if last is not None and now - last[0] < self.every_s:
                self._told[line] = (last[0], last[1] + 1)
                return
            if len(self._told) >= self.MOST_REMEMBERED:
                self._told.clear()
            self._told[line] = (now, 0)
        unlogged = last[1] if last is not None else 0
        times = "time" if unlogged == 1 else "times"
        said = f"{line}: {words}" if words else line
        _server_log.log(level, "%s", f"{said} [met {unlogged} more {times} since, unlogged]" if unlogged else said)


operator_log = OperatorLog()  # the process's: `tell_operator`'s memory


def tell_operator(error: DomainError | GeodataError) -> None:
    """A 503 about a file of the server's (its `where`: the token key file, a missing data file, an index or a kept
    table that cannot be read, a geodata folder not built) logged with that file's place: a reply never names it, so
    the log is where the operator learns which file to mend. Called by each face of the server as it answers such an
    error (the API's handlers, a page's refusal), never where the error is raised (which may be read again in the
    request, or caught and never answered); logged once a minute at most for each problem (`OperatorLog`). Geodata's
    errors name a folder only when it is not built, which every face answers as a 503 (geodata knows no statuses).
    Only the message and the place are logged: such a message quotes nothing of the request, so never a search's
    postcode or needs."""
    if error.where and (isinstance(error, GeodataError) or error.status == 503):
        operator_log.tell(for_operator(error))
