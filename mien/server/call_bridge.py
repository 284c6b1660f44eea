"""Run a servicer method outside grpcio: the one stand-in for grpc.ServicerContext.

grpcio's server is not the only caller of mien's servicers: the native front
(mien.server.native_front, gRPC C++ handing over raw bytes) and the HTTP
gateway (mien.web.gateway, JSON) run the same servicer methods. Both build a
`CallContext` and run the method through `run_unary` or `run_stream`, so an
abort, a status set without raising, an unexpected exception and the
google.rpc.Status details come out the same way whichever front took the
call, and the same as grpcio answers them.
"""

from __future__ import annotations

import logging
import time

import grpc

from mien.server.rpc_errors import is_abort

log = logging.getLogger("mien.server")

OK = grpc.StatusCode.OK.value[0]
_UNKNOWN = grpc.StatusCode.UNKNOWN
_STATUS_DETAILS_KEY = "grpc-status-details-bin"


class CallContext:
    """The part of grpc.ServicerContext that mien's, health's and reflection's servicers use.

    info: the call as its front saw it: "metadata" (key, value) pairs, "peer",
    "deadline" (time.time() seconds or None) and, from the native front,
    "received" (time.monotonic() of its arrival). handle: the native front's
    stream handle (cancellation, cancel callbacks), else None.
    """

    __slots__ = ("_info", "_handle", "_code", "_details", "_callbacks", "_status_details", "_ended")

    def __init__(self, info: dict, handle=None):
        self._info = info
        self._handle = handle
        self._code: grpc.StatusCode | None = None
        self._details = ""
        self._callbacks: list | None = None
        self._status_details = b""   # a serialized google.rpc.Status, sent as grpc-status-details-bin
        self._ended = False          # the caller went away (a front without a handle says so)

    def abort(self, code: grpc.StatusCode, details: str):
        if code is grpc.StatusCode.OK:  # as grpcio: OK is not a failure status
            code, details = _UNKNOWN, ""
        self._code, self._details = code, details
        raise Exception()  # noqa: TRY002 - grpcio's convention, recognised by rpc_errors.is_abort

    def abort_with_status(self, status):
        self.abort(status.code, status.details)

    def set_status_details(self, details: bytes) -> None:
        self._status_details = bytes(details)

    def status_details(self) -> bytes:
        return self._status_details if self._code not in (None, grpc.StatusCode.OK) else b""

    def set_trailing_metadata(self, trailing_metadata) -> None:
        # mien sends no trailers of its own but the google.rpc.Status of an error
        for key, value in trailing_metadata:
            if key == _STATUS_DETAILS_KEY:
                self._status_details = bytes(value)

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
        """When the call arrived (time.monotonic), stamped by the native front in C++."""
        return self._info.get("received")

    def peer(self) -> str:
        return self._info["peer"]

    def time_remaining(self):
        deadline = self._info["deadline"]
        return None if deadline is None else max(0.0, deadline - time.time())

    def is_active(self) -> bool:
        return not self._ended and (self._handle is None or not self._handle.cancelled())

    def end(self) -> None:
        """The caller went away (for a front whose calls have no handle to say so)."""
        self._ended = True
        self.run_callbacks()

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

    def set_compression(self, compression) -> None:
        pass

    def fail(self, code: grpc.StatusCode, details: str) -> None:
        """Record how the call ended when it ended by raising (see `failure`)."""
        self._code, self._details = code, details

    def status(self) -> tuple[int, str]:
        code = self._code or grpc.StatusCode.OK
        return code.value[0], self._details or ""


def run_unary(behaviour, request, context: CallContext, method: str) -> tuple[int, str, object, bytes]:
    """Run one call with a single reply: (status code number, details, the reply or None when the
    code is not OK, google.rpc.Status details for the trailer)."""
    try:
        reply = behaviour(request, context)
    except Exception as exc:  # noqa: BLE001
        context.fail(*failure(context, method, exc))
        return (*context.status(), None, context.status_details())
    finally:
        context.run_callbacks()
    code, details = context.status()
    if code != OK:
        return code, details, None, context.status_details()
    return OK, "", reply, b""


def run_stream(behaviour, request, context: CallContext, method: str):
    """Run one call with a stream of replies, yielding them; once it is exhausted,
    context.status() and context.status_details() tell how the call ended."""
    try:
        yield from behaviour(request, context)
    except Exception as exc:  # noqa: BLE001
        context.fail(*failure(context, method, exc))
    finally:
        context.run_callbacks()


def failure(context: CallContext, method: str, exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status of a call whose behaviour raised `exc`, as grpcio answers it."""
    if context.code() is not None and is_abort(exc):
        return context.code(), context.details() or ""
    log.exception("rpc=%s raised", method)
    if context.code() not in (None, grpc.StatusCode.OK):
        # as grpcio: a status the handler set before raising wins over UNKNOWN (the
        # generated base class answers a method the servicer lacks UNIMPLEMENTED this way)
        return context.code(), context.details() or f"Exception calling application: {exc}"
    return _UNKNOWN, f"Exception calling application: {exc}"
