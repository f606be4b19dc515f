"""Where CQC says what a location is registered for, in the two shapes its records come in: the API's lists of
`{"name": …}` (`specialisms`, `regulatedActivities`) and the HSCA active locations file's columns, one a band or an
activity, flagged "Y". The readers (`indexer.sources.cqc`) and the store migration that relabels what they once read
(`rehabmap.maintain.activities`) read them here alike, so that the two cannot come to read a record apart."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SPECIALISMS, REGULATED_ACTIVITIES = "specialisms", "regulatedActivities"  # the API's keys: the field evidence names
HSCA_ACTIVITY = "Regulated activity - "  # the HSCA file's column of each regulated activity
# what the evidence that places a care home or supported living on the pathway says of the band or activity it quotes
REGISTERED_FOR_MENTAL_HEALTH = "registered for people with mental health needs"


def listed(item: Mapping[str, Any], key: str) -> tuple[str, ...]:
    """The names of an API list (`[{"name": …}, …]`: specialisms, regulated activities)."""
    return tuple(str(x["name"]) for x in item.get(key) or [] if isinstance(x, dict) and x.get("name"))


def flagged(values: Mapping[str, Any], prefix: str) -> tuple[str, ...]:
    """The HSCA row's columns named `prefix` + a name and flagged "Y", each as its name."""
    return tuple(column.removeprefix(prefix) for column, flag in values.items()
                 if column.startswith(prefix) and str(flag).strip().upper() == "Y")


def regulated_activities(raw: Any) -> tuple[str, ...]:
    """The regulated activities a stored source row lists: an API record's, or an HSCA row's flagged columns."""
    if not isinstance(raw, Mapping):
        return ()
    if isinstance(raw.get(REGULATED_ACTIVITIES), list):
        return listed(raw, REGULATED_ACTIVITIES)
    return flagged(raw, HSCA_ACTIVITY)
