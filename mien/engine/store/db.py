"""LMDB environment handling, the single-writer lock, and the small helpers every part of the store reads LMDB with.

LMDB must not be opened twice in one process (its lock table would break), yet
the server keeps a reader open and briefly opens a writer on the same
directory. So environments are shared per (process, directory) with a
reference count, and opened read-write whenever the directory allows it; the
Store enforces read-only use itself (`StoreEnv.begin`).

`StoreEnv` is one open store directory as the Store's parts share it: they all
open their transactions through it, so "closed", "forked" and "read-only"
are checked in one place.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading

import lmdb
import numpy as np

from mien.engine.store.records import decode_rows, id_key
from mien.errors import BadInputError, NotFoundError, StoreLockedError

MAP_SIZE = 1 << 40  # 1 TiB of address space; the file stays sparse
DB_NAMES = (
    "meta", "faces", "vec", "ident", "thumbs", "sources", "src_faces", "src_no",
    "persons", "person_faces", "tags", "log", "dead", "feats",
)
LOCK_FILE = "writer.lock"

_envs: dict[tuple[int, str], list] = {}  # (pid, realpath) -> [env, dbs, refcount]
_envs_lock = threading.Lock()


def acquire_env(path: str, create: bool):
    """Return (env, dbs) for the directory, shared within this process."""
    key = (os.getpid(), os.path.realpath(path))
    with _envs_lock:
        entry = _envs.get(key)
        if entry is None:
            writable = os.access(path, os.W_OK)
            env = lmdb.open(
                path, map_size=MAP_SIZE, max_dbs=len(DB_NAMES) + 2, max_readers=1024,
                subdir=True, readonly=not writable, lock=True, create=create,
                readahead=False,  # random access; don't evict the page cache
            )
            dbs = {}
            for name in DB_NAMES:
                dbs[name] = env.open_db(name.encode(), create=writable)
            entry = _envs[key] = [env, dbs, 0]
        entry[2] += 1
        return entry[0], entry[1]


def release_env(path: str) -> None:
    key = (os.getpid(), os.path.realpath(path))
    with _envs_lock:
        entry = _envs.get(key)
        if entry is None:
            return
        entry[2] -= 1
        if entry[2] <= 0:
            entry[0].close()
            del _envs[key]


class WriterLock:
    """An exclusive flock on `<store>/writer.lock`.

    flock (not fcntl/lockf) because its locks belong to the open file
    description: a second writer in the same process is refused too, and the
    kernel drops the lock when the holder dies, even by kill -9.
    """

    def __init__(self, path: str):
        self.path = os.path.join(path, LOCK_FILE)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = self._holder()
            os.close(self.fd)
            self.fd = -1
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise StoreLockedError(
                    f"store {path} is already open for writing by another writer"
                    f"{' (pid ' + holder + ')' if holder else ''}; only one writer "
                    "at a time — open it with mode='r' to read, or wait for the "
                    "indexer to finish"
                ) from None
            raise
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)

    def _holder(self) -> str:
        try:
            return os.pread(self.fd, 32, 0).decode().strip()
        except OSError:
            return ""

    def release(self) -> None:
        if self.fd >= 0:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1


class StoreEnv:
    """One open store directory: the shared LMDB environment and its named dbs
    (`db`), the writer lock in mode 'w', and the re-entrant lock that serialises
    the threads of one Store (writes, and reads of the in-memory index)."""

    def __init__(self, path: str, mode: str):
        self.path, self.mode = path, mode
        self.lock = threading.RLock()
        self.pid = os.getpid()
        self.writer: WriterLock | None = None
        self.lmdb = None  # the lmdb.Environment while open
        self.db: dict = {}
        if mode == "w":
            os.makedirs(path, exist_ok=True)
            self.writer = WriterLock(path)
        elif not os.path.exists(os.path.join(path, "data.mdb")):
            raise NotFoundError(f"no mien store at {path}")
        try:
            self.lmdb, self.db = acquire_env(path, create=(mode == "w"))
        except BaseException:
            self.close()
            raise

    def begin(self, write: bool = False):
        if self.lmdb is None:
            raise BadInputError("store is closed")
        if os.getpid() != self.pid:
            raise RuntimeError("a Store cannot be used across fork(); open a new Store in the child")
        if write and self.writer is None:
            raise BadInputError("store opened read-only (mode='r'); open it with mode='w' to write")
        return self.lmdb.begin(write=write)

    def close(self) -> None:
        with self.lock:
            if self.lmdb is not None and os.getpid() == self.pid:
                release_env(self.path)
            self.lmdb = None
            if self.writer is not None:
                self.writer.release()
                self.writer = None


# Small meta values and id lists as the store and the person bookkeeping write them.
def meta_int(txn, db, key: bytes, default: int = 0) -> int:
    v = txn.get(key, db=db)
    return default if v is None else int(bytes(v))


def put_meta_int(txn, db, key: bytes, value: int) -> None:
    txn.put(key, str(int(value)).encode(), db=db)


def ids_bytes(ids) -> bytes:
    return np.asarray(ids, dtype="<i8").tobytes()


def ids_of(value) -> np.ndarray:
    return np.frombuffer(bytes(value), dtype="<i8") if value else np.zeros(0, np.int64)


def scan_rows(txn, db, first: int, last: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Face ids and VEC rows with first <= id (<= last) from the `vec` db, in id order."""
    cur = txn.cursor(db=db["vec"])
    keys, vals = [], []
    if cur.set_range(id_key(first)):
        stop = None if last is None else id_key(last)
        for k, v in cur:
            if stop is not None and k > stop:
                break
            keys.append(k)
            vals.append(v)
    ids = np.frombuffer(b"".join(keys), dtype=">i8").astype(np.int64) if keys else np.zeros(0, np.int64)
    return ids, decode_rows(vals)
