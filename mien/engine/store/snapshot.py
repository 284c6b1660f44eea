"""A consistent copy of a live store, for read replicas on other machines.

The copy is taken inside ONE LMDB read transaction: `env.copy(compact=True,
txn=...)` writes the database exactly as that transaction sees it, and the
shard registry is read in the same transaction, so the copied LMDB and the
copied shard files agree even while a writer keeps committing. Shard files
are immutable once registered; a rebuild may delete old ones after it
commits, so each is hard-linked (same filesystem) or copied while the read
transaction is open, and a file that vanished meanwhile restarts the copy.

Everything is written into a hidden temporary directory beside DIR, fsynced,
and renamed to DIR at the end: DIR either does not exist or is complete.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time

from mien.engine.store import shards as shardio
from mien.errors import BadInputError

log = logging.getLogger(__name__)

MARKER = "snapshot.json"  # provenance: what was copied, when, how much
ATTEMPTS = 5              # a concurrent rebuild deleting shard files restarts the copy


def _fsync(path: str) -> None:
    """Flush a file's data, or a directory's entries, to disk (opened read-only: both allow it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _place(src: str, dst: str) -> None:
    """Hard link when possible (instant, no extra disk), else a full copy."""
    try:
        os.link(src, dst)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        shutil.copyfile(src, dst)
        _fsync(dst)


def _copy_once(store, tmp: str) -> dict:
    """One attempt: LMDB and registered shards as of one read transaction."""
    m = store._db["meta"]
    os.makedirs(os.path.join(tmp, shardio.SHARD_DIR))
    with store._begin() as txn:
        reg = json.loads(bytes(txn.get(b"shards", db=m)))
        gen = int(bytes(txn.get(b"gen", db=m) or b"0"))
        counts = {name: txn.stat(store._db[db])["entries"]
                  for name, db in (("faces", "vec"), ("sources", "sources"), ("persons", "persons"))}
        store._env.lmdb.copy(tmp, compact=True, txn=txn)
        for s in reg:
            _place(os.path.join(store.path, shardio.SHARD_DIR, s["name"]),
                   os.path.join(tmp, shardio.SHARD_DIR, s["name"]))
    return {"shards": [s["name"] for s in reg], "generation": gen,
            "faces_in_shards": sum(int(s["count"]) for s in reg), **counts}


def snapshot(store_dir: str, out_dir: str) -> dict:
    """Copy the store at store_dir into the new directory out_dir; returns what was copied."""
    from mien.engine.store import Store

    store_dir, out_dir = os.fspath(store_dir), os.path.abspath(os.fspath(out_dir))
    if os.path.exists(out_dir) and (not os.path.isdir(out_dir) or os.listdir(out_dir)):
        raise BadInputError(f"{out_dir} already exists; a snapshot goes into a new (or empty) directory")
    if os.path.realpath(out_dir) == os.path.realpath(store_dir):
        raise BadInputError("the snapshot directory must differ from the store")
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    started = time.time()
    with Store(store_dir, mode="r") as store:
        for attempt in range(ATTEMPTS):
            tmp = os.path.join(parent, f".{os.path.basename(out_dir)}.tmp-{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            try:
                info = _copy_once(store, tmp)
                break
            except FileNotFoundError as exc:  # a rebuild removed a shard meanwhile: start again
                log.info("shard file vanished during the snapshot (%s); retrying", exc.filename)
                shutil.rmtree(tmp, ignore_errors=True)
        else:
            raise BadInputError(f"could not take a consistent snapshot of {store_dir} in {ATTEMPTS} "
                                "attempts (shards kept being rebuilt); try again")
    info.update(source=os.path.realpath(store_dir), taken_unix=round(started, 3),
                seconds=round(time.time() - started, 3), bytes=sum(os.path.getsize(os.path.join(dp, f))
                          for dp, _, fs in os.walk(tmp) for f in fs))
    with open(os.path.join(tmp, MARKER), "w", encoding="utf-8") as fh:
        json.dump(info, fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    _fsync(os.path.join(tmp, "data.mdb"))
    _fsync(os.path.join(tmp, shardio.SHARD_DIR))
    _fsync(tmp)
    if os.path.isdir(out_dir):
        os.rmdir(out_dir)  # empty (checked above); rename needs it gone
    os.rename(tmp, out_dir)
    _fsync(parent)
    return info
