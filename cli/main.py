"""The `rehabmap` command: one group, with each command group in a module of its own that parses its
options, calls one library function and prints."""

from __future__ import annotations

import click

from cli import gaps, geodata, index, maintain, match, oaps, serve, sync
from rehabmap.errors import CALLER_ERRORS


class _Group(click.Group):
    """Errors a person can cause (the domain's and geodata's) end a command with their message and exit status 2,
    never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except CALLER_ERRORS as exc:
            click.echo(f"error: {exc.message}", err=True)
            ctx.exit(2)


@click.group(cls=_Group)
@click.version_option(package_name="rehabmap")
def main() -> None:
    """Find local mental health rehabilitation resources across the whole pathway."""


for command in (geodata.geodata, index.index_command, match.match_command, serve.serve, gaps.gaps_command, oaps.oaps,
                *maintain.COMMANDS, *sync.COMMANDS):
    main.add_command(command)
