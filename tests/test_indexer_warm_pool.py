"""A pool of worker processes kept between runs (mien.indexer.warm_pool), as a server's IndexPaths
jobs use it: real pools forked from the real fork server, real photos, real stores, a real SIGKILL."""

from __future__ import annotations

import logging
import os
import signal

import numpy as np
import pytest

from indexer_support import all_faces, check_consistent, face_key, pool_workers, small_photo
from server_support import wait_until

from mien.engine.faces import EngineConfig
from mien.indexer import IndexOptions, index_paths
from mien.indexer.runner import PoolRunner
from mien.indexer.warm_pool import WarmPool


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("warm-pool")
    first = [small_photo(name, root / "first" / f"{name}.jpg") for name in ("obama", "biden")]
    second = [small_photo(name, root / "second" / f"{name}.jpg") for name in ("obama2", "t1", "astronaut")]
    return first[0].parent, second[0].parent


def run(folder, store, pool=None):
    return index_paths([folder], store, options=IndexOptions(workers=2, show_progress=False), pool=pool)


def pids() -> set:
    return {w.pid for w in pool_workers()}


def faces_of(store_dir) -> list:
    from mien.engine.store import Store

    with Store(store_dir, mode="r") as store:
        check_consistent(store)
        faces = sorted(all_faces(store), key=face_key)
        return [(face_key(f), f.person_id, np.asarray(f.expression)) for f in faces]


def test_the_next_run_borrows_the_same_processes_and_stores_the_same_faces(folders, tmp_path):
    first, second = folders
    run(first, tmp_path / "reference")
    run(second, tmp_path / "reference")
    wait_until(lambda: not pids(), timeout=30)   # the reference runs' own pools are gone

    pool = WarmPool(idle_seconds=60)
    try:
        a = run(first, tmp_path / "kept", pool)
        kept = pids()
        assert len(kept) == 2 and pool.kept, "the pool's two workers stay after the run"
        b = run(second, tmp_path / "kept", pool)
        assert pids() == kept, "the second run was analysed by the first run's processes"
        assert a.indexed == 2 and b.indexed == 3 and b.failed_count == 0
    finally:
        pool.close()
    assert not pool.kept
    assert wait_until(lambda: not (pids() & kept), timeout=30), "closing the pool ends its workers"

    reference, got = faces_of(tmp_path / "reference"), faces_of(tmp_path / "kept")
    assert [(k, p) for k, p, _ in got] == [(k, p) for k, p, _ in reference]
    for (_, _, ours), (_, _, theirs) in zip(got, reference):
        assert np.array_equal(ours, theirs)


def test_a_lent_pool_is_not_shared_and_an_idle_one_closes_after_its_time():
    pool = WarmPool(idle_seconds=0.5)
    lent = pool.lend(EngineConfig(), 2)
    workers = {lent.submit(os.getpid).result() for _ in range(4)}
    own = pool.lend(EngineConfig(), 2)   # a second run meanwhile: a pool of its own
    try:
        assert isinstance(own, PoolRunner)
        assert own.submit(os.getpid).result() not in workers
    finally:
        own.close()
    lent.close()
    assert pool.kept and workers <= pids()
    assert wait_until(lambda: not pool.kept, timeout=10), "closed after half a second without a run"
    assert wait_until(lambda: not (pids() & workers), timeout=30)
    pool.close()


def test_another_size_or_engine_gets_a_new_pool():
    pool = WarmPool(idle_seconds=60)
    try:
        lent = pool.lend(EngineConfig(), 2)
        before = {lent.submit(os.getpid).result() for _ in range(4)}
        lent.close()
        lent = pool.lend(EngineConfig(), 1)
        after = {lent.submit(os.getpid).result() for _ in range(2)}
        lent.close()
        assert len(after) == 1 and not (after & before)
        assert wait_until(lambda: not (pids() & before), timeout=30), "the 2-worker pool was closed"
    finally:
        pool.close()


def test_a_worker_killed_while_the_pool_waits_is_replaced_before_the_next_run(folders, tmp_path, caplog):
    first, second = folders
    pool = WarmPool(idle_seconds=60)
    try:
        run(first, tmp_path / "store", pool)
        kept = pids()
        victim = sorted(kept)[0]
        os.kill(victim, signal.SIGKILL)
        # the pool notices the death on its own (ProcessPoolExecutor marks itself broken)
        assert wait_until(lambda: pool._runner.broken, timeout=10)
        with caplog.at_level(logging.WARNING, logger="mien.indexer"):
            summary = run(second, tmp_path / "store", pool)
        assert summary.indexed == 3 and summary.failed_count == 0
        assert "analysing in this process" not in caplog.text, "the run fell back to no pool"
        now = pids()
        assert len(now) == 2 and victim not in now
    finally:
        pool.close()
    from mien.engine.store import Store

    with Store(tmp_path / "store", mode="r") as store:
        check_consistent(store)
        assert len(store.list_sources()) == 5
