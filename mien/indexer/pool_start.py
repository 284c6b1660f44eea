"""How the analysis pool's worker processes start: forked from a fork server that has already
imported what a worker imports.

A spawned worker starts an interpreter and imports numpy, OpenCV, LiteRT, dlib, PIL and mien's
engine: about 0.4 s of CPU, paid again by every worker of every pool. multiprocessing's fork
server pays it once per process: a fresh interpreter (started by exec, so it inherits none of
the caller's threads) imports PRELOAD and forks each worker from there. `start()` launches it as
soon as a run knows it will use a pool, so it imports while the caller does its own imports and
crawl.

Forking is safe only while the server has a single thread, so PRELOAD holds only modules that
start none when imported (ONNX Runtime starts some: each worker imports it itself). A test checks
this in a fresh interpreter.

A worker forked from the server has the server's environment, taken when it started. The pool
hands each worker the caller's environment of the moment (worker_environment()) and init_worker
adopts it, OpenBLAS's thread count included, as a spawned worker would have found it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import warnings

# imported once by the fork server, in this order; a module missing here is imported by the worker.
# Not PyAV (45 ms here): the server's imports delay every run's first job, and only a video's
# ranges need it, whose workers import it in parallel
PRELOAD = (
    "numpy", "cv2", "ai_edge_litert.interpreter", "dlib", "PIL.Image", "PIL.JpegImagePlugin",
    "PIL.PngImagePlugin", "mien.engine.faces.analyzer", "mien.indexer.handover", "mien.indexer.worker",
)

# What the fork server (and so each worker) must find in its environment before numpy loads:
# numpy loads OpenBLAS, which sizes its thread pool then (a thread per core, though each worker
# has one core). With one thread a 2-worker pool of spawned workers started in 0.22-0.34 s against
# 0.32-0.44 s (benchmarks/index.py --video-clock 8 --photos-only, alternated with the tree before).
WORKER_ENVIRONMENT = {"OPENBLAS_NUM_THREADS": "1"}


def worker_environment() -> dict:
    """The environment a worker starts in: this process's, plus WORKER_ENVIRONMENT's variables
    it does not set (a user's own setting wins)."""
    return {**WORKER_ENVIRONMENT, **os.environ}


@contextlib.contextmanager
def _environment(env: dict):
    """os.environ holds `env`'s variables inside the block (a process started there inherits
    them); only those are set and then put back, so other threads never see a variable vanish."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def main_importable() -> bool:
    """Whether a worker can start: each one imports the main script again by its path (as with
    spawn), which is impossible for code read from stdin. Scripts calling index_paths need the
    usual `if __name__ == "__main__":` guard, as with any multiprocessing code (unguarded_call)."""
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    return main_file is None or os.path.exists(main_file)


def _is_main_test(test) -> bool:
    """Whether an `if` test is `__name__ == "__main__"` (either way round)."""
    import ast

    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    return (any(isinstance(x, ast.Name) and x.id == "__name__" for x in sides)
            and any(isinstance(x, ast.Constant) and x.value == "__main__" for x in sides))


@functools.lru_cache(maxsize=16)
def _guarded_lines(path: str) -> frozenset | None:
    """The lines of `path` inside an `if __name__ == "__main__":` block; None when it does not
    parse (then nothing is assumed)."""
    import ast

    try:
        with open(path, "rb") as fh:
            tree = ast.parse(fh.read())
    except (OSError, SyntaxError, ValueError):
        return None
    lines: set = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_main_test(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return frozenset(lines)


_TOLD: set = set()   # the unguarded statements warned about, this process


def unguarded_call() -> str | None:
    """"file:line" of the main script's top-level statement that is running this call when it is
    outside an `if __name__ == "__main__":` block, else None. Each worker imports the script again
    (as spawn does) and would run that statement again: the whole run, in every worker, and
    whatever else the script does at its top level (deleting a store, say)."""
    main = sys.modules.get("__main__")
    name = getattr(getattr(main, "__spec__", None), "name", None)   # run with -m
    if name is not None and (name == "__main__" or name.endswith(".__main__")):
        return None   # a package's __main__ (python -m mien): multiprocessing never imports it again
    path = getattr(main, "__file__", None)
    if name is None and path is not None and os.path.splitext(os.path.basename(path))[0] == "ipython":
        return None   # nor IPython's launcher
    frame = sys._getframe(1)
    while frame is not None and not (frame.f_code.co_name == "<module>"
                                     and frame.f_globals.get("__name__") == "__main__"):
        frame = frame.f_back
    if path is None or frame is None:
        return None   # no script (stdin, -c, a notebook), or not called from its top level (a thread)
    guarded = _guarded_lines(path)
    if guarded is None or frame.f_lineno in guarded:
        return None
    return f"{path}:{frame.f_lineno}"


def pool_size(workers: int = 0, options=None) -> int:
    """How many worker processes a run with these settings starts: 0 when it analyses in this
    process (one worker, a main script workers cannot import, or one that calls from its top
    level without the `__main__` guard, which is then told so) or on a Ray cluster."""
    if options is not None and getattr(options, "ray_address", None) is not None:
        return 0
    workers = workers or (os.cpu_count() or 1)
    if workers <= 1 or not main_importable():
        return 0
    where = unguarded_call()
    if where is not None:
        if where not in _TOLD:   # once per statement, not at each of a run's calls
            _TOLD.add(where)
            warnings.warn(f"{where}: indexing runs in this process, on one core: worker processes import "
                          "the main script again and would run this statement again. Put the call under "
                          "`if __name__ == \"__main__\":` to use the worker processes.", RuntimeWarning, stacklevel=2)
        return 0
    return workers


def context():
    """The multiprocessing context whose processes fork from the preloaded server."""
    import multiprocessing

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(PRELOAD))
    return ctx


def start(workers: int = 0, options=None) -> None:
    """Launch the fork server now if a run with these settings will use a pool (it then imports
    in the background); later pools of this process fork from the same server."""
    if pool_size(workers, options):
        ensure_running()


def ensure_running() -> None:
    from multiprocessing import forkserver

    context()
    # The server imports numpy with WORKER_ENVIRONMENT; PYTHONPATH carries this process's
    # sys.path, which Python 3.11's fork server does not apply before it preloads, so that it
    # imports the same mien as this process.
    env = {key: value for key, value in WORKER_ENVIRONMENT.items() if key not in os.environ}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    with _environment(env):
        forkserver.ensure_running()


def init_worker(environment: dict, engine_config, threads: int) -> None:
    """A pool worker's initialiser: adopt the pool's environment, then worker.init."""
    blas_before = os.environ.get("OPENBLAS_NUM_THREADS")
    os.environ.clear()
    os.environ.update(environment)
    blas = environment.get("OPENBLAS_NUM_THREADS")
    if blas != blas_before and blas is not None and blas.isdigit() and int(blas) > 0:
        # the server loaded OpenBLAS under another setting: apply this one as it would have
        from threadpoolctl import threadpool_limits

        threadpool_limits(int(blas), user_api="blas")
    from mien.indexer import worker

    worker.init(engine_config, threads)
