"""How a Client reaches its server(s): the grpcio channel and the unary transport.

Every Client has a grpcio channel: streams (UploadImage, IndexPaths,
WatchIndexJob) and `Client.channel` use it. Unary calls go through the
transport: "native" (gRPC C++, mien.native: no hand-off to a grpcio thread) or
"python" (the grpcio channel itself). One server or several replicas, both
transports balance the same way (mien.clients.replica_targets).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import grpc

from mien.clients.errors import TranslatingStub
from mien.clients.replica_targets import Target, parse_target
from mien.v1 import search_pb2, search_pb2_grpc

MAX_MESSAGE = 64 * 1024 * 1024
TRANSPORTS = ("auto", "native", "python")


def tls_roots(tls) -> bytes | None:
    """The CA certificates a tls argument names (a PEM path or bytes), None for the system roots."""
    if isinstance(tls, (str, os.PathLike)):
        return Path(tls).read_bytes()
    if isinstance(tls, bytes):
        return tls
    return None


def open_channel(target, tls: bool | str | bytes | os.PathLike | None = None) -> grpc.Channel:
    """A grpcio channel to "host:port", or balanced over replicas ("h1:p,h2:p", a list,
    "dns:name:port"; see mien.clients.replica_targets); tls: True (system roots), a CA PEM path or
    bytes, or None."""
    t = target if isinstance(target, Target) else parse_target(target)
    options = [("grpc.max_send_message_length", MAX_MESSAGE),
               ("grpc.max_receive_message_length", MAX_MESSAGE)] + t.channel_options()
    if not tls:
        return grpc.insecure_channel(t.uri, options=options)
    return grpc.secure_channel(t.uri, grpc.ssl_channel_credentials(root_certificates=tls_roots(tls)),
                               options=options)


def auth_metadata(token: str | None):
    """Call metadata carrying the bearer token (default env MIEN_TOKEN), or None."""
    token = token if token is not None else (os.environ.get("MIEN_TOKEN") or "").strip()
    return (("authorization", f"Bearer {token}"),) if token and token.strip() else None


@dataclass
class Connection:
    """A Client's stubs; each raises MienError (google.rpc.Status details decoded)."""

    transport: str            # "native" | "python": what `unary` and `health` travel on
    channel: grpc.Channel     # grpcio, for streams
    stub: TranslatingStub     # mien.v1.Mien on the grpcio channel
    grpc_health: TranslatingStub
    unary: TranslatingStub    # mien.v1.Mien's unary methods on the transport
    health: TranslatingStub


def _native_transport(target: Target, transport: str) -> bool:
    """Whether unary calls take the gRPC C++ channel; refuses "native" when it cannot."""
    from mien import native
    from mien.clients.native_stub import balances

    if transport == "python":
        return False
    if transport == "native":
        if not native.available():
            raise RuntimeError(native.UNAVAILABLE_REASON)
        if target.balanced and not balances():
            raise RuntimeError("mien's gRPC C++ extension was built before its channel could balance over "
                               "replicas; rebuild it (make setup) or use transport='python'")
        return True
    # "auto": native when built (and, for replicas, built from a channel.cc that balances)
    return native.available() and (not target.balanced or balances())


def connect(target, tls, transport: str) -> Connection:
    """The channels and stubs for a Client (connecting happens on the first call)."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    if transport not in TRANSPORTS:
        raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, not {transport!r}")
    parsed = target if isinstance(target, Target) else parse_target(target)
    use_native = _native_transport(parsed, transport)
    channel = open_channel(parsed, tls)
    # grpcio stubs are made now: making one on a closed channel crashes grpcio 1.85
    stub = TranslatingStub(search_pb2_grpc.MienStub(channel))
    grpc_health = TranslatingStub(health_pb2_grpc.HealthStub(channel))
    if not use_native:
        return Connection("python", channel, stub, grpc_health, stub, grpc_health)
    from mien.clients.native_stub import UnaryStub, open_native_channel

    native_channel = open_native_channel(parsed, root_pem=tls_roots(tls), tls=bool(tls),
                                         max_message_bytes=MAX_MESSAGE)
    return Connection("native", channel, stub, grpc_health,
                      TranslatingStub(UnaryStub(native_channel, search_pb2.DESCRIPTOR.services_by_name["Mien"])),
                      TranslatingStub(UnaryStub(native_channel, health_pb2.DESCRIPTOR.services_by_name["Health"])))
