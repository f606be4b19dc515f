"""FastAPI's own OpenTelemetry is off: in a process that has a tracer provider (as an agent would set up),
the app's requests, a search and a refused one among them, start no span; a plain FastAPI app in the same
process does, so the recorder is seen to work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.api.conftest import ROOT, TODAY

SCRIPT = """
import json
from opentelemetry import trace

spans = []


class Tracer(trace.NoOpTracer):
    def start_span(self, name, *args, **kwargs):
        spans.append(name)
        return super().start_span(name, *args, **kwargs)

    def start_as_current_span(self, name, *args, **kwargs):
        spans.append(name)
        return super().start_as_current_span(name, *args, **kwargs)


class Provider(trace.TracerProvider):
    def get_tracer(self, *args, **kwargs):
        return Tracer()


trace.set_tracer_provider(Provider())

from fastapi import FastAPI
from starlette.testclient import TestClient

from app.main import create_app

with TestClient(create_app()) as client:
    statuses = [client.post("/match", json={"home": {"postcode": "LS9 7TF"}}).status_code,
                client.post("/match", json={"home": {"postcode": "LS9 7TF"}, "age": "30"}).status_code,
                client.get("/services", params={"postcode": "LS9 7TF"}).status_code,
                client.get("/oruk/services").status_code]
ours = list(spans)
plain = FastAPI()
plain.get("/x")(lambda: {})
with TestClient(plain) as client:
    client.get("/x")
print(json.dumps({"statuses": statuses, "ours": ours, "plain": spans[len(ours):]}))
"""


def test_no_request_reaches_an_opentelemetry_provider(api_home: Path, data_dir: Path) -> None:
    env = {**os.environ, "REHABMAP_HOME": str(api_home), "REHABMAP_DATA_DIR": str(data_dir),
           "REHABMAP_RATE_LIMIT_PER_MINUTE": "0", "REHABMAP_WARM_UP": "false", "REHABMAP_TODAY": TODAY.isoformat(),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["statuses"] == [200, 422, 200, 200]
    assert seen["ours"] == []
    assert seen["plain"]  # a FastAPI app with its telemetry on does start spans in this process
