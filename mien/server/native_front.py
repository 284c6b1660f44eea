"""Serve grpc method handlers through the native front (mien.native._grpcpp.Front).

The front (mien/native/front.cc) owns the socket and the calls; it
hands each call's raw request bytes to `Dispatcher` and sends back the bytes
it returns. The handlers are the ones grpcio would run: the generated
`add_*Servicer_to_server` functions register them on a `HandlerTable` instead
of a grpc.Server, so servicers, health and reflection are the same code under
either server; each runs through mien.server.call_bridge, as over HTTP.
"""

from __future__ import annotations

import atexit
import threading
import weakref

import grpc

from mien import native
from mien.server import parsing
from mien.server.call_bridge import OK, CallContext, failure, run_stream, run_unary
from mien.server.validate import clip

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
        try:
            message = handler.request_deserializer(request)
        except Exception:  # noqa: BLE001 - the client's bytes are no such message
            code, details, status_details = _unparseable(handler.request_deserializer)
            return code, details, None, status_details
        code, details, reply, status_details = run_unary(handler.unary_unary, message, CallContext(info), method)
        if code != OK:
            return code, details, None, status_details
        return OK, "", handler.response_serializer(reply)

    def stream(self, method: str, handle, info: dict):
        handler, refusal = self._prepare(method, info)
        if handler is None:
            return refusal
        context = CallContext(info, handle)
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
                    return _unparseable(handler.request_deserializer)
            serialize = handler.response_serializer
            if handler.response_streaming:
                behaviour = handler.stream_stream if handler.request_streaming else handler.unary_stream
                for reply in run_stream(behaviour, request, context, method):
                    if not handle.write(serialize(reply)):
                        return _CANCELLED, "the client went away"
            else:
                behaviour = handler.stream_unary if handler.request_streaming else handler.unary_unary
                code, _, reply, _ = run_unary(behaviour, request, context, method)
                if code == OK:
                    handle.write(serialize(reply))
        except Exception as exc:  # noqa: BLE001 - a reply that did not serialize or send
            context.fail(*failure(context, method, exc))
        finally:
            context.run_callbacks()
        return (*context.status(), context.status_details())


def _requests(handle, deserialize, context: CallContext):
    while (raw := handle.read()) is not None:
        try:
            message = deserialize(raw)
        except Exception:  # noqa: BLE001 - ends the call INVALID_ARGUMENT, like the unary path
            parsing.abort(context, parsing.error(deserialize))
        yield message


def _unparseable(deserializer) -> tuple[int, str, bytes]:
    """(INVALID_ARGUMENT, message, google.rpc.Status details) for bytes that do not parse: as
    grpcio's front answers them (parsing.py)."""
    from mien.server.status import status_details_bytes

    exc = parsing.error(deserializer)
    return _INVALID.value[0], str(exc), status_details_bytes(_INVALID, str(exc), exc)


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
