"""The server's log line keeps its text: `api.logging.SecondFormatter` writes what `logging.Formatter` writes
for the same record, and a server process's access line still reads `<date> <time>,<ms> INFO
rehabmap.access POST /match 200 <ms>ms`."""

from __future__ import annotations

import json
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
import json
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


PRELUDE = """
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
# Runs each script of a JSON object on stdin in a child forked after the prelude, and prints each child's stdout
# (or its traceback) by the script's name.
EACH = """
import json, os, sys, traceback
scripts, done = json.loads(sys.stdin.read()), {}
for name, script in scripts.items():
    read, write = os.pipe()
    if os.fork() == 0:
        os.close(read)
        sys.stdout = os.fdopen(write, "w")
        try:
            exec(script, dict(globals()))
            code = 0
        except BaseException:
            traceback.print_exc(file=sys.stdout)
            code = 1
        sys.stdout.flush()
        os._exit(code)
    os.close(write)
    with os.fdopen(read) as out:
        text = out.read()
    done[name] = [os.wait()[1] == 0, text]
sys.__stdout__.write(json.dumps(done))
"""


def _run_each(scripts: dict[str, str]) -> dict[str, str]:
    """Each script in a process of its own whose logging is `rehabmap serve`'s, with `line()` writing one access
    line (the handler's stream is a StringIO, `written`); each one's stdout, by name. One interpreter imports
    and configures, then forks a child for each script: a copy of that state, as a fresh interpreter that ran
    the same prelude has it (25 interpreters a run were one a script, ~0.45 s of CPU each)."""
    done = subprocess.run([sys.executable, "-c", PRELUDE + EACH], input=json.dumps(scripts), capture_output=True,
                          text=True, check=True)
    outputs = json.loads(done.stdout)
    failed = {name: text for name, (passed, text) in outputs.items() if not passed}
    assert not failed, failed
    return {name: text for name, (_passed, text) in outputs.items()}


LEAN_PATH = """
made = []
real = logging.Logger.makeRecord
logging.Logger.makeRecord = lambda self, *a, **k: made.append(a) or real(self, *a, **k)
line()
print(len(made), repr(written.getvalue()))
"""
WITHOUT_THE_LEAN_PATH = "import api.logging; api.logging._own = None\n"
SCENARIOS = {  # a deployer's logging set up after rehabmap's: whether our line is written, and theirs kept
    "root": ("logging.getLogger().addHandler(kept)", True, True),  # a handler of their own beside ours
    "parent": ("logging.getLogger('rehabmap').addHandler(kept)", True, True),  # on a logger the record passes
    "own logger": ("logging.getLogger('rehabmap.access').addHandler(kept)", True, True),
    "own logger only": ("access = logging.getLogger('rehabmap.access'); access.addHandler(kept); "
                        "access.propagate = False", False, True),  # their handler alone
    "not propagated": ("logging.getLogger('rehabmap').propagate = False", False, False),  # nowhere to go
    "logger filter": ("logging.getLogger().addHandler(kept); "
                      "logging.getLogger('rehabmap.access').addFilter(lambda r: False)", False, False),
    # not asked: a logger's filters see only what is logged on it
    "root filter": ("logging.getLogger().addHandler(kept); logging.getLogger().addFilter(lambda r: False)", True,
                    True),
    "handler filter": ("logging.getLogger().addHandler(kept); ours.addFilter(lambda r: False)", False, True),
    "handler level": ("logging.getLogger().addHandler(kept); ours.setLevel(logging.WARNING)", False, True),
    "logger level": ("logging.getLogger('rehabmap.access').setLevel(logging.WARNING)", False, False),
    "disabled": ("logging.disable(logging.INFO)", False, False),
}


def _scenario(setup: str) -> str:
    return f"""
kept = Kept()
{setup}
line()
print(repr(written.getvalue()), kept.records)
"""


FORMATTERS = """
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
"""


@pytest.fixture(scope="module")
def outputs() -> dict[str, str]:
    """Every script of this module, each run in a child of its own (`_run_each`)."""
    scripts = {"lean path": LEAN_PATH, "formatters": FORMATTERS}
    for name, (setup, _ours, _kept) in SCENARIOS.items():
        scripts[name] = _scenario(setup)
        scripts[f"{name}, without the lean path"] = WITHOUT_THE_LEAN_PATH + _scenario(setup)
    return _run_each(scripts)


def test_with_no_one_else_to_see_it_the_line_is_written_without_a_log_record(outputs) -> None:
    """The lean path: the line costs no `LogRecord` (what a third of a line's CPU went on), same text."""
    count, text = outputs["lean path"].split(" ", 1)
    assert count == "0"
    assert re.fullmatch(r"'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO rehabmap\.access POST /match 200 1\.2ms\\n'\n",
                        text)


STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}")


@pytest.mark.parametrize("name", SCENARIOS)
def test_a_deployers_logging_still_gets_the_records(outputs, name: str) -> None:
    """Logging set up after rehabmap's (a handler, a filter, a level, propagation): the records go where
    `logging` itself sends them (the same script with the lean path off)."""
    _setup, ours_written, kept = SCENARIOS[name]
    out = outputs[name]
    assert STAMP.sub("<stamp>", out) == STAMP.sub("<stamp>", outputs[f"{name}, without the lean path"])
    assert ("INFO rehabmap.access POST /match 200 1.2ms" in out.split("'")[1]) is ours_written
    assert (out.rstrip().endswith("['POST /match 200 1.2ms']")) is kept


def test_a_formatter_or_record_factory_of_their_own_is_used(outputs) -> None:
    assert re.fullmatch(r"'INFO\|POST /match 200 1\.2ms\\n\d\d INFO rehabmap\.access POST /match 200 1\.2ms\\n"
                        r"[-\d]+ [:,\d]+ INFO tagged POST /match 200 1\.2ms\\n'\n", outputs["formatters"])
