"""Schemathesis over the maintainers' API (/maintain) on a live `rehabmap serve`, with a valid admin token:
no 5xx, and every reply as documented. Generated requests change the services of this module's own copy of
the sample index, which is checked for consistency after each of them (so no test here depends on running
after another). The public operations are fuzzed by tests/api/test_openapi.py; together they cover the
whole API.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis import GenerationMode
from schemathesis.core.parameters import ParameterLocation

from tests.maintain.consistency import assert_consistent
from tests.maintain.conftest import make_site, start_server
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
