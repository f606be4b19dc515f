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


def _run(script: str) -> str:
    """`script` in a process of its own whose logging is `rehabmap serve`'s, with `line()` writing one access
    line (the handler's stream is a StringIO, `written`); its stdout."""
    prelude = """
import io, logging
from api.logging import configure_logging, log_request
from starlette.routing import Route
configure_logging("INFO")
ours, = logging.getLogger().handlers
written = io.StringIO()
ours.setStream(written)
def line():
    log_request({"method": "POST", "route": Route("/match", lambda r: None), "root_path": ""}, 200, 0.00125, None)
class Kept(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []
    def emit(self, record):
        self.records.append(record.getMessage())
"""
    return subprocess.run([sys.executable, "-c", prelude + script], capture_output=True, text=True,
                          check=True).stdout


def test_with_no_one_else_to_see_it_the_line_is_written_without_a_log_record() -> None:
    """The lean path: the line costs no `LogRecord` (what a third of a line's CPU went on), same text."""
    out = _run("""
made = []
real = logging.Logger.makeRecord
logging.Logger.makeRecord = lambda self, *a, **k: made.append(a) or real(self, *a, **k)
line()
print(len(made), repr(written.getvalue()))
""")
    count, text = out.split(" ", 1)
    assert count == "0"
    assert re.fullmatch(r"'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO rehabmap\.access POST /match 200 1\.2ms\\n'\n",
                        text)


STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}")


@pytest.mark.parametrize(("setup", "ours_written", "kept"), [
    ("logging.getLogger().addHandler(kept)", True, True),  # a handler of their own beside ours
    ("logging.getLogger('rehabmap').addHandler(kept)", True, True),  # on a logger the record passes
    ("logging.getLogger('rehabmap.access').addHandler(kept)", True, True),
    ("access = logging.getLogger('rehabmap.access'); access.addHandler(kept); access.propagate = False", False,
     True),  # their handler alone
    ("logging.getLogger('rehabmap').propagate = False", False, False),  # nowhere to go: not written
    ("logging.getLogger().addHandler(kept); logging.getLogger('rehabmap.access').addFilter(lambda r: False)",
     False, False),
    ("logging.getLogger().addHandler(kept); logging.getLogger().addFilter(lambda r: False)", True, True),  # not
    # asked: a logger's filters see only what is logged on it
    ("logging.getLogger().addHandler(kept); ours.addFilter(lambda r: False)", False, True),
    ("logging.getLogger().addHandler(kept); ours.setLevel(logging.WARNING)", False, True),
    ("logging.getLogger('rehabmap.access').setLevel(logging.WARNING)", False, False),
    ("logging.disable(logging.INFO)", False, False),
], ids=["root", "parent", "own logger", "own logger only", "not propagated", "logger filter", "root filter",
        "handler filter", "handler level", "logger level", "disabled"])
def test_a_deployers_logging_still_gets_the_records(setup: str, ours_written: bool, kept: bool) -> None:
    """Logging set up after rehabmap's (a handler, a filter, a level, propagation): the records go where
    `logging` itself sends them (the same script with the lean path off)."""
    script = f"""
kept = Kept()
{setup}
line()
print(repr(written.getvalue()), kept.records)
"""
    out = _run(script)
    assert STAMP.sub("<stamp>", out) == STAMP.sub("<stamp>", _run("import api.logging; api.logging._own = None\n"
                                                                  + script))
    assert ("INFO rehabmap.access POST /match 200 1.2ms" in out.split("'")[1]) is ours_written
    assert (out.rstrip().endswith("['POST /match 200 1.2ms']")) is kept


def test_a_formatter_or_record_factory_of_their_own_is_used() -> None:
    out = _run("""
ours.setFormatter(logging.Formatter("%(levelname)s|%(message)s"))
line()
ours.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s", datefmt="%H"))
line()
ours.setFormatter(logging.getLogger().handlers[0].formatter.__class__("%(asctime)s %(levelname)s %(name)s %(message)s"))
factory = logging.getLogRecordFactory()
def tagged(*args, **kwargs):
    record = factory(*args, **kwargs)
    record.name = "tagged"
    return record
logging.setLogRecordFactory(tagged)
line()
print(repr(written.getvalue()))
""")
    assert re.fullmatch(r"'INFO\|POST /match 200 1\.2ms\\n\d\d INFO rehabmap\.access POST /match 200 1\.2ms\\n"
                        r"[-\d]+ [:,\d]+ INFO tagged POST /match 200 1\.2ms\\n'\n", out)
