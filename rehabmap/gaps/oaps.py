"""Out-of-area placements (OAPs) beside the gaps: NHS Digital's monthly open data, read and kept per month.

The source is the monthly long-format CSV (`Question, Breakdown1, Breakdown1Code, [Breakdown1Description,]
Breakdown2, Breakdown2Code, [Breakdown2Description,] value`, and from 2017 `PublicationDate,
PublicationPeriod` first). Kept from it, per sending CCG and for England: OAPs active at the period end,
bed days (total OAP days over the period), and the OAPs active during the period by distance band (the bands
changed in Dec 2016; each month keeps its own); and the receiving providers with their OAPs active at the
period end (the open data gives receiving providers for England only, not per sending CCG).

**Suppressed** values (`*`, small numbers) stay suppressed, never 0: an ICB's total is the sum of the
figures that are published, with the number of its CCGs whose figure is suppressed beside it.

**Mapping** 2016 CCG codes (ODS, e.g. 00C) to today's areas: the shared small-area lookup
(`lookups/lookup_lsoa21_icb24.csv`) gives each sub-ICB location's NHS code (`sicbl24_code_nhs`), and a
sub-ICB location kept the code of the CCG it was. A CCG code that is no sub-ICB's code today (CCGs merged
since 2016) is not guessed: it is listed as unmapped, with its figures, and counts in no ICB. No shared lookup
maps those old codes onward (`lookups/names_ccgs.json` holds the 2019 codes, the same as today's).

So an ICB's figure may cover only part of it, or none: its sub-ICB locations whose code no CCG of the month had
are named beside the figure ("no figure for 15F (Leeds)"), and an ICB none of whose sub-ICB locations had a CCG
of the month has **no data**, never 0 placements. A figure every counted CCG suppressed is not published, not 0.
"""

from __future__ import annotations

import csv
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

from rehabmap.errors import InvalidValue, shorten
from rehabmap.small_areas import in_data, small_area_columns, small_area_file

LOOKUP = Path("lookups") / "lookup_lsoa21_icb24.csv"
ACTIVE = "OAPs active at period end"
BED_DAYS = "Total number of OAP days over the period"
_BAND = re.compile(r"^Number of OAPs active during the period with (?:a )?distance of (.+)$")
_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                       "nov", "dec"), 1)}
_BAND_FROM = re.compile(r"^(\d+(?:\.\d+)?) ?km or greater")
_FILE_MONTH = re.compile(r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*[-_ ]?(20\d\d)", re.I)


@dataclass(frozen=True)
class Figure:
    """A published number, or `suppressed` (a `*` in the source: a small number not published)."""

    value: float | None
    suppressed: bool = False

    @classmethod
    def parse(cls, text: str) -> Figure:
        text = text.strip()
        if text == "*":
            return cls(None, True)
        return cls(float(text))  # '6.7639e+006' too; a ValueError names a bad row


@dataclass
class Placements:
    """The OAP figures of one sending area (a CCG, or England)."""

    active_at_end: Figure | None = None
    bed_days: Figure | None = None
    distance_bands: dict[str, Figure] = field(default_factory=dict)


@dataclass
class SendingCcg:
    code: str  # ODS code of the 2016 CCG
    name: str | None
    sub_icb: str | None  # E38… of the sub-ICB location with this code today; None: unmapped
    icb: str | None
    placements: Placements


@dataclass(frozen=True)
class UnmappedCcg:
    """A 2016 CCG no sub-ICB location has the code of today, with its name as the file gives it (None where
    the file's layout has no names): listed, never guessed into an ICB."""

    code: str
    name: str | None


@dataclass(frozen=True)
class ReceivingProvider:
    code: str
    name: str | None
    active_at_end: Figure


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str


@dataclass
class OapMonth:
    """One month of the OAP open data, as imported."""

    month: str  # YYYY-MM: the period the figures are for
    source: str  # the file's name
    published: str | None  # YYYY/MM where the file says
    england: Placements
    ccgs: list[SendingCcg]
    receiving_providers: list[ReceivingProvider]
    rejected: list[Rejected]

    @property
    def unmapped(self) -> list[SendingCcg]:
        return [c for c in self.ccgs if c.icb is None]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> OapMonth:
        data = json.loads(text)

        def figure(value: dict[str, Any] | None) -> Figure | None:
            return None if value is None else Figure(**value)

        def placements(value: dict[str, Any]) -> Placements:
            bands = {k: Figure(**v) for k, v in value["distance_bands"].items()}
            return Placements(figure(value["active_at_end"]), figure(value["bed_days"]), bands)

        return cls(data["month"], data["source"], data["published"], placements(data["england"]),
                   [SendingCcg(c["code"], c["name"], c["sub_icb"], c["icb"], placements(c["placements"]))
                    for c in data["ccgs"]],
                   [ReceivingProvider(p["code"], p["name"], Figure(**p["active_at_end"]))
                    for p in data["receiving_providers"]],
                   [Rejected(**r) for r in data["rejected"]])

    def age_months(self, today: date) -> int:
        year, month = (int(part) for part in self.month.split("-"))
        return (today.year - year) * 12 + today.month - month


@dataclass(frozen=True)
class SubIcbLocation:
    """One of an ICB's sub-ICB locations today, with the local authorities it covers: a code alone (15F) does not
    tell a commissioner which part of the ICB a figure leaves out (Leeds)."""

    code: str  # NHS code, which the CCG it was had
    local_authorities: list[str]

    def __str__(self) -> str:
        return f"{self.code} ({', '.join(self.local_authorities)})" if self.local_authorities else self.code


@dataclass(frozen=True)
class AreaPlacements:
    """An ICB's OAPs in one month: the sum of its CCGs' published figures, and how many were suppressed.

    A total is None where no CCG counted publishes it (none counted, or every one suppressed): a sum of nothing
    is not 0 placements. `without_figures`: the ICB's sub-ICB locations no CCG of the month had the code of, so
    the totals leave them out."""

    month: str
    area_code: str
    ccgs: list[str]
    active_at_end: float | None
    active_suppressed: int  # CCGs whose figure is suppressed (not in the sum)
    bed_days: float | None
    bed_days_suppressed: int
    distance_bands: dict[str, float | None]  # nearest band first
    bands_suppressed: dict[str, int]
    without_figures: list[SubIcbLocation] = field(default_factory=list)
    # Per figure ('active_at_end', 'bed_days' or a distance band), the counted CCGs whose row of it the month lacks
    # (neither a number nor '*'): that total is of the others only, and says so.
    ccgs_lacking: dict[str, list[str]] = field(default_factory=dict)

    @property
    def no_data(self) -> bool:
        return not self.ccgs

    def of_whom(self, figure: str) -> str:
        """Whose a total is, where it is not the whole ICB's: " (02T, 03R only)" where sub-ICB locations have no CCG
        of the month, or where a counted CCG has no row of this figure (its total is of the others only)."""
        lacking = self.ccgs_lacking.get(figure, [])
        if not (self.partial or lacking):
            return ""
        return f" ({', '.join(c for c in self.ccgs if c not in lacking)} only)"

    @property
    def partial(self) -> bool:
        return bool(self.ccgs) and bool(self.without_figures)


def sub_icb_codes(data_dir: Path) -> dict[str, tuple[str, str]]:
    """NHS code of each sub-ICB location today → (its E38 code, its ICB's E54 code)."""
    return dict(_sub_icb_codes(in_data(data_dir, LOOKUP)))


@lru_cache(maxsize=2)
def _sub_icb_codes(path: Path) -> dict[str, tuple[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return {row["sicbl24_code_nhs"]: (row["sicbl24_code"], row["icb24_code"]) for row in csv.DictReader(handle)}


def sub_icb_locations(data_dir: Path, icb: str) -> list[SubIcbLocation]:
    """The ICB's sub-ICB locations today as the import's lookup maps them, each with the local authorities its
    small areas lie in (the small-area file), so a figure can name what it leaves out."""
    return list(_locations(in_data(data_dir, LOOKUP), small_area_file(data_dir)).get(icb, ()))


@lru_cache(maxsize=2)
def _locations(lookup: Path, small_areas: Path) -> dict[str, list[SubIcbLocation]]:
    columns = small_area_columns(small_areas)
    authorities: dict[str, dict[str, None]] = {}
    for e38, name in zip(columns["sicbl24_code"], columns["ltla24_name"]):
        authorities.setdefault(str(e38), {})[str(name)] = None
    found: dict[str, list[SubIcbLocation]] = {}
    for code, (e38, icb) in sorted(_sub_icb_codes(lookup).items()):
        found.setdefault(icb, []).append(SubIcbLocation(code, sorted(authorities.get(e38, ()))))
    return found


def month_of(path: Path, rows_period: str | None) -> str | None:
    """The period the file states: its own PublicationPeriod (2017/02), else its name (oaps-open-data-feb-2017.csv);
    None when neither says."""
    if rows_period:
        year, month = rows_period.split("/")
        return f"{int(year):04d}-{int(month):02d}"
    found = _FILE_MONTH.search(path.name)
    return f"{found.group(2)}-{_MONTHS[found.group(1).lower()[:3]]:02d}" if found else None


_GIVEN_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


def checked_month(given: str | None, stated: str | None, file: str, today: date) -> str:
    """The month a file is kept as. One given (`--month`) is a real month, not after `today`, and the file's own
    where it states one: before, it was taken as typed, so '../index-sources' wrote over the rebuild's list of
    sources, '2017-13' was a month 107 months old, '2031-01' became the latest, and '2016-11' filed January's
    figures as November's. It names the stored file, so nothing but a month may reach it."""
    if given is None:
        if stated is None:
            raise InvalidValue(f"Cannot tell the month of '{shorten(file)}': it has no PublicationPeriod column "
                               "and its name does not say (e.g. oaps-open-data-feb-2017.csv). Give --month YYYY-MM.",
                               field="month")
        return stated
    if not _GIVEN_MONTH.fullmatch(given):
        raise InvalidValue(f"--month must be a month written YYYY-MM, like 2017-02 (got '{shorten(given)}').",
                           field="month")
    if given > f"{today:%Y-%m}":
        raise InvalidValue(f"--month {given} is after this month ({today:%Y-%m}): give the month the file is for.",
                           field="month")
    if stated is not None and stated != given:
        raise InvalidValue(f"'{shorten(file)}' says it is for {stated} (its PublicationPeriod column or its name), not "
                           f"{given}: leave --month out.", field="month")
    return given


def read_month(path: Path, data_dir: Path, month: str | None = None, today: date | None = None) -> OapMonth:
    """Read one month file. A row that cannot be read is rejected with its line and reason; the others land.
    `month`: the month given for it, checked (`checked_month`) against `today` (the app's clock)."""
    path = Path(path)
    codes = sub_icb_codes(data_dir)
    england = Placements()
    ccgs: dict[str, SendingCcg] = {}
    providers: list[ReceivingProvider] = []
    rejected: list[Rejected] = []
    period: str | None = None
    published: str | None = None
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = {"Question", "Breakdown1", "Breakdown1Code", "value"} - set(reader.fieldnames or ())
        if missing:
            raise InvalidValue(f"'{shorten(path.name)}' is not an OAP open data file: no {', '.join(sorted(missing))} "
                               "column.", field="file")
        for line, row in enumerate(reader, start=2):
            period = period or row.get("PublicationPeriod") or None
            published = published or row.get("PublicationDate") or None
            breakdown, code, question = row["Breakdown1"], row["Breakdown1Code"], row["Question"]
            if row.get("Breakdown2") or breakdown not in ("England", "Ccg", "ReceivingProvider"):
                continue
            kind = _kind(question)
            if kind is None or (breakdown == "ReceivingProvider" and kind != "active"):
                continue
            try:
                figure = Figure.parse(row["value"])
            except ValueError:
                rejected.append(Rejected(line, f"value '{shorten(row['value'])}' is neither a number nor '*'"))
                continue
            name = row.get("Breakdown1Description") or None
            if breakdown == "ReceivingProvider":
                if code not in ("England", ""):
                    providers.append(ReceivingProvider(code, name, figure))
                continue
            if breakdown == "England" or code == "England":
                target = england
            else:
                if code not in ccgs:
                    sub_icb, icb = codes.get(code, (None, None))
                    ccgs[code] = SendingCcg(code, name, sub_icb, icb, Placements())
                target = ccgs[code].placements
            _set(target, kind, question, figure)
    kept = checked_month(month, month_of(path, period), path.name, today or date.today())
    return OapMonth(kept, path.name, published, england, list(ccgs.values()), providers, rejected)


def _kind(question: str) -> str | None:
    if question == ACTIVE:
        return "active"
    if question == BED_DAYS:
        return "bed_days"
    if _BAND.match(question):
        return "band"
    return None


def _set(target: Placements, kind: str, question: str, figure: Figure) -> None:
    if kind == "active":
        target.active_at_end = figure
    elif kind == "bed_days":
        target.bed_days = figure
    else:
        match = _BAND.match(question)
        assert match is not None
        target.distance_bands[match.group(1)] = figure


def band_order(band: str) -> float:
    """Where a distance band starts ("less than 25 km" 0, "25km or greater and less than 50km" 25): the bands
    read nearest first, whatever order the file gives them in."""
    found = _BAND_FROM.match(band)
    return float(found.group(1)) if found else 0.0


def ccgs(count: int) -> str:
    """A count of CCGs in words, "1 CCG" or "2 CCGs": Nottingham and Nottinghamshire's placements of Feb 2017, whose
    one mapped CCG (02Q, Bassetlaw) had its figure suppressed, read "not published (suppressed for 1 CCGs)"."""
    return f"{count} CCG{'' if count == 1 else 's'}"


def for_icb(month: OapMonth, icb: str, locations: list[SubIcbLocation] | None = None) -> AreaPlacements:
    """The ICB's CCGs (as mapped) summed: published figures only, suppressed ones counted apart. `locations`,
    the ICB's sub-ICB locations today (`sub_icb_locations`): those no CCG of the month had the code of are
    named as left out."""
    mine = [c for c in month.ccgs if c.icb == icb]

    def total(figures: list[Figure | None]) -> tuple[float | None, int]:
        published = [f.value for f in figures if f is not None and f.value is not None]
        return (sum(published) if published else None, sum(1 for f in figures if f is not None and f.suppressed))

    bands = sorted({b for c in mine for b in c.placements.distance_bands}, key=band_order)
    figures = {"active_at_end": [c.placements.active_at_end for c in mine],
               "bed_days": [c.placements.bed_days for c in mine],
               **{b: [c.placements.distance_bands.get(b) for c in mine] for b in bands}}
    (active, active_suppressed), (days, days_suppressed) = total(figures["active_at_end"]), total(figures["bed_days"])
    band_totals = {b: total(figures[b]) for b in bands}
    lacking = {key: [c.code for c, f in zip(mine, found) if f is None] for key, found in figures.items()}
    counted = {c.code for c in mine}
    return AreaPlacements(month.month, icb, [c.code for c in mine], active, active_suppressed, days, days_suppressed,
                          {b: v for b, (v, _) in band_totals.items()}, {b: s for b, (_, s) in band_totals.items()},
                          [place for place in locations or () if place.code not in counted],
                          {key: codes for key, codes in lacking.items() if codes})


@dataclass(frozen=True)
class PlacementsReport:
    """What every face shows beside an ICB's scorecard: the month, how old it is, the ICB's figures, what part
    of the ICB they cover (`scope`, a sentence), and what the month could not place."""

    month: str
    published: str | None
    source: str
    age_months: int
    area: AreaPlacements
    unmapped_ccgs: list[UnmappedCcg]
    receiving_providers_england: list[ReceivingProvider]
    scope: str = ""

    def rows(self) -> list[tuple[str, str]]:
        """The figures as a person reads them, for the page and the command line alike: "no data" where no CCG
        of the ICB was mapped, and a partial figure says whose it is ("40 (02T, 03R only)"), whether the ICB's
        other sub-ICB locations had no CCG of the month or a counted CCG has no row of that figure."""
        a = self.area

        def text(figure: str, total: float | None, suppressed: int) -> str:
            if total is None:
                return f"not published (suppressed for {ccgs(suppressed)})" if suppressed else "no data"
            return f"{total:,.0f}" + (f" and {suppressed} suppressed" if suppressed else "") + a.of_whom(figure)

        return ([("Placements active at the month's end", text("active_at_end", a.active_at_end, a.active_suppressed)),
                 ("Bed days in the month", text("bed_days", a.bed_days, a.bed_days_suppressed))]
                + [(f"Active in the month, {band}", text(band, total, a.bands_suppressed[band]))
                   for band, total in a.distance_bands.items()])

    def summary(self) -> str:
        """The one line a printable summary gives: the two main figures, or "no data", with what they cover."""
        if self.area.no_data:
            return f"no data (NHS Digital, {self.age_months} months old): {self.scope}"
        active, days = (text for _, text in self.rows()[:2])
        return (f"{active} active at the month's end, {days} bed days (NHS Digital, {self.age_months} months old). "
                + self.scope)

    @classmethod
    def of(cls, month: OapMonth, icb: str, today: date, data_dir: Path) -> PlacementsReport:
        locations = sub_icb_locations(data_dir, icb)
        area = for_icb(month, icb, locations)
        return cls(month.month, month.published, month.source, month.age_months(today), area,
                   [UnmappedCcg(c.code, c.name) for c in month.unmapped], month.receiving_providers,
                   _scope(area, locations))


def _scope(area: AreaPlacements, locations: list[SubIcbLocation]) -> str:
    """Which of the ICB's sub-ICB locations the figures are of, and which they leave out and why."""
    named = {place.code: str(place) for place in locations}
    counted = ", ".join(named.get(code, code) for code in area.ccgs)
    left = ", ".join(str(place) for place in area.without_figures)
    why = (f"no CCG of {area.month} had the code of {'any of them' if area.no_data else 'these'} (the CCGs there "
           "then have merged since: they are among the CCGs not mapped, which count in no ICB here)")
    if area.no_data:
        return (f"No data for this ICB: none of its sub-ICB locations today ({left or 'none known'}) has a figure; "
                f"{why}.")
    if area.partial:
        return f"Only part of the ICB: the figures are of CCGs {counted}; no figure for {left}: {why}."
    return f"The figures are of CCGs {counted}: every sub-ICB location of the ICB today."


# --- kept per month in the home -----------------------------------------------------------------------------

class OapStore:
    """The imported months, one JSON file each under `<home>/oaps/` (written whole, then renamed)."""

    def __init__(self, home: Path) -> None:
        self.folder = Path(home) / "oaps"

    def save(self, month: OapMonth) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / f"{month.month}.json"
        handle, temp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(month.to_json())
        os.replace(temp, target)
        return target

    def months(self) -> list[str]:
        return sorted(p.stem for p in self.folder.glob("*.json")) if self.folder.is_dir() else []

    def latest(self) -> OapMonth | None:
        months = self.months()
        return self.load(months[-1]) if months else None

    def load(self, month: str) -> OapMonth:
        return OapMonth.from_json((self.folder / f"{month}.json").read_text(encoding="utf-8"))
