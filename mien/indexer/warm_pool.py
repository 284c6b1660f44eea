"""A pool of worker processes kept between indexing runs: a server's IndexPaths jobs, one after another.

Every run's pool costs each worker its fork, its models and its first file's one-time work
(ONNX Runtime's start, dlib's predictor, LiteRT's first calls): 0.2-0.3 s before the first
result, in every job, which a job of a few files from a web app mostly waits for. A server
keeps one pool and lends it to its jobs in turn; a job that starts while the pool is lent gets
a pool of its own, as before. The pool is closed after IDLE_SECONDS without a job (each idle
worker holds about 135 MB of its own: its models and their buffers), when a job needs other
models or another size, when a worker died while it waited, and when the server stops. Jobs on
a kept pool give the same results: the workers hold no state from one file to the next but
their loaded models.
"""

from __future__ import annotations

import threading

IDLE_SECONDS = 300.0   # a user indexing folder after folder from the web app pauses between jobs


class WarmPool:
    """Lends one kept PoolRunner to one run at a time (runner.make_runner(..., pool=))."""

    def __init__(self, idle_seconds: float = IDLE_SECONDS):
        self.idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._runner = None      # the kept PoolRunner, or None
        self._key = None         # (engine config, workers) it was started for
        self._lent = False
        self._closed = False
        self._timer: threading.Timer | None = None

    def lend(self, engine_config, workers: int):
        """A runner for one run: the kept pool when no run holds it (started now, or again when it
        was started for other models or another size, or lost a worker while it waited); else a
        pool of the run's own. Either way the run's runner.close() ends its use."""
        from mien.indexer.runner import PoolRunner

        key = (engine_config, workers)
        with self._lock:
            self._stop_timer()
            if self._lent or self._closed:
                return PoolRunner(engine_config, workers)
            stale = None
            if self._runner is not None and (self._key != key or self._runner.broken):
                stale, self._runner = self._runner, None
            if self._runner is None:
                self._runner, self._key = PoolRunner(engine_config, workers), key
            self._lent = True
            runner = self._runner
        if stale is not None:
            stale.close()
        return _Lent(self, runner)

    def _returned(self, runner) -> None:
        """A run is done with the kept pool (self._runner: nothing replaces a lent pool): it waits
        for the next, or closes if it broke or the pool was closed meanwhile."""
        runner.settle()
        with self._lock:
            self._lent = False
            if not runner.broken and not self._closed:
                self._timer = threading.Timer(self.idle_seconds, self._idle_out, args=(runner,))
                self._timer.daemon = True
                self._timer.start()
                return
            self._runner = None
        runner.close()

    def _idle_out(self, runner) -> None:
        with self._lock:
            if runner is not self._runner or self._lent:
                return  # lent again (or replaced) since the timer started
            self._runner = None
        runner.close()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    @property
    def kept(self) -> bool:
        """Whether worker processes are kept now (lent or waiting for the next run)."""
        with self._lock:
            return self._runner is not None

    def close(self) -> None:
        """Stop keeping a pool: an idle one closes now, a lent one when its run returns it."""
        with self._lock:
            self._closed = True
            self._stop_timer()
            runner = None if self._lent else self._runner
            if runner is not None:
                self._runner = None
        if runner is not None:
            runner.close()


class _Lent:
    """The kept PoolRunner as one run sees it: close() hands it back instead of shutting it down."""

    def __init__(self, keeper: WarmPool, runner):
        self._keeper, self._runner = keeper, runner
        self.workers = runner.workers
        self.identity = runner.identity
        self._returned = False

    def submit(self, fn, *args):
        return self._runner.submit(fn, *args)

    def recover(self, exc: BaseException) -> bool:
        return self._runner.recover(exc)

    def close(self) -> None:
        if not self._returned:
            self._returned = True
            self._keeper._returned(self._runner)
