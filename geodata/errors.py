"""Errors a caller of geodata can cause: a postcode, place, point or area code it cannot turn into a place.

geodata stands alone (it imports nothing of rehabmap), so its errors are its own. Each has a stable `code`
and names the input it is about in `field`; the message is written for a person to act on. geodata knows
nothing of HTTP: the faces map these errors once, as they map the domain's (the API to a precise 4xx in
`api/errors.py`, the command line to one `error: ...` line).
"""

from __future__ import annotations


def shorten(value: object, limit: int = 80) -> str:
    """What a person gave, as a message may quote it: on one line, and cut to `limit` characters.

    Messages quote the value they refuse so it can be found and fixed; quoting a whole field would put a
    10 MB cell into every report line that names it."""
    text = " ".join(str(value)[: limit * 4].split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def blank(what: str, names: str) -> str:
    """The words for a value given blank, in one wording wherever one is read (a postcode, a need, a service type
    or subtype): "Unknown need ''" and "'' is not a valid UK postcode" quoted nothing, as if something were given."""
    return f"The {what} given is blank, which names no {names}"


class GeodataError(Exception):
    """Base of every error a caller of geodata can cause. `where`, a folder on the server it concerns, is for the
    operator (the command line, the server's log), never for a reply."""

    code: str = "bad_request"

    def __init__(self, message: str, *, field: str | None = None, where: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.where = where

    @property
    def offered(self) -> list[str]:
        """The places a name typed may have meant, each as it can be typed back ('Richmond, North Yorkshire'): the
        pages offer each to search from, the API lists them beside its message (`places`)."""
        return []


class InvalidPostcode(GeodataError):
    code = "invalid_postcode"

    def __init__(self, postcode: str, field: str | None = "postcode") -> None:
        said = f"'{postcode}' is not a valid UK postcode" if postcode.strip() else blank("postcode", "place")
        super().__init__(
            f"{said}. Enter a full postcode like 'LS9 7TF', a sector like 'LS9 7' or a district like 'LS9'.",
            field=field,
        )
        self.postcode = postcode


class UnknownPostcode(GeodataError):
    code = "unknown_postcode"

    def __init__(self, postcode: str, field: str | None = "postcode") -> None:
        super().__init__(
            f"Postcode '{postcode}' was not found in the ONS Postcode Directory for England. "
            "Check it, or try the first half of it (for example 'LS9').",
            field=field,
        )
        self.postcode = postcode


class TerminatedPostcode(GeodataError):
    code = "terminated_postcode"

    def __init__(self, postcode: str, terminated: str, field: str | None = "postcode") -> None:
        super().__init__(
            f"Postcode '{postcode}' was terminated ({terminated}) and is no longer in use. "
            "Use the current postcode, or the first half of it.",
            field=field,
        )
        self.postcode = postcode
        self.terminated = terminated


def _not_known(place: str) -> str:
    """That a name is not in the place list, without saying the place does not exist: the list (GeoNames
    towns of 500 people or more, local authorities, and the names of MSOA neighbourhoods) does not hold every
    suburb or village."""
    return (f"'{place}' is not a town, city or council area rehabmap knows in England (it does not know every "
            "suburb or village).")


class UnknownPlace(GeodataError):
    code = "unknown_place"

    def __init__(self, place: str, field: str | None = "place", *, nearest: list[str] | None = None,
                 message: str | None = None) -> None:
        """`nearest`: the names nearest in spelling, though not near enough to be taken or asked about as meant
        (offered still, to search from); `message`, a subclass's own words for why the place is not known."""
        named = f" The nearest names rehabmap knows are {'; '.join(nearest)}." if nearest else ""
        super().__init__(
            message or f"{_not_known(place)}{named} Check the spelling, or type the "
            "postcode, or the first half of it (like 'LS9').",
            field=field,
        )
        self.place = place
        self.nearest = nearest or []

    @property
    def offered(self) -> list[str]:
        return self.nearest


class PlaceNotInCounty(UnknownPlace):
    """A name rehabmap knows, typed with a county none of its places lies in ('Brighton, West Sussex': Brighton is
    in East Sussex): the places of the name are named, so that one can be typed back."""

    def __init__(self, place: str, county: str, known: list[str], field: str | None = "place") -> None:
        super().__init__(f"{place}, {county}", field, nearest=known, message=(
            f"rehabmap knows no '{place}' in {county}. It knows {'; '.join(known)}: type one of those, or the "
            "postcode, or the first half of it (like 'LS9')."))


class AmbiguousPlace(GeodataError):
    """A name that more than one place has, or a typo close to more than one: the person is asked which."""

    code = "ambiguous_place"

    def __init__(self, place: str, choices: list[str], *, typed_close: bool = False,
                 field: str | None = "place") -> None:
        listed = "; ".join(choices)
        if typed_close:
            message = (f"{_not_known(place)} Did you mean {'one of: ' if len(choices) > 1 else ''}{listed}? If not, "
                       "type the postcode, or the first half of it (like 'LS9').")
        else:
            message = (f"There is more than one {place} in England: {listed}. Type the county after the name, "
                       f"like '{choices[0]}', or use a postcode.")
        super().__init__(message, field=field)
        self.place = place
        self.choices = choices

    @property
    def offered(self) -> list[str]:
        return self.choices


class InvalidLocation(GeodataError):
    """Not exactly one of a postcode, a place or a point was given."""

    code = "invalid_value"


class InvalidCoordinates(GeodataError):
    code = "invalid_coordinates"


class OutsideEngland(GeodataError):
    code = "outside_england"


class CrossesBorder(OutsideEngland):
    """A postcode sector or district whose main local authority is Welsh or Scottish but which holds English
    postcodes: not known to be outside England, so its full postcode is asked for. Its own class, as a current
    placement given as one is no placement beyond England (`rehabmap.browse.placement_beyond_england`). `area`: what
    it is, "'LD7' is a postcode district that crosses the border … 24 of its postcodes are in England"."""

    def __init__(self, area: str, where: str, help_at: str) -> None:
        super().__init__(f"{area}. Give the full postcode, so that rehabmap can tell which side of the border it is on "
                         f"(rehabmap lists services in England only: for services in {where}, see {help_at}).",
                         field="postcode")
        self.area = area


class UnknownArea(GeodataError):
    """An ONS area code (or name) that no English area of the asked level has."""

    code = "unknown_area"


class GeodataNotBuilt(GeodataError):
    """The lookup files are missing or outdated and could not be built from the ONS downloads."""

    code = "geodata_not_built"
