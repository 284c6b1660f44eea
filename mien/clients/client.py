"""A typed Python client for the mien gRPC server.

    from mien.clients import Client
    with Client("127.0.0.1:50051") as c:
        result = c.search("smile.jpg", k=10, exclude_persons=["Biden"])
        for hit in result.hits:
            print(hit.distance, hit.source_uri, hit.timestamp_ms, hit.person_name)
        c.cross("obama.jpg", person="Biden")           # Biden making Obama's face
        c.identity(result.hits[0].face_id)             # faces of the same person

A query is any of: a path (str / Path) or encoded bytes of an image, a face
id (an int, or a string of digits such as "4": a file named "4" is Path("4")),
an `Upload` (from upload_image), or a numpy vector (16-d for expression, the
store's identity dim for identity). Images larger than INLINE_IMAGE_BYTES are
uploaded in chunks automatically.

Every method takes `timeout=` (seconds; default the Client's) and returns
dataclasses of this module; every failed call raises mien.clients.MienError
(.code, .reason, .details; a grpc.RpcError too), on both transports, for
unary calls and streams alike.
"""

from __future__ import annotations

import grpc

# The Client is assembled from modules with one job each; every name this module had
# is still importable from here (from mien.clients.client import Client, Upload, ...).
from mien.clients.catalog_calls import CatalogCalls
from mien.clients.channels import MAX_MESSAGE as _MAX_MESSAGE  # noqa: F401 - kept for old importers
from mien.clients.channels import TRANSPORTS, auth_metadata, connect, open_channel  # noqa: F401
from mien.clients.channels import tls_roots as _tls_roots  # noqa: F401
from mien.clients.errors import MienError
from mien.clients.index_job_calls import IndexJobCalls
from mien.clients.search_calls import CHUNK_BYTES, INLINE_IMAGE_BYTES, SearchCalls  # noqa: F401
from mien.results.catalog import DeletedPerson, Face, Page, Person, Source, Stats  # noqa: F401
from mien.results.index_jobs import IndexJob, IndexProgress  # noqa: F401
from mien.results.search import (ComponentMatch, DetectedFace, FaceHit, QueryFace, QueryQuality,  # noqa: F401
                                 SearchResult, Upload)

__all__ = ["Client", "MienError", "Upload", "FaceHit", "SearchResult", "QueryFace", "DetectedFace",
           "ComponentMatch", "Person", "Face", "Stats", "IndexProgress", "IndexJob", "Source", "Page",
           "DeletedPerson"]

DEFAULT_TARGET = "127.0.0.1:50051"


class Client(SearchCalls, CatalogCalls, IndexJobCalls):
    """Connection to a mien server. Thread-safe; use as a context manager or call close().

    The calls live in mien.clients.search_calls (search, cross, identity, upload_image),
    mien.clients.catalog_calls (faces, persons, sources, stats) and mien.clients.index_job_calls."""

    def __init__(self, target=DEFAULT_TARGET, token: str | None = None,
                 tls: bool | str | bytes | None = None, timeout: float | None = 60.0,
                 transport: str = "auto"):
        """target "host:port", or several read replicas: a list of "host:port", one string
        "h1:p1,h2:p2", or "dns:name:port" (every address the name resolves to); calls are
        balanced by gRPC's round_robin and a replica that is down is skipped
        (mien.clients.replica_targets). token: bearer token (default env MIEN_TOKEN);
        tls: True (system roots), a CA certificate PEM path or bytes, or None (plaintext);
        transport: how unary calls travel: "native" (gRPC C++, mien.native), "python"
        (grpcio), "auto" native when built. Streams (UploadImage, IndexPaths) and
        `channel` are grpcio either way; both channels balance replicas the same way."""
        conn = connect(target, tls, transport)   # connects on first use
        self.transport = conn.transport
        self._channel = conn.channel
        self._stub, self._grpc_health = conn.stub, conn.grpc_health
        self._unary, self._health = conn.unary, conn.health
        self._metadata = auth_metadata(token)
        self.timeout = timeout
        self.target = target

    def close(self) -> None:
        self._channel.close()
        # drop the native channel (its connection closes with it); later calls
        # fail as grpcio's do on a closed channel
        self._unary, self._health = self._stub, self._grpc_health

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def channel(self) -> grpc.Channel:
        """The underlying grpcio channel (e.g. for the Analytics stub)."""
        return self._channel

    @property
    def metadata(self):
        return self._metadata

    def _t(self, timeout: float | None) -> float | None:
        return self.timeout if timeout is None else timeout

    def _call(self, method: str, request, timeout: float | None):
        return getattr(self._unary, method)(request, timeout=self._t(timeout), metadata=self._metadata)

    def health(self, service: str = "", *, timeout: float | None = None) -> str:
        """The standard health status ("SERVING", ...); needs no token."""
        from grpc_health.v1 import health_pb2

        resp = self._health.Check(health_pb2.HealthCheckRequest(service=service), timeout=self._t(timeout))
        return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
