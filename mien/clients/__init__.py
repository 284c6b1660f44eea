"""mien.clients: the Python clients (`Client`, `AnalyticsClient`), their exception
(`MienError`), and the query and analytics subcommands of `mien` (mien.clients.commands).

The clients are imported lazily so that `mien --help` does not load grpc. Nothing in this
package imports the engine, the indexer, the server or the web app (tests/test_client_modules.py):
what the calls return are the reply types of mien.results.
"""

__all__ = ["Client", "MienError", "AnalyticsClient"]


def __getattr__(name):
    if name == "Client":
        from mien.clients.client import Client

        return Client
    if name == "MienError":
        from mien.clients.errors import MienError

        return MienError
    if name == "AnalyticsClient":
        from mien.clients.analytics_client import AnalyticsClient

        return AnalyticsClient
    raise AttributeError(f"module 'mien.clients' has no attribute {name!r}")
