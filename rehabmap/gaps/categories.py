"""What a gap analysis counts: the seven parts of the pathway (the service types) and their subtypes.

A category is a service type, or one subtype of it; its key is 'community_rehab_team' or 'advocacy:imha'.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rehabmap.taxonomy import SUBTYPE_LABELS, SUBTYPES, TYPE_LABELS, ServiceType, unknown_type


@dataclass(frozen=True)
class Category:
    """A service type, or one subtype of it; `key` is 'community_rehab_team' or 'advocacy:imha'."""

    service_type: ServiceType
    subtype: str | None = None

    @property
    def key(self) -> str:
        return self.service_type.value if self.subtype is None else f"{self.service_type.value}:{self.subtype}"

    @property
    def label(self) -> str:
        return TYPE_LABELS[self.service_type] if self.subtype is None else SUBTYPE_LABELS[self.subtype]

    @property
    def is_inpatient(self) -> bool:
        return self.service_type.is_inpatient

    @property
    def is_part(self) -> bool:
        """One of the seven parts of the pathway (a type, not a subtype)."""
        return self.subtype is None


ALL_CATEGORIES: tuple[Category, ...] = tuple(
    c for t in ServiceType for c in (Category(t), *(Category(t, s) for s in SUBTYPES.get(t, ()))))
PARTS: tuple[Category, ...] = tuple(c for c in ALL_CATEGORIES if c.is_part)
_BY_KEY = {c.key: c for c in ALL_CATEGORIES}
_SUBTYPE_ONLY = {c.subtype: c for c in ALL_CATEGORIES if c.subtype}


# What `parse_categories` reads of one value, as a JSON Schema pattern: codes joined by commas, none blank (which
# codes are known is for the error to say: the pattern would be unreadable, each code in any case).
CODES_PATTERN = r"^\s*[^\s,][^,]*(,\s*[^\s,][^,]*)*$"


def parse_category(value: str, given: str | None = None) -> Category:
    """'community_rehab_team', 'advocacy:imha' (or 'advocacy/imha', or just 'imha'); `given`: the value it is one
    of the comma-separated codes of, which the error names if it is blank (`unknown_type`)."""
    key = value.strip().lower().replace("/", ":")
    if key in _BY_KEY:
        return _BY_KEY[key]
    if key in _SUBTYPE_ONLY:
        return _SUBTYPE_ONLY[key]
    raise unknown_type(value, ", ".join(_BY_KEY), field="type", given=given)


def parse_categories(values: Iterable[str] | None) -> tuple[Category, ...]:
    """Comma-separated or repeated codes; none, 'all' or 'any' means every type and subtype. A blank code (`type=`,
    `type=a,,b`) is refused as an unknown one is: it names no type, and reading it as 'all' answered a request
    that was not made (the API's schema says so: `CODES_PATTERN`)."""
    keys = [(v.strip(), value) for value in (values or ()) for v in value.split(",")]
    named = [(k, value) for k, value in keys if k.lower() not in ("all", "any")]
    chosen = {parse_category(k, value) for k, value in named}
    if len(named) < len(keys) or not keys:
        return ALL_CATEGORIES
    return tuple(c for c in ALL_CATEGORIES if c in chosen)
