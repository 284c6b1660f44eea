"""Map mien's errors to gRPC status codes, and log one line per RPC.

`rpc` wraps a servicer method (unary or server-streaming): it turns
mien.errors into `context.abort(code, message)` and logs
`rpc=<Method> status=<CODE> ms=<elapsed>` once per call. Every servicer in
mien.server (including analytics) should use it so that errors and logs look
the same everywhere.

It also checks every request (mien.server.validate) before the method runs,
counts the calls in flight (the server's drain waits for them) and refuses
new ones with UNAVAILABLE once the server is shutting down. What a client
reads never names the store's path or the server's internals: an unexpected
error is logged in full and answered as a bare INTERNAL.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time

import grpc

from mien.errors import (
    AlreadyExistsError,
    BadInputError,
    ServerStoppingError,
    EncoderMismatchError,
    ModelNotFoundError,
    NotFoundError,
    StoreLockedError,
    TooLargeError,
)

from mien.filenames import escape
from mien.server import calls, logqueue
from mien.server.status import status_details_bytes
from mien.server.validate import check_request, clip_message

log = logging.getLogger("mien.server.rpc")

# Order matters: subclasses before their bases (TooLargeError is a BadInputError,
# ModelNotFoundError a FileNotFoundError, NotFoundError a KeyError).
# A request over a limit is the caller's to fix, not a quota to wait for: INVALID_ARGUMENT
# (the limit in ErrorInfo.metadata), as for every other bad request.
_MAPPING: tuple[tuple[type[BaseException], grpc.StatusCode], ...] = (
    (TooLargeError, grpc.StatusCode.INVALID_ARGUMENT),
    (AlreadyExistsError, grpc.StatusCode.ALREADY_EXISTS),
    (BadInputError, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (StoreLockedError, grpc.StatusCode.UNAVAILABLE),
    (ServerStoppingError, grpc.StatusCode.UNAVAILABLE),
    (ModelNotFoundError, grpc.StatusCode.FAILED_PRECONDITION),
    (EncoderMismatchError, grpc.StatusCode.FAILED_PRECONDITION),
    (PermissionError, grpc.StatusCode.PERMISSION_DENIED),
)


def status_for(exc: BaseException) -> grpc.StatusCode | None:
    """The gRPC status for a mien error, or None for an unexpected exception."""
    if isinstance(exc, calls.CallEndedError):
        return grpc.StatusCode[exc.code]
    if type(exc).__name__ == "JobCancelledError":
        return grpc.StatusCode.CANCELLED
    for kind, code in _MAPPING:
        if isinstance(exc, kind):
            return code
    return None


_INTERNAL_MESSAGE = "internal error; the server's log has the details"
_LOCKED_MESSAGE = "another process is writing to the store; try again when it is done"


def public_message(exc: BaseException, private=()) -> str:
    """What a client may read of a mapped error: no server paths, clipped."""
    if isinstance(exc, StoreLockedError):
        return _LOCKED_MESSAGE  # its own message names the store and the writer's PID
    message = escape(str(exc)) or type(exc).__name__  # a file name that is not UTF-8, escaped
    for secret in private:
        if secret:
            message = message.replace(secret, "<store>")
    return clip_message(message)


def _abort(context: grpc.ServicerContext, method: str, exc: BaseException, ctx=None) -> None:
    code = status_for(exc)
    if code is None:
        log.exception("rpc=%s unexpected error", method)
        context.abort(grpc.StatusCode.INTERNAL, _INTERNAL_MESSAGE)
    if code is not grpc.StatusCode.INVALID_ARGUMENT and code is not grpc.StatusCode.NOT_FOUND:
        log.info("rpc=%s %s: %s", method, code.name, exc)  # the full story stays here
    message = public_message(exc, ctx.private_strings() if ctx is not None else ())
    _attach_details(context, status_details_bytes(code, message, exc))
    context.abort(code, message)


def _attach_details(context, details: bytes) -> None:
    """google.rpc.Status details for the client (trailer grpc-status-details-bin), on
    grpcio's context, the native front's (which hands them to gRPC C++) and the web's."""
    if hasattr(context, "set_status_details"):
        context.set_status_details(details)
    elif hasattr(context, "set_trailing_metadata"):
        try:
            context.set_trailing_metadata((("grpc-status-details-bin", details),))
        except Exception:  # noqa: BLE001 - a context that takes no trailers: the code and message still go
            pass


def _check(request) -> None:
    if hasattr(request, "DESCRIPTOR"):  # unary request; a stream's chunks are checked by the method
        check_request(request)


def _status_name(context: grpc.ServicerContext) -> str:
    code = context.code() if hasattr(context, "code") else None
    if code is None:
        # a reply nobody received is not OK: the log says the client's deadline or cancel
        return calls.ended(context) or "OK"
    return code.name


def rpc(func):
    """Decorate a servicer method: map errors to statuses and log the call."""
    method = func.__name__

    if inspect.isgeneratorfunction(func):
        @functools.wraps(func)
        def stream_wrapper(self, request, context):
            with _Call(method, self, request, context):
                yield from func(self, request, context)
        return stream_wrapper

    @functools.wraps(func)
    def unary_wrapper(self, request, context):
        with _Call(method, self, request, context):
            return func(self, request, context)
    return unary_wrapper


class _Call:
    """One servicer call, around its method: counted in flight (the drain waits for it; once
    draining, one that arrived after the drain began is refused UNAVAILABLE), recorded as this
    thread's call (mien.server.calls), its request checked; at the end a mien error mapped to
    its status (an abort passes as it stands) and one log line written.

    A class rather than nested generator context managers: a few microseconds less of a
    sub-millisecond vector query."""

    __slots__ = ("_method", "_servicer_ctx", "_request", "_context", "_start", "_counted", "_previous")
    _NOT_RECORDED = object()

    def __init__(self, method: str, servicer, request, context):
        self._method, self._request, self._context = method, request, context
        self._servicer_ctx = getattr(servicer, "ctx", None)
        self._start = time.perf_counter()
        self._counted = False
        self._previous = _Call._NOT_RECORDED

    def __enter__(self):
        ctx, context = self._servicer_ctx, self._context
        try:
            if ctx is not None:
                # the native front's context says when the call arrived; grpcio's, arrivals.py
                received = getattr(context, "received", None)
                ctx.calls.enter(received() if callable(received) else None)
                self._counted = True
            self._previous = calls.enter(context)
            _check(self._request)
        except Exception as exc:  # noqa: BLE001 - refused or malformed: ends here with its status
            self.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        try:
            if self._previous is not _Call._NOT_RECORDED:
                calls.leave(self._previous)
                self._previous = _Call._NOT_RECORDED
            if self._counted:
                self._servicer_ctx.calls.leave()
                self._counted = False
            if isinstance(exc, Exception) and not is_abort(exc):
                _abort(self._context, self._method, exc, self._servicer_ctx)  # raises the mapped abort
        finally:
            logqueue.log_line(log, logging.INFO, "rpc=%s status=%s ms=%.2f" % (
                self._method, _status_name(self._context), (time.perf_counter() - self._start) * 1000.0))
        return False


def is_abort(exc: BaseException) -> bool:
    # grpc's context.abort() raises a bare Exception after recording the status;
    # let it pass untouched instead of re-mapping it to INTERNAL.
    return type(exc) is Exception and not exc.args
