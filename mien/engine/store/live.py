"""The in-memory indexes a Store searches, kept in step with what LMDB has committed.

`LiveIndex` holds the expression index (index.FaceIndex, built from the
registered shard files plus the LMDB tail), the identity index (identity_index.py,
on first use) and the sorted ids of occluded faces (on first use). Every
reader call passes its read transaction to `sync`, which compares the log
generation with the one the indexes reflect and replays the new change-log
entries (changelog.py): readers in other processes see commits without a
restart, at the cost of one LMDB get per call when nothing changed. A reader
that fell behind the pruned log, or meets a rebuild, reloads.
"""

from __future__ import annotations

import json
import logging

import numpy as np

from mien.engine.store import changelog
from mien.engine.store import shards as shardio
from mien.engine.store.db import StoreEnv, ids_of, meta_int, scan_rows
from mien.engine.store.identity_index import IdentityIndex
from mien.engine.store.expression_index import FaceIndex
from mien.engine.store.records import VEC_DTYPE, decode_rows, face_occlusion, id_key, key_id
from mien.errors import BadInputError

log = logging.getLogger(__name__)


def _trim_heap() -> None:
    """Hand freed load-time buffers back to the OS (glibc keeps them otherwise)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class LiveIndex:
    """The indexes of one Store; callers hold the store's lock around sync and use."""

    def __init__(self, env: StoreEnv, params: dict, index_device: str, encoders: dict | None = None):
        self._env, self._db = env, env.db
        # the Store's encoders dict (shared with its parts): a reload refreshes it in place, since
        # `mien reembed` changes the expression space along with every vector
        self._encoders = encoders
        self._params, self._device = params, index_device
        self.idx: FaceIndex | None = None
        self.ident: IdentityIndex | None = None
        self._occl: np.ndarray | None = None  # sorted ids of occluded faces, read on first use
        self._gen = -1

    def drop(self) -> None:
        self.idx = self.ident = None

    def _load(self, txn) -> None:
        """Build the in-memory index from the registered shards plus the LMDB tail."""
        import faiss

        d, m = self._db, self._db["meta"]
        if self._encoders is not None:
            committed = json.loads(bytes(txn.get(b"encoders", db=m)))
            if committed != self._encoders:
                self._encoders.clear()
                self._encoders.update(committed)
        idx = FaceIndex(**self._params)
        template = txn.get(b"template", db=m)
        template = bytes(template) if template is not None else None
        idx.start(template)
        reg = json.loads(bytes(txn.get(b"shards", db=m)))
        idx.reserve(sum(s["count"] for s in reg) + meta_int(txn, m, b"tail") + 1024)
        keys = list(txn.cursor(db=d["person_faces"]).iternext(values=False))
        pf = np.frombuffer(b"".join(keys), dtype=">i8").astype(np.int64).reshape(-1, 2)
        del keys
        pf = pf[np.argsort(pf[:, 1], kind="stable")]
        parts = []  # (IVF with local ids, first row): merged once at the end

        def add_part(ids, rows, bf16=None, part=None, exact=None):
            if idx.ivf and part is None and len(ids):
                part = faiss.deserialize_index(np.frombuffer(template, dtype=np.uint8))
                part.add_with_ids(rows["e"], np.arange(len(ids), dtype=np.int64))
            if part is not None:
                parts.append((part, idx.ids.n))
            idx.append(ids, rows, ivf_done=idx.ivf, bf16=bf16, exact=exact)

        for s in reg:
            try:
                sh = shardio.load(self._env.path, s["name"])
            except (OSError, ValueError, KeyError) as exc:
                log.warning("shard %s unreadable (%s); loading its faces from LMDB", s["name"], exc)
                add_part(*scan_rows(txn, d, s["first"], s["last"]))
                continue
            rows = np.zeros(len(sh["face_ids"]), dtype=VEC_DTYPE)
            rows["ts"], rows["src"], rows["person"] = sh["ts"], sh["src"], -1
            if len(pf):
                pos = np.minimum(np.searchsorted(pf[:, 1], sh["face_ids"]), len(pf) - 1)
                hit = pf[pos, 1] == sh["face_ids"]
                rows["person"][hit] = pf[pos[hit], 0]
            add_part(sh["face_ids"], rows, bf16=sh["bf16"], part=sh["index"], exact=sh["e32"])
        add_part(*scan_rows(txn, d, meta_int(txn, m, b"sealed_upto") + 1))
        if idx.ivf:
            idx.merge_exact(parts)
        del parts
        dead = [key_id(k) for k in txn.cursor(db=d["dead"]).iternext(values=False)]
        if dead:
            idx.kill(dead)
        self._place(idx)
        self.idx, self.ident, self._occl = idx, None, None
        self._gen = meta_int(txn, m, b"gen")
        _trim_heap()

    def _place(self, idx: FaceIndex) -> None:
        """Optional GPU placement of the candidate index (faiss-gpu extra; untested here)."""
        if self._device != "gpu":
            return
        import faiss

        if not hasattr(faiss, "index_cpu_to_all_gpus") or faiss.get_num_gpus() == 0:
            raise BadInputError("index_device='gpu' needs the faiss GPU build and a visible GPU")
        idx.ann = faiss.index_cpu_to_all_gpus(idx.ann)

    def sync(self, txn) -> None:
        """Bring the indexes to the transaction's generation (load, or replay the log)."""
        m = self._db["meta"]
        gen = meta_int(txn, m, b"gen")
        if self.idx is not None and gen == self._gen:
            return
        if self.idx is None or self._gen + 1 < meta_int(txn, m, b"log_start"):
            self._load(txn)
            return
        for op, payload in changelog.entries(txn, self._db, self._gen + 1, gen):
            if op == b"A":
                self._apply_add(txn, ids_of(payload))
            elif op == b"D":
                ids = ids_of(payload)
                self.idx.kill(ids)
                if self.ident is not None:
                    self.ident.kill(ids)
            elif op == b"P":
                ids = ids_of(payload)
                self.idx.set_person(ids[1:], int(ids[0]))
            elif op == b"S" and not self.idx.ivf:
                self.idx.to_ivf(bytes(txn.get(b"template", db=m)))
                self._place(self.idx)
            elif op == b"R":
                self._load(txn)
                return
        self._gen = gen

    def _apply_add(self, txn, ids: np.ndarray) -> None:
        vec = self._db["vec"]
        present, vals = [], []
        for fid in ids:
            v = txn.get(id_key(fid), db=vec)
            if v is not None:  # deleted by a later entry we are about to replay
                present.append(fid)
                vals.append(v)
        present = np.asarray(present, dtype=np.int64)
        self.idx.append(present, decode_rows(vals))
        if self.ident is not None:
            self._ident_add(txn, present)
        if self._occl is not None and len(present):
            self._occl = np.union1d(self._occl, self._occluded_among(txn, present))

    def identity(self, txn, dim: int) -> IdentityIndex:
        """The identity index, read from the `ident` db on first use (after sync)."""
        if self.ident is None:
            self.ident = IdentityIndex(dim)
            keys, vals = [], []
            for kk, v in txn.cursor(db=self._db["ident"]):
                keys.append(kk)
                vals.append(v)
            if keys:
                ids = np.frombuffer(b"".join(keys), dtype=">i8").astype(np.int64)
                self.ident.add(ids, np.frombuffer(b"".join(vals), dtype="<f4").reshape(len(ids), dim))
        return self.ident

    def _ident_add(self, txn, ids: np.ndarray) -> None:
        db = self._db["ident"]
        got, mats = [], []
        for fid in ids:
            v = txn.get(id_key(fid), db=db)
            if v is not None:
                got.append(fid)
                mats.append(bytes(v))
        if got:
            mat = np.frombuffer(b"".join(mats), dtype="<f4").reshape(len(got), -1)
            self.ident.add(np.asarray(got, np.int64), mat)

    def _occluded_among(self, txn, ids) -> np.ndarray:
        db, get = self._db["faces"], txn.get
        flagged = [int(i) for i in ids if (v := get(id_key(i), db=db)) is not None and face_occlusion(v)[0]]
        return np.asarray(flagged, dtype=np.int64)

    def occluded_ids(self, txn) -> np.ndarray:
        """Sorted ids of faces FaceQA flagged as occluded (deleted ones may linger: callers
        intersect with live rows). One cursor pass over the face values the first time,
        then kept up to date by sync."""
        if self._occl is None:
            flagged = [bytes(k) for k, v in txn.cursor(db=self._db["faces"]) if face_occlusion(v)[0]]
            self._occl = (np.frombuffer(b"".join(flagged), dtype=">i8").astype(np.int64)
                          if flagged else np.zeros(0, np.int64))
        return self._occl

    def occluded_face_ids(self) -> np.ndarray:
        with self._env.lock, self._env.begin() as txn:
            self.sync(txn)
            ids = self.occluded_ids(txn)
            idx = self.idx
            alive = idx.ids.a[idx.alive.a]
        return ids[np.isin(ids, alive)]
