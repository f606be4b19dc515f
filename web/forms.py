"""Reading what people typed, and the errors to show beside it (the NHS.UK error summary pattern).

Forms are plain `application/x-www-form-urlencoded` (GET or POST, no JavaScript needed), read here with
the standard library. Every problem is kept against the id of the input it is about, so the error
summary links to that input and the message is shown beside it; the values typed are always sent back.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from starlette.requests import Request

from geodata.errors import GeodataError, OutsideEngland
from rehabmap.browse import placement_beyond_england
from rehabmap.errors import CALLER_ERRORS, DomainError
from rehabmap.record import typed_text
from geodata.distance import KM_PER_MILE

if TYPE_CHECKING:
    from geodata.geography import Geography, Home

MAX_BODY = 16_384
# The most of a value a public form keeps (a search box): anything longer is cut to it. The keepers' forms keep every
# value whole and refuse one too long for its field instead (`Fields.too_long`, `web.keepers.session.form_errors`).
MAX_VALUE = 200
_DIGIT = re.compile(r"\d")


def sent_back(value: str, *, one_line: bool) -> str:
    """A stored text as its box sends it back untouched: `typed_text`; from a one-line box (an `input`) without its
    line breaks too, which a browser strips from an input's value. Before, a "How to refer" held on two lines came
    back run together from the form saved unchanged, which was taken for a change: written so, and audited."""
    return typed_text(value.replace("\r", "").replace("\n", "") if one_line else value)


class Fields:
    """Form or query values by name; every value as typed (`typed_text`: trimmed, each line break one LF), and cut to
    `max_value` unless that is None (a form whose values are checked against their fields' own limits, `too_long`, so
    that nothing is cut unseen)."""

    def __init__(self, pairs: list[tuple[str, str]], max_value: int | None = MAX_VALUE) -> None:
        self._values: dict[str, list[str]] = {}
        self.complete = True  # False: the body was longer than was read (`of_body`), its last values lost
        for name, value in pairs:
            self._values.setdefault(name, []).append(typed_text(value)[:max_value])

    @classmethod
    def of_query(cls, request: Request) -> Fields:
        return cls(list(request.query_params.multi_items()))

    @classmethod
    async def of_body(cls, request: Request, max_value: int | None = MAX_VALUE, max_body: int = MAX_BODY) -> Fields:
        """The POSTed form, from at most `max_body` bytes of it (`complete` says whether that was all); `max_value`
        as for `Fields`."""
        body = b""
        async for chunk in request.stream():  # a form is small: stop reading past the limit
            body += chunk
            if len(body) > max_body:
                break
        fields = cls(parse_qsl(body[:max_body].decode("utf-8", errors="replace"), keep_blank_values=True), max_value)
        fields.complete = len(body) <= max_body
        return fields

    def get(self, name: str) -> str:
        values = self._values.get(name)
        return values[0] if values else ""

    def getlist(self, name: str) -> list[str]:
        """The name's values a person gave: a form's empty box (or one of spaces) is left out, as nothing asked."""
        return [v for v in self._values.get(name, []) if v]

    def given(self, name: str) -> list[str]:
        """Every value of the name, blank ones too: of a parameter no form's box sends, which only a link or a script
        gives, a blank one is a mistake to say, not a box left empty."""
        return list(self._values.get(name, []))

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def too_long(self, limits: Mapping[str, int],
                 kept_as: Mapping[str, Callable[[str], str]] | None = None) -> dict[str, int]:
        """The length of each value longer than its name's limit in `limits`, by name: what a form that keeps values
        whole must refuse, where a form that cut them would lose the rest of what was typed without a word. A value
        whose field keeps it otherwise than typed (`kept_as`: a reason's runs of spaces made one) is measured as
        kept, as the API measures it."""
        def length(name: str, value: str) -> int:
            return len((kept_as or {}).get(name, str)(value))

        return {name: longest for name, limit in limits.items()
                if (longest := max((length(name, v) for v in self._values.get(name, [])), default=0)) > limit}


@dataclass
class Errors:
    """Problems by input id, in the order they were found (the order of the form)."""

    by_field: dict[str, str] = field(default_factory=dict)
    # The places a place name typed may have meant, by input id: a page may offer each as a link to search from
    # it, where before the person had to type back a choice the message named.
    offered: dict[str, list[str]] = field(default_factory=dict)

    def add(self, field_id: str, message: str) -> None:
        self.by_field.setdefault(field_id, message)

    def add_domain(self, error: DomainError | GeodataError, field_id: str) -> None:
        self.add(field_id, error.message)
        if isinstance(error, GeodataError) and error.offered:
            self.offered.setdefault(field_id, list(error.offered))

    def __bool__(self) -> bool:
        return bool(self.by_field)

    def get(self, field_id: str) -> str | None:
        return self.by_field.get(field_id)

    def items(self) -> list[tuple[str, str]]:
        return list(self.by_field.items())


def resolve_where(geography: Geography, text: str, field_id: str, errors: Errors,
                  what: str = "a postcode or town", *, placement: bool = False) -> Home | None:
    """A postcode (anything with a digit in it) or a place name, as a Home; None with an error when not. A
    current `placement` beyond England is told what that means for it (`placement_beyond_england`)."""
    if not text:
        errors.add(field_id, f"Enter {what}")
        return None
    try:
        if _DIGIT.search(text):
            return geography.resolve(postcode=text)
        return geography.resolve(place=text)
    except OutsideEngland as error:
        errors.add_domain(placement_beyond_england(text, error) if placement else error, field_id)
        return None
    except CALLER_ERRORS as error:
        errors.add_domain(error, field_id)
        return None


def parse_int(text: str, field_id: str, label: str, errors: Errors, low: int, high: int) -> int | None:
    if not text:
        return None
    if not re.fullmatch(r"\d{1,4}", text):
        errors.add(field_id, f"{label} must be a whole number, like {low + (high - low) // 4}")
        return None
    value = int(text)
    if not low <= value <= high:
        errors.add(field_id, f"{label} must be between {low} and {high}")
        return None
    return value


def parse_km(text: str, field_id: str, label: str, errors: Errors, high: float = 1000) -> float | None:
    return _parse_distance(text, field_id, label, errors, high, "km", "kilometres")


def parse_miles(text: str, field_id: str, label: str, errors: Errors, high: float = 600) -> float | None:
    """A distance typed in miles (the unit of every distance the public and clinicians' pages show), in km."""
    miles = _parse_distance(text, field_id, label, errors, high, "miles", "miles")
    return None if miles is None else miles * KM_PER_MILE


def _parse_distance(text: str, field_id: str, label: str, errors: Errors, high: float, unit: str,
                    unit_words: str) -> float | None:
    if not text:
        return None
    try:
        value = float(text.strip().removesuffix(unit).strip())
    except ValueError:
        errors.add(field_id, f"{label} must be a number of {unit_words}, like 50")
        return None
    if not 0 < value <= high:
        errors.add(field_id, f"{label} must be more than 0 and at most {high:g} {unit}")
        return None
    return value
