"""What a dated list's mapping says of each row it holds for review (its `[constants] description`,
mappings/README.md), true only until a maintainer decides, and what the record a maintainer's acceptance shows says
in its place. One table for every list, so that a list's held words have their accepted ones beside them. The
mappings keep their words: every stored record's digest covers them, and new words would read every record as
changed; the record shown (`indexer.sync.publish.with_type`) says the accepted ones, and a store from before they
were said is brought to them on upgrade (migration 28)."""

from __future__ import annotations

ACCEPTED: dict[str, str] = {
    # the NHS website hospital lists (2018, 2014–15)
    "The list does not say it is a rehab service: a rehabmap maintainer decides whether it is.":
        "The list does not say it is a rehab service: a rehabmap maintainer has decided that it is.",
    # the NHS ODS trusts and sites (2018): a site whose name mentions rehabilitation
    "The list does not say it is a rehab service: its name does, unchecked.":
        "The list does not say it is a rehab service: its name does, and a rehabmap maintainer has decided that it is.",
}


def as_accepted(description: str) -> str:
    """`description` as the record a maintainer accepted says it: each held wording in it as its accepted one."""
    for held, accepted in ACCEPTED.items():
        description = description.replace(held, accepted)
    return description
