"""A bounded shutdown: drain for at most `grace` seconds, cancel, be gone within grace + 1 s.

1. Drain: health answers NOT_SERVING (checks keep being answered, so a load
   balancer sees it), calls that arrive from now on, other than health and
   reflection, get UNAVAILABLE, and server-side indexing ends at its next
   source boundary (every source is committed whole, so the store never holds
   half of one). A call that arrived before, still waiting for a worker
   thread, is in flight like a running one (mien.server.arrivals).
2. When the calls in flight are done, or the grace is over: the grace is up
   for everyone (`ctx.cancelled`, checked by long handlers at safe points) and
   the front cancels what still runs.
3. Up to 0.7 s more for handlers to return (the rest of the second is for
   the process to exit); then the store is closed.
   A handler still busy after that (deep inside a face detection or a
   clustering) is left behind: `shutdown` returns False and the caller ends
   the process without closing the store under it. That is safe: the store is
   LMDB, every write is one transaction, and a writer killed mid-way loses at
   most the source in hand.
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("mien.server")

# Of the one second after the grace, what handlers get; the rest is for the process to exit
# (the interpreter's teardown with gRPC and torch loaded takes 0.1-0.3 s here).
AFTER_GRACE_S = 0.7
REPLY_FLUSH_S = 0.5


def shutdown(server, grace_s: float, *, after_grace_s: float = AFTER_GRACE_S) -> bool:
    """Drain and stop `server` (from build_server); True when every handler ended in time."""
    ctx = server.mien_context
    start = time.monotonic()
    grace_end = start + max(0.0, grace_s)
    ctx.calls.start_draining()
    server.mien_health.enter_graceful_shutdown()
    drained = ctx.calls.wait_idle(grace_end - time.monotonic())
    drained = ctx.wait_indexers(grace_end - time.monotonic()) and drained
    if not drained:
        log.warning("grace of %.1fs over with %d call(s) and %d indexing run(s) in flight: cancelling them",
                    grace_s, ctx.calls.count, len(ctx.indexers))
    ctx.cancelled.set()
    stopped = threading.Event()
    # Handlers that returned may still be sending their reply: a moment for that
    # (within the grace) before the front cancels what is left, open health watches included.
    flush_s = min(REPLY_FLUSH_S, max(0.0, grace_end - time.monotonic())) if drained else 0.0

    def stop_front():
        # the native front's stop cancels what runs and waits for the handlers to return
        server.stop(flush_s).wait()
        stopped.set()

    threading.Thread(target=stop_front, name="mien-stop", daemon=True).start()
    end = time.monotonic() + after_grace_s
    done = (stopped.wait(end - time.monotonic()) and ctx.calls.wait_idle(end - time.monotonic())
            and ctx.wait_indexers(end - time.monotonic()))
    if not done:
        log.warning("%d call(s) and %d indexing run(s) still running %.1fs after the grace: exiting "
                    "without waiting for them (the store is left as a crash would leave it: consistent)",
                    ctx.calls.count, len(ctx.indexers), after_grace_s)
        return False
    ctx.close()
    log.info("drained and stopped in %.2fs", time.monotonic() - start)
    return True
