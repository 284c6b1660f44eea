"""Where analysis jobs run: a pool of worker processes, or this process
(or a Ray cluster: ray_runner.RayRunner, same interface).

Processes, not threads: dlib's detector and the Python glue hold the GIL, so
threads would not use the second core. Workers are started with "spawn" so
they never inherit the parent's torch/OpenCV thread state, and each pins its
libraries to one thread: two workers on two cores beat two workers fighting
over four BLAS threads.
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from mien.indexer import handover, worker


class InlineRunner:
    """Runs each job immediately in this process (workers=1, tests, debugging)."""

    workers = 1

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


# What a worker process must find in its environment when it starts: a spawned worker loads numpy,
# and with it OpenBLAS, while it unpickles its initializer, before init() can pin anything, and
# OpenBLAS sizes its thread pool then (a thread per core, though each worker has one core). With
# one thread a 2-worker pool started in 0.22-0.34 s against 0.32-0.44 s (benchmarks/index.py
# --video-clock 8 --photos-only, alternated with the tree before).
WORKER_ENVIRONMENT = {"OPENBLAS_NUM_THREADS": "1"}


@contextlib.contextmanager
def worker_environment():
    """os.environ with WORKER_ENVIRONMENT's variables that are not set already (a user's own setting
    wins), while worker processes spawn."""
    added = {key: value for key, value in WORKER_ENVIRONMENT.items() if key not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


class PoolRunner:
    """Worker processes; their results come back as files (handover.py says why)."""

    def __init__(self, engine_config, workers: int):
        import multiprocessing

        self.workers = workers
        self._config = engine_config
        self._context = multiprocessing.get_context("spawn")
        self._results = handover.ResultDirectory()
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=self._context,
                                   initializer=worker.init, initargs=(self._config, 1))

    def submit(self, fn, *args) -> Future:
        with worker_environment():  # the pool spawns a worker here when none is idle
            return handover.HandedOver(self._pool.submit(handover.run_to_file, self._results.path, fn, *args))

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


def _spawn_safe() -> bool:
    """"spawn" re-imports the main script in each worker: impossible for code read
    from stdin. (Scripts calling index_paths need the usual
    `if __name__ == "__main__":` guard, as with any multiprocessing code.)"""
    import sys

    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    return main_file is None or os.path.exists(main_file)


def make_runner(engine_config, workers: int = 0, options=None):
    """options (IndexOptions): with ray_address set (`mien index --ray`), a Ray actor pool;
    otherwise Ray is never imported."""
    if options is not None and getattr(options, "ray_address", None) is not None:
        from mien.indexer.ray_runner import RayRunner

        return RayRunner(engine_config, workers, address=options.ray_address,
                         cpus_per_worker=options.ray_cpus_per_worker,
                         gpus_per_worker=options.ray_gpus_per_worker)
    workers = workers or (os.cpu_count() or 1)
    if workers <= 1 or not _spawn_safe():
        return InlineRunner(engine_config)
    return PoolRunner(engine_config, workers)
