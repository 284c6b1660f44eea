"""The call a handler thread is serving, so long work can stop when its caller is gone.

`rpc` (mien.server.rpc_errors) records each call's context here; safe points in
handlers (ServerContext.checkpoint, between ranking rounds, between indexing
sources) call `check()`, which raises CallEndedError once the client cancelled
or its deadline passed: the work stops there instead of running to the end for
nobody. Both fronts' contexts answer is_active() and time_remaining().
"""

from __future__ import annotations

import threading

from mien.errors import MienError

_local = threading.local()


class CallEndedError(MienError):
    """The caller cancelled or its deadline passed; `code` is CANCELLED or DEADLINE_EXCEEDED."""

    def __init__(self, code: str):
        super().__init__("the call's deadline passed before it finished" if code == "DEADLINE_EXCEEDED"
                         else "the call was cancelled", reason=code)
        self.code = code


def enter(context):
    """Record `context` as this thread's call; returns the one it replaces (for leave)."""
    previous = getattr(_local, "context", None)
    _local.context = context
    return previous


def current():
    """This thread's call (its context), or None."""
    return getattr(_local, "context", None)


def leave(previous) -> None:
    _local.context = previous


def ended(context=None) -> str | None:
    """"DEADLINE_EXCEEDED" / "CANCELLED" when the call is over for its client, else None."""
    context = context if context is not None else current()
    if context is None:
        return None
    remaining = None
    try:
        remaining = context.time_remaining()
    except Exception:  # noqa: BLE001 - a context without deadlines
        pass
    if remaining is not None and remaining <= 0:
        return "DEADLINE_EXCEEDED"
    try:
        active = context.is_active()
    except Exception:  # noqa: BLE001
        return None
    return None if active else "CANCELLED"


def set_arrival(received: float) -> None:
    """grpcio's thread pool (arrivals.py): when the call this thread is about to serve arrived."""
    _local.arrival = received


def take_arrival() -> float | None:
    """The arrival set for this thread's call, once (None: none, or taken already)."""
    received = getattr(_local, "arrival", None)
    _local.arrival = None
    return received


def check() -> bool:
    """Raise CallEndedError when the current call is over; False otherwise (usable as should_stop)."""
    code = ended()
    if code is not None:
        raise CallEndedError(code)
    return False
