"""Sealing is deterministic: after a kill -9 during sealing and a re-run, the shards hold the
same faces as one uninterrupted run (issue 14). Real writer processes, real kill -9."""

from __future__ import annotations

import numpy as np
import pytest

from mien.engine.store import Store
from mien.engine.store import shards as shardio
from tests.store_support import ENC, check_consistent, run_py

SHARD = 40
SOURCES = 30   # 1..29 faces each: the tail crosses SHARD at uneven points

# argv: store_dir, crash ("none" | "before_rename" | "after_rename"), which shard write to crash in.
# Sources already in the store are skipped, as an indexer re-run skips unchanged files.
WRITER = r"""
import os, sys
from mien.engine.store import Store, shards
from tests.store_support import ENC, source_faces, source_record
path, where, nth = sys.argv[1], sys.argv[2], int(sys.argv[3])
real_write, calls = shards.write, [0]
def write(store_dir, name, shard):
    calls[0] += 1
    if where != "none" and calls[0] == nth:
        if where == "before_rename":
            tmp = os.path.join(store_dir, shards.SHARD_DIR, name + ".tmp")
            os.makedirs(os.path.dirname(tmp), exist_ok=True)
            open(tmp, "wb").write(b"partial")
        else:
            real_write(store_dir, name, shard)
        os.kill(os.getpid(), 9)
    return real_write(store_dir, name, shard)
shards.write = write
with Store(path, "w", ENC, shard_size=int(sys.argv[4])) as w:
    for s in range(int(sys.argv[5])):
        uri = f"file:///src/{s:03d}.mp4"
        if w.get_source(uri) is None:
            w.replace_source(source_record(uri, 1), source_faces(uri, 1))
print("done", flush=True)
"""


def write(path: str, crash: str = "none", nth: int = 0):
    return run_py(WRITER, path, crash, str(nth), str(SHARD), str(SOURCES), timeout=120)


def shard_layout(path: str) -> tuple[list, list]:
    """(shards as (name, face ids in the file), unsealed face ids), checking no file is left over."""
    with Store(path, "r") as store:
        check_consistent(store)
        registered = store.stats()["shards"]
        live = [int(i) for i in np.asarray(store.face_table()["face_id"])]
    names = shardio.files(path)      # shard-e<epoch>-<first>-<last>.npz, sorted by first id
    assert len(names) == registered and all(n.endswith(".npz") for n in names), names
    layout = [(n, shardio.load(path, n)["face_ids"].tolist()) for n in names]
    sealed_upto = int(names[-1][:-4].split("-")[-1]) if names else 0
    return layout, [i for i in live if i > sealed_upto]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("sealing") / "whole")
    run = write(path)
    assert run.returncode == 0 and "done" in run.stdout, run.stderr
    layout, tail = shard_layout(path)
    assert len(layout) >= 3 and all(len(ids) == SHARD for _, ids in layout)
    assert 0 < len(tail) < SHARD
    return layout, tail


@pytest.mark.parametrize("crash,nth", [("after_rename", 1), ("before_rename", 1), ("after_rename", 3),
                                        ("before_rename", 2)])
def test_a_kill_during_sealing_then_a_rerun_seals_the_same_faces(uninterrupted, tmp_path, crash, nth):
    path = str(tmp_path / "crashed")
    killed = write(path, crash, nth)
    assert killed.returncode == -9, killed.stderr
    rerun = write(path)
    assert rerun.returncode == 0 and "done" in rerun.stdout, rerun.stderr
    assert shard_layout(path) == uninterrupted


def test_opening_a_writer_after_the_crash_seals_what_the_crash_left(uninterrupted, tmp_path):
    """No new faces needed: the next writer's open completes the interrupted seal."""
    path = str(tmp_path / "crashed")
    assert write(path, "after_rename", 2).returncode == -9
    Store(path, "w", shard_size=SHARD).close()
    layout, _ = shard_layout(path)
    # the same faces per shard (the epoch in a name counts IVF retrainings, which the
    # uninterrupted run had more of by the end)
    assert [ids for _, ids in layout] == [ids for _, ids in uninterrupted[0][:2]]
