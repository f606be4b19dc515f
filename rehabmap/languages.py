"""The languages a person may need a service to speak (the `language:<code>` needs): ISO 639-3, as the
Debian iso-codes table pycountry ships holds it (7,919 languages: every ISO 639-1 two-letter code, every
ISO 639-2 and 639-3 three-letter one, with their English names).

A clinician types a language's name ("Polish") or its code ("pl", "pol"); a need is kept as the code,
two letters where ISO 639-1 has one (what records carry: `language:pl`), and shown by its English name.
What ISO 639 does not list ("xx") is refused with the names nearest in spelling, never kept as a code
no record can carry. A language people name otherwise than ISO 639 does ("Cantonese" for its "Yue Chinese") is read
and shown by that name (`PEOPLES_NAMES`), its ISO name still read; its code is ISO's.

A record's code is kept the same way at import (`record_code`: "pol" is "pl"), so a search for Polish finds
it whichever of ISO's codes its source gave. A macrolanguage (ISO 639-3's "Chinese", "Arabic", "Persian") is
met by any of its languages: a service stating Cantonese (yue) also states Chinese (zh), its macrolanguage
(`with_macrolanguages`), so a search for Chinese finds it. Not the other way: a service stating only
"Chinese" may speak Mandarin alone, so for a search for Cantonese the language is not known (ask the service).

The table is read from pycountry's own file, once a process and only when a language is first asked for
or shown (or a record gives one by a name or three letters): pycountry's lookups index every field of every one
of its databases on first use (0.38 s), and importing it reads its version from the package metadata (45 ms);
this reads the one file (~50 ms).
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

# ISO 639's special codes (und "Undetermined", mul "Multiple languages", zxx, mis) name no language a
# person speaks.
_SPECIAL = "S"
# How alike in spelling (rapidfuzz token_set_ratio) a name must be to be offered for one no language has: "Punjabi"
# found ISO's "Panjabi" (86), "Polsih" "Polish" (83), "Greek" "Modern Greek (1453-)" (100); at 80, "Farsi" offered
# Arosi and Sarsi, "Greek" Creek.
_SUGGEST_SCORE = 83
_SUGGESTIONS = 3
# The names people and families use for a language that ISO 639-3 names otherwise, as NHS interpreting services
# list them (Farsi, Cantonese, Punjabi, Pashto…): read, and shown on every page and in every text, instead of ISO's
# (Persian, Yue Chinese, Panjabi, Pushto; ISO's names are still read). Punjabi is ISO's Panjabi, the
# Gurmukhi-written one most UK Punjabi speakers read; a "(macrolanguage)" ISO adds to a name is no part of it.
# CLDR, through babel, knows some of these (Cantonese, Punjabi), for a 36 MB dependency.
PEOPLES_NAMES = {"fa": "Farsi", "yue": "Cantonese", "cmn": "Mandarin", "pa": "Punjabi", "nan": "Hokkien",
                 "ckb": "Sorani", "kmr": "Kurmanji", "ps": "Pashto", "el": "Greek", "sw": "Swahili",
                 "ne": "Nepali", "ms": "Malay"}
# ISO 639-3's macrolanguages (SIL's mapping table; pycountry ships none) that people in England need most often
# named, each with its individual languages, by the codes records carry (two letters where ISO 639-1 has them):
# read without ISO 639's table, so a record read back from an index never loads it for them.
_MACROLANGUAGES = {
    "zh": "cmn yue hak nan wuu hsn gan cjy cdo cpx czh czo mnp lzh cnp csp",
    "ar": "arb arz apc acm ary aeb arq ayl apd afb ars acw ayh ayn ayp abv acq acx acy adf aao abh auz avl ssh shu pga",
    "fa": "pes prs", "ku": "kmr ckb sdh", "ps": "pbt pbu pst", "sq": "als aae aat aln", "sw": "swh swc",
    "om": "gax gaz hae orc", "et": "ekk vro", "lv": "lvs ltg", "ne": "npi dty", "uz": "uzn uzs", "az": "azj azb",
    "mn": "khk mvf", "yi": "ydd yih", "no": "nb nn", "sh": "bs hr sr cnr", "ms": "zsm",
}
_MACROLANGUAGE_OF = {member: macro for macro, members in _MACROLANGUAGES.items() for member in members.split()}


@dataclass(frozen=True)
class Language:
    code: str  # the ISO 639-1 code where there is one, else the ISO 639-3 code
    name: str  # the English name people use (`PEOPLES_NAMES`), else ISO 639's


class UnknownLanguage(ValueError):
    """No language has this name or code; `suggestions` are the living languages nearest in spelling."""

    def __init__(self, typed: str, suggestions: tuple[Language, ...]) -> None:
        super().__init__(typed)
        self.typed = typed
        self.suggestions = suggestions


@dataclass(frozen=True)
class _Table:
    by_key: dict[str, Language]  # a code (any of a language's) or a name, casefolded
    living_names: list[str]  # offered for a name no language has


@cache
def _table() -> _Table:
    spec = importlib.util.find_spec("pycountry")
    assert spec is not None and spec.submodule_search_locations, "pycountry is a dependency (pyproject.toml)"
    path = Path(next(iter(spec.submodule_search_locations))) / "databases" / "iso639-3.json"
    names: dict[str, Language] = {}
    codes: dict[str, Language] = {}  # ISO 639's codes are lower case
    living = []
    for entry in json.loads(path.read_bytes())["639-3"]:
        if entry["type"] == _SPECIAL:
            continue
        code = entry.get("alpha_2") or entry["alpha_3"]
        language = Language(code, PEOPLES_NAMES.get(code, entry["name"]))
        for field in ("alpha_2", "alpha_3", "bibliographic"):
            if field in entry:
                codes[entry[field]] = language
        for field in ("name", "common_name", "inverted_name"):
            if field in entry:
                names[entry[field].casefold()] = language
        if entry["type"] == "L":
            living.append(entry["name"])
    # A code over a name: a name of two or three letters ("Ga", the language ISO 639-3 codes gaa) that is another
    # language's code ("ga", Irish) reads as the code. ISO 639's names are unique: a name reads as one language.
    for code, name in PEOPLES_NAMES.items():
        names[name.casefold()] = codes[code]
        living.append(name)
    by_key = {**names, **codes}
    return _Table(by_key, living)


def find_language(typed: str) -> Language:
    """The language a person names by its English name or ISO 639 code, in any case."""
    key = " ".join(typed.split()).casefold()
    table = _table()
    language = table.by_key.get(key)
    if language is not None:
        return language
    from rapidfuzz import fuzz, process  # only for a name no language has: not on every import of the vocabulary

    near = process.extract(key, table.living_names, scorer=fuzz.token_set_ratio, processor=str.casefold,
                           score_cutoff=_SUGGEST_SCORE, limit=_SUGGESTIONS)
    # A language near by its ISO name and by the name people use is offered once, by the latter.
    offered = dict.fromkeys(table.by_key[name.casefold()] for name, _, _ in near)
    raise UnknownLanguage(typed, tuple(offered))


def language_name(code: str) -> str:
    """The English name people use for a language a need names by code (a record's may be a three-letter one, "pol"); a
    code ISO 639 does not list (a record's source may carry one) as it is."""
    language = _table().by_key.get(code)
    return language.name if language is not None else code


def record_code(code: str) -> str:
    """The code a record keeps for a language its source gave by any of ISO 639's codes or names ("pol",
    "Polish": "pl"); a code ISO 639 does not list (a source may give one) as it is, in lower case. Two letters
    are that code already (ISO 639-1's, or one it does not list): the table is not read for them, so a record
    read back from an index (which holds `language:pl`) never loads it."""
    key = " ".join(code.split()).casefold()
    if len(key) == 2:
        return key
    language = _table().by_key.get(key)
    return language.code if language is not None else key


def with_macrolanguages(codes: set[str]) -> set[str]:
    """Records' language codes with the macrolanguage of each individual language among them (Cantonese,
    "yue", is a Chinese language: "zh" too), so a need for the macrolanguage finds every one of its languages."""
    return codes | {_MACROLANGUAGE_OF[code] for code in codes if code in _MACROLANGUAGE_OF}


def suggestion_text(error: UnknownLanguage) -> str:
    """' Did you mean Punjabi (pa)?', or nothing when no language is near in spelling."""
    if not error.suggestions:
        return ""
    named = [f"{language.name} ({language.code})" for language in error.suggestions]
    return " Did you mean " + (named[0] if len(named) == 1 else ", ".join(named[:-1]) + " or " + named[-1]) + "?"
