"""Map mien's errors to gRPC status codes, and log one line per RPC.

`rpc` wraps a servicer method (unary or server-streaming): it turns
mien.errors into `context.abort(code, message)` and logs
`rpc=<Method> status=<CODE> ms=<elapsed>` once per call. Every servicer in
mien.server (including analytics) should use it so that errors and logs look
the same everywhere.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time

import grpc

from mien.errors import (
    BadInputError,
    EncoderMismatchError,
    ModelNotFoundError,
    NotFoundError,
    StoreLockedError,
    TooLargeError,
)

log = logging.getLogger("mien.server.rpc")

# Order matters: subclasses before their bases (TooLargeError is a BadInputError,
# ModelNotFoundError a FileNotFoundError, NotFoundError a KeyError).
_MAPPING: tuple[tuple[type[BaseException], grpc.StatusCode], ...] = (
    (TooLargeError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (BadInputError, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (StoreLockedError, grpc.StatusCode.UNAVAILABLE),
    (ModelNotFoundError, grpc.StatusCode.FAILED_PRECONDITION),
    (EncoderMismatchError, grpc.StatusCode.FAILED_PRECONDITION),
    (PermissionError, grpc.StatusCode.PERMISSION_DENIED),
)


def status_for(exc: BaseException) -> grpc.StatusCode | None:
    """The gRPC status for a mien error, or None for an unexpected exception."""
    for kind, code in _MAPPING:
        if isinstance(exc, kind):
            return code
    return None


def _abort(context: grpc.ServicerContext, method: str, exc: BaseException) -> None:
    code = status_for(exc)
    if code is None:
        log.exception("rpc=%s unexpected error", method)
        context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}")
    context.abort(code, str(exc) or type(exc).__name__)


def _status_name(context: grpc.ServicerContext) -> str:
    code = context.code()
    return "OK" if code is None else code.name


def rpc(func):
    """Decorate a servicer method: map errors to statuses and log the call."""
    method = func.__name__

    if inspect.isgeneratorfunction(func):
        @functools.wraps(func)
        def stream_wrapper(self, request, context):
            start = time.perf_counter()
            try:
                yield from func(self, request, context)
            except Exception as exc:  # noqa: BLE001 - abort() re-raises its own
                if is_abort(exc):
                    raise
                _abort(context, method, exc)
            finally:
                log.info("rpc=%s status=%s ms=%.2f", method, _status_name(context),
                         (time.perf_counter() - start) * 1000.0)
        return stream_wrapper

    @functools.wraps(func)
    def unary_wrapper(self, request, context):
        start = time.perf_counter()
        try:
            return func(self, request, context)
        except Exception as exc:  # noqa: BLE001
            if is_abort(exc):
                raise
            _abort(context, method, exc)
        finally:
            log.info("rpc=%s status=%s ms=%.2f", method, _status_name(context),
                     (time.perf_counter() - start) * 1000.0)
    return unary_wrapper


def is_abort(exc: BaseException) -> bool:
    # grpc's context.abort() raises a bare Exception after recording the status;
    # let it pass untouched instead of re-mapping it to INTERNAL.
    return type(exc) is Exception and not exc.args
