"""Serve grpc method handlers through the native front (mien.native._grpcpp.Front).

The front (mien/native/front.cc) owns the socket and the calls; it
hands each call's raw request bytes to `Dispatcher` and sends back the bytes
it returns. The handlers are the ones grpcio would run: the generated
`add_*Servicer_to_server` functions register them on a `HandlerTable` instead
of a grpc.Server, so servicers, health and reflection are the same code under
either server.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref

import grpc

from mien import native
from mien.server import parsing
from mien.server.errors import is_abort
from mien.server.validate import clip

log = logging.getLogger("mien.server")

_OK = grpc.StatusCode.OK.value[0]
_UNKNOWN = grpc.StatusCode.UNKNOWN
_CANCELLED = grpc.StatusCode.CANCELLED.value[0]
_INVALID = grpc.StatusCode.INVALID_ARGUMENT

# Methods that answer in well under a millisecond when their request is small
# (vector and face-id queries, lookups). They run on the gRPC thread that read
# the request; an image query is larger than INLINE_MAX_BYTES and goes to the
# worker pool like every other call.
INLINE_METHODS = (
    "/mien.v1.Mien/SearchExpression",
    "/mien.v1.Mien/CrossIdentitySearch",
    "/mien.v1.Mien/SearchIdentity",
    "/mien.v1.Mien/GetFace",
    "/mien.v1.Mien/GetPerson",
    "/mien.v1.Mien/Stats",
    "/grpc.health.v1.Health/Check",
)
INLINE_MAX_BYTES = 4096
# Open streams (health watches, IndexPaths, uploads) each hold a thread; past
# this many a new one gets RESOURCE_EXHAUSTED.
MAX_STREAMS = 256


class HandlerTable:
    """Collects method handlers the way grpc.Server does, for the generated add_* functions."""

    def __init__(self):
        self.methods: dict[str, grpc.RpcMethodHandler] = {}

    def add_generic_rpc_handlers(self, generic_handlers) -> None:
        # Generated code registers every method by name below as well; the
        # front routes by name, so the generic lookup objects are not needed.
        pass

    def add_registered_method_handlers(self, service_name: str, method_handlers: dict) -> None:
        for name, handler in method_handlers.items():
            self.methods[f"/{service_name}/{name}"] = handler


class FrontContext:
    """The part of grpc.ServicerContext that mien's, health's and reflection's servicers use."""

    __slots__ = ("_info", "_handle", "_code", "_details", "_callbacks", "_status_details")

    def __init__(self, info: dict, handle=None):
        self._info = info
        self._handle = handle
        self._code: grpc.StatusCode | None = None
        self._details = ""
        self._callbacks: list | None = None
        self._status_details = b""   # a serialized google.rpc.Status, sent as grpc-status-details-bin

    def abort(self, code: grpc.StatusCode, details: str):
        if code is grpc.StatusCode.OK:  # as grpcio: OK is not a failure status
            code, details = _UNKNOWN, ""
        self._code, self._details = code, details
        raise Exception()  # noqa: TRY002 - grpcio's convention, recognised by errors.is_abort

    def abort_with_status(self, status):
        self.abort(status.code, status.details)

    def set_status_details(self, details: bytes) -> None:
        self._status_details = bytes(details)

    def status_details(self) -> bytes:
        return self._status_details if self._code not in (None, grpc.StatusCode.OK) else b""

    def set_code(self, code: grpc.StatusCode) -> None:
        self._code = code

    def set_details(self, details: str) -> None:
        self._details = details

    def code(self):
        return self._code

    def details(self):
        return self._details

    def invocation_metadata(self):
        return self._info["metadata"]

    def received(self) -> float | None:
        """When the call arrived (time.monotonic), stamped by the front in C++."""
        return self._info.get("received")

    def peer(self) -> str:
        return self._info["peer"]

    def time_remaining(self):
        deadline = self._info["deadline"]
        return None if deadline is None else max(0.0, deadline - time.time())

    def is_active(self) -> bool:
        return self._handle is None or not self._handle.cancelled()

    def add_callback(self, callback) -> bool:
        if self._callbacks is None:
            self._callbacks = []
            if self._handle is not None:  # a cancelled stream runs them at once
                self._handle.set_cancel_callback(self.run_callbacks)
        self._callbacks.append(callback)
        return True

    def run_callbacks(self) -> None:
        callbacks, self._callbacks = self._callbacks or [], []
        for callback in callbacks:
            try:
                callback()
            except Exception:  # noqa: BLE001 - as grpcio: log and go on
                log.exception("rpc termination callback failed")

    # Accepted and ignored: mien sends no metadata of its own and no compression.
    def send_initial_metadata(self, initial_metadata) -> None:
        pass

    def set_trailing_metadata(self, trailing_metadata) -> None:
        pass

    def set_compression(self, compression) -> None:
        pass

    def status(self) -> tuple[int, str]:
        code = self._code or grpc.StatusCode.OK
        return code.value[0], self._details or ""


class Dispatcher:
    """Runs one call's handler on the raw bytes the front hands over."""

    def __init__(self, methods: dict[str, grpc.RpcMethodHandler], authorize=None, thread_init=None):
        self._methods = methods
        self._authorize = authorize      # (method, metadata) -> error message or None
        self._thread_init = thread_init  # once per native thread, before its first call
        self._local = threading.local()

    def _prepare(self, method: str, info: dict):
        """The handler, or (None, status) when the call must be refused before it runs."""
        if not getattr(self._local, "ready", False):
            self._local.ready = True
            if self._thread_init is not None:
                self._thread_init()
        # auth before routing: without a token no caller learns which methods exist
        if self._authorize is not None:
            refusal = self._authorize(method, info["metadata"])
            if refusal is not None:
                return None, (grpc.StatusCode.UNAUTHENTICATED.value[0], refusal)
        handler = self._methods.get(method)
        if handler is None:
            return None, (grpc.StatusCode.UNIMPLEMENTED.value[0], f"method not found: {clip(method)}")
        return handler, None

    def unary(self, method: str, request: bytes, info: dict):
        handler, refusal = self._prepare(method, info)
        if handler is None:
            return (*refusal, None)
        context = FrontContext(info)
        try:
            message = handler.request_deserializer(request)
        except Exception:  # noqa: BLE001 - the client's bytes are no such message
            return (*_unparseable(handler.request_deserializer), None, _unparseable_details(handler))
        try:
            reply = handler.unary_unary(message, context)
        except Exception as exc:  # noqa: BLE001
            return (*_failure(context, method, exc), None, context.status_details())
        finally:
            context.run_callbacks()
        code, details = context.status()
        if code != _OK:
            return code, details, None, context.status_details()
        return _OK, "", handler.response_serializer(reply)

    def stream(self, method: str, handle, info: dict):
        handler, refusal = self._prepare(method, info)
        if handler is None:
            return refusal
        context = FrontContext(info, handle)
        try:
            if handler.request_streaming:
                request = _requests(handle, handler.request_deserializer, context)
            else:
                raw = handle.read()
                if raw is None:
                    return grpc.StatusCode.INTERNAL.value[0], "the call ended before its request arrived"
                try:
                    request = handler.request_deserializer(raw)
                except Exception:  # noqa: BLE001 - the client's bytes are no such message
                    return (*_unparseable(handler.request_deserializer), _unparseable_details(handler))
            behaviour = _behaviour(handler)
            result = behaviour(request, context)
            serialize = handler.response_serializer
            if handler.response_streaming:
                for reply in result:
                    if not handle.write(serialize(reply)):
                        return _CANCELLED, "the client went away"
            elif context.status()[0] == _OK:
                handle.write(serialize(result))
        except Exception as exc:  # noqa: BLE001
            return (*_failure(context, method, exc), context.status_details())
        finally:
            context.run_callbacks()
        return (*context.status(), context.status_details())


def _requests(handle, deserialize, context: FrontContext):
    while (raw := handle.read()) is not None:
        try:
            message = deserialize(raw)
        except Exception:  # noqa: BLE001 - ends the call INVALID_ARGUMENT, like the unary path
            parsing.abort(context, parsing.error(deserialize))
        yield message


def _unparseable(deserializer) -> tuple[int, str]:
    """(INVALID_ARGUMENT, message) for bytes that do not parse: as grpcio's front (parsing.py)."""
    return _INVALID.value[0], str(parsing.error(deserializer))


def _unparseable_details(handler) -> bytes:
    from mien.server.status import status_details_bytes

    exc = parsing.error(handler.request_deserializer)
    return status_details_bytes(_INVALID, str(exc), exc)


def _behaviour(handler: grpc.RpcMethodHandler):
    if handler.request_streaming:
        return handler.stream_stream if handler.response_streaming else handler.stream_unary
    return handler.unary_stream if handler.response_streaming else handler.unary_unary


def _failure(context: FrontContext, method: str, exc: BaseException) -> tuple[int, str]:
    if context.code() is not None and is_abort(exc):
        return context.status()
    log.exception("rpc=%s raised", method)
    if context.code() not in (None, grpc.StatusCode.OK):
        # as grpcio: a status the handler set before raising wins over UNKNOWN (the
        # generated base class answers a method the servicer lacks UNIMPLEMENTED this way)
        code, details = context.status()
        return code, details or f"Exception calling application: {exc}"
    return _UNKNOWN.value[0], f"Exception calling application: {exc}"


class NativeServer:
    """The native front over a HandlerTable, serving from construction on (the port had to be
    bound there); shaped like grpc.Server where mien uses it."""

    def __init__(self, table: HandlerTable, address: str, *, workers: int, max_message_bytes: int,
                 authorize=None, thread_init=None, tls_key_cert: tuple[bytes, bytes] | None = None):
        if not native.available():
            raise RuntimeError(native.UNAVAILABLE_REASON)
        dispatcher = Dispatcher(table.methods, authorize=authorize, thread_init=thread_init)
        streaming = [name for name, h in table.methods.items() if h.request_streaming or h.response_streaming]
        inline = [name for name in INLINE_METHODS if name in table.methods]
        key_cert = None if tls_key_cert is None else (tls_key_cert[0].decode(), tls_key_cert[1].decode())
        self._front = native._grpcpp.Front(address, dispatcher.unary, dispatcher.stream, streaming, inline,
                                   INLINE_MAX_BYTES, max_message_bytes, workers, MAX_STREAMS, key_cert)
        self._stopped = threading.Event()
        self.port = self._front.start()
        _RUNNING.add(self)

    def start(self) -> None:
        """Already serving since construction (the port had to be bound); kept for grpc.Server's shape."""

    def stop(self, grace: float | None) -> threading.Event:
        """Refuse new calls, give running ones `grace` seconds (None: none), then cancel them."""
        self._front.stop(0.0 if grace is None else float(grace))
        self._stopped.set()
        _RUNNING.discard(self)
        return self._stopped

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        return self._stopped.wait(timeout)

    def unanswered(self) -> int:
        """Unary calls received whose handler has not returned (queued for a worker, or running)."""
        return getattr(self._front, "unanswered", 0)


# A front still running at exit would have gRPC threads calling into a
# finalizing interpreter: stop them while Python is whole.
_RUNNING: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _stop_running_fronts() -> None:
    for server in list(_RUNNING):
        server.stop(None)
