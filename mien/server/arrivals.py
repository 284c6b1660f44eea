"""When each call arrived, so a call queued before a shutdown's drain began gets the grace.

The drain (mien.server.shutdown) refuses calls that arrive after it began
(UNAVAILABLE) and waits, up to the grace, for the calls in flight. A call
that arrived before but still waits for a worker thread is in flight too: it
must be served when its turn comes, and the drain must wait for it. Each
front says when a call arrived:

- the native front stamps it in C++ (call info "received", on time.monotonic's
  clock) and counts the unary calls it has not answered (Front.unanswered);
- for grpcio's server, `ArrivalExecutor` (its thread pool) stamps each job when
  grpcio submits it, which is when the call arrived, and counts it queued until
  the handler's `track()` claims it (ServerContext.calls); `Arrivals` releases
  it when a handler the drain does not track starts (health, reflection: a
  health watch may stay open for ever), and the job's end releases a claim
  nobody made (a call refused before its handler).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc

from mien.server import calls

TRACKED_PREFIX = "/mien.v1."   # every method of these services is tracked by errors.rpc


class ArrivalExecutor(ThreadPoolExecutor):
    """grpcio's thread pool, recording each job's arrival with `tracker` (a CallTracker)."""

    def __init__(self, tracker, **kwargs):
        super().__init__(**kwargs)
        self._tracker = tracker

    def submit(self, fn, /, *args, **kwargs):
        received = self._tracker.arrived()
        tracker = self._tracker

        def job():
            calls.set_arrival(received)
            try:
                return fn(*args, **kwargs)
            finally:
                if calls.take_arrival() is not None:   # no handler claimed it
                    tracker.left()

        return super().submit(job)


class Arrivals(grpc.ServerInterceptor):
    """grpcio's server: handlers the drain does not track release their call's arrival."""

    def __init__(self, tracker):
        self._tracker = tracker
        self._done: dict = {}

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(TRACKED_PREFIX):
            return handler
        wrapped = self._done.get(handler)
        if wrapped is None:
            wrapped = self._done.setdefault(handler, self._release_on_start(handler))
        return wrapped

    def _release_on_start(self, handler):
        tracker = self._tracker

        def wrap(behaviour):
            def call(request, context):
                if calls.take_arrival() is not None:
                    tracker.left()
                return behaviour(request, context)
            return call

        changes = {name: wrap(getattr(handler, name)) for name in
                   ("unary_unary", "unary_stream", "stream_unary", "stream_stream")
                   if getattr(handler, name) is not None}
        return handler._replace(**changes)
