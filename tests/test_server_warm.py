"""The server loads its face models at start: health says SERVING once they are warm.

In process: start_warm_up turns health to NOT_SERVING at once and to SERVING
when ServerContext.warm_up has built the analyzer and passed a face through
it. As a user runs it: `mien serve` answers health NOT_SERVING while the
models load, then SERVING, and logs how long loading took; with
--lazy-models it is SERVING at once and loads nothing. (How much faster the
first query is: benchmarks/web.py, never a timed test.)
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from indexer_support import fork_servers
from server_support import build_photo_store, free_port, start_server, stop_server
from mien.clients.client import Client

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build_photo_store(tmp_path_factory.mktemp("warm"))


def _health(target: str) -> str | None:
    with Client(target, timeout=2) as c:
        try:
            return c.health(timeout=2)
        except grpc.RpcError:
            return None


def test_health_is_serving_once_the_models_are_warm(store):
    from mien.server.app import start_warm_up

    server, target = start_server(store.store_dir, front="python")
    try:
        ctx = server.mien_context
        assert ctx._analyzer is None, "nothing loads models before the warm-up"
        thread = start_warm_up(server)
        assert _health(target) in ("NOT_SERVING", "SERVING")
        thread.join(120)
        assert not thread.is_alive()
        assert ctx._analyzer is not None, "the warm-up built the analyzer"
        assert _health(target) == "SERVING"
    finally:
        stop_server(server)


def test_warm_up_starts_not_serving(store):
    from mien.server.app import set_serving

    server, target = start_server(store.store_dir, front="python")
    try:
        set_serving(server, False)
        assert _health(target) == "NOT_SERVING"
        set_serving(server, True)
        assert _health(target) == "SERVING"
    finally:
        stop_server(server)


def _serve(store_dir, *flags):
    port = free_port()
    log = open(store_dir.parent / f"serve-{port}.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "mien", "serve", "--store", str(store_dir), "--port", str(port),
                             "--front", "python", *flags], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    return proc, f"127.0.0.1:{port}", Path(log.name)


def _stop(proc):
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:  # a server that ignores SIGTERM for 30 s fails the test
        proc.kill()
        raise


@pytest.mark.parametrize("lazy", [False, True], ids=["default", "lazy-models"])
def test_mien_serve_loads_models_before_it_says_serving(store, lazy):
    proc, target, log = _serve(store.store_dir, *(["--lazy-models"] if lazy else []))
    seen = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and "SERVING" not in seen:
            assert proc.poll() is None, log.read_text()[-2000:]
            status = _health(target)
            if status and (not seen or seen[-1] != status):
                seen.append(status)
            time.sleep(0.05)
        assert seen and seen[-1] == "SERVING", (seen, log.read_text()[-2000:])
        if lazy:
            assert seen == ["SERVING"]
        else:
            assert seen == ["NOT_SERVING", "SERVING"], "health waits for the models"
        deadline = time.monotonic() + 10
        while "mien serving store" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        assert ("models loaded and warm" in log.read_text()) is not lazy, log.read_text()[-2000:]
    finally:
        _stop(proc)


@pytest.mark.parametrize("roots", [True, False], ids=["allow-root", "no-index-jobs"])
def test_mien_serve_starts_its_index_workers_fork_server_when_it_may_run_index_jobs(store, tmp_path, roots):
    # with --allow-root, IndexPaths may run: the fork server its workers start from imports at
    # start, beside the models' warm-up, not during the first job
    proc, target, log = _serve(store.store_dir, *(["--allow-root", str(tmp_path)] if roots else []))
    try:
        # the server logs this line once it has started everything it starts
        deadline = time.monotonic() + 180
        while "mien serving store" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.1)
        assert len(fork_servers(proc.pid)) == (1 if roots else 0)
    finally:
        _stop(proc)
