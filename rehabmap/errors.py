"""Domain errors, in one place.

Every error a person can cause (a bad postcode, an unknown need, an out-of-range value) is raised in the
domain as one of these and turned into a precise 4xx exactly once, in the API's exception handler. The
message is written for a person to act on; `field` names the input that was wrong.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of all errors a caller can cause; `status` is the HTTP status the API maps it to."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def shorten(value: object, limit: int = 80) -> str:
    """What a person gave, as a message may quote it: on one line, and cut to `limit` characters.

    Messages quote the value they refuse so it can be found and fixed; quoting a whole field would put a
    10 MB cell into every report line that names it."""
    text = " ".join(str(value)[: limit * 4].split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class InvalidPostcode(DomainError):
    code = "invalid_postcode"

    def __init__(self, postcode: str, field: str | None = "postcode") -> None:
        super().__init__(
            f"'{postcode}' is not a valid UK postcode. Enter a full postcode like 'LS9 7TF', "
            "a sector like 'LS9 7' or a district like 'LS9'.",
            field=field,
        )
        self.postcode = postcode


class UnknownPostcode(DomainError):
    status = 404
    code = "unknown_postcode"

    def __init__(self, postcode: str, field: str | None = "postcode") -> None:
        super().__init__(
            f"Postcode '{postcode}' was not found in the ONS Postcode Directory for England. "
            "Check it, or try the first half of it (for example 'LS9').",
            field=field,
        )
        self.postcode = postcode


class TerminatedPostcode(DomainError):
    status = 404
    code = "terminated_postcode"

    def __init__(self, postcode: str, terminated: str, field: str | None = "postcode") -> None:
        super().__init__(
            f"Postcode '{postcode}' was terminated ({terminated}) and is no longer in use. "
            "Use the current postcode, or the first half of it.",
            field=field,
        )
        self.postcode = postcode


class UnknownPlace(DomainError):
    status = 404
    code = "unknown_place"

    def __init__(self, place: str, field: str | None = "place") -> None:
        super().__init__(
            f"No place in England called '{place}' was found. Try a town name or a postcode.",
            field=field,
        )
        self.place = place


class InvalidCoordinates(DomainError):
    code = "invalid_coordinates"


class OutsideEngland(DomainError):
    code = "outside_england"


class UnknownArea(DomainError):
    status = 404
    code = "unknown_area"


class UnknownServiceType(DomainError):
    code = "unknown_service_type"


class UnknownNeed(DomainError):
    code = "unknown_need"


class InvalidValue(DomainError):
    code = "invalid_value"


class ServiceNotFound(DomainError):
    status = 404
    code = "service_not_found"


class IndexNotBuilt(DomainError):
    status = 503
    code = "index_not_built"


class IndexUnavailable(DomainError):
    """The search cluster did not answer, or answered that it is overloaded. Nothing is wrong with the
    request: the same request can be sent again later, so the API adds `Retry-After`."""

    status = 503
    code = "index_unavailable"
    retry_after_s = 30

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(self.retry_after_s)}


class GeodataNotBuilt(DomainError):
    status = 503
    code = "geodata_not_built"


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


class ServiceExists(DomainError):
    status = 409
    code = "service_exists"


class UnknownOrganisation(DomainError):
    status = 404
    code = "unknown_organisation"


class UnknownToken(DomainError):
    status = 404
    code = "unknown_token"


class DirectoryUnavailable(DomainError):
    """The maintainers' store could not be opened (REHABMAP_HOME not writable)."""

    status = 503
    code = "directory_unavailable"
