"""Organisations and the services they own, through the maintainers' API and `rehabmap orgs`: what is not so is
refused by name, with nothing written (adding and linking that works: test_freshness.py, tests/keepers)."""

from __future__ import annotations

from tests.maintain.conftest import OWNED_A, OWNED_B, cli_here

AIRE, IRWELL = "Aire Trust (fictional)", "Irwell Trust (fictional)"
UNOWNED = "sample:bow-rehabilitation-unit"  # no organisation owns it


def owners(site) -> tuple[dict[str, list[str]], int]:
    """Each organisation's services, and how long the audit log is: what an unlink could change."""
    return ({o.name: o.service_ids for o in site.directory.organisations.all()},
            site.directory.audit.entries(limit=1)[1])


def test_unlinking_a_service_the_organisation_does_not_own_is_a_404_naming_its_owner(api, site):
    """Before, DELETE …/services/{id} of a service another organisation owns, or none, answered 200 with the
    organisation as it was: an admin who mistyped the organisation was told nothing, and the service's real owner
    kept it."""
    before = owners(site)
    irwell = site.directory.organisations.get(IRWELL).id
    for service_id, owner in [(OWNED_A[0], f"{AIRE} owns it"), (UNOWNED, "no organisation owns it")]:
        reply = api.delete(f"/maintain/organisations/{irwell}/services/{service_id}", headers=site.auth("admin"))
        assert reply.status_code == 404, reply.text
        assert reply.json()["error"] == {
            "code": "not_linked", "field": "service_id",
            "message": f"'{service_id}' is not linked to {IRWELL}: {owner}. Nothing was unlinked."}
    assert owners(site) == before


def test_orgs_unlink_of_a_service_the_organisation_does_not_own_is_one_error_line_and_unlinks_nothing(site):
    """Every service named is checked before any is unlinked: before, the command unlinked the one it owned,
    said nothing of the other and exited 0."""
    before = owners(site)
    done = cli_here(site, "orgs", "unlink", IRWELL, OWNED_B[0], OWNED_A[1])
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"error: '{OWNED_A[1]}' is not linked to {IRWELL}: {AIRE} owns it. Nothing was unlinked."]
    assert owners(site) == before
