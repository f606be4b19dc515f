"""The OpenAPI documents are complete, and schemathesis finds no 5xx and no reply that breaks them.

Schemathesis (its Python API, pytest integration) loads both documents from the live server — rehabmap's
own at /openapi.json and the ORUK one at /oruk/openapi.json — and sends generated requests, valid and
invalid, to every operation. Checks: no server error, every status and content type documented, every
body valid against its documented schema, documented headers present, invalid input rejected with a 4xx.

`positive_data_acceptance` is left out on purpose: it expects every schema-valid request to succeed, but
a well-formed postcode may not exist and a valid latitude may lie outside England, and those are precise
4xx answers by design (see the error tests), not faults. Bounded: a few examples per operation and mode,
deterministic; the whole run takes seconds.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from jsonschema import Draft202012Validator

# A deeper run: REHABMAP_FUZZ_EXAMPLES=500 python -m pytest tests/api/test_openapi.py
MAX_EXAMPLES = int(os.environ.get("REHABMAP_FUZZ_EXAMPLES", "15"))
CHECKS = [schemathesis.checks.not_a_server_error, schemathesis.checks.status_code_conformance,
          schemathesis.checks.content_type_conformance, schemathesis.checks.response_schema_conformance,
          schemathesis.checks.response_headers_conformance, schemathesis.checks.negative_data_rejection]
# Schemathesis gives up on a reply after 10 s, which a loaded machine can take to draw a gap map: a wait for
# the reply, bounded only against a hang.
REPLY_TIMEOUT_S = 300
FUZZ = settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="session")
def native_schema(live_server):
    return schemathesis.openapi.from_url(f"{live_server.url}/openapi.json")


@pytest.fixture(scope="session")
def oruk_schema(live_server):
    return schemathesis.openapi.from_url(f"{live_server.url}/oruk/openapi.json")


# rehabmap's own operations; routers that other parts of rehabmap add (gaps, pages) have their own tests.
NATIVE_TAGS = ["match", "services", "areas", "health", "gaps"]
native = schemathesis.pytest.from_fixture("native_schema").include(tag=NATIVE_TAGS)
oruk = schemathesis.pytest.from_fixture("oruk_schema")


@native.parametrize()
@FUZZ
def test_native_api_holds_to_its_openapi(case):
    case.call_and_validate(checks=CHECKS, timeout=REPLY_TIMEOUT_S)


@oruk.parametrize()
@FUZZ
def test_oruk_api_holds_to_its_openapi(case):
    case.call_and_validate(checks=CHECKS, timeout=REPLY_TIMEOUT_S)


@pytest.mark.parametrize("path", ["/openapi.json", "/oruk/openapi.json"])
def test_openapi_documents_every_operation(client, path):
    document = client.get(path).json()
    operations = [(p, m, op) for p, item in document["paths"].items() for m, op in item.items()
                  if path != "/openapi.json" or set(op.get("tags", ())) & set(NATIVE_TAGS)]
    assert len(operations) >= 7
    for p, method, op in operations:
        where = f"{method.upper()} {p}"
        assert op.get("summary") and op.get("description"), where
        assert {"400", "404", "422", "503"} <= set(op["responses"]), where
        for status in ("400", "404", "422"):
            assert "example" in op["responses"][status]["content"]["application/json"], where
        for parameter in op.get("parameters", []):
            assert parameter.get("description"), f"{where} {parameter['name']}"
        success = op["responses"]["200"]["content"]
        media = next(iter(success.values()))
        assert media.get("schema"), where
    schemas = document["components"]["schemas"]
    if path == "/openapi.json":
        assert schemas["MatchIn"]["examples"] and schemas["ServiceOut"]["examples"]
        for record in ("MatchResultOut", "ServiceOut", "ListedServiceOut"):
            properties = schemas[record]["properties"]
            assert properties["self_referral"]["description"], record
            assert properties["schedules"]["items"] == {"$ref": "#/components/schemas/ScheduleOut"}, record
        parameters = {p["name"]: p for p in document["paths"]["/services"]["get"]["parameters"]}
        assert parameters["postcode"]["examples"] and parameters["type"]["examples"]
    else:
        assert schemas["OrukService"]["properties"]["schedules"]["anyOf"][0]["items"] == {
            "$ref": "#/components/schemas/OrukSchedule"}


def _example(parameter: dict) -> str | None:
    """The value the document gives a parameter as its example, if any."""
    schema = parameter["schema"]
    given = [parameter.get("example"), *schema.get("examples", ()),
             *(e.get("value") for e in parameter.get("examples", {}).values())]
    return next((str(v) for v in given if v is not None), None)


def _takes_text(schema: dict) -> bool:
    kinds = [schema, *schema.get("anyOf", ())]
    return any(k.get("type") == "string" or k.get("items", {}).get("type") == "string" for k in kinds)


def _as_sent(schema: dict, value: str) -> object:
    """A query value as the document's schema sees it: a list parameter's single value is a list of one."""
    return [value] if any(k.get("type") == "array" for k in [schema, *schema.get("anyOf", ())]) else value


@pytest.mark.parametrize("path", ["/openapi.json", "/oruk/openapi.json"])
def test_a_blank_value_is_refused_where_the_document_refuses_it_and_only_there(client, path):
    """Before: GET /gaps/areas.geojson?type= (or type=%20, or type=a,,b), and every other route taking the gaps'
    types, answered 200 with every type, where an unknown type is a 400; the document allowed any string, so
    schemathesis' negative data never held a blank one (and `positive_data_acceptance`, left out, would have been
    the only check of the reverse: GET /services?type= and /oruk/services?taxonomy_term_id= were 400s the documents
    allowed). Each text query parameter of every GET operation, blank: the document refuses it exactly when the
    server does."""
    document, mounted = client.get(path).json(), path.removesuffix("/openapi.json")
    disagree, asked = [], 0
    for where, item in document["paths"].items():
        operation = item.get("get")
        if not operation or (not mounted and not set(operation.get("tags", ())) & set(NATIVE_TAGS)):
            continue
        parameters = operation.get("parameters", [])
        url = mounted + where
        for parameter in (p for p in parameters if p["in"] == "path"):
            url = url.replace(f"{{{parameter['name']}}}", _example(parameter) or "")
        for parameter in (p for p in parameters if p["in"] == "query" and _takes_text(p["schema"])):
            for blank in ("", " "):
                refused = not Draft202012Validator(parameter["schema"]).is_valid(_as_sent(parameter["schema"], blank))
                reply = client.get(url, params={parameter["name"]: blank})
                asked += 1
                assert reply.status_code < 500, (url, parameter["name"], reply.text)
                if refused != (reply.status_code >= 400):
                    said = "refuses" if refused else "allows"
                    disagree.append(f"{url}?{parameter['name']}={blank!r}: the document {said} it, the server "
                                    f"answers {reply.status_code} {reply.text[:100]}")
    assert asked >= (14 if mounted else 80) and not disagree, "\n".join(disagree)


def _text_fields(schema: dict, components: dict, at: tuple = ()) -> Iterator[tuple]:
    """The path to each text value of a request body's schema (a list's item as its index 0), its $refs followed."""
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    for kind in [schema, *schema.get("anyOf", ())]:
        if kind.get("type") == "string" and "enum" not in kind and "const" not in kind:
            yield at
        elif kind.get("type") == "array":
            yield from _text_fields(kind["items"], components, (*at, 0))
        elif "$ref" in kind:
            yield from _text_fields(kind, components, at)
        for name, field in kind.get("properties", {}).items():
            yield from _text_fields(field, components, (*at, name))


def _with(body: dict, at: tuple, value: str) -> object:
    """`body` with `value` at `at`; an object on the way holds it alone (a home is one of a postcode, a place or a
    point), a list (index 0) holds it only."""
    if not at:
        return value
    inner = _with({}, at[1:], value)
    return [inner] if at[0] == 0 else {**body, at[0]: inner}


def test_a_blank_value_in_the_match_body_is_refused_where_the_document_refuses_it_and_only_there(client):
    """Before: POST /match's body with home.postcode "" or " ", needs [" "] or types [" "] was a 400 the document
    allowed (`minLength: 1` lets " " through), where README says a value that names something states that a blank
    one is refused. Each text value of the body, blank, in an otherwise good question: the document refuses it
    exactly when the server does."""
    document = client.get("/openapi.json").json()
    components, good = document["components"]["schemas"], {"home": {"postcode": "LS9 7TF"}}
    body = document["paths"]["/match"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    validator = Draft202012Validator({**body, "components": document["components"]})
    disagree, asked = [], 0
    for at in _text_fields(body, components):
        for blank in ("", " "):
            sent = _with(good, at, blank)
            refused = not validator.is_valid(sent)
            reply = client.post("/match", json=sent)
            asked += 1
            assert reply.status_code < 500, (sent, reply.text)
            if refused != (reply.status_code >= 400):
                said = "refuses" if refused else "allows"
                disagree.append(f"{sent}: the document {said} it, the server answers {reply.status_code} "
                                f"{reply.text[:100]}")
    assert asked >= 14 and not disagree, "\n".join(disagree)


# JSON Schema's keywords that constrain one type of value, and that type: on a schema of another type (or of
# several), a validator ignores them, so a limit the server enforces is not one the document states.
TYPED_KEYWORDS = {"maxLength": "string", "minLength": "string", "pattern": "string", "maxItems": "array",
                  "minItems": "array", "maximum": ("integer", "number"), "minimum": ("integer", "number"),
                  "exclusiveMinimum": ("integer", "number"), "exclusiveMaximum": ("integer", "number")}


def _misplaced_keywords(node, where: str = "") -> list[str]:
    found = []
    if isinstance(node, dict):
        found += [f"{where} {k}" for k, kind in TYPED_KEYWORDS.items()
                  if k in node and node.get("type") not in (kind if isinstance(kind, tuple) else (kind,))]
        for key, value in node.items():
            found += _misplaced_keywords(value, f"{where}/{key}")
    elif isinstance(node, list):
        for n, value in enumerate(node):
            found += _misplaced_keywords(value, f"{where}/{n}")
    return found


@pytest.mark.parametrize("path", ["/openapi.json", "/oruk/openapi.json"])
def test_every_limit_is_stated_on_a_schema_it_applies_to(client, path):
    """Before: MatchIn's `types` (a list, or 'any') said `maxLength: 7` beside its anyOf, which no validator
    applies to a list: the server refused an eighth type that the document allowed."""
    assert _misplaced_keywords(client.get(path).json()) == []
    if path == "/openapi.json":
        listed = client.get(path).json()["components"]["schemas"]["MatchIn"]["properties"]["types"]["anyOf"][0]
        assert listed["type"] == "array" and listed["maxItems"] == 7


def test_whose_word_a_gender_is_is_documented_where_records_are_given(client):
    """`gender_basis` and `gender_from_source` (session 26): before, a record said only
    `gender_stated_by_maintainers`, so a consumer could not tell a gender the team changed from one it added, nor
    see one it removed. Each record's schema names the four bases and says what the source's gender is."""
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    for record in ("MatchResultOut", "ServiceOut", "ListedServiceOut"):
        properties = schemas[record]["properties"]
        basis, from_source = properties["gender_basis"], properties["gender_from_source"]
        [named] = [kind["enum"] for kind in basis["anyOf"] if "enum" in kind]
        assert named == ["source", "added_by_maintainers", "changed_by_maintainers", "removed_by_maintainers"], record
        assert "null: no gender, and none removed" in basis["description"], record
        assert "never filters on it" in from_source["description"], record


def test_every_field_every_gaps_row_has_is_required_and_the_new_ones_described(client):
    """`found_may_be_more_parts`/`_count` (and `kinds_covered_parts`) had defaults, so the document left them off
    `required` though every all-areas row has them, and the count had no description: a client generated from the
    document read them as optional. Now every field of a row is required, and the two say what they count."""
    row = client.get("/openapi.json").json()["components"]["schemas"]["AreaRowOut"]
    assert set(row["required"]) == set(row["properties"])
    for name in ("found_may_be_more_parts", "found_may_be_more_count", "kinds_covered_parts"):
        assert row["properties"][name]["description"], name


def test_the_count_in_the_home_icb_says_what_it_counts(client):
    """`in_home_icb`, a bare count beside "Found. The directory holds complete … data for this area", had no
    description: a client read 3 as all of the type in the ICB, where that area's coverage is the gaps row's to say."""
    count = client.get("/openapi.json").json()["components"]["schemas"]["TypeSummaryOut"]["properties"]["in_home_icb"]
    assert "pass the request's filters inside the home's ICB" in count["description"]
    assert "found_may_be_more_parts" in count["description"] and "/gaps?level=icb" in count["description"]
