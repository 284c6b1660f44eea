"""Unary calls through gRPC C++ (mien.native._grpcpp.Channel), shaped like grpcio stubs.

`UnaryStub(channel, service)` has one method per unary RPC of the service,
called as a grpcio stub's are: `stub.SearchExpression(request, timeout=...,
metadata=...)`, returning the reply message or raising `NativeRpcError`, a
grpc.RpcError with the same code() and details(). Streaming RPCs are left
out; callers keep a grpcio stub for those.
"""

from __future__ import annotations

import grpc
from google.protobuf import message_factory

from mien import native

_CODES = {code.value[0]: code for code in grpc.StatusCode}


class NativeRpcError(grpc.RpcError):
    """A failed call, with grpcio's error interface (code(), details())."""

    def __init__(self, code: grpc.StatusCode, details: str, status: bytes = b""):
        super().__init__(f"{code.name}: {details}")
        self._code, self._details = code, details
        self.status_details = _decode_status(status)

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


def balances() -> bool:
    """Whether the built extension's channel takes a load-balancing policy (an extension
    built from an older channel.cc does not: `make setup` rebuilds it)."""
    return native.available() and bool(getattr(native._grpcpp, "CHANNEL_BALANCES", False))


def open_native_channel(target, *, root_pem: bytes | None, tls: bool, max_message_bytes: int):
    """A gRPC C++ channel for a mien.clients.replica_targets.Target (or a "host:port"): one server,
    or replicas balanced round-robin with the grpcio channel's retry policy. With tls,
    root_pem None trusts gRPC's default roots."""
    from mien.clients.replica_targets import Target, parse_target

    if not native.available():
        raise RuntimeError(native.UNAVAILABLE_REASON)
    t = target if isinstance(target, Target) else parse_target(target)
    roots = "" if root_pem is None else root_pem.decode()
    if not t.balanced:
        return native._grpcpp.Channel(t.uri, tls, roots, max_message_bytes)
    if not balances():
        raise RuntimeError("mien's gRPC C++ extension was built before its channel could balance over "
                           "replicas; rebuild it (make setup) or use transport='python'")
    return native._grpcpp.Channel(t.uri, tls, roots, max_message_bytes, **t.native_settings())


class UnaryStub:
    """The unary methods of one service (a ServiceDescriptor) over a native channel."""

    def __init__(self, channel, service):
        for method in service.methods:
            if method.client_streaming or method.server_streaming:
                continue
            setattr(self, method.name, _unary_method(
                channel, f"/{service.full_name}/{method.name}",
                message_factory.GetMessageClass(method.output_type)))


def _unary_method(channel, path: str, reply_class):
    call = channel.unary
    parse = reply_class.FromString

    def method(request, timeout: float | None = None, metadata=None):
        result = call(path, request.SerializeToString(), metadata, timeout)
        code, details, reply = result[:3]
        if code:
            status = result[3] if len(result) > 3 else b""  # a channel built before details: none
            raise NativeRpcError(_CODES.get(code, grpc.StatusCode.UNKNOWN), details, status)
        return parse(reply)

    method.__name__ = path.rsplit("/", 1)[-1]
    return method


def _decode_status(raw: bytes) -> list[dict]:
    """The google.rpc.Status details gRPC C++ received (grpc-status-details-bin), as dicts."""
    if not raw:
        return []
    try:
        from google.rpc import status_pb2
    except ImportError:
        return []
    status = status_pb2.Status()
    try:
        status.ParseFromString(raw)
    except Exception:  # noqa: BLE001 - a malformed trailer must not hide the error itself
        return []
    from mien.clients.errors import details_as_dicts

    return details_as_dicts(status)
