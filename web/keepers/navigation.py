"""The keepers' pages each role sees, in the order the layout lists them. Each feature adds its own line."""

from __future__ import annotations

from dataclasses import dataclass

from rehabmap.maintain.auth import Role


@dataclass(frozen=True)
class Section:
    path: str
    title: str
    description: str
    roles: frozenset[Role]


SECTIONS: list[Section] = []


def sections_for(role: Role) -> list[Section]:
    return [s for s in SECTIONS if role in s.roles]
