"""Validators for Open Referral replies: the official HSDS 3.0 schemas and the ORUK 3.0 profile.

Schemas are read from ../shared/oruk beside the checkout (see its README for their source and commit):

* HSDS 3.0 `compiled/` schemas (service, service_list, service_at_location_list: self-contained) and the
  entity schemas taxonomy.json / taxonomy_term.json (their `$ref`s resolved against the same folder);
  the Page wrapper and the `/` reply from the HSDS `openapi.json`.
* The ORUK profile is published as JSON Merge Patches (RFC 7386) over the HSDS entity schemas: they are
  applied here, and the patched entities validate replies too (e.g. the profile's `term` on taxonomy
  terms, `number` required on phones, `location_type` on locations).

Formats are checked (uuid, date, email, and uri, which jsonschema checks only with an extra package).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

ORUK_DIR = Path(__file__).resolve().parents[3] / "shared" / "oruk"
HSDS = ORUK_DIR / "hsds-3.0"
UK = ORUK_DIR / "uk-profile-3.0"
_BASE = "https://schemas.rehabmap.test/"
PAGE_KEYS = ("total_items", "total_pages", "page_number", "size", "first_page", "last_page", "empty", "contents")


def _format_checker() -> FormatChecker:
    checker = FormatChecker()

    @checker.checks("uri")
    def is_uri(value: object) -> bool:
        if not isinstance(value, str):
            return True
        parts = urlsplit(value)
        return bool(parts.scheme and parts.netloc) and " " not in value

    return checker


FORMATS = _format_checker()


def _read(path: Path) -> Any:
    if not path.is_file():
        pytest.fail(f"Open Referral schema {path} not found: put ../shared/oruk beside the checkout")
    return json.loads(path.read_text(encoding="utf-8"))


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, null removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _entities(profile: bool) -> dict[str, Any]:
    """HSDS entity schemas by file name, with the UK profile's patches applied when `profile`."""
    entities = {}
    for path in sorted(HSDS.glob("*.json")):
        if path.name == "openapi.json":
            continue
        schema = _read(path)
        patch_path = UK / path.name
        if profile and patch_path.is_file():
            patch = _read(patch_path)
            # A null patch leaves the entity out of the profile; nothing refers to it any more.
            schema = merge_patch(schema, patch) if patch is not None else {}
        entities[path.name] = schema
    return entities


@cache
def _registry(profile: bool) -> Registry:
    folder = "uk/" if profile else "hsds/"
    return Registry().with_resources(
        (_BASE + folder + name, Resource.from_contents(schema, default_specification=DRAFT202012))
        for name, schema in _entities(profile).items())


@cache
def entity(name: str, profile: bool = False) -> Draft202012Validator:
    """An HSDS entity schema (e.g. 'taxonomy_term'), or its ORUK-profile version."""
    folder = "uk/" if profile else "hsds/"
    return Draft202012Validator({"$ref": _BASE + folder + f"{name}.json"}, registry=_registry(profile),
                                format_checker=FORMATS)


@cache
def compiled(name: str) -> Draft202012Validator:
    """A self-contained HSDS schema from `compiled/` (e.g. 'service', 'service_list')."""
    return Draft202012Validator(_read(HSDS / "compiled" / f"{name}.json"), format_checker=FORMATS)


@cache
def _openapi() -> dict[str, Any]:
    return _read(HSDS / "openapi.json")


@cache
def page_schema() -> Draft202012Validator:
    return Draft202012Validator({**_openapi()["components"]["schemas"]["Page"], "required": list(PAGE_KEYS[:-1])})


@cache
def root_schema() -> Draft202012Validator:
    schema = _openapi()["paths"]["/"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    return Draft202012Validator({**schema, "required": ["version", "profile", "openapi_url"]},
                                format_checker=FORMATS)


def problems(validator: Draft202012Validator, instance: Any) -> list[str]:
    """Every violation, with where it is, so a failing test says exactly what is wrong."""
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
            for e in validator.iter_errors(instance)]


def assert_valid(validator: Draft202012Validator, instance: Any) -> None:
    found = problems(validator, instance)
    assert not found, "\n".join(found[:20])


def assert_page(body: dict[str, Any], item: list[Draft202012Validator]) -> None:
    """An HSDS Page: the wrapper's fields consistent with each other, each item valid against every schema."""
    assert set(PAGE_KEYS) <= set(body)
    assert_valid(page_schema(), {k: v for k, v in body.items() if k != "contents"})
    assert body["size"] == len(body["contents"])
    assert body["empty"] is (not body["contents"])
    assert body["first_page"] is (body["page_number"] == 1)
    assert body["last_page"] is (body["page_number"] >= body["total_pages"])
    for obj in body["contents"]:
        for validator in item:
            assert_valid(validator, obj)
