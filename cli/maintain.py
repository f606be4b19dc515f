"""`rehabmap tokens`, `rehabmap orgs`, `rehabmap verify-due`, `rehabmap audit`, `rehabmap db`: the maintainers'
commands, each a thin wrapper over `rehabmap.maintain.store` or `rehabmap.maintain.freshness`."""

from __future__ import annotations

import getpass
import json
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

import click

from cli.textgrid import grid
from rehabmap.maintain.auth import Role

if TYPE_CHECKING:
    from rehabmap.config import Settings
    from rehabmap.errors import ServiceNotFound
    from rehabmap.maintain.store import Directory


def _directory() -> Directory:
    from rehabmap.config import get_settings
    from rehabmap.maintain.store import Directory

    return Directory.from_settings(get_settings())


def _actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"command line ({user})"


@click.group("tokens")
def tokens() -> None:
    """API tokens for /maintain (stored hashed; a token is shown once, when made)."""


@tokens.command("create")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True,
              help="admin: everything; maintainer: all services; provider: its organisation's services.")
@click.option("--organisation", help="A provider token's organisation (see 'rehabmap orgs').")
@click.option("--name", "label", help="A label saying whose token it is, shown in the audit log.")
@click.option("--expires-in", "expires_in", type=click.IntRange(1), metavar="DAYS",
              help="Days until it stops working (default: REHABMAP_TOKEN_EXPIRY_DAYS, 90; at most "
                   "REHABMAP_TOKEN_MAX_EXPIRY_DAYS, 365).")
@click.option("--expires", "expires_on", type=click.DateTime(formats=["%Y-%m-%d"]), metavar="YYYY-MM-DD",
              help="The day it stops working, from 00:00 UTC (instead of --expires-in).")
def tokens_create(role: str, organisation: str | None, label: str | None, expires_in: int | None,
                  expires_on: datetime | None) -> None:
    """Make a token and print it. It is not stored anywhere in readable form: copy it now."""
    if expires_in is not None and expires_on is not None:
        raise click.UsageError("Give --expires-in or --expires, not both.")
    expires_at = (datetime.now(timezone.utc) + timedelta(days=expires_in) if expires_in is not None
                  else expires_on.replace(tzinfo=timezone.utc) if expires_on is not None else None)
    label = label or (f"{organisation} provider" if organisation else f"{role} token")
    info, token = _directory().tokens.create(role, label, organisation=organisation, expires_at=expires_at,
                                             actor=_actor())
    click.echo(token)
    click.echo(f"made token {info.id} ({info.role.value}{', ' + info.organisation if info.organisation else ''}, "
               f"'{info.name}'), expiring {info.expires_at}. It is shown only this once.", err=True)


@tokens.command("list")
def tokens_list() -> None:
    """Every token: id, label, role, organisation, made, expires, revoked. Never a secret."""
    now = datetime.now(timezone.utc)
    rows = [[t.id, t.name, t.role.value, t.organisation or "-", t.created_at,
             (t.expires_at or "never") + (" (expired)" if t.expired(now) else ""), t.revoked_at or "-"]
            for t in _directory().tokens.all()]
    header = ["id", "name", "role", "organisation", "created", "expires", "revoked"]
    click.echo(grid([header, *rows]) if rows else "No tokens.")


@tokens.command("revoke")
@click.argument("token_id")
def tokens_revoke(token_id: str) -> None:
    """Revoke a token by its id (the part after 'rmk_'); it stops working at once."""
    info = _directory().tokens.revoke(token_id, actor=_actor())
    click.echo(f"revoked token {info.id} ('{info.name}') at {info.revoked_at}")


@tokens.command("sign-in-link")
@click.argument("token_id")
def tokens_sign_in_link(token_id: str) -> None:
    """Print a one-time link that signs the holder of a token in to the keepers' pages (/keepers). It works
    once, for REHABMAP_KEEPERS_LINK_MINUTES (15); only its hash is stored. Send it as you would the token."""
    from rehabmap.config import get_settings
    from rehabmap.maintain.store import Directory

    settings = get_settings()
    code, expires = Directory.from_settings(settings).sessions.issue_link(token_id)
    click.echo(settings.public_url(f"/keepers/sign-in/link/{code}"))
    click.echo(f"a one-time sign-in link for token {token_id}, working until {expires.isoformat(timespec='seconds')}"
               + ("" if settings.public_base_url else "; set REHABMAP_PUBLIC_BASE_URL to print it whole"), err=True)


@tokens.command("new-key")
@click.option("--yes", is_flag=True, help="Do it without asking.")
def tokens_new_key(yes: bool) -> None:
    """Make a new token key (the old one is lost or leaked). Every token made with the old key is revoked
    at once; make new ones after. Keep the key file out of the directory's backups, and back it up apart."""
    directory = _directory()
    if not yes:
        click.confirm(f"Make a new key in {directory.tokens.key_file} and revoke every token made with the old one?",
                      abort=True)
    revoked = directory.tokens.new_key(actor=_actor())
    click.echo(f"made a new token key in {directory.tokens.key_file}; revoked {len(revoked)} tokens"
               + (f": {', '.join(revoked)}" if revoked else ""))


@click.group("orgs")
def orgs() -> None:
    """Provider organisations and the services each may change."""


@orgs.command("add")
@click.argument("name")
def orgs_add(name: str) -> None:
    org = _directory().organisations.add(name, actor=_actor())
    click.echo(f"added organisation {org.id}: {org.name}")


@orgs.command("list")
def orgs_list() -> None:
    rows = [[str(o.id), o.name, str(len(o.service_ids)), ", ".join(o.service_ids[:5])
             + (" …" if len(o.service_ids) > 5 else "")] for o in _directory().organisations.all()]
    click.echo(grid([["id", "name", "services", "first services"], *rows]) if rows else "No organisations.")


def _check_services(service_ids: tuple[str, ...]) -> None:
    """Each service is in the index; one held for review (or rejected) is refused saying so, as the API does."""
    from app.parts import open_backend
    from rehabmap.config import get_settings
    from rehabmap.errors import ServiceNotFound

    settings = get_settings()
    backend = open_backend(settings)
    for service_id in service_ids:
        if backend.get(service_id) is None:
            raise _held(settings, service_id) or ServiceNotFound(f"No service with id '{service_id}' in the index.",
                                                                  field="service_id")


def _held(settings: Settings, service_id: str) -> ServiceNotFound | None:
    """A synced record not in the index refused saying why (`ReviewItem.held`), its source named as the pages name
    it; None for an id no sync holds back."""
    from app.sync import open_review
    from rehabmap.errors import DomainError

    queue = open_review(settings, live=False)
    try:
        item = queue.item(service_id)
    except DomainError:
        return None
    return item.held(queue.source_titles.get(item.source, item.source))


@orgs.command("link")
@click.argument("organisation")
@click.argument("service_ids", nargs=-1, required=True)
def orgs_link(organisation: str, service_ids: tuple[str, ...]) -> None:
    """Make ORGANISATION (name or id) the owner of the services, so its provider tokens may change them."""
    _check_services(service_ids)
    org = _directory().organisations.link(organisation, list(service_ids), actor=_actor())
    click.echo(f"{org.name} now owns {len(org.service_ids)} services")


@orgs.command("unlink")
@click.argument("organisation")
@click.argument("service_ids", nargs=-1, required=True)
def orgs_unlink(organisation: str, service_ids: tuple[str, ...]) -> None:
    """ORGANISATION (name or id) no longer owns the services. One it does not own is an error naming its owner,
    and then none is unlinked."""
    org = _directory().organisations.unlink(organisation, list(service_ids), actor=_actor())
    click.echo(f"{org.name} now owns {len(org.service_ids)} services")


@click.command("verify-due")
@click.option("--days", type=click.IntRange(1, 3650), help="Due after this many days (default: "
              "REHABMAP_VERIFY_AFTER_DAYS, 180).")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
def verify_due(days: int | None, limit: int) -> None:
    """List active services never verified, or not verified for DAYS, the longest overdue first; then the areas a
    curated table covers on a check as old."""
    from functools import partial

    from rehabmap.maintain.freshness import areas_due, due_for_verification
    from app.parts import open_backend, open_geography
    from rehabmap.config import get_settings
    from rehabmap.coverage import CoverageStore
    from rehabmap.gaps.population import SmallAreas
    from rehabmap.maintain.store import store_of
    from rehabmap.named_areas import area_name

    settings = get_settings()
    days = days or settings.verify_after_days
    due = due_for_verification(open_backend(settings).all(), settings.current_date(), days)
    rows = [[d.service.id, d.service.name[:48], d.service.service_type.value,
             d.service.last_verified.isoformat() if d.service.last_verified else "never",
             "-" if d.days_since is None else str(d.days_since)] for d in due[:limit]]
    click.echo(f"{len(due)} services need verifying (not verified for {days} days, or ever)"
               + (f"; the first {limit}:" if len(due) > limit else ":" if due else "."))
    if rows:
        click.echo(grid([["id", "service", "type", "last verified", "days"], *rows]))
    areas = areas_due(CoverageStore(store_of(settings)).claims(), settings.current_date(), days)
    click.echo(f"{len(areas)} areas a curated table covers were checked more than {days} days ago"
               + (" (upload the table again with the new verified_on):" if areas else "."))
    if areas:
        geography, small_areas = open_geography(settings), partial(SmallAreas.load, settings.data_dir)
        click.echo(grid([["area", "name", "covers", "table", "verified on", "by", "days"],
                         *([a.claim.area_code, area_name(geography, small_areas, a.claim.area_code), a.claim.category,
                            a.table, a.verified_on.isoformat(), a.claim.verified_by or "-", str(a.days_since)]
                           for a in areas)]))


@click.command("audit")
@click.option("--service", "service_id", help="Only this service's history: its changes, and the uploads that "
              "took it out of the directory.")
@click.option("--after", "after_id", type=click.IntRange(0), default=0, help="Entries after this id.")
@click.option("--limit", type=click.IntRange(1), default=1000, show_default=True)
@click.option("--hsds", is_flag=True, help="HSDS 3.0 metadata rows (changes to services only).")
def audit(service_id: str | None, after_id: int, limit: int, hsds: bool) -> None:
    """Print the audit log, oldest first, one JSON object a line."""
    from rehabmap.maintain.audit import hsds_rows
    from rehabmap.maintain.history import audit_page

    entries, _total = audit_page(_directory().audit, service_id, after_id=after_id, limit=limit, services_only=hsds)
    for row in hsds_rows(entries) if hsds else map(vars, entries):  # before, a row left out was a line 'null'
        click.echo(json.dumps(row, ensure_ascii=False))


@click.group("db")
def db() -> None:
    """The maintainers' store: the SQLite file in REHABMAP_HOME, or PostgreSQL (REHABMAP_DATABASE_URL)."""


@db.command("migrate")
def db_migrate() -> None:
    """Bring the store's tables up to this version (every server also does so when it starts)."""
    from rehabmap.config import get_settings
    from rehabmap.maintain.migrations import LATEST, migrate
    from rehabmap.maintain.store import open_database
    from rehabmap.maintain.tokens import TokenPolicy

    settings = get_settings()
    database = open_database(settings)
    for migration in migrate(database, TokenPolicy(settings.token_expiry_days, settings.token_max_expiry_days)):
        click.echo(f"migration {migration.version}: {migration.name}")
    click.echo(f"{database.location} is at migration {LATEST}, the latest.")
