"""Place names (towns, cities, local authorities) → a point, from the table a geodata build writes.

People type names with typos ("Leds") and names that several places share ("St Ives", "Richmond"). A name
that matches no place exactly is matched, with rapidfuzz, to the nearest names in spelling: one clear
winner one slip of the keys away is taken (and the page shows the place's real name); one further off, or
several, are offered. A name that places far
apart share is not given to one of them: the person is asked which, and may say "Richmond, North Yorkshire".
Only a place far bigger than every other of its name is taken, and then shown with its county, so the pick
is never silent. The county after the comma may be any the place lies in (`_lies_in`), or a town within
`SAME_PLACE_KM`, as an address gives its post town ('Nailsea, Bristol').

A town is also found by the shorter names GeoNames lists for it ('Hull' for Kingston upon Hull; the build
chooses which, `geodata.build._aliases`), but such a name never silently outranks a place officially so named,
nor loses to it: a town known by the name that dwarfs the places so named is offered beside them ('Stoke':
Stoke-on-Trent or the Stoke in Cheshire). The page shows the place's real name either way.

Neighbourhoods ('Harehills', a part of Leeds; `geodata.neighbourhoods`) rank below all of those: a name is
looked up among them only when no place, nor any town's short name, is so spelt or spelt close to it, or when
a county is typed that no place of the name lies in ('Loughton, Essex': GeoNames has only the Loughtons of
Shropshire and Milton Keynes; the HoC Library names Loughton's three MSOAs in Epping Forest). One far bigger
than the places of its name, or a town the MSOAs split by compass points at least half as big, is asked about
beside them (`_places`), never taken. They are told apart by local authority, not by distance, and one of
several is never taken without asking ('Harehills, Leeds' says which).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from geodata.distance import great_circle_km
from geodata.errors import AmbiguousPlace, InvalidLocation, OutsideEngland, PlaceNotInCounty, UnknownPlace
from geodata.layout import connect_built
from geodata.postcodes import _ELSEWHERE

if TYPE_CHECKING:
    from collections.abc import Callable

_APOSTROPHES = re.compile("['\u2019`]")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
# People write 'St Albans', 'St. Albans' and 'Saint Albans' for one place; GeoNames uses all three. They write
# 'Burton-on-Trent' and 'Newcastle on Tyne' as often as the official 'upon', which no two places' names differ by
# alone (but Stratford-upon-Avon, and its district, Stratford-on-Avon, which is then left to the town).
_TOKEN_ALIASES = {"saint": "st", "upon": "on"}
# Entries of one name closer than this are one place (a town and the local authority named after it).
SAME_PLACE_KM = 20.0
# How alike in spelling (rapidfuzz ratio, 0-100) a typed name must be to a place's to be offered for it,
# and by how much the best must beat the next to be taken without asking.
TYPO_MIN_SCORE = 80.0
TYPO_CLEAR_MARGIN = 8.0
# And how few slips of the keys it may be from the name typed (a letter missed, added, wrong, or two swapped:
# 'Leds', 'Lerds', 'Mansfeild'). A name further off is offered, never taken, however alike by ratio: before,
# 'Cumbria' searched from Columbia, Sunderland, 'Avon' from Upavon, 'Scotland' from Totland, Isle of Wight and
# 'East London' from East Boldon, South Tyneside, each shown as the place searched from.
TYPO_TAKEN_SLIPS = 1
# A name whose most populous place has this many times the people of each other place of the name is taken
# as that one (Preston, Lancashire, 313,000, over two hamlets); the home then shows its county, so the person
# sees which was taken. Towns nearer in size are asked about (St Ives: 16,800 and 5,400).
DOMINANT_RATIO = 20
# A town GeoNames lacks but the MSOAs name, split by compass points (Wellington North and South, Somerset), is asked
# about beside the places of its name when it has at least this share of the people of the largest of them:
# 'Wellington' (Somerset's 21,169 beside Telford's 22,816), 'Clapham' (Lambeth's beside a Bedford village), not
# 'Sutton' (Sutton-on-Hull's MSOAs beside the London borough's 187,600, reviewed as the one meant).
SPLIT_TOWN_SHARE = 0.5
# GeoNames gives 0 people for a population it does not know (Kensington, London; Preston, Rutland). Every
# place in cities500 has at least 500 people, so an unknown population counts as 500, never as none: before,
# any named size beat a 0 twenty times over, and of two zeros the first in the file was taken (Boyton,
# Cornwall over Boyton, Wiltshire; Allington, Lincolnshire (586 people) over Allington, Wiltshire).
UNKNOWN_POPULATION = 500
# London's places are districts of one city, sized by GeoNames unevenly (Kensington: unknown) and known to
# everyone in England: one is never taken to be outranked by a place elsewhere (Kensington, Liverpool, 16,522).
LONDON_COUNTY = "Greater London"
# What people write after an English place's name for the country ('Leeds, England'): every place here is in it.
_ANYWHERE = frozenset({"england", "uk", "united kingdom", "great britain", "gb"})
# Names shown when nothing is close enough to be offered: the nearest in spelling, above this score.
NEAREST_MIN_SCORE = 60.0
NEAREST_SHOWN = 3
# The most places a question offers when a name typed is one slip from one name and a word of others.
OFFERED_AT_MOST = 6
# The `source` of a row of the places table that files a town under another of its names, of one that files a
# county under the short form of its name ('Notts': found as typed, never by spelling, where 'Hants' stood
# nearer to 'Atlantis' than any place), and of one that names a neighbourhood (one row per name and local
# authority, whose name is the row's county).
ALIAS_SOURCE = "alias"
SHORT_FORM_SOURCE: Final = "short_form"
# The `source` of a GeoNames town or village's own row.
TOWN_SOURCE: Final = "geonames"
NEIGHBOURHOOD_SOURCE: Final = "msoa"
# ... and of a neighbourhood that is a whole town the MSOAs split by compass points (Wellington North and South,
# Somerset): ranked as a neighbourhood, but weighed against the places of its name as a place is.
SPLIT_TOWN_SOURCE: Final = "msoa_split_town"
NEIGHBOURHOOD_SOURCES = (NEIGHBOURHOOD_SOURCE, SPLIT_TOWN_SOURCE)
# The `source` of a row naming a place in Wales, Scotland, Northern Ireland or a Crown Dependency, whose county
# is the nation. Such a name is never a home: it is looked at only when no place, town or neighbourhood in
# England is so spelt, to tell the person where it is before any English name spelt close to it is offered.
ELSEWHERE_SOURCE: Final = "elsewhere"
# Where each nation beyond England lists its services, as a postcode there is told (one home for the words).
_HELP_IN = dict(_ELSEWHERE.values())


@dataclass(frozen=True)
class PlacePoint:
    name: str
    county: str | None
    lat: float
    lon: float
    population: int
    lad_code: str | None = None  # the local authority it lies in; None for a county

    @property
    def label(self) -> str:
        return f"{self.name}, {self.county}" if self.county and self.county != self.name else self.name


def place_key(name: str) -> str:
    """The form names are matched in, so case, accents and punctuation never decide a match."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = _APOSTROPHES.sub("", text.replace("&", " and "))
    return " ".join(_TOKEN_ALIASES.get(token, token) for token in _NOT_ALNUM.sub(" ", text).split())


# Those nations by name ('wales', 'isle of man'): typed alone, the nation is meant, not the English place that
# shares its name (Wales, a village of 6,000 near Rotherham, was the home of a search for 'Wales').
_NATIONS = {key: nation for nation in _HELP_IN if (key := place_key(nation.removeprefix("the ")))}


class PlaceGazetteer:
    """Looks names up in the `places` table."""

    def __init__(self, sqlite_path: Path) -> None:
        self._db = connect_built(sqlite_path)
        self._lock = threading.Lock()
        # every place's and every neighbourhood's name keys, read the first time a name is not found
        self._keys: tuple[list[str], list[str]] | None = None
        # each local authority's code → the keys of its name and the counties it lies in, read the first time a
        # county is typed
        self._counties: dict[str, list[str]] | None = None

    def lookup(self, name: str) -> PlacePoint:
        """The one place meant by `name` ('Name' or 'Name, County'); raises `AmbiguousPlace` when several
        places could be meant, `UnknownPlace` when none."""
        typed, _, county = (part.strip() for part in name.partition(","))
        key = place_key(typed)
        if not key:  # before, "'' is not a town, city or council area rehabmap knows": a 404, as if looked for
            raise InvalidLocation("Give the name of a town, city or council area in England, like 'Leeds', or "
                                  "'Richmond, North Yorkshire' where several places have the name.", field="place")
        places, short_name = self._places(key)
        if not county and key in _NATIONS:
            raise _a_nation(_NATIONS[key], places)
        typed_close = not places
        wanted = place_key(county)
        if typed_close:
            if nations := self._nations(key):
                raise _outside_england(typed, nations)
            places, short_name = self._by_spelling(typed, key, (lambda p: self._lies_in(p, wanted)) if county else None)
        if county:
            named, places = places, [p for p in places if self._lies_in(p, wanted)]
            if not places:  # read only now: the neighbourhoods a place's name hides ('Loughton, Essex')
                hidden = [p for p, source in self._rows(key) if source in NEIGHBOURHOOD_SOURCES] \
                    if not typed_close and short_name is not None else []
                if places := [p for p in hidden if self._lies_in(p, wanted)]:
                    short_name = None
                else:  # 'Nailsea, Bristol'
                    places, short_name = self._near_post_town(named + hidden, wanted), True
            if not places:
                if nations := [n for n in self._nations(key) if wanted in place_key(n)]:  # 'Newport, Wales'
                    raise _outside_england(typed, nations)
                if named:  # 'Brighton, West Sussex': Brighton is in East Sussex; 'Alresford, Hampshire': New Alresford
                    there = [p for p in self._holding(key) if self._lies_in(p, wanted)]
                    raise PlaceNotInCounty(typed, county, [p.label for p in there + _distinct(named)])
                raise UnknownPlace(name.strip())
        distinct = places if short_name is None else _distinct(places)
        if len(distinct) > 1 and (short_name is not False or not _dominant(distinct)):
            raise AmbiguousPlace(typed, [p.label for p in distinct], typed_close=typed_close)
        return distinct[0]

    def _rows(self, key: str) -> list[tuple[PlacePoint, str]]:
        """Every entry of a name in England, most populous first, with its source."""
        with self._lock:
            rows = self._db.execute("SELECT name, county, lat, lon, population, lad, source FROM places "
                                    "WHERE key = ? AND source != ? ORDER BY population DESC",
                                    (key, ELSEWHERE_SOURCE)).fetchall()
        return [(PlacePoint(r[0], r[1], float(r[2]), float(r[3]), int(r[4]), r[5]), r[6]) for r in rows]

    def _places(self, key: str) -> tuple[list[PlacePoint], bool | None]:
        """Every place officially of a name, most populous first, and False; when there is none, every town
        also known by it, and True: of towns that share a short name none is taken for it without asking
        ('Kingston' is Kingston upon Thames to a Londoner, whatever the size of Kingston upon Hull). A town
        known by the name that dwarfs every place officially so named joins them, and True: the person is
        asked, never silently given the hamlet ('Stoke': Stoke-on-Trent or the Stoke in Cheshire). So does a
        neighbourhood that dwarfs them in a local authority none of them is in: GeoNames lacks some towns the
        MSOA names have ('Loughton': the Essex town of 33,000 or GeoNames' two hamlets; 'Chorlton': Manchester's
        or the Cheshire hamlet, which was taken); and a town the MSOAs split by compass points, at least half as
        big as the largest of them (`SPLIT_TOWN_SHARE`). With none, the neighbourhoods of the name, one per local
        authority, and None."""
        places = self._rows(key)
        known_as = [p for p, source in places if source in (ALIAS_SOURCE, SHORT_FORM_SOURCE)]
        official = [p for p, source in places
                    if source not in (ALIAS_SOURCE, SHORT_FORM_SOURCE) and source not in NEIGHBOURHOOD_SOURCES]
        if not official:
            if known_as:
                return known_as, True
            return [p for p, source in places if source in NEIGHBOURHOOD_SOURCES], None
        largest = max(p.population or UNKNOWN_POPULATION for p in official)
        lads = {p.lad_code for p in official}  # a neighbourhood in one of theirs is one of them, as a rule
        # the people an entry known by the name, or a neighbourhood elsewhere, needs to join them, by its source
        needed = {ALIAS_SOURCE: DOMINANT_RATIO * largest, SHORT_FORM_SOURCE: DOMINANT_RATIO * largest,
                  NEIGHBOURHOOD_SOURCE: DOMINANT_RATIO * largest, SPLIT_TOWN_SOURCE: SPLIT_TOWN_SHARE * largest}
        joining = [p for p, source in places if source in needed and p.population >= needed[source]
                   and (source not in NEIGHBOURHOOD_SOURCES or p.lad_code not in lads)]
        if joining:
            return sorted(official + joining, key=lambda p: -p.population), True
        return official, False

    def _by_spelling(self, typed: str, key: str, within: Callable[[PlacePoint], bool] | None = None
                     ) -> tuple[list[PlacePoint], bool | None]:
        """Every entry of the one name nearest in spelling to one that matched nothing; the places of
        several names as alike are offered, and with none alike enough the nearest are named. Neighbourhood
        names are looked through only when no place's name is alike enough. Of names alike enough, those with a
        place `within` the county typed after the name are the only ones weighed, when there are any: the county
        tells 'Litchfield, Staffordshire' (Lichfield) from Titchfield, Hampshire, as alike."""
        named: list[tuple[str, float, int]] = []
        for keys in self._pools():
            nearest = process.extract(key, keys, scorer=fuzz.ratio, score_cutoff=NEAREST_MIN_SCORE, limit=5)
            named = named or nearest
            close = [match for match in nearest if match[1] >= TYPO_MIN_SCORE]
            if within is not None and (inside := [m for m in close if any(map(within, self._places(m[0])[0]))]):
                close = inside
            if not close:
                continue
            if len(close) == 1 or close[0][1] - close[1][1] >= TYPO_CLEAR_MARGIN:
                if OSA.distance(key, close[0][0]) <= TYPO_TAKEN_SLIPS:
                    if not (holding_keys := _names_with_words(key, self._pools())):
                        return self._places(close[0][0])
                    raise _asked(typed, self._distinct_places(close[0][0]), self._places_holding(holding_keys),
                                 within)
                close = close[:1]
            raise _asked(typed, [p for match in close if close[0][1] - match[1] < TYPO_CLEAR_MARGIN
                                 for p in self._distinct_places(match[0])], self._holding(key), within)
        if holding := self._holding(key):  # 'Purfleet': Purfleet-on-Thames, though spelt close to nothing
            raise _asked(typed, [], holding, within)
        raise UnknownPlace(typed, nearest=[self._distinct_places(m[0])[0].label for m in named[:NEAREST_SHOWN]])

    def _pools(self) -> tuple[list[str], list[str]]:
        """Every place's and town's short name's keys, and every neighbourhood's no place has (read once)."""
        if self._keys is None:
            with self._lock:
                rows = self._db.execute("SELECT DISTINCT key, source IN (?, ?) FROM places WHERE source NOT IN (?, ?) "
                                        "ORDER BY key", (*NEIGHBOURHOOD_SOURCES, ELSEWHERE_SOURCE,
                                                         SHORT_FORM_SOURCE)).fetchall()
            places = [k for k, neighbourhood in rows if not neighbourhood]
            scored = set(places)  # a neighbourhood name a place also has is scored with the places' names already
            self._keys = (places, [k for k, neighbourhood in rows if neighbourhood and k not in scored])
        return self._keys

    def _holding(self, key: str) -> list[PlacePoint]:
        """The places whose names hold a name that matched none as whole words, where they are few: likelier a
        place rehabmap lists under a longer name than a slip of the keys ('Meols': Great Meols; 'Gatwick': Gatwick
        Airport, where Atwick and Astwick were offered alone; 'Purfleet': Purfleet-on-Thames, where it was 'not a
        town … rehabmap knows'). None for a word of many names ('Green'), which says nothing of the place meant."""
        return self._places_holding(_names_with_words(key, self._pools()))

    def _places_holding(self, keys: list[str]) -> list[PlacePoint]:
        """The places of the names that hold a name as whole words (`_names_with_words`'s keys), where they are few."""
        return [] if len(keys) > OFFERED_AT_MOST else [p for k in keys for p in self._distinct_places(k)]

    def _near_post_town(self, places: list[PlacePoint], post_town: str) -> list[PlacePoint]:
        """The places within `SAME_PLACE_KM` of a town of the name typed after theirs: an address gives a village
        or suburb with its post town, and a person copies it ('Nailsea, Bristol', 'Paddock Wood, Tonbridge',
        'Kirkham, Preston'), which before was 'not a town … rehabmap knows'. A county or local authority typed
        after the name is weighed by what lies in it (`_lies_in`), never by the distance to its centre."""
        towns = [t for t, source in self._rows(post_town)
                 if source in (TOWN_SOURCE, ALIAS_SOURCE, *NEIGHBOURHOOD_SOURCES)]
        return [p for p in places
                if any(great_circle_km(p.lat, p.lon, t.lat, t.lon) <= SAME_PLACE_KM for t in towns)]

    def _lies_in(self, place: PlacePoint, wanted: str) -> bool:
        """Whether a typed county (its key) is an area the place lies in: the place itself (a council typed after
        its own name), its county as shown, its local authority, or a county that authority lies in, as the
        `counties` table files it ('Devon' for Plymouth, 'Greater Manchester' for Bolton, 'Herts' for St Albans,
        'Middlesex' for Harrow; `geodata.counties`), or the country ('Leeds, England'). Part of a county's name is
        enough ('Yorkshire' for North Yorkshire), as it always was, and its words in another order ('Yorkshire
        (East Riding)', as old NHS addresses write it, for the East Riding of Yorkshire)."""
        if self._counties is None:
            with self._lock:
                rows = self._db.execute("SELECT lad, county FROM counties").fetchall()
            counties: dict[str, list[str]] = {}
            for lad, county in rows:
                counties.setdefault(lad, []).append(county)
            self._counties = counties
        within = self._counties.get(place.lad_code or "", ())
        words = set(wanted.split())
        return wanted in _ANYWHERE or wanted == place_key(place.name) or any(
            wanted in name or words <= set(name.split()) for name in (place_key(place.county or ""), *within))

    def _nations(self, key: str) -> list[str]:
        """The nations beyond England with a place of the name, the most populous place's first."""
        with self._lock:
            rows = self._db.execute("SELECT county FROM places WHERE key = ? AND source = ? ORDER BY population DESC",
                                    (key, ELSEWHERE_SOURCE)).fetchall()
        return list(dict.fromkeys(nation for (nation,) in rows))

    def _distinct_places(self, key: str) -> list[PlacePoint]:
        places, short_name = self._places(key)
        return places if short_name is None else _distinct(places)

    def close(self) -> None:
        self._db.close()


def _outside_england(typed: str, nations: list[str]) -> OutsideEngland:
    """As a postcode there is told: where the place is, and where that nation lists its services."""
    return OutsideEngland(f"'{typed}' is a place in {' and in '.join(nations)}. {_england_only(nations)}",
                          field="place")


def _a_nation(nation: str, namesakes: list[PlacePoint]) -> OutsideEngland:
    """A nation typed as a place: where it lists its services, and how to ask for England's place of the name."""
    namesake = f" For {namesakes[0].label}, in England, type '{namesakes[0].label}'." if namesakes else ""
    return OutsideEngland(f"{nation[:1].upper()}{nation[1:]} is not in England. {_england_only([nation])}{namesake}",
                          field="place")


def _england_only(nations: list[str]) -> str:
    """Where each of the nations lists its services, for a place or name rehabmap cannot search from."""
    help_at = "; ".join(f"in {nation}, see {_HELP_IN[nation]}" for nation in nations)
    return f"rehabmap lists services in England only: for services {help_at}."


def _asked(typed: str, spelt: list[PlacePoint], holding: list[PlacePoint],
           within: Callable[[PlacePoint], bool] | None) -> AmbiguousPlace:
    """A name that matched none, asked about: the places `spelt` close to it, then as many of those `holding` it
    (`PlaceGazetteer._holding`) as make `OFFERED_AT_MOST`; a county typed after it keeps those that lie in it
    (`within`), where any do."""
    offered = spelt + [p for p in holding if p not in spelt][:max(OFFERED_AT_MOST - len(spelt), 0)]
    if within is not None and (there := [p for p in offered if within(p)]):
        offered = there
    return AmbiguousPlace(typed, [p.label for p in offered], typed_close=True)


def _names_with_words(key: str, pools: tuple[list[str], list[str]]) -> list[str]:
    """The names (keys) of the pools that hold a name typed as whole words ('Great Meols', 'Meols Cop' for
    'Meols'): a name that is a word of others is more likely a place rehabmap does not list than a slip of the
    keys, so the one slip from it is not taken silently. Before, 'Meols' (Wirral) searched from Mells, Somerset,
    246 km off. Read only on the way to taking a slip."""
    words = f" {key} "
    return [k for keys in pools for k in keys if words in f" {k} "]


def _distinct(places: list[PlacePoint]) -> list[PlacePoint]:
    """One entry per place: an entry within `SAME_PLACE_KM` of a more populous one of the name is that one."""
    kept: list[PlacePoint] = []
    for place in places:
        if all(great_circle_km(place.lat, place.lon, k.lat, k.lon) > SAME_PLACE_KM for k in kept):
            kept.append(place)
    return kept


def _dominant(distinct: list[PlacePoint]) -> bool:
    """Whether the first (most populous) of a name's places is the one people mean by the name alone."""
    return all(other.county != LONDON_COUNTY
               and distinct[0].population >= DOMINANT_RATIO * (other.population or UNKNOWN_POPULATION)
               for other in distinct[1:])
