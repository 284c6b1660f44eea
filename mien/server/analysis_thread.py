"""The one thread the server's FaceAnalyzer runs on.

Image queries run the analyzer one at a time. They used to run it on whichever
thread served the call, under a lock; the native front hands calls to its pool
of threads in turn, so each query ran on a thread that had been idle for the
last dozen calls. On the 2-core machine a 640x480 query then took 23-27 ms in
the server against 17 ms on one thread (docs/benchmarks.md has the figures;
tests/test_query_path.py checks where the work runs): the models'
LiteRT thread pools and the landmark helper thread were woken by, and placed
beside, a thread the scheduler knew nothing about. One long-lived thread keeps
all of that warm, and the queue in front of it keeps the calls in order, as the
lock did.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from mien.server import calls


class AnalysisThread:
    """Runs functions on one thread of its own, in the order they were handed over."""

    def __init__(self, name: str = "mien-analyzer"):
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=name)

    def run(self, fn, *args):
        """fn(*args) on the analysis thread once the work handed over before it is done; its
        result, or its exception raised here. Meanwhile the caller's call (mien.server.calls) is
        the analysis thread's too, so fn's safe points see its deadline and cancellation."""
        return self._pool.submit(_on_behalf, calls.current(), fn, args).result()

    def close(self) -> None:
        """No more work; what was handed over still runs (its callers are waiting for it)."""
        self._pool.shutdown(wait=False)


def _on_behalf(context, fn, args):
    previous = calls.enter(context)
    try:
        return fn(*args)
    finally:
        calls.leave(previous)
