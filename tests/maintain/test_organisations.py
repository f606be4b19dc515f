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


def test_an_organisations_name_is_measured_as_it_is_kept_by_every_face(api, site):
    """The keepers' page and `rehabmap orgs add` count a name once its runs of spaces are made one; the API counted
    it as typed, so a name of 179 characters typed with two spaces between its words (238) was a 422 from the API
    and taken by the page. Now the API takes it, kept tidied, and one too long once tidied is a 400 naming it."""
    words = ("Aire " * 36).split()
    typed = "  ".join(words)
    assert len(typed) > 200 >= len(" ".join(words))
    made = api.post("/maintain/organisations", json={"name": typed}, headers=site.auth("admin"))
    assert made.status_code == 201, made.text
    assert made.json()["name"] == " ".join(words)
    too_long = api.post("/maintain/organisations", json={"name": "A" * 201}, headers=site.auth("admin"))
    assert too_long.status_code == 400 and too_long.json()["error"]["field"] == "name", too_long.text


def test_an_organisation_not_there_is_refused_with_the_routes_or_commands_that_list_and_add_them(api, site):
    """The API said "Add it with 'rehabmap orgs add NAME' or POST /maintain/organisations": a command an API
    client cannot run. Now each face names what its own user can do: the API its routes, the command line its
    commands (the keepers' pages: tests/keepers/test_admin.py). The API names the path's parameter, organisation_id,
    as its every error names the input (it said "organisation", the store's argument, which no request has)."""
    before = owners(site)
    for reply in (api.post("/maintain/organisations/999/services", json={"service_ids": [UNOWNED]},
                           headers=site.auth("admin")),
                  api.delete(f"/maintain/organisations/999/services/{OWNED_A[0]}", headers=site.auth("admin"))):
        assert reply.status_code == 404, reply.text
        assert reply.json()["error"] == {
            "code": "unknown_organisation", "field": "organisation_id",
            "message": "No organisation '999'. GET /maintain/organisations lists them; POST /maintain/organisations "
                       "adds one."}
    done = cli_here(site, "orgs", "unlink", "Nobody Ltd", OWNED_A[0])
    assert (done.returncode, done.stderr) == (2, "error: No organisation 'Nobody Ltd'. 'rehabmap orgs list' shows "
                                                 "them; 'rehabmap orgs add NAME' adds one.\n")
    assert owners(site) == before
