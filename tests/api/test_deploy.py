"""The deployment files do what docs/deploy.md says: docker-compose.yml is a valid Compose file with two API
replicas behind the proxy, the cluster, PostgreSQL and healthchecks; and deploy/nginx.conf, run by Debian's
nginx on 127.0.0.1 in front of two real `rehabmap serve` processes, spreads requests over both, keeps
answering when one goes down, and does not publish /metrics.

No Docker engine runs here: `docker-compose config` validates the file without one. Without nginx or
docker-compose installed (Debian `nginx-light`, `docker-compose`), those tests are skipped.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml

from tests.api.conftest import serve
from tests.listening import ANSWER_TIMEOUT_S, listening_socket, url_of, wait_until_up

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed")
def test_the_compose_file_is_valid_and_runs_two_replicas_behind_the_proxy(tmp_path):
    checked = subprocess.run(["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config"],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr
    config = yaml.safe_load(checked.stdout)
    services = config["services"]
    assert {"elasticsearch", "postgres", "api-1", "api-2", "proxy", "indexer", "sync"} <= set(services)
    for name in ("elasticsearch", "postgres", "api-1", "api-2", "proxy"):
        assert services[name]["healthcheck"]["test"], name
    upstream = re.findall(r"server (api-\d):8000", (ROOT / "deploy/nginx.conf").read_text())
    assert upstream == ["api-1", "api-2"]
    assert services["api-1"]["environment"]["REHABMAP_BACKEND"] == "elasticsearch"
    # OpenSearch 2 is the alternative: its node only under its profile, the engine chosen by a variable.
    assert services["opensearch"]["profiles"] == ["opensearch"] and services["opensearch"]["healthcheck"]["test"]
    assert services["api-1"]["environment"]["REHABMAP_SEARCH_ENGINE"] in ("elasticsearch", "opensearch")
    assert "ports" not in services["api-1"]  # only the proxy is published
    image = services["elasticsearch"]["image"]
    client = re.search(r"^elasticsearch==(\d+\.\d+)\.", (ROOT / "requirements/runtime.txt").read_text(), re.M)
    assert client and image.rsplit(":", 1)[1].startswith(client.group(1) + "."), (image, client)


@pytest.fixture
def nginx_in_front(api_home, data_dir, tmp_path):
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        pytest.skip("nginx is not installed")
    # The replicas answer /health and /metrics only: no warm-up.
    with serve(api_home, data_dir, tmp_path / "api-1.log", warm_up=False, FORWARDED_ALLOW_IPS="127.0.0.1") as one, \
            serve(api_home, data_dir, tmp_path / "api-2.log", warm_up=False, FORWARDED_ALLOW_IPS="127.0.0.1") as two:
        conf = (ROOT / "deploy/nginx.conf").read_text()
        conf = conf.replace("server api-1:8000", f"server {one.url.removeprefix('http://')}")
        conf = conf.replace("server api-2:8000", f"server {two.url.removeprefix('http://')}")
        # nginx serves on a socket this test binds and listens on, inherited as nginx's own upgrade hands its
        # sockets on (the NGINX variable names their descriptors): the port is never free between the test
        # choosing it and nginx serving it, and the first request waits in its backlog until nginx answers.
        with listening_socket() as sock:
            url = url_of(sock)
            conf = conf.replace("listen 8080;", f"listen {url.removeprefix('http://')};")
            (tmp_path / "nginx.conf").write_text(conf)
            process = subprocess.Popen([nginx, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-g",
                                        f"daemon off; pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                       env={**os.environ, "NGINX": f"{sock.fileno()};"}, pass_fds=(sock.fileno(),))
        try:
            wait_until_up(url, process, tmp_path / "error.log")  # nginx proxies /health to the replicas
            yield url, one, two
        finally:
            process.send_signal(signal.SIGQUIT)
            process.wait(timeout=10)


def _answered(log: Path) -> int:
    return len(re.findall(r"GET /health 200", log.read_text()))


def test_the_proxy_spreads_requests_fails_over_and_hides_the_metrics(nginx_in_front):
    url, one, two = nginx_in_front
    before = _answered(one.log_path), _answered(two.log_path)
    with httpx.Client(base_url=url, timeout=ANSWER_TIMEOUT_S) as client:
        for _ in range(20):
            assert client.get("/health").status_code == 200
        after = _answered(one.log_path), _answered(two.log_path)
        assert after[0] > before[0] and after[1] > before[1]  # both replicas answered
        assert client.get("/metrics").status_code == 404
        assert httpx.get(one.url + "/metrics", timeout=ANSWER_TIMEOUT_S).status_code == 200  # on the replica itself
        one.process.terminate()
        one.process.wait(timeout=10)
        for _ in range(10):  # the replica that is down is passed over
            assert client.get("/health").status_code == 200
