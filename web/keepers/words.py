"""How the keepers' pages say a record's fields, values and moments: need codes as the public pages name the needs,
times in the long dates the public pages use. The audit log and the API keep the codes and ISO times."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from markupsafe import Markup, escape

from rehabmap.errors import DomainError, Remedy, with_remedy
from rehabmap.explanation import GENDER_WORDS, TEAMS_GENDER_BASES, gender_basis
from rehabmap.maintain.audit import REASON_MAX, tidied_text
from rehabmap.maintain.overlay import READ_FIELDS
from rehabmap.maintain.readings import NEED_LISTS
from rehabmap.maintain.reports import MAX_NOTE
from rehabmap.record import ORGANISATION_NAME_LENGTH, TEXT_MAX_LENGTH, TOKEN_LABEL_LENGTH, Service
from rehabmap.taxonomy import need_label
from web.forms import sent_back
from web.present import long_date
from web.service_view import who_it_takes


# The text a person types in the keepers' forms, by input name: what a "too long" error calls it, and the most it may
# hold, read from each limit's one home in the domain (the record's, the audit log's, the reports'), which the
# maintainers' API and the command line read too. The forms keep these values whole and refuse one too long
# (`web.keepers.session.form_errors`); each box's hint says its limit from `TEXT_LIMITS`, and none has a maxlength
# (the `input` and `textarea` macros' `limit`: a browser enforces a maxlength by cutting a paste short without a word).
TYPED_FIELDS: dict[str, tuple[str, int]] = {
    **{name: (label, TEXT_MAX_LENGTH[name]) for name, label in (
        ("name", "Name"), ("organisation", "Organisation"), ("description", "What the service does"),
        ("address", "Address"), ("postcode", "Postcode"), ("referral_route", "How to refer"), ("phone", "Phone"),
        ("email", "Email"), ("website", "Website"))},
    "reason": ("The reason", REASON_MAX), "note": ("The note", MAX_NOTE),
    "organisation_name": ("The organisation's name", ORGANISATION_NAME_LENGTH[1]), "label": ("The label",
                                                                                        TOKEN_LABEL_LENGTH[1])}
TEXT_LIMITS = {name: limit for name, (_, limit) in TYPED_FIELDS.items()}
# A text its field keeps otherwise than typed, and is measured so by the API and the command line: each as kept. A
# browser would count it as typed (a reason of 488 characters as kept, typed with double spaces, was cut at 500 by a
# maxlength): its hint says how it is counted (`AS_KEPT`), and one too long is the form's refusal against it, all that
# was typed shown again.
KEPT_AS = {"reason": tidied_text, "organisation_name": tidied_text, "label": tidied_text}
AS_KEPT = "a run of spaces or line breaks counting as one"
# The keepers' boxes of more than one line (a `textarea`), by input name: every other is one line (an `input`), which a
# browser sends back without the line breaks a stored value may hold (`as_sent`). A field whose value may hold line
# breaks (a feed's or the API's "How to refer", an address given on its lines) has one: in a one-line box its lines
# were shown run together, and any change to it saved them so ("By email to the teamor by phone").
MULTI_LINE = frozenset({"description", "reason", "note", "what", "referral_route", "address"})


def as_sent(name: str, stored: object) -> str:
    """The stored value as the keepers' box named `name` sends it back untouched (`web.forms.sent_back`): what a form
    compares what it was sent with, so that leaving a box as it was is never a change, nor refused as one."""
    return sent_back(str(stored or ""), one_line=name not in MULTI_LINE)


# What a keeper can do about an error (`rehabmap.errors.Remedy`), on these pages: never a command to run.
REMEDIES = {Remedy.TOKENS: "The tokens page lists them.",
            Remedy.REVIEW_QUEUE: "The review queue lists the records awaiting a decision.",
            Remedy.ORGANISATIONS: "Choose one from the list, or add it on the Organisations page.",
            Remedy.TOKEN_ORGANISATION: "Choose one for a provider token, and None for any other role.",
            Remedy.TOKEN_KEY: "Whoever runs rehabmap here must restore it from its backup or make a new key; until "
                              "then no one can sign in with a token.",
            Remedy.SERVICE_EDITS: "Change or retire it on its own page under Services.",
            Remedy.REVIEW_DECISION: "Decide it first in the review queue.",
            Remedy.TOKEN_SHOWN_ONCE: "If it was not copied, revoke it on the tokens page and make another.",
            Remedy.PROBLEM_REPORTS: "The problem reports page lists those still open.",
            Remedy.KEPT_TABLE: "Whoever runs rehabmap here must restore it from its backup; or upload the whole table "
                               "again on the upload page, which replaces it.",
            Remedy.MAPPING: "Whoever runs the syncs must put the mapping right.",
            Remedy.EDIT_KEPT: "The edit is kept: do not make it again. Once the search index is fixed, a rebuild of it "
                              "or the server's next start shows it in searches."}


def said(error: DomainError) -> str:
    """A refusal as the keepers' pages say it: the fact, and what a keeper can do about it here (`REMEDIES`)."""
    return with_remedy(error, REMEDIES)


# A review's state as a maintainer reads it (the queue and the API keep the codes; a pending record's day and a
# decision's type, maker, day and reason are said beside it).
REVIEW_STATES = {"pending": "awaiting review", "accepted": "accepted", "rejected": "rejected",
                 "superseded": "no longer awaiting review"}


def review_state(state: str) -> str:
    return REVIEW_STATES.get(state, state)


_FIELD_NAMES = {**NEED_LISTS, "gender": "Who it takes", "needs_read_from_text": "Needs its listing mentions",
                "needs_read_not_met": "Needs its listing suggests it may not take",
                "gender_read_from_text": "Who its listing suggests it takes"}


def field_name(field: str) -> str:
    """A field as a maintainer reads it: the need lists and the gender in words, as the form says them; the rest
    by their names."""
    return _FIELD_NAMES.get(field, field)


def field_value(field: str, value: Any) -> str:
    """A field's value as a maintainer reads it: text as it is, nothing as a dash, a need list as the needs'
    names, a gender as the public pages say whom a service takes, a reading as its needs and words, the rest as
    JSON."""
    if field == "gender" and value in GENDER_WORDS:
        return GENDER_WORDS[value]
    if value is None or value == "" or (field in NEED_LISTS and value == []):
        return "–" if field not in NEED_LISTS else "none"
    if field in NEED_LISTS and isinstance(value, list):
        return ", ".join(need_label(str(need)) for need in value)
    if field in READ_FIELDS and isinstance(value, dict):  # what rehabmap read: each need (or gender) with its words
        return ", ".join(f"{GENDER_WORDS.get(read) or need_label(read)} (‘{words}’)"
                         for read, words in value.items()) or "none"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def teams_gender(service: Service | None) -> str | None:
    """Where the record's gender is the rehabmap team's word (added, changed or removed: `gender_basis`), its
    service page's "Who it takes" row as the public reads it (`who_it_takes`, the one wording): "Who it takes: Not
    stated (the source said men only; removed by the rehabmap team)". The keepers' pages of the record say it, so a
    maintainer never reads a plain "not stated" where the public reads that the source said otherwise. None for a
    gender that is the source's word, or none at all."""
    if service is None or gender_basis(service) not in TEAMS_GENDER_BASES or (row := who_it_takes(service)) is None:
        return None
    return f"{row[0]}: {row[1]}"


def long_moment(at: str | datetime | None, *, seconds: bool = False) -> str:
    """An ISO time (UTC) as "2 December 2026, 14:05 UTC", the day as the public pages say one; `seconds`: to the
    second, for the audit log's rows (their column says UTC)."""
    if not at:
        return "unknown"
    moment = datetime.fromisoformat(at) if isinstance(at, str) else at
    day = long_date(moment.date())
    return f"{day}, {moment:%H:%M:%S}" if seconds else f"{day}, {moment:%H:%M} UTC"


def long_day(day: str | date | None) -> str:
    """A day (ISO, or the start of an ISO time) as the public pages say one."""
    return long_date(date.fromisoformat(day[:10]) if isinstance(day, str) else day) if day else "unknown"


def with_code(text: str) -> Markup:
    """Guide text whose code, values and column names are between backticks (the curated tables' data dictionary,
    `indexer.sources.curated.Column`), with those parts set as code and the rest escaped."""
    parts = escape(text).split("`")
    return Markup("").join(Markup("<code>{}</code>").format(part) if i % 2 else part for i, part in enumerate(parts))
