"""The change log: how a Store's in-memory index learns of commits made by other writers.

Every change to faces or shards appends one entry to the `log` db in the same
transaction as the change, under the next generation number (meta `gen`).
An entry is one op byte and its payload:

    A  face ids (<i8)              faces added (replace_source)
    D  face ids                    faces deleted (replace_source, remove_source)
    P  person id, then face ids    faces moved to that person (-1 = unknown)
    S  (none)                      a shard was sealed; the IVF template may be new
    R  (none)                      shards rebuilt: every reader reloads

Writers append (sources.py, persons.py, sealing.py); readers replay what came
after the generation their index reflects (live.py). Only the last LOG_KEEP
entries are kept (`log_start` is the oldest): a reader further behind reloads.
"""

from __future__ import annotations

from mien.engine.store.db import meta_int, put_meta_int
from mien.engine.store.records import id_key, key_id

LOG_KEEP = 200_000  # log entries kept; a reader further behind reloads


def append(txn, db, op: bytes, payload: bytes = b"") -> None:
    m = db["meta"]
    seq = meta_int(txn, m, b"gen") + 1
    txn.put(id_key(seq), op + payload, db=db["log"])
    put_meta_int(txn, m, b"gen", seq)


def prune(txn, db) -> None:
    """Keep LOG_KEEP // 2 entries once there are more than LOG_KEEP."""
    m = db["meta"]
    start, gen = meta_int(txn, m, b"log_start"), meta_int(txn, m, b"gen")
    if gen - start + 1 <= LOG_KEEP:
        return
    new_start = gen - LOG_KEEP // 2
    cur = txn.cursor(db=db["log"])
    while cur.first() and key_id(cur.key()) < new_start:
        cur.delete()
    put_meta_int(txn, m, b"log_start", new_start)


def restart(txn, db) -> None:
    """After a rebuild: the log holds only the R entry, so every reader reloads."""
    txn.drop(db["log"], delete=False)
    append(txn, db, b"R")
    put_meta_int(txn, db["meta"], b"log_start", meta_int(txn, db["meta"], b"gen"))


def entries(txn, db, first: int, last: int):
    """(op, payload) of the entries with generation first..last, in order."""
    cur = txn.cursor(db=db["log"])
    cur.set_range(id_key(first))
    for k, v in cur:
        if key_id(k) > last:
            break
        yield bytes(v[:1]), bytes(v[1:])
