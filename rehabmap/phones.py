"""A UK phone number as people read it, for the pages and for the CSV a spreadsheet opens."""

from __future__ import annotations

import phonenumbers


def phone_text(phone: str) -> str:
    """A UK number as people read it, in groups by its area code's length (0113 496 0000, 01623 420690,
    020 7946 0000), which only a table of every area code knows: libphonenumber's (the `phonenumbers`
    package). Display only: the record keeps the source's digits and the pages' `tel:` links dial them. A
    spreadsheet keeps a grouped number as text, where it reads the digits alone as a number and drops the
    leading zero. A number it cannot read as one (an extension, words) is shown as the source gave it.

    libphonenumber costs ~130 µs a number (a page lists a dozen, a CSV row has two), so a number of digits
    alone is grouped as the first one of its first eight characters and length was: it picks a UK number's
    groups by at most the first seven digits after its 0 (its GB formats' leading digits) and by its length,
    nothing else."""
    if phone.isdigit() and phone.startswith("0"):
        return _grouped_alike(phone)
    return _formatted(phone)


def _formatted(phone: str) -> str:
    try:
        number = phonenumbers.parse(phone, "GB")
    except phonenumbers.NumberParseException:
        return phone
    if not phonenumbers.is_possible_number(number) or number.extension:
        return phone
    style = phonenumbers.PhoneNumberFormat
    return phonenumbers.format_number(number, style.NATIONAL if number.country_code == 44 else style.INTERNATIONAL)


# Group sizes by a number's first eight characters and its length; None: not grouped alike (see `phone_text`).
_SIZES: dict[tuple[str, int], tuple[int, ...] | None] = {}


def _grouped_alike(phone: str) -> str:
    key = (phone[:8], len(phone))
    if key not in _SIZES:
        groups = _formatted(phone).split(" ")
        _SIZES[key] = tuple(len(g) for g in groups) if "".join(groups) == phone else None
    sizes = _SIZES[key]
    if sizes is None:
        return _formatted(phone)
    parts, start = [], 0
    for size in sizes:
        parts.append(phone[start:start + size])
        start += size
    return " ".join(parts)


def phone_cell(phone: str) -> str:
    """The phone as a CSV cell: a number of digits alone, which a spreadsheet reads as a number and drops its
    leading zero, in `phone_text`'s groups; anything else as the source gave it (spaced or worded already, so
    kept as text)."""
    return phone_text(phone) if phone.isdigit() and phone.startswith("0") else phone
