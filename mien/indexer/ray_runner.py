"""Analysis on a Ray cluster: the same runner interface as runner.PoolRunner.

The pipeline (pipeline.py, video_jobs.py) only ever calls
`submit(fn, *args) -> Future`, `recover(exc)`, `workers` and `close()`. Here
each worker is a Ray actor that loads the face models once (worker.init) and
runs the pipeline's job functions (worker.analyze_image, analyze_range,
embed_patches) on whatever node Ray placed it. Everything else stays in the
driver exactly as on one machine: the crawl, range planning, tracking,
persons, and the single writer that commits each source in one transaction.
So crash-safety, resumability, bad-input accounting and progress are the local
path's own code.

Files travel by path: an actor opens an image, or seeks to its time range of a
video, itself, so every node must see the archive at the same path (a shared
filesystem). A job carries the path and the range; a result carries faces and
small identity patches (the face plus margin, ~160 px), which go back to an
actor for the identity embedding of a track's best faces. No frame ever
passes through the driver (see docs/scale-out.md).

Only imported for `mien index --ray`; nothing else in mien imports Ray.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future

log = logging.getLogger(__name__)

INSTALL_HINT = "mien index --ray needs Ray: pip install 'mien[ray]' (or pip install ray)"


def _ray():
    try:
        import ray
    except ImportError:
        from mien.errors import BadInputError

        raise BadInputError(INSTALL_HINT) from None
    return ray


def connect(address: str | None, *, num_cpus: int | None = None) -> None:
    """Join (or start) a Ray cluster. address: "" or None = Ray's default (RAY_ADDRESS,
    else a new local cluster), "auto" = the cluster running on this node,
    "ray://head:10001" = Ray Client, "host:port" = the head's GCS."""
    ray = _ray()
    if ray.is_initialized():
        return
    _check_reachable(address)
    if address and address.startswith("ray://"):
        kwargs = {"address": address}  # Ray Client: the cluster's own settings apply
    else:
        kwargs = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        if address:
            kwargs["address"] = address
        elif num_cpus:
            kwargs["num_cpus"] = num_cpus
    try:
        ray.init(**kwargs)
    except ConnectionError as exc:
        from mien.errors import BadInputError

        raise BadInputError(f"cannot reach the Ray cluster at {address!r}: {exc}") from None


def _check_reachable(address: str | None, timeout_s: float = 5.0) -> None:
    """Fail fast on a head that does not answer: ray.init would retry for minutes."""
    import socket

    from mien.errors import BadInputError

    if not address or address == "auto":
        return
    hostport = address[len("ray://"):] if address.startswith("ray://") else address
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise BadInputError(f"--ray {address!r}: expected auto, ray://HOST:PORT or HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise BadInputError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None


class _Actor:
    """One analysis worker: models loaded once, then any worker.* job."""

    def __init__(self, engine_config, threads: int):
        from mien.indexer import worker

        worker.init(engine_config, threads=threads)

    def call(self, fn, *args):
        return fn(*args)

    def ready(self) -> bool:
        return True


class RayRunner:
    """A pool of Ray actors with PoolRunner's interface (see the module docstring)."""

    identity = None   # videos' identity jobs go to the actors: the driver may be a laptop

    def __init__(self, engine_config, workers: int = 0, *, address: str | None = None,
                 cpus_per_worker: float = 1.0, gpus_per_worker: float = 0.0):
        ray = _ray()
        connect(address)
        self._ray = ray
        self._config = engine_config
        self._cpus, self._gpus = float(cpus_per_worker), float(gpus_per_worker)
        if workers <= 0:  # as many as the cluster has room for
            total = ray.cluster_resources()
            fit = int(total.get("CPU", 1) // max(self._cpus, 1e-9))
            if self._gpus > 0:
                fit = min(fit, int(total.get("GPU", 0) // self._gpus))
            workers = max(1, fit)
        self.workers = workers
        self._remote = ray.remote(num_cpus=self._cpus, num_gpus=self._gpus, max_restarts=0)(_Actor)
        self._lock = threading.Lock()
        self._start()

    def _start(self) -> None:
        threads = max(1, int(round(self._cpus)))
        self._actors = [self._remote.remote(self._config, threads) for _ in range(self.workers)]
        self._busy = [0] * self.workers
        # wait until every actor has its models: errors in init surface here, not in a job
        self._ray.get([a.ready.remote() for a in self._actors])

    def submit(self, fn, *args) -> Future:
        """Run fn(*args) on the least busy actor; a concurrent.futures.Future of the result."""
        with self._lock:
            i = min(range(self.workers), key=self._busy.__getitem__)
            self._busy[i] += 1
            ref = self._actors[i].call.remote(fn, *args)
        future = ref.future()

        def done(_, i=i, actors=self._actors):
            with self._lock:
                if actors is self._actors:  # not a pool replaced since
                    self._busy[i] -= 1

        future.add_done_callback(done)
        return future

    def recover(self, exc: BaseException) -> bool:
        """A dead actor (segfault on hostile input, OOM kill, lost node): a fresh pool,
        as PoolRunner does; the pipeline then retries the jobs in flight one at a time
        and fails a file that kills a worker again."""
        if isinstance(exc, self._ray.exceptions.RayActorError):
            log.warning("a Ray analysis worker died (%s); starting new workers", type(exc).__name__)
            self._kill()
            self._start()
            return True
        return False

    def _kill(self) -> None:
        for a in self._actors:
            try:
                self._ray.kill(a)
            except Exception:  # noqa: BLE001 - already gone
                pass

    def close(self) -> None:
        self._kill()
        self._actors = []
