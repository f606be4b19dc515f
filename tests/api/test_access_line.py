"""The server's log line keeps its text: `api.logging.SecondFormatter` writes what `logging.Formatter` writes
for the same record, and a server process's access line still reads `<date> <time>,<ms> INFO
rehabmap.access POST /match 200 <ms>ms`."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import time

import pytest

from api.logging import FORMAT, SecondFormatter


def _record(created: float) -> logging.LogRecord:
    record = logging.LogRecord("rehabmap.access", logging.INFO, __file__, 1, "%s %s %s %.1fms",
                               ("POST", "/match", 200, 1.25), None)
    record.created, record.msecs = created, (created - int(created)) * 1000
    return record


@pytest.mark.parametrize("converter", [time.localtime, time.gmtime], ids=["local time", "UTC"])
def test_each_line_reads_as_logging_formatter_writes_it(converter) -> None:
    now = time.time()
    moments = [now, now + 0.0004, now + 0.9991, now + 1.0, now + 1.5, now - 3600.25, now + 86400 * 183.7, now]
    ours, logging_own = SecondFormatter(FORMAT), logging.Formatter(FORMAT)
    ours.converter = logging_own.converter = converter  # type: ignore[method-assign]
    for created in moments:
        assert ours.format(_record(created)) == logging_own.format(_record(created))


def test_a_date_format_of_its_own_is_honoured() -> None:
    ours, logging_own = SecondFormatter(FORMAT, datefmt="%H:%M:%S"), logging.Formatter(FORMAT, datefmt="%H:%M:%S")
    assert ours.format(_record(1_700_000_000.5)) == logging_own.format(_record(1_700_000_000.5))


def test_a_servers_access_line() -> None:
    """In a process of its own, as `rehabmap serve` configures it (the logging of this test process is
    pytest's), with the metrics handed the same facts."""
    script = """
import logging
from api.logging import configure_logging, log_request
from starlette.routing import Route
configure_logging("INFO")
seen = []
log_request({"method": "POST", "route": Route("/match", lambda r: None), "root_path": ""}, 200, 0.00125,
            lambda *facts: seen.append(facts))
logging.getLogger("rehabmap.api").error("unexpected error: %s at %s", "KeyError", "match.py:3 f")
assert seen == [("POST", "/match", 200, 0.00125)], seen
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    assert re.fullmatch(rf"{stamp} INFO rehabmap\.access POST /match 200 1\.2ms\n"
                        rf"{stamp} ERROR rehabmap\.api unexpected error: KeyError at match\.py:3 f\n", out.stderr)
