"""One exception for every failed call of the Python clients: `mien.clients.MienError`.

Unary calls (gRPC C++ or grpcio), streams and Analytics calls all raise it, with

- `.code`: the grpc.StatusCode (compares equal to it; `.code()` also works, as on
  grpc.RpcError, so code written for grpcio keeps working),
- `.reason`: the stable machine reason of the server's google.rpc.ErrorInfo
  (e.g. "MULTIPLE_FACES"), "" when the server sent none,
- `.details`: the google.rpc.Status details as plain dicts, each with "type"
  ("ErrorInfo", "BadRequest", "ResourceInfo", ...) and its fields; calling it,
  `.details()`, gives the message text as grpc.RpcError.details() does,
- `.message`: the message text, `.metadata`: ErrorInfo's metadata (e.g. {"faces": "6"}).

It is a grpc.RpcError (existing `except grpc.RpcError` code catches it) and a
mien.errors.MienError.
"""

from __future__ import annotations

import functools

import grpc

from mien.errors import MienError as _EngineError


class StatusCode:
    """A grpc.StatusCode that is also callable (grpc.RpcError.code() compatibility)."""

    __slots__ = ("status",)

    def __init__(self, status: grpc.StatusCode):
        self.status = status

    def __call__(self) -> grpc.StatusCode:
        return self.status

    def __eq__(self, other) -> bool:
        if isinstance(other, StatusCode):
            other = other.status
        return self.status == other

    def __hash__(self) -> int:
        return hash(self.status)

    @property
    def name(self) -> str:
        return self.status.name

    @property
    def value(self):
        return self.status.value

    def __repr__(self) -> str:
        return repr(self.status)

    def __str__(self) -> str:
        return str(self.status)


class Details(list):
    """The google.rpc.Status details (dicts); called, the message text."""

    def __init__(self, items=(), message: str = ""):
        super().__init__(items)
        self.message = message

    def __call__(self) -> str:
        return self.message


class MienError(grpc.RpcError, _EngineError):
    """A failed mien call; see the module doc."""

    def __init__(self, code: grpc.StatusCode, message: str, details=(), *, reason: str = "",
                 metadata: dict | None = None):
        _EngineError.__init__(self, f"{code.name}: {message}")
        self.code = StatusCode(code)
        self.message = message
        self.details = Details(details, message)
        self.reason = reason
        self.metadata = dict(metadata or {})

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"

    def trailing_metadata(self):
        return ()

    def detail(self, kind: str) -> dict | None:
        """The first detail of a type ("BadRequest", "ResourceInfo", ...), or None."""
        return next((d for d in self.details if d.get("type") == kind), None)


def _status_details(exc) -> list[dict]:
    """google.rpc.Status details of a grpcio error (from grpc-status-details-bin), as dicts."""
    if not hasattr(exc, "trailing_metadata"):
        return []
    try:
        from grpc_status import rpc_status
    except ImportError:  # grpcio-status missing: the code and message still arrive
        return []
    try:
        status = rpc_status.from_call(exc)
    except Exception:  # a malformed details trailer must not hide the error itself
        return []
    return details_as_dicts(status) if status is not None else []


def details_as_dicts(status) -> list[dict]:
    """A google.rpc.Status's details as dicts: {"type": "ErrorInfo", ...its fields}.

    Shared by both transports (grpcio's trailer here, gRPC C++'s in clients/native_stub.py).
    """
    from google.protobuf import json_format
    from google.rpc import error_details_pb2

    out = []
    for item in status.details:
        name = item.TypeName().rsplit(".", 1)[-1]
        cls = getattr(error_details_pb2, name, None)
        if cls is None:
            out.append({"type": name, "type_url": item.type_url})
            continue
        message = cls()
        item.Unpack(message)
        out.append({"type": name, **json_format.MessageToDict(message, preserving_proto_field_name=True)})
    return out


def from_rpc_error(exc) -> MienError:
    """The MienError for a grpc.RpcError (grpcio's, or the native channel's)."""
    if isinstance(exc, MienError):
        return exc
    code = exc.code() if callable(getattr(exc, "code", None)) else None
    message = exc.details() if callable(getattr(exc, "details", None)) else str(exc)
    details = list(getattr(exc, "status_details", None) or _status_details(exc))
    info = next((d for d in details if d.get("type") == "ErrorInfo"), {})
    return MienError(code or grpc.StatusCode.UNKNOWN, message or "", details,
                     reason=info.get("reason", ""), metadata=info.get("metadata", {}))


def _stream(iterator):
    try:
        yield from iterator
    except grpc.RpcError as exc:
        raise from_rpc_error(exc) from None


class TranslatingStub:
    """A stub whose methods raise MienError instead of grpc.RpcError (streams too)."""

    def __init__(self, stub):
        self._stub = stub

    def __getattr__(self, name):
        method = getattr(self._stub, name)

        @functools.wraps(method)
        def call(*args, **kwargs):
            try:
                result = method(*args, **kwargs)
            except grpc.RpcError as exc:
                raise from_rpc_error(exc) from None
            if hasattr(result, "__next__"):  # a response stream: errors come while iterating
                return _stream(result)
            return result

        return call
