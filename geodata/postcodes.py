"""Postcodes: reading what people type, and finding postcodes, sectors and districts in the built tables."""

from __future__ import annotations

import calendar
import re
import threading
from pathlib import Path
from typing import ClassVar, Literal, NamedTuple

from geodata.errors import (CrossesBorder, InvalidPostcode, OutsideEngland, TerminatedPostcode, UnknownPostcode,
                            shorten)
from geodata.layout import connect_built

# The letter restrictions of the Royal Mail format are deliberately not enforced: the ONS directory still
# holds retired outward codes (W1M, …) that break them, and those must parse to give a precise answer.
_OUTWARD = r"[A-Z]{1,2}[0-9][0-9A-Z]?"  # A9, A99, A9A, AA9, AA99, AA9A
_FULL = re.compile(rf"({_OUTWARD})([0-9][A-Z]{{2}})")
_OUTWARD_ONLY = re.compile(_OUTWARD)

# Long junk is cut in error messages so they stay readable.
_MAX_ECHO = 20

PostcodeKind = Literal["full", "sector", "district"]

# Postcode areas wholly outside England (Royal Mail's areas; those that cross the border, like TD, SY and CH,
# are told by their sector or district: `_gb_lad`), with where their health services are listed. A
# postcode there is told so, not to check it.
_SCOTLAND = ("Scotland", "NHS inform (www.nhsinform.scot), or call NHS 24 on 111")
_WALES = ("Wales", "NHS 111 Wales (111.wales.nhs.uk), or call 111")
_ELSEWHERE = {
    **dict.fromkeys(("AB", "DD", "DG", "EH", "FK", "G", "HS", "IV", "KA", "KW", "KY", "ML", "PA", "PH", "ZE"),
                    _SCOTLAND),
    **dict.fromkeys(("CF", "LD", "LL", "NP", "SA"), _WALES),
    "BT": ("Northern Ireland", "nidirect (www.nidirect.gov.uk/mental-health)"),
    "IM": ("the Isle of Man", "the Isle of Man's health service"),
    "JE": ("Jersey", "Jersey's health service"),
    "GY": ("Guernsey", "Guernsey's health service"),
}
_AREA = re.compile(r"[A-Z]+")
# Where the first letter of a local authority's ONS code puts a postcode, sector or district (`_nation`).
_COUNTRY_OF_LAD = {"S": _SCOTLAND, "W": _WALES}


class ParsedPostcode(NamedTuple):
    """Named tuples, as immutable as frozen dataclasses and cheaper to make: a home's lookup makes one of each
    (bench/RESULTS.md, "POST /match, eighth pass, the route's own work")."""

    kind: PostcodeKind
    value: str  # canonical: 'LS9 7TF', 'LS9 7' or 'LS9'
    district: str  # the outward code: coarse enough to log


class PostcodePoint(NamedTuple):
    query: ParsedPostcode
    lat: float
    lon: float
    lad_code: str | None  # for a sector or district, the local authority most of its postcodes are in
    precision: Literal["postcode", "sector", "district"]


def parse_postcode(text: str) -> ParsedPostcode:
    """Read a full postcode, a sector or a district in any case and spacing.

    Without a space 'LS97' can only be read as the district LS97: a sector needs the space ('LS9 7').
    """
    parts = text.upper().split()
    compact = "".join(parts)
    if match := _FULL.fullmatch(compact):
        return ParsedPostcode("full", f"{match[1]} {match[2]}", match[1])
    outward = compact[:-1]
    if len(parts) > 1 and parts[-1].isdigit() and len(parts[-1]) == 1 and _OUTWARD_ONLY.fullmatch(outward):
        return ParsedPostcode("sector", f"{outward} {parts[-1]}", outward)
    if _OUTWARD_ONLY.fullmatch(compact):
        return ParsedPostcode("district", compact, compact)
    raise InvalidPostcode(shorten(text, _MAX_ECHO))


def postcode_key(canonical: str) -> str:
    """The directory's key for a full postcode: upper case, no space."""
    return canonical.replace(" ", "").upper()


def describe_termination(doterm: str) -> str:
    """ONSPD gives YYYYMM; people read 'December 1998'."""
    if len(doterm) == 6 and doterm.isdigit() and 1 <= int(doterm[4:]) <= 12:
        return f"{calendar.month_name[int(doterm[4:])]} {doterm[:4]}"
    return doterm


class PostcodeDirectory:
    """Reads the postcode, sector and district tables of a built `geodata.sqlite`.

    One read-only connection is kept and shared between threads (the API serves from a pool); the lock
    keeps two threads from interleaving on it.
    """

    # Per kind: the query and the precision of its answer.
    _QUERIES: ClassVar[dict[PostcodeKind, tuple[str, Literal["postcode", "sector", "district"]]]] = {
        "full": ("SELECT lat, lon, lad, doterm FROM postcodes WHERE key = ?", "postcode"),
        "sector": ("SELECT lat, lon, lad, NULL FROM sectors WHERE sector = ?", "sector"),
        "district": ("SELECT lat, lon, lad, NULL FROM districts WHERE district = ?", "district"),
    }

    def __init__(self, sqlite_path: Path) -> None:
        self._db = connect_built(sqlite_path)
        # One cursor for every lookup (under the lock): making one a query was ~a fifth of the query's cost.
        self._cursor = self._db.cursor()
        self._lock = threading.Lock()

    def lookup(self, text: str) -> PostcodePoint:
        parsed = parse_postcode(text)
        query, precision = self._QUERIES[parsed.kind]
        key = postcode_key(parsed.value) if parsed.kind == "full" else parsed.value
        with self._lock:
            row = self._cursor.execute(query, (key,)).fetchone()
        if row is None:
            if elsewhere := _nation(self._gb_lad(parsed), parsed.district):
                raise _in_nation(parsed.value, elsewhere)
            raise UnknownPostcode(parsed.value)
        lat, lon, lad, doterm = row
        if doterm:
            raise TerminatedPostcode(parsed.value, describe_termination(doterm))
        return PostcodePoint(parsed, float(lat), float(lon), lad or None, precision)

    def refusal_of(self, point: PostcodePoint) -> OutsideEngland | None:
        """The refusal of a postcode, sector or district whose local authority (a sector's or district's main one) is
        not English, wherever its point lies; None for any other. A sector or district that holds English postcodes
        crosses the border (LL14: 28 in Shropshire, most in Wrexham): its full postcode tells the side, and "outside
        England" alone sent away a person in Shropshire. Its point, the mean of its postcodes (`lookup`), decides
        nothing: that of LD7 or `LL14 5` lies in England within 5 km of the border, so they were searched from a
        point that may be in Wales for a person who may live there, while LL14's, in Wales, was refused. One that
        holds none is told where it is, as a postcode England's tables lack is: a build of all countries
        (`all_countries`) holds those, and gave "AB10 1AB" the generic "outside England" where a build of England
        said "a postcode in Scotland". English postcodes are those of an English local authority. The count can
        include terminated postcodes where the directory has no termination dates (the Nov 2025 file: NP6 7AA, of a
        district since recoded, lies 140 m from NP16 7AA)."""
        lad = point.lad_code
        nation = _nation(lad, point.query.district) if lad else None
        if nation is None:
            return None
        english = self._english_postcodes(point.query) if point.precision != "postcode" else 0
        if not english:
            return _in_nation(point.query.value, nation)
        where, help_at = nation
        return CrossesBorder(
            f"'{point.query.value}' is a postcode {point.precision} that crosses the border between England and "
            f"{where}: its main local authority is in {where}, and {english} of its postcodes "
            f"{'is' if english == 1 else 'are'} in England", where, help_at)

    def _english_postcodes(self, area: ParsedPostcode) -> int:
        """How many postcodes of the sector or district `area` (without a termination date) an English local
        authority holds."""
        prefix = postcode_key(area.value)
        # A full postcode's key is its outward code and three characters: those of a district, or a sector's two more.
        length = len(prefix) + (3 if area.kind == "district" else 2)
        with self._lock:
            [(english,)] = self._cursor.execute(
                "SELECT count(*) FROM postcodes WHERE key >= ? AND key < ? AND length(key) = ? "
                "AND coalesce(doterm, '') = '' AND lad LIKE 'E%'", (prefix, prefix + "~", length)).fetchall()
        return int(english)

    def _gb_lad(self, parsed: ParsedPostcode) -> str | None:
        """The local authority most of the postcode's sector (else its district) is in, anywhere in Great
        Britain, for a postcode England's tables lack: one in an area that crosses the border (CH7 1AA in
        Flintshire, TD5 7 in the Scottish Borders) is told where it is rather than to be checked, and one in an
        English sector of a mostly Welsh area (NP16 7, the Forest of Dean) is not sent to Wales. None where ONS
        has neither."""
        keys = [parsed.value[:-2]] if parsed.kind == "full" else [parsed.value] if parsed.kind == "sector" else []
        with self._lock:
            for key in (*keys, parsed.district):
                row = self._cursor.execute("SELECT lad FROM gb_areas WHERE key = ?", (key,)).fetchone()
                if row is not None:
                    return str(row[0]) if row[0] else None
        return None

    def close(self) -> None:
        self._db.close()


def _nation(lad: str | None, district: str) -> tuple[str, str] | None:
    """Where and help for a postcode outside England, by its local authority (`_COUNTRY_OF_LAD`), else its area
    (`_ELSEWHERE`: Northern Ireland and the islands, or where ONS gives none); None for an English one, or where
    neither tells."""
    if lad and lad.startswith("E"):
        return None
    area = _AREA.match(district)
    return (_COUNTRY_OF_LAD.get(lad[:1]) if lad else None) or (_ELSEWHERE.get(area[0]) if area else None)


def _in_nation(value: str, nation: tuple[str, str]) -> OutsideEngland:
    """The refusal of a postcode (sector, district) of another nation, with where that nation lists its services."""
    where, help_at = nation
    return OutsideEngland(f"'{value}' is a postcode in {where}. rehabmap lists services in England only: "
                          f"for services in {where}, see {help_at}.", field="postcode")
