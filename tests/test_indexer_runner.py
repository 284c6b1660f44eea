"""The worker pool: a real pool forked from a real fork server, its hand-over of results, real SIGKILLs."""

import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures.process import BrokenProcessPool

import pytest

from mien.engine.faces import EngineConfig
from mien.indexer import handover, pool_start
from mien.indexer.runner import PoolRunner

BIG = 150_000_000  # bytes: a result that takes a while to hand over, like a long range's


def big_result(nbytes: int, die_after: float | None = None) -> bytes:
    """Runs in a worker: a large result, the worker SIGKILLed `die_after` seconds into
    the call (while the result is being built or handed over, if timed to)."""
    if die_after is not None:
        def kill():
            time.sleep(die_after)
            os.kill(os.getpid(), signal.SIGKILL)
        threading.Thread(target=kill, daemon=True).start()
    return b"m" * nbytes


def big_result_over_the_file_size_limit(nbytes: int) -> bytes:
    """Runs in a worker: files it writes may not exceed 1 kB (a full disk, as the worker sees it)."""
    import resource

    resource.setrlimit(resource.RLIMIT_FSIZE, (1000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    return b"m" * nbytes


def blas_setup() -> tuple:
    """Runs in a worker: OPENBLAS_NUM_THREADS as the worker found it, and the thread counts of
    the OpenBLAS libraries loaded (numpy's)."""
    from threadpoolctl import threadpool_info   # scikit-learn's dependency

    blas = [p["num_threads"] for p in threadpool_info() if p.get("internal_api") == "openblas"]
    return os.environ.get("OPENBLAS_NUM_THREADS"), blas


def failing() -> None:
    raise ValueError("a bug in the job")


@pytest.fixture(scope="module")
def runner():
    pool = PoolRunner(EngineConfig(), 2)
    yield pool
    pool.close()
    assert not os.path.exists(pool._results.path)


def test_results_and_errors_come_back_and_leave_no_files(runner):
    assert runner.submit(big_result, 1000).result(timeout=120) == b"m" * 1000
    with pytest.raises(ValueError, match="a bug in the job"):
        runner.submit(failing).result(timeout=60)
    assert os.listdir(runner._results.path) == []


def test_a_worker_killed_while_handing_over_its_result_breaks_the_pool_instead_of_freezing_it(runner):
    started = time.perf_counter()
    assert len(runner.submit(big_result, BIG).result(timeout=120)) == BIG
    whole = time.perf_counter() - started

    # deaths spread over the call: building the result, and partway through handing it over
    # (through the pool's pipe this froze the run: its manager waited for the rest of a message)
    outcomes = []
    for fraction in (0.3, 0.6, 0.8, 0.95):
        try:
            # (a worker that handed its result over in time dies right after: the next submit says so)
            value = runner.submit(big_result, BIG, fraction * whole).result(timeout=120)
            outcomes.append("result")  # a TimeoutError above is the freeze
            assert len(value) == BIG
        except BrokenProcessPool as exc:
            outcomes.append("broken")
            assert runner.recover(exc)
    assert "broken" in outcomes, outcomes
    time.sleep(whole + 0.5)  # every kill timed above has fired
    for attempt in range(2):  # the last death may not have been seen yet
        try:
            assert runner.submit(big_result, 10).result(timeout=120) == b"m" * 10
            break
        except BrokenProcessPool as exc:
            assert attempt == 0 and runner.recover(exc)
    # a file stays only where its worker died before the pool passed its name on; close() removes them
    left = [n for n in os.listdir(runner._results.path) if n.endswith(".pkl")]
    assert len(left) <= outcomes.count("broken"), (left, outcomes)

def test_a_result_that_cannot_be_written_comes_through_the_pipe():
    pool = PoolRunner(EngineConfig(), 1)
    try:
        assert pool.submit(big_result_over_the_file_size_limit, 50_000).result(timeout=120) == b"m" * 50_000
        assert os.listdir(pool._results.path) == []  # its partial file removed
    finally:
        pool.close()


def test_a_killed_parents_result_directory_is_removed_by_the_next(tmp_path):
    gone = handover._PREFIX + "999999999-abc"  # beyond pid_max: no such process
    alive = f"{handover._PREFIX}{os.getpid()}-def"
    for name in (gone, alive, "unrelated"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "x.pkl").write_bytes(b"left")
    handover._remove_orphans(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive, "unrelated"])
    handover_dir = handover.ResultDirectory()
    assert os.path.isdir(handover_dir.path)
    handover_dir.close()
    assert not os.path.exists(handover_dir.path)


def leave_a_teardown_mark(folder: str) -> int:
    """Registers an atexit handler that would write a file if the interpreter tore down normally."""
    import atexit

    atexit.register(lambda: open(os.path.join(folder, f"teardown-{os.getpid()}"), "w").close())
    print("a line the worker leaves unflushed", end="")
    return os.getpid()


def test_workers_end_cleanly_without_tearing_down_the_interpreter(tmp_path):
    """Workers leave with os._exit after multiprocessing's exit work (exit code 0, streams
    flushed), skipping the interpreter's teardown that kept `mien index` waiting at the end."""
    pool = PoolRunner(EngineConfig(), 2)
    processes = None
    try:
        pids = {pool.submit(leave_a_teardown_mark, str(tmp_path)).result(timeout=120) for _ in range(4)}
        processes = list(pool._pool._processes.values())
        assert pids <= {p.pid for p in processes}
    finally:
        pool.close()
    assert processes and all(p.exitcode == 0 for p in processes)
    assert os.listdir(tmp_path) == []   # no atexit handler ran: the teardown was skipped


@pytest.mark.parametrize("users", [None, "2"])
def test_workers_start_with_one_blas_thread_unless_the_user_set_another(monkeypatch, users):
    # numpy loads OpenBLAS before init() runs, so the setting must be in the environment a worker
    # starts with; the parent's own environment is left as it was
    if users is None:
        monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OPENBLAS_NUM_THREADS", users)
    pool = PoolRunner(EngineConfig(), 1)
    try:
        setting, threads = pool.submit(blas_setup).result(timeout=120)
    finally:
        pool.close()
    assert setting == (users or "1")
    assert threads and set(threads) == {int(users or 1)}
    assert os.environ.get("OPENBLAS_NUM_THREADS") == users


def parent_and_probe() -> tuple:
    """Runs in a worker: its parent's pid and command line, and MIEN_POOL_PROBE as it found it."""
    import psutil

    parent = psutil.Process(os.getppid())
    return parent.pid, " ".join(parent.cmdline()), os.environ.get("MIEN_POOL_PROBE")


def test_workers_fork_from_the_fork_server_with_the_environment_of_their_pool(monkeypatch):
    pool_start.ensure_running()   # the server starts before the variable is set
    monkeypatch.setenv("MIEN_POOL_PROBE", "set after the fork server started")
    pool = PoolRunner(EngineConfig(), 1)
    try:
        parent, cmdline, probe = pool.submit(parent_and_probe).result(timeout=120)
    finally:
        pool.close()
    assert parent != os.getpid() and "forkserver" in cmdline
    assert probe == "set after the fork server started"


def test_the_fork_server_preloads_only_modules_that_start_no_thread():
    """Forking is safe only from a process with one thread. The server's imports, in a fresh
    interpreter with the server's environment (less OpenMP's settings, which earlier tests may
    have set: without them a library may start more); a thread started at the end shows that
    the count sees threads."""
    count = "print(len(os.listdir('/proc/self/task')))"
    code = ("import os, sys, threading, time; from mien.indexer.pool_start import PRELOAD; "
            "[__import__(m) for m in PRELOAD]; assert all(m in sys.modules for m in PRELOAD); " + count
            + "; threading.Thread(target=time.sleep, args=(1,)).start(); " + count)
    env = {key: value for key, value in os.environ.items() if not key.startswith("OMP_")}
    env.update(pool_start.WORKER_ENVIRONMENT)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "2"]
