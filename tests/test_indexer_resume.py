"""kill -9 at several points, then re-run: the same store as one uninterrupted run.

Real subprocesses (`python -m mien index`). Kill points are chosen by watching
the store from a reader process, so neither machine load nor a faster machine
moves them: during model loading, just after the run's first commit (images
still in flight), and just after the first video's commit (inside the second
video). Each point leaves at least one whole video of work, so every kill lands
inside a run even on a machine several times faster than this one (CI's is).
One killed run uses the process pool, and its orphaned workers must exit by
themselves.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time

import pytest

from indexer_support import (all_faces, check_consistent, env_for_subprocess, face_key, fork_servers, pool_workers,
                             small_photo)


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    from mien.demo.videos import write_clip

    folder = tmp_path_factory.mktemp("resume") / "archive"
    for name in ("obama", "obama2", "biden", "grace_hopper", "astronaut", "obama3"):
        small_photo(name, folder / f"{name}.jpg", max_side=480)
    # three 10 s videos (about 0.7 s of analysis each here): whole videos of work
    # stay after every kill point
    for i, people in enumerate([["obama2", "biden"], ["grace_hopper", "obama"], ["astronaut", "obama3"]]):
        write_clip(folder / f"zvideo{i}.mp4", people, fps=10, seconds=10.0, size=(640, 360))
    return folder


SOURCES = 9  # six photos, three videos


def command(archive, store, workers=1):
    return [sys.executable, "-m", "mien", "index", str(archive), "--store", str(store),
            "--quiet", "--workers", str(workers)]


def committed_sources(store_dir) -> int:
    from mien.engine.store import Store
    from mien.errors import MienError

    try:
        with Store(store_dir, mode="r") as store:
            return len(store.list_sources())
    except (MienError, OSError):
        return 0


def run_and_kill(cmd, store_dir, *, new_sources: int, at_least: int = 0, extra_delay: float,
                 timeout: float = 120) -> bool:
    """Start cmd; SIGKILL it `extra_delay` s after it has committed `new_sources`
    sources of its own and the store holds at least `at_least`.

    Returns False if the run finished before the kill point.
    """
    import psutil

    target = max(committed_sources(store_dir) + new_sources, at_least)
    proc = subprocess.Popen(cmd, env=env_for_subprocess(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while committed_sources(store_dir) < target:
        if proc.poll() is not None:
            return False
        assert time.monotonic() < deadline, "indexer made no progress"
        time.sleep(0.02)
    time.sleep(extra_delay)
    children = psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else []
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    # worker processes orphaned by the kill notice their parent is gone and exit
    gone, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, f"orphaned workers still running: {[p.pid for p in alive]}"
    return True


def snapshot(store_dir):
    from mien.engine.store import Store

    with Store(store_dir, mode="r") as store:
        check_consistent(store)
        faces = all_faces(store)
        by_person = {}
        for f in faces:
            by_person.setdefault(f.person_id, set()).add(face_key(f))
        persons = store.list_persons()
        empty = [p.person_id for p in persons if len(store.person_face_ids(p.person_id)) == 0]
        counts = {p.person_id: p.count for p in persons}
        sizes = {p.person_id: len(store.person_face_ids(p.person_id)) for p in persons}
        sources = {(s.uri, s.status, s.face_count) for s in store.list_sources()}
    return {"keys": sorted(face_key(f) for f in faces), "partition": {frozenset(v) for v in by_person.values()},
            "empty_persons": empty, "counts_match": counts == sizes, "sources": sources}


def test_kill_9_then_rerun_equals_uninterrupted_run(archive, tmp_path):
    env = env_for_subprocess()
    reference = tmp_path / "reference"
    # the reference uses the process pool, the resumed store mostly the in-process
    # runner: the results must not depend on how the work was split
    done = subprocess.run(command(archive, reference, workers=2), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    expected = snapshot(reference)
    assert len(expected["keys"]) >= 10 and len(expected["sources"]) == SOURCES

    store = tmp_path / "resumed"
    rng = random.Random(4)
    kills = 0
    # 1: during start-up (no source yet); 2: right after this run's first commit, pool of
    # two workers (photos and a video in flight); 3: right after the first video's commit,
    # inside the second. The delays are short beside the 0.7 s a video takes here.
    plans = [dict(new_sources=0, extra_delay=0.3, workers=1),
             dict(new_sources=1, extra_delay=rng.uniform(0.0, 0.05), workers=2),
             dict(new_sources=1, at_least=7, extra_delay=rng.uniform(0.0, 0.05), workers=1)]
    for plan in plans:
        workers = plan.pop("workers")
        kills += run_and_kill(command(archive, store, workers), store, **plan)
    assert kills == len(plans), "every kill point must land inside its run"
    final = subprocess.run(command(archive, store), env=env, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    got = snapshot(store)

    assert len(got["keys"]) == len(expected["keys"])
    assert got["keys"] == expected["keys"]               # same faces, no duplicates
    assert got["sources"] == {(u, s, n) for u, s, n in expected["sources"]}
    assert got["partition"] == expected["partition"]     # same grouping of faces into persons
    # persons: none left empty by a kill, every count equals the person's faces
    # (written in the faces' transaction, or repaired by the next run)
    assert got["empty_persons"] == [] and got["counts_match"]
    assert expected["empty_persons"] == [] and expected["counts_match"]


def test_a_killed_worker_does_not_lose_sources(archive, tmp_path):
    """A pool worker killed mid-run (as the OOM killer would): the pool is restarted,
    the jobs that were in flight are retried one at a time, nothing is lost."""
    from mien.engine.store import Store
    from mien.indexer import IndexOptions, index_paths

    killed = []

    def progress(event):
        if event["files_done"] >= 1 and not killed:
            workers = pool_workers()
            assert workers
            workers[0].send_signal(signal.SIGKILL)
            killed.append(workers[0].pid)

    summary = index_paths([archive], tmp_path / "store", options=IndexOptions(workers=2, show_progress=False),
                          progress=progress)
    assert killed
    assert summary.failed_count == 0, summary.failures
    assert summary.indexed == SOURCES
    with Store(tmp_path / "store", mode="r") as store:
        check_consistent(store)
        assert all(s.status == "done" for s in store.list_sources())


def test_the_fork_server_killed_with_a_worker_mid_run_is_started_again_and_nothing_is_lost(archive, tmp_path):
    """The process the pool's workers fork from (mien.indexer.pool_start) killed, and a worker with
    it: the broken pool starts again from a new fork server, the jobs in flight are retried."""
    from mien.engine.store import Store
    from mien.indexer import IndexOptions, index_paths

    killed = []

    def progress(event):
        if event["files_done"] >= 1 and not killed:
            servers, workers = fork_servers(), pool_workers()
            assert servers and workers
            for proc in (servers[0], workers[0]):
                proc.send_signal(signal.SIGKILL)
                killed.append(proc.pid)

    summary = index_paths([archive], tmp_path / "store", options=IndexOptions(workers=2, show_progress=False),
                          progress=progress)
    assert len(killed) == 2
    assert summary.failed_count == 0, summary.failures
    assert summary.indexed == SOURCES
    servers = [p.pid for p in fork_servers()]
    assert servers and killed[0] not in servers
    with Store(tmp_path / "store", mode="r") as store:
        check_consistent(store)
        assert all(s.status == "done" for s in store.list_sources())


def test_a_worker_killed_during_a_video_costs_a_retry(tmp_path):
    from mien.demo.videos import write_clip
    from mien.engine.store import Store
    from mien.indexer import IndexOptions, index_paths

    write_clip(tmp_path / "in" / "v.mp4", ["obama"], fps=10, seconds=4.0)
    killed = []

    def progress(event):
        if event["frames"] >= 2 and not killed:
            workers = pool_workers()
            workers[0].send_signal(signal.SIGKILL)
            killed.append(workers[0].pid)

    summary = index_paths([tmp_path / "in"], tmp_path / "store",
                          options=IndexOptions(workers=2, batch_frames=1, show_progress=False), progress=progress)
    assert killed and summary.failed_count == 0 and summary.videos == 1
    assert summary.frames == 8                       # counted once, not once per attempt
    with Store(tmp_path / "store", mode="r") as store:
        faces = all_faces(store)
        assert len(faces) == summary.faces_passed >= 6
        check_consistent(store)
