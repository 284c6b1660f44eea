"""mien.clients: the Python client (`Client`), its exception (`MienError`) and the CLI.

Both are imported lazily so that `mien --help` does not load grpc.
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
