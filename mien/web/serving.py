"""`mien serve --http PORT`: the gRPC server with the web app beside it, over one ServerContext.

The server layer knows nothing of the web (mien.web sits above mien.server):
mien.server.app.serve takes `fronts`, functions that start another way in
once gRPC serves and return how to stop it; this module makes the web app's
(the mien command hands it to `mien serve --http`).
"""

from __future__ import annotations

import functools
import logging

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
