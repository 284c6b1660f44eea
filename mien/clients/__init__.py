"""mien.clients: the Python client (`Client`) and the CLI.

`Client` is imported lazily so that `mien --help` does not load grpc.
"""

__all__ = ["Client"]


def __getattr__(name):
    if name == "Client":
        from mien.clients.client import Client

        return Client
    raise AttributeError(f"module 'mien.clients' has no attribute {name!r}")
