"""The clients' `mien` subcommands: queries (search, cross, identity, stats, persons) and
analytics (tag, summary, clusters), each over a server.

    query        search | cross | identity | stats | persons
    analytics    tag ... | summary | clusters (also in-process on a store with --store)
    connection   the flags that say which server, and the Client they make
    error_lines  a failed call as one line
"""

from __future__ import annotations

from mien.clients.commands import analytics, query


def register(subparsers, analytics_on_store) -> None:
    """analytics_on_store(store_dir): the analytics calls in-process on a store (--store); the
    `mien` command passes the engine's, which a client may not import itself."""
    query.register(subparsers)
    analytics.register(subparsers, analytics_on_store)
