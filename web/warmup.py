"""What the pages load on first use, loaded before the server takes its first request: every template compiled,
and the local authority boundaries the results maps are drawn over."""

from __future__ import annotations

from typing import TYPE_CHECKING

from web.render import environment
from web.resultsmap import boundaries

if TYPE_CHECKING:
    from geodata.geography import Geography


def warm_pages(geography: Geography) -> None:
    for name in environment.list_templates(filter_func=lambda n: n.endswith(".html")):
        environment.get_template(name)
    boundaries(geography)
