"""Real processes: kill -9 writers at random points, readers in other processes, shard crashes."""

from __future__ import annotations

import os
import signal
import time

import numpy as np

from mien.engine.store import Store
from mien.engine.store import shards as shardio
from tests.store_support import ENC, WRITER, check_consistent, popen_py, run_py, source_faces, source_record


def kill_writer_at_random(path: str, seed: int, rng) -> None:
    proc = popen_py(WRITER, path, str(seed), "120")
    line = proc.stdout.readline()
    assert line.strip() == "ready", proc.stderr.read()
    time.sleep(float(rng.uniform(0.0, 0.4)))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    proc.stderr.close()


def test_kill_minus_9_writer_many_times(tmp_path):
    path = str(tmp_path / "s")
    Store(path, "w", ENC).close()
    rng = np.random.default_rng(7)
    long_lived = Store(path, "r", nprobe=4096, k_factor=16)
    seen = []
    for i in range(15):
        kill_writer_at_random(path, seed=i, rng=rng)
        with Store(path, "r", nprobe=4096, k_factor=16) as fresh:  # reopen after the crash
            n = check_consistent(fresh)
        assert check_consistent(long_lived) == n  # the replayed log agrees with a fresh load
        seen.append(n)
    assert max(seen) > 0
    # the next writer continues where the dead ones stopped, sealing shards as it goes
    done = run_py(WRITER, path, "99", "40", "60")
    assert done.returncode == 0 and "done" in done.stdout, done.stderr
    with Store(path, "r", nprobe=4096, k_factor=16) as fresh:
        check_consistent(fresh)
        ids = [h.face_id for h in fresh.search(np.ones(16), 5)]
        assert len(set(ids)) == len(ids)
    assert check_consistent(long_lived) > 0
    long_lived.close()


READER = r"""
import sys, numpy as np
from mien.engine.store import Store
from tests.store_support import check_consistent, check_snapshot
r = Store(sys.argv[1], "r")
rounds = 0
while r.get_source("file:///last") is None:
    check_snapshot(r)  # no torn batch, ever, while the writer works
    rounds += 1
print(rounds, check_consistent(r), flush=True)
"""


def test_readers_in_other_processes_see_writes_without_restart(tmp_path):
    path = str(tmp_path / "s")
    with Store(path, "w", ENC, shard_size=150) as w:
        w.replace_source(source_record("file:///first", 1), source_faces("file:///first", 1))
        readers = [popen_py(READER, path) for _ in range(2)]
        time.sleep(1.0)
        for s in range(40):
            uri = f"file:///x/{s % 25}"
            w.replace_source(source_record(uri, s), source_faces(uri, s))
            if s % 10 == 9:
                w.remove_source(uri)
        w.replace_source(source_record("file:///last", 1), source_faces("file:///last", 1))
        total = w.stats()["faces"]
        for proc in readers:
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
            rounds, faces = map(int, out.split())
            assert faces == total and rounds > 0
        # and the other way round: a writer process, this process reads with the same object
        r = Store(path, "r")
        before = r.stats()["faces"]
    code = ("import sys; from mien.engine.store import Store; from tests.store_support import *\n"
            "with Store(sys.argv[1], 'w') as w: w.replace_source(source_record('file:///new', 3), "
            "source_faces('file:///new', 3, n=4))")
    assert run_py(code, path).returncode == 0
    new = source_faces("file:///new", 3, n=4)
    hits = r.search(new[2].expression, 1)
    assert r.get_face(hits[0].face_id).source_uri == "file:///new" and hits[0].distance < 1e-6
    assert r.stats()["faces"] == before + 4
    r.close()


CRASH_IN_SEAL = r"""
import os, sys
from mien.engine.store import Store, shards
from tests.store_support import ENC, source_faces, source_record
real_write = shards.write
where = sys.argv[2]
def write(store_dir, name, shard):
    if where == "before_rename":   # the temp file is written, never renamed
        path = os.path.join(store_dir, shards.SHARD_DIR, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path + ".tmp", "wb").write(b"partial")
    else:                          # renamed into place, never registered
        real_write(store_dir, name, shard)
    os.kill(os.getpid(), 9)
shards.write = write
with Store(sys.argv[1], "w", ENC, shard_size=100) as w:
    for s in range(1000):
        w.replace_source(source_record(f"u{s}", 1), source_faces(f"u{s}", 1))
"""


def test_crash_between_shard_write_and_registration(tmp_path):
    for where in ("before_rename", "after_rename"):
        path = str(tmp_path / where)
        assert run_py(CRASH_IN_SEAL, path, where).returncode == -9
        leftovers = os.listdir(os.path.join(path, shardio.SHARD_DIR))
        assert leftovers  # the crash left a file nobody registered
        with Store(path, "r", nprobe=4096, k_factor=16) as r:
            n = check_consistent(r)
            assert r.stats()["shards"] == 0 and n >= 100  # the batch that triggered sealing is committed
        with Store(path, "w", shard_size=100) as w:  # the next writer cleans up and seals on open
            # the leftover is gone; the interrupted seal is done again: the same first 100 faces
            assert w.stats()["shards"] == 1 and len(shardio.files(path)) == 1
            assert shardio.load(path, shardio.files(path)[0])["face_ids"].tolist() == list(range(1, 101))
            w.replace_source(source_record("more", 1), source_faces("more", 1))
            assert w.stats()["shards"] == (n + len(source_faces("more", 1))) // 100
        with Store(path, "r", nprobe=4096, k_factor=16) as r:
            assert check_consistent(r) == n + len(source_faces("more", 1))
