"""`mien serve --http PORT`: the gRPC server with the web app beside it, over one ServerContext.

The server layer knows nothing of the web (mien.web sits above mien.server):
mien.server.app.serve takes `fronts`, functions that start another way in
once gRPC serves and return how to stop it; this module hands it the web app's.
"""

from __future__ import annotations

import functools
import logging

from mien.server import app
from mien.web.webapp import start_web, stop_web

log = logging.getLogger("mien.server")


def web_front(http_port: int, *, host: str = "127.0.0.1", token: str | None = None, tls=None):
    """A front for mien.server.app.serve(fronts=...): the web app and its JSON API on http_port,
    on the gRPC server's host, token and TLS certificate."""

    def start(ctx):
        web = start_web(ctx, port=http_port, host=host, token=token, tls=tls)
        log.info("mien web app on %s://%s:%d/", "https" if tls else "http", host, web.server_address[1])
        return functools.partial(stop_web, web)

    return start


def serve_with_web(store_dir, *, http_port: int | None = None, **kwargs) -> int:
    """mien.server.app.serve (same arguments), with the web app on http_port when it is given."""
    fronts = () if http_port is None else (
        web_front(http_port, host=kwargs.get("host", "127.0.0.1"), token=kwargs.get("token"), tls=kwargs.get("tls")),)
    return app.serve(store_dir, fronts=fronts, **kwargs)
