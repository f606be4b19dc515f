"""One clock: a server and `rehabmap gaps` started with REHABMAP_TODAY date the commissioners' reports by it,
as matching and the other answers do, not by the machine's date (they read `date.today()` before)."""

from __future__ import annotations

import html
from datetime import date

import httpx
from click.testing import CliRunner

from cli.gaps import gaps_command
from cli.main import _Group
from rehabmap.config import get_settings
from rehabmap.gaps.oaps import OapStore, read_month
from search.embedded import EmbeddedWriter, index_file
from tests.web.site import make_app, serve

TODAY = date(2019, 3, 14)  # long before the machine's date, never the same month
ICB = "E54000054"
AGE = (TODAY.year - 2017) * 12 + TODAY.month - 2  # in months: the February 2017 placements' age on TODAY


def _home(tmp_path, data_dir, geodata_dir, known_services):
    home = tmp_path / "home"
    home.mkdir()
    (home / "geodata").symlink_to(geodata_dir, target_is_directory=True)
    EmbeddedWriter(index_file(home)).replace_all(known_services)
    OapStore(home).save(read_month(data_dir / "oaps" / "oaps-open-data-feb-2017.csv", data_dir))
    return home


def test_a_server_started_with_rehabmap_today_dates_the_commissioners_pages_and_placements_by_it(
        tmp_path, monkeypatch, data_dir, geodata_dir, known_services):
    home = _home(tmp_path, data_dir, geodata_dir, known_services)
    monkeypatch.setenv("REHABMAP_TODAY", TODAY.isoformat())
    with serve(make_app(home, data_dir)) as base, httpx.Client(base_url=base) as client:
        assert client.get("/gaps/E54000054/oaps").json()["age_months"] == AGE
        summary = html.unescape(client.get(f"/pathway-gaps/{ICB}/summary").text)
        assert f"{ICB}, 14 March 2019" in summary and "from rehabmap's directory on 14 March 2019" in summary
        assert f"NHS Digital, {AGE} months old" in summary
        area = html.unescape(client.get(f"/pathway-gaps/{ICB}").text)
        assert f"<strong>{AGE} months old</strong>" in area


def test_rehabmap_gaps_started_with_rehabmap_today_dates_the_placements_by_it(
        tmp_path, monkeypatch, data_dir, geodata_dir, known_services):
    home = _home(tmp_path, data_dir, geodata_dir, known_services)
    for name, value in (("REHABMAP_HOME", str(home)), ("REHABMAP_DATA_DIR", str(data_dir)),
                        ("REHABMAP_TODAY", TODAY.isoformat())):
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        done = CliRunner().invoke(_Group(commands={"gaps": gaps_command}), ["gaps", ICB])
    finally:
        get_settings.cache_clear()
    assert done.exit_code == 0, done.output
    assert f"Out-of-area placements, 2017-02 (NHS Digital open data, {AGE} months old;" in done.output
