"""The shard lifecycle: the LMDB tail of new faces becomes immutable FAISS shard files.

Faces are committed to LMDB only (the "tail"); once shard_size of them are
unsealed, the writer seals them into a shard file (shards.py: written, fsynced,
renamed) and only then registers it in the meta db (`shards`, `sealed_upto`,
`tail`), logging an S entry. The first seal trains the IVF template every shard
shares; a store that outgrows its template (ivf.py) is rebuilt:
retrained on every live face, every shard rewritten, tombstones dropped.

Which faces a shard holds depends only on the committed faces, so a writer
killed at any moment leaves a store the next writer repairs on open into the
very shards an uninterrupted run would have written.
"""

from __future__ import annotations

import json
import logging

import numpy as np

from mien.engine.store import changelog
from mien.engine.store import shards as shardio
from mien.engine.store.db import StoreEnv, meta_int, put_meta_int, scan_rows
from mien.engine.store.ivf import ann_template, ivf_outgrown, template_lists
from mien.engine.store.records import key_id

log = logging.getLogger(__name__)


def train(rows: np.ndarray) -> bytes:
    """A serialised IVF-SQ8 template trained on the rows' expression vectors."""
    import faiss

    index = ann_template(len(rows))
    index.train(np.ascontiguousarray(rows["e"], dtype=np.float32))
    return bytes(faiss.serialize_index(index))


class Sealer:
    """Seals, repairs and rebuilds the shards of one writer's store."""

    def __init__(self, env: StoreEnv, shard_size: int):
        self._env, self._db = env, env.db
        self.shard_size = shard_size

    def seal(self) -> None:
        """Seal the unsealed faces into shards of exactly shard_size faces (id order), registering each.

        Deterministic: which faces a shard holds depends only on the committed
        faces, never on when a seal ran or whether one was cut short. A crash
        before a shard is registered leaves its faces unsealed, and the next
        writer seals the same ones on open (repair). Fewer than
        shard_size unsealed faces stay in the LMDB tail.
        """
        env, m = self._env, self._db["meta"]
        with env.lock:
            while True:
                with env.begin() as txn:
                    sealed = meta_int(txn, m, b"sealed_upto")
                    template = txn.get(b"template", db=m)
                    template = bytes(template) if template is not None else None
                    epoch = meta_int(txn, m, b"epoch")
                    sealed_faces = sum(s["count"] for s in json.loads(bytes(txn.get(b"shards", db=m))))
                    ids, rows = scan_rows(txn, self._db, sealed + 1)
                if len(ids) < self.shard_size:
                    return
                unsealed = len(ids)
                ids, rows = ids[:self.shard_size], rows[:self.shard_size]
                if template is not None and ivf_outgrown(template_lists(template), sealed_faces + len(ids)):
                    # the store outgrew its IVF (lists too long for its size): retrain for the
                    # face count and rewrite every shard; that seals this tail too
                    self.rebuild()
                    return
                new_template = template is None
                if new_template:
                    template = train(rows)
                name = shardio.shard_name(int(ids[0]), int(ids[-1]), epoch)
                shardio.write(env.path, name, shardio.build(template, ids, rows))
                with env.begin(write=True) as txn:
                    reg = json.loads(bytes(txn.get(b"shards", db=m)))
                    reg.append({"name": name, "first": int(ids[0]), "last": int(ids[-1]), "count": len(ids)})
                    txn.put(b"shards", json.dumps(reg).encode(), db=m)
                    put_meta_int(txn, m, b"sealed_upto", int(ids[-1]))
                    put_meta_int(txn, m, b"tail", unsealed - len(ids))
                    if new_template:
                        txn.put(b"template", template, db=m)
                    changelog.append(txn, self._db, b"S")
                    changelog.prune(txn, self._db)

    def repair(self) -> None:
        """Writer open: drop unregistered/temp shard files, rebuild missing registered ones."""
        env, m = self._env, self._db["meta"]
        with env.begin() as txn:
            reg = json.loads(bytes(txn.get(b"shards", db=m)))
            template = txn.get(b"template", db=m)
            template = bytes(template) if template is not None else None
        known = {s["name"] for s in reg}
        for f in shardio.files(env.path):
            if f not in known:
                log.info("removing unregistered shard file %s", f)
                shardio.remove(env.path, f)
        present = set(shardio.files(env.path))
        for s in reg:
            if s["name"] not in present:
                log.warning("shard %s is missing; rebuilding it from LMDB", s["name"])
                with env.begin() as txn:
                    ids, rows = scan_rows(txn, self._db, s["first"], s["last"])
                    dead = {key_id(k) for k, _ in txn.cursor(db=self._db["dead"])}
                # the file must hold the registered id range; dead faces are gone from
                # LMDB, so they are simply absent (their tombstones match nothing)
                keep = np.array([i not in dead for i in ids], dtype=bool)
                shardio.write(env.path, s["name"], shardio.build(template, ids[keep], rows[keep]))
        with env.begin() as txn:
            tail = meta_int(txn, m, b"tail")
        if tail >= self.shard_size:
            # a writer died between committing faces and sealing them: seal now what an
            # uninterrupted run sealed then, so the shards do not depend on the crash
            self.seal()

    def rebuild(self) -> None:
        """Compact: retrain the IVF on all live faces, rewrite every shard, drop tombstones."""
        env, d, m = self._env, self._db, self._db["meta"]
        with env.lock:
            with env.begin() as txn:
                ids, rows = scan_rows(txn, d, 0)
                old = json.loads(bytes(txn.get(b"shards", db=m)))
                epoch = meta_int(txn, m, b"epoch") + 1
            n_sealed = (len(ids) // self.shard_size) * self.shard_size
            template = train(rows) if n_sealed else None
            reg = []
            for lo in range(0, n_sealed, self.shard_size):
                sid, srows = ids[lo:lo + self.shard_size], rows[lo:lo + self.shard_size]
                name = shardio.shard_name(int(sid[0]), int(sid[-1]), epoch)
                shardio.write(env.path, name, shardio.build(template, sid, srows))
                reg.append({"name": name, "first": int(sid[0]), "last": int(sid[-1]), "count": len(sid)})
            with env.begin(write=True) as txn:
                txn.put(b"shards", json.dumps(reg).encode(), db=m)
                put_meta_int(txn, m, b"sealed_upto", int(ids[n_sealed - 1]) if n_sealed else 0)
                put_meta_int(txn, m, b"tail", len(ids) - n_sealed)
                put_meta_int(txn, m, b"epoch", epoch)
                if template is not None:
                    txn.put(b"template", template, db=m)
                else:
                    txn.delete(b"template", db=m)
                txn.drop(d["dead"], delete=False)
                changelog.restart(txn, d)
            for s in old:
                if s["name"] not in {r["name"] for r in reg}:
                    shardio.remove(env.path, s["name"])
