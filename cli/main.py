"""The `rehabmap` command: one group, with each command group in a module of its own that parses its
options, calls one library function and prints."""

from __future__ import annotations

import atexit
import gc
import importlib
import sys

import click

from rehabmap.errors import CALLER_ERRORS, Remedy, for_operator, shorten, with_remedy

# Each command's module, imported when that command (or its --help) runs, or when `rehabmap --help` lists them
# all: a command loads its own code, not the others' (the tokens' hashing, the gap analysis's options, the
# syncs' connectors: `rehabmap match --help` took 0.24 s of CPU with them all, 0.10 without).
COMMANDS = {
    "geodata": "cli.geodata:geodata", "index": "cli.index:index_command", "match": "cli.match:match_command",
    "serve": "cli.serve:serve", "gaps": "cli.gaps:gaps_command", "oaps": "cli.oaps:oaps",
    "tokens": "cli.maintain:tokens", "orgs": "cli.maintain:orgs", "verify-due": "cli.maintain:verify_due",
    "audit": "cli.maintain:audit", "db": "cli.maintain:db",
    "sync": "cli.sync:sync_command", "sync-status": "cli.sync:sync_status_command", "review": "cli.sync:review",
}

# At exit, the interpreter's last collection walks every object a command made, to free cycles the process is
# about to drop anyway: ~0.2 s of CPU of a sync's ~0.87 (bench/RESULTS.md). Frozen, the heap is out of its reach
# (its cycles are left to the operating system); atexit's handlers, refcounted objects' finalizers (files closed)
# and the flush of stdout and stderr still run.
atexit.register(gc.freeze)
# httpx imports its own command line (`httpx._main`: rich, pygments) whenever they are installed, as the test tools
# install them; no `rehabmap` command runs it: ~55 ms of CPU of each sync's import of httpx. (An entry of None makes
# that import fail, which httpx expects when they are missing.)
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]  # typeshed knows modules only


# What a person at the command line can do about an error (`rehabmap.errors.Remedy`), in its commands.
REMEDIES = {Remedy.TOKENS: "'rehabmap tokens list' shows them.",
            Remedy.REVIEW_QUEUE: "'rehabmap review list' shows the queue.",
            Remedy.ORGANISATIONS: "'rehabmap orgs list' shows them; 'rehabmap orgs add NAME' adds one.",
            Remedy.TOKEN_ORGANISATION: "Give --organisation with --role provider, and only then.",
            Remedy.TOKEN_KEY: "Restore the right key file from its backup, or run 'rehabmap tokens new-key' to make a "
                              "new key (every token made with the old one is then revoked).",
            # no command changes or retires a service: the maintainers' API does
            Remedy.SERVICE_EDITS: "PATCH /maintain/services/{id} of the maintainers' API changes it; POST "
                                  "/maintain/services/{id}/retire retires it.",
            Remedy.REVIEW_DECISION: "Decide it first: 'rehabmap review show {subject}'."}


class _Group(click.Group):
    """Errors a person can cause (the domain's and geodata's, and the file system's: a folder not there, a file where
    a folder should be, one not writable) end a command with their message and exit status 2, never a traceback.
    Before, `gaps Leeds --csv /no/such/dir/x.csv` printed the scorecard and then a FileNotFoundError's traceback, and
    `geodata build` from a folder missing its sources, or REHABMAP_HOME naming a file, did the same. So does a store's
    error that is the machine's (`caller_words`), in whichever command meets it: before, only a sync's runs said it
    so, and `orgs add` on a full disk ended with a traceback. A fault of rehabmap's own keeps its traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise  # click's own (a usage error, --help's exit): click says them, and the store's code stays unloaded
        except Exception as exc:
            said = caller_words(exc)  # None for a fault of rehabmap's own
            if said is None:
                raise
            click.echo(f"error: {said}", err=True)
            ctx.exit(2)


def caller_words(exc: BaseException) -> str | None:
    """What an error a person can cause says to them (`_Group`), or None for a fault of rehabmap's own: one rule
    for a command's error and for each failed run of a sync of several feeds (`cli.sync`). A store's that is the
    machine's, the database's or a damaged file's (`machines_words`) is its operator's to mend: a sync's run ended by
    a full disk was printed with a traceback as "a fault of rehabmap's own: report it"."""
    from rehabmap.maintain.database import machines_words  # the store's code, loaded by a command that opens it

    if isinstance(exc, CALLER_ERRORS):
        return for_operator(exc, with_remedy(exc, REMEDIES))
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}"
    mend = machines_words(exc)
    if mend is None:
        return None
    return f"{type(exc).__name__} of the store: {shorten(str(exc).strip(), 200)}. {mend}, then run the command again"


class _Commands(_Group):
    """The commands of `COMMANDS`, each imported when it is first asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        # An unknown name loads them all: click's "Did you mean" looks among the commands the group holds.
        for name in [cmd_name] if cmd_name in COMMANDS else COMMANDS:
            if name not in self.commands:
                module, attribute = COMMANDS[name].split(":")
                self.add_command(getattr(importlib.import_module(module), attribute), name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=_Commands)
@click.version_option(package_name="rehabmap")
def main() -> None:
    """Find local mental health rehabilitation resources across the whole pathway."""
