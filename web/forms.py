"""Reading what people typed, and the errors to show beside it (the NHS.UK error summary pattern).

Forms are plain `application/x-www-form-urlencoded` (GET or POST, no JavaScript needed), read here with
the standard library. Every problem is kept against the id of the input it is about, so the error
summary links to that input and the message is shown beside it; the values typed are always sent back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from starlette.requests import Request

from geodata.errors import GeodataError, OutsideEngland
from rehabmap.browse import placement_beyond_england
from rehabmap.errors import CALLER_ERRORS, DomainError
from geodata.distance import KM_PER_MILE

if TYPE_CHECKING:
    from geodata.geography import Geography, Home

MAX_BODY = 16_384
MAX_VALUE = 200
# Fields whose text is longer by nature, each with its own cut, in every form: a service's description is a
# paragraph, not a line.
LONG_VALUES = {"description": 2_000}
_DIGIT = re.compile(r"\d")


def max_length(name: str, max_value: int = MAX_VALUE) -> int:
    """How many characters of field `name` a form keeps."""
    return LONG_VALUES.get(name, max_value)


class Fields:
    """Form or query values by name; every value trimmed and cut to a sane length."""

    def __init__(self, pairs: list[tuple[str, str]], max_value: int = MAX_VALUE) -> None:
        self._values: dict[str, list[str]] = {}
        for name, value in pairs:
            self._values.setdefault(name, []).append(value.strip()[:max_length(name, max_value)])

    @classmethod
    def of_query(cls, request: Request) -> Fields:
        return cls(list(request.query_params.multi_items()))

    @classmethod
    async def of_body(cls, request: Request, max_value: int = MAX_VALUE) -> Fields:
        """The POSTed form; `max_value` for a form with a longer text box (anything longer is cut to it)."""
        body = b""
        async for chunk in request.stream():  # a form is small: stop reading past the limit
            body += chunk
            if len(body) > MAX_BODY:
                break
        body = body[:MAX_BODY]
        return cls(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True), max_value)

    def get(self, name: str) -> str:
        values = self._values.get(name)
        return values[0] if values else ""

    def getlist(self, name: str) -> list[str]:
        return [v for v in self._values.get(name, []) if v]

    def __contains__(self, name: str) -> bool:
        return name in self._values


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
