"""Where analysis jobs run: a pool of worker processes, or this process
(or a Ray cluster: ray_runner.RayRunner, same interface).

Processes, not threads: dlib's detector and the Python glue hold the GIL, so
threads would not use the second core. Workers fork from a fork server with
their modules imported (pool_start.py), so they never inherit the parent's
torch/OpenCV thread state, and each pins its libraries to one thread: two
workers on two cores beat two workers fighting over four BLAS threads.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from mien.indexer import handover, pool_start, worker
from mien.indexer.driver_identity import DriverIdentity


class InlineRunner:
    """Runs each job immediately in this process (workers=1, tests, debugging)."""

    workers = 1
    identity = None   # videos' identity jobs are jobs like the others (this process's analyzer)

    def __init__(self, engine_config):
        worker.init(engine_config, threads=os.cpu_count() or 1)

    def submit(self, fn, *args) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # delivered through the future, like a pool would
            future.set_exception(exc)
        return future

    def recover(self, exc: BaseException) -> bool:
        return False

    def close(self) -> None:
        pass


class PoolRunner:
    """Worker processes; their results come back as files (handover.py says why). Videos'
    identity steps run in this process (driver_identity.py says why)."""

    def __init__(self, engine_config, workers: int):
        self.workers = workers
        self.identity = DriverIdentity(engine_config)
        self._config = engine_config
        self._context = pool_start.context()
        self._results = handover.ResultDirectory()
        self._in_flight: set = set()   # the pool's futures not done yet (settle() waits for them)
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        pool_start.ensure_running()   # with the workers' environment, before the pool's first fork asks
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=self._context,
                                   initializer=pool_start.init_worker,
                                   initargs=(pool_start.worker_environment(), self._config, 1))

    def submit(self, fn, *args) -> Future:
        inner = self._pool.submit(handover.run_to_file, self._results.path, fn, *args)
        self._in_flight.add(inner)
        inner.add_done_callback(self._in_flight.discard)
        return handover.HandedOver(inner)

    @property
    def broken(self) -> bool:
        """A worker died and no recover() has replaced the pool since (ProcessPoolExecutor marks
        itself broken then; a kept pool can lose a worker while it waits for its next run)."""
        return bool(getattr(self._pool, "_broken", False))

    def settle(self) -> None:
        """Cancel the jobs no worker has started and wait for the ones that run, keeping the
        processes (close() without the shutdown: a kept pool between two runs, warm_pool.py)."""
        pending = self._in_flight.copy()   # copied at once: done callbacks discard from another thread
        for future in pending:
            future.cancel()
        wait(pending)

    def recover(self, exc: BaseException) -> bool:
        """After a worker died (segfault on hostile input, OOM kill): start a new pool."""
        if isinstance(exc, BrokenProcessPool):
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._start()
            return True
        return False

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._results.close()
        self.identity.close()


def make_runner(engine_config, workers: int = 0, options=None, pool=None):
    """options (IndexOptions): with ray_address set (`mien index --ray`), a Ray actor pool;
    otherwise Ray is never imported. pool (warm_pool.WarmPool): a pool of worker processes kept
    between runs lends its processes when it can."""
    if options is not None and getattr(options, "ray_address", None) is not None:
        from mien.indexer.ray_runner import RayRunner

        return RayRunner(engine_config, workers, address=options.ray_address,
                         cpus_per_worker=options.ray_cpus_per_worker,
                         gpus_per_worker=options.ray_gpus_per_worker)
    workers = pool_start.pool_size(workers, options)
    if not workers:
        return InlineRunner(engine_config)
    if pool is not None:
        return pool.lend(engine_config, workers)
    return PoolRunner(engine_config, workers)
