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

import contextlib
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
from mien.server import calls
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
            start = time.perf_counter()
            ctx = getattr(self, "ctx", None)
            try:
                with _in_flight(ctx, context), calls.serving(context):
                    _check(request)
                    yield from func(self, request, context)
            except Exception as exc:  # noqa: BLE001 - abort() re-raises its own
                _failed(context, method, exc, ctx)
            finally:
                _log_call(method, context, start)
        return stream_wrapper

    @functools.wraps(func)
    def unary_wrapper(self, request, context):
        start = time.perf_counter()
        ctx = getattr(self, "ctx", None)
        try:
            with _in_flight(ctx, context), calls.serving(context):
                _check(request)
                return func(self, request, context)
        except Exception as exc:  # noqa: BLE001 - abort() re-raises its own
            _failed(context, method, exc, ctx)
        finally:
            _log_call(method, context, start)
    return unary_wrapper


def _failed(context, method: str, exc: Exception, ctx) -> None:
    """End the call with exc's status: an abort as it stands, a mien error mapped (always raises)."""
    if is_abort(exc):
        raise exc
    _abort(context, method, exc, ctx)


def _log_call(method: str, context, start: float) -> None:
    log.info("rpc=%s status=%s ms=%.2f", method, _status_name(context), (time.perf_counter() - start) * 1000.0)


def _in_flight(ctx, context):
    """Count the call while it runs; refuse it (UNAVAILABLE) when it arrived after the server
    began draining (the native front's context says when it arrived; grpcio's, arrivals.py)."""
    if ctx is None:
        return contextlib.nullcontext()
    received = getattr(context, "received", None)
    return ctx.calls.track(received() if callable(received) else None)


def is_abort(exc: BaseException) -> bool:
    # grpc's context.abort() raises a bare Exception after recording the status;
    # let it pass untouched instead of re-mapping it to INTERNAL.
    return type(exc) is Exception and not exc.args
