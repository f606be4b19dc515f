"""Schemathesis over the maintainers' API (/maintain) on a live `rehabmap serve`, with a valid admin token:
no 5xx, and every reply as documented. Generated requests change the services of this module's own copy of
the sample index, which is checked for consistency after each of them (so no test here depends on running
after another). The public operations are fuzzed by tests/api/test_openapi.py; together they cover the
whole API.
"""

from __future__ import annotations

import os

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from jsonschema import Draft202012Validator
from schemathesis import GenerationMode
from schemathesis.core.parameters import ParameterLocation

from tests.maintain.consistency import assert_consistent
from tests.maintain.conftest import OWNED_A, make_site, start_server
from search.embedded import index_file

MAX_EXAMPLES = int(os.environ.get("REHABMAP_FUZZ_EXAMPLES", "15"))
CHECKS = [schemathesis.checks.not_a_server_error, schemathesis.checks.status_code_conformance,
          schemathesis.checks.content_type_conformance, schemathesis.checks.response_schema_conformance,
          schemathesis.checks.response_headers_conformance, schemathesis.checks.negative_data_rejection]
REPLY_TIMEOUT_S = 300  # a bound against a hang, not schemathesis's 10 s, which a loaded machine can take
FUZZ = settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def fuzzed_site(sample_index, geodata_dir, data_dir, tmp_path_factory):
    return make_site(tmp_path_factory.mktemp("fuzz") / "home", sample_index, geodata_dir, data_dir)


@pytest.fixture(scope="module")
def fuzz_server(fuzzed_site):
    server = start_server(fuzzed_site)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def maintain_schema(fuzz_server):
    return schemathesis.openapi.from_url(f"{fuzz_server.url}/openapi.json")


maintain = schemathesis.pytest.from_fixture("maintain_schema").include(tag="maintain")


@maintain.parametrize()
@FUZZ
def test_maintain_api_holds_to_its_openapi_with_an_admin_token_and_the_stores_agree(case, fuzzed_site):
    """Each generated request is answered as documented, and after each that changed something (the audit
    log grew, or the index was written), the index and the directory (overlay and audit log) agree."""
    # A case whose headers were made invalid on purpose (the token left out, say) is sent as generated: the
    # admin token laid over it would make it a valid request, which negative_data_rejection then blames.
    headers = case.meta and case.meta.components.get(ParameterLocation.HEADER)
    invalid = headers is not None and headers.mode is GenerationMode.NEGATIVE
    before = changes(fuzzed_site)
    case.call_and_validate(headers=None if invalid else fuzzed_site.auth("admin"), checks=CHECKS,
                           timeout=REPLY_TIMEOUT_S)
    if changes(fuzzed_site) != before:  # the whole check after every case would make this module ten times slower
        assert_consistent(fuzzed_site)


def changes(site) -> tuple[int, int]:
    """What any write moves: the audit log's length and the index file's modification time."""
    return site.directory.audit.entries(limit=0)[1], index_file(site.home).stat().st_mtime_ns


@pytest.mark.parametrize(("blank", "field", "said"), [
    ({"subtype": " "}, "subtype", "subtype: The subtype given is blank, which names no subtype"),
    ({"needs_met": [" "]}, "needs_met.0", "needs_met.0: The need given is blank, which names no need"),
    ({"needs_not_met": ["autism", " "]}, "needs_not_met.1",
     "needs_not_met.1: The need given is blank, which names no need"),
    ({"subtype": ""}, "subtype", "subtype: The subtype given is blank, which names no subtype"),
    ({"needs_not_met": ["autism", ""]}, "needs_not_met.1",
     "needs_not_met.1: The need given is blank, which names no need")],
    ids=["subtype", "needs_met", "needs_not_met", "empty-subtype", "empty-need"])
def test_a_blank_code_in_a_change_is_refused_by_the_document_as_by_the_server(fuzz_server, fuzzed_site, blank, field,
                                                                              said):
    """Before: the maintainers' body had a `Code` of its own (`minLength: 1`), which let " " through as a need or
    subtype for the record to refuse, after the If-Match check (a stale version's 412, not the 422 of a bad body)
    and as "Subtype ''" or "Unknown need ''"; now the one `Code` of the API's schemas, its stated pattern enforced.
    A blank need is named where it is in its list, as a need too long is (before, "needs_not_met" whichever of its
    needs was blank). With a stale If-Match the 422 comes first: the body could be no change of any version (README,
    "The maintainers' API"). An empty one ("") is named as blank too: before, `Code`'s `minLength: 1` refused it
    first, "needs_not_met.1: String should have at least 1 character"."""
    document = httpx.get(f"{fuzz_server.url}/openapi.json", timeout=REPLY_TIMEOUT_S).json()
    validator = Draft202012Validator({"$ref": "#/components/schemas/ServicePatchIn", **document})
    before = changes(fuzzed_site)
    reply = httpx.patch(f"{fuzz_server.url}/maintain/services/{OWNED_A[1]}", json=blank,
                        headers={**fuzzed_site.auth("admin"), "If-Match": '"stale"'}, timeout=REPLY_TIMEOUT_S)
    assert not validator.is_valid(blank) and reply.status_code == 422, reply.text
    assert (reply.json()["error"]["message"], reply.json()["error"]["field"]) == (said, field)
    assert changes(fuzzed_site) == before
