"""The face store: LMDB is the truth, FAISS shards and the in-memory index derive from it.

Writers append to a change log (`log` db, one entry per add/delete/person
change, in the same transaction as the change). Every reader call opens a
read transaction, compares the log generation with the one its in-memory
index reflects, and replays the new entries: readers in other processes see
commits without a restart, at the cost of one LMDB get per call when nothing
changed. A rebuild prunes the log, which makes readers reload.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time

import numpy as np

from mien.engine.store import shards as shardio
from mien.engine.store.db import WriterLock, acquire_env, ids_bytes, ids_of, meta_int, put_meta_int, release_env
from mien.engine.store.index import FaceIndex, Grow, RowFilter, ann_template, ivf_outgrown, template_lists
from mien.engine.store.records import (
    EXPR_DIM, ID_KEY, VEC_DTYPE, FaceRecord, Hit, HitRecord, SourceRecord, Tag, as_vector, decode_face,
    decode_hit, decode_rows, decode_source, decode_tag, encode_face, encode_row, encode_source, encode_tag,
    face_occlusion, id_key, key_id, pair_key,
)
from mien.engine.store.persons import PersonsMixin, _PersonDeltas, _unit64
from mien.errors import BadInputError, EncoderMismatchError, NotFoundError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
# Keys of `encoders` that define the vector spaces; other keys are informational.
EMBEDDING_KEYS = ("identity", "identity_dim", "expression", "expression_dim")
LOG_KEEP = 200_000  # log entries kept; a reader further behind reloads


def _trim_heap() -> None:
    """Hand freed load-time buffers back to the OS (glibc keeps them otherwise)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class _IdentityIndex:
    """Exact squared-L2 search over the faces that carry an identity vector.

    Holds dim * 4 bytes per face (512 B at 128-d): loaded on first use only.
    """

    def __init__(self, dim: int):
        import faiss

        self.face_ids = Grow(np.int64)
        self.alive = Grow(np.bool_)
        self.n_dead = 0
        self.flat = faiss.IndexFlatL2(dim)

    def add(self, face_ids: np.ndarray, mat: np.ndarray) -> None:
        if len(face_ids):
            self.face_ids.extend(face_ids)
            self.alive.extend(np.ones(len(face_ids), np.bool_))
            self.flat.add(np.ascontiguousarray(mat, dtype=np.float32))

    def kill(self, face_ids) -> None:
        ids = self.face_ids.a
        face_ids = np.asarray(face_ids, np.int64)
        pos = np.searchsorted(ids, face_ids)
        ok = pos < len(ids)
        pos = pos[ok][ids[pos[ok]] == face_ids[ok]]
        self.n_dead += int(self.alive.a[pos].sum())
        self.alive.a[pos] = False

    def search(self, q: np.ndarray, k: int, exclude_face: int | None,
               skip: np.ndarray | None = None) -> list[tuple[int, float]]:
        """skip: sorted face ids to leave out (occluded faces)."""
        n_skip = 0 if skip is None else len(skip)
        fetch = min(self.flat.ntotal, k + 1 + self.n_dead + n_skip)
        if fetch == 0:
            return []
        d, ix = self.flat.search(q.reshape(1, -1), fetch)
        ids, alive = self.face_ids.a, self.alive.a
        rows = ix[0]
        skipped = (np.isin(ids[np.maximum(rows, 0)], skip) if n_skip else np.zeros(len(rows), bool))
        out = []
        for dist, row, drop in zip(d[0], rows, skipped):
            if row < 0 or not alive[row] or ids[row] == exclude_face or drop:
                continue
            out.append((int(ids[row]), float(dist)))
            if len(out) == k:
                break
        return out


class Store(PersonsMixin):
    """See docs/INTERFACES.md ("Store"). Thread-safe; not shareable across fork()."""

    def __init__(self, path: str, mode: str = "r", encoders: dict | None = None, *,
                 shard_size: int = 100_000, nprobe: int = 16, k_factor: int = 4,
                 exact_limit: int = 65536, probe_min: int = 4096, index_device: str = "cpu"):
        if mode not in ("r", "w"):
            raise BadInputError(f"mode must be 'r' or 'w', got {mode!r}")
        if index_device not in ("cpu", "gpu"):
            raise BadInputError(f"index_device must be 'cpu' or 'gpu', got {index_device!r}")
        self.path, self.mode = os.fspath(path), mode
        self.shard_size, self.index_device = int(shard_size), index_device
        self._params = dict(nprobe=nprobe, k_factor=k_factor, exact_limit=exact_limit,
                            probe_min=probe_min)
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._writer = None
        self._env = None
        self._idx: FaceIndex | None = None
        self._ident: _IdentityIndex | None = None
        self._occl: np.ndarray | None = None  # sorted ids of occluded faces, read on first use
        self._gen = -1
        if mode == "w":
            os.makedirs(self.path, exist_ok=True)
            self._writer = WriterLock(self.path)
        elif not os.path.exists(os.path.join(self.path, "data.mdb")):
            raise NotFoundError(f"no mien store at {self.path}")
        try:
            self._env, self._db = acquire_env(self.path, create=(mode == "w"))
            self._init_meta(encoders)
            if mode == "w":
                self._repair_shards()
                self._migrate_persons()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------ lifecycle

    def _init_meta(self, encoders: dict | None) -> None:
        m = self._db["meta"]
        with self._env.begin(write=self.mode == "w") as txn:
            stored = txn.get(b"encoders", db=m)
            if stored is None:
                if self.mode == "r":
                    raise NotFoundError(f"{self.path} is not an initialised mien store")
                if not encoders:
                    raise BadInputError("creating a store needs encoders (analyzer.encoders)")
                if int(encoders.get("expression_dim", EXPR_DIM)) != EXPR_DIM:
                    raise BadInputError(f"expression_dim must be {EXPR_DIM}")
                txn.put(b"schema", str(SCHEMA_VERSION).encode(), db=m)
                txn.put(b"encoders", json.dumps(encoders, sort_keys=True).encode(), db=m)
                for key, v in ((b"next_face", 1), (b"next_person", 1), (b"next_src", 1),
                               (b"gen", 0), (b"log_start", 1), (b"sealed_upto", 0),
                               (b"tail", 0), (b"epoch", 0), (b"person_stats", 1)):
                    put_meta_int(txn, m, key, v)
                txn.put(b"shards", b"[]", db=m)
                self.encoders = dict(encoders)
                return
            schema = meta_int(txn, m, b"schema")
            if schema != SCHEMA_VERSION:
                raise BadInputError(f"store {self.path} has schema {schema}; this mien reads {SCHEMA_VERSION}")
            self.encoders = json.loads(bytes(stored))
        if encoders:
            differs = [k for k in EMBEDDING_KEYS if k in encoders and encoders.get(k) != self.encoders.get(k)]
            if differs:
                raise EncoderMismatchError(
                    f"store {self.path} was built with encoders {self.encoders}, but these are "
                    f"{dict(encoders)} (different {', '.join(differs)}); vectors from different "
                    "encoders cannot be mixed — use another store directory or re-index"
                )

    def close(self) -> None:
        with self._lock:
            if self._env is not None and os.getpid() == self._pid:
                release_env(self.path)
            self._env = None
            self._idx = self._ident = None
            if self._writer is not None:
                self._writer.release()
                self._writer = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def _begin(self, write: bool = False):
        if self._env is None:
            raise BadInputError("store is closed")
        if os.getpid() != self._pid:
            raise RuntimeError("a Store cannot be used across fork(); open a new Store in the child")
        if write and self._writer is None:
            raise BadInputError("store opened read-only (mode='r'); open it with mode='w' to write")
        return self._env.begin(write=write)

    # ------------------------------------------------------------ writer

    def _check_face(self, f: FaceRecord, uri: str, persons: set[int], txn, n_new: int = 0) -> None:
        if f.source_uri != uri:
            raise BadInputError(f"face source_uri {f.source_uri!r} differs from source {uri!r}")
        f.expression = as_vector(f.expression, EXPR_DIM, "expression vector")
        f.pooled = as_vector(f.pooled, EXPR_DIM, "pooled vector")
        if f.identity is not None:
            dim = int(self.encoders.get("identity_dim", len(np.ravel(f.identity))))
            f.identity = as_vector(f.identity, dim, "identity vector")
        if f.person_id < -1 and not -2 - f.person_id < n_new:
            raise BadInputError(f"face person_id {f.person_id}: placeholders -2 - i need new_persons[i]")
        if f.person_id >= 0 and f.person_id not in persons:
            if txn.get(id_key(f.person_id), db=self._db["persons"]) is None:
                raise NotFoundError(f"person {f.person_id} does not exist",
                                    reason="PERSON_NOT_FOUND", resource=("mien.v1.Person", str(f.person_id)))
            persons.add(f.person_id)

    def _log(self, txn, op: bytes, payload: bytes = b"") -> None:
        m = self._db["meta"]
        seq = meta_int(txn, m, b"gen") + 1
        txn.put(id_key(seq), op + payload, db=self._db["log"])
        put_meta_int(txn, m, b"gen", seq)

    def _delete_faces(self, txn, ids: np.ndarray, deltas: _PersonDeltas) -> None:
        if len(ids) == 0:
            return
        d, m = self._db, self._db["meta"]
        sealed = meta_int(txn, m, b"sealed_upto")
        tail = meta_int(txn, m, b"tail")
        for fid in ids:
            k = id_key(fid)
            row = txn.get(k, db=d["vec"])
            if row is None:
                continue
            person = int(np.frombuffer(bytes(row), dtype=VEC_DTYPE)["person"][0])
            if person >= 0:
                txn.delete(pair_key(person, fid), db=d["person_faces"])
                deltas.add(person, _unit64(txn.get(k, db=d["ident"])), -1)
            for name in ("vec", "faces", "ident", "thumbs"):
                txn.delete(k, db=d[name])
            if fid <= sealed:
                txn.put(k, b"", db=d["dead"])  # a tombstone until the next rebuild
            else:
                tail -= 1
        put_meta_int(txn, m, b"tail", tail)
        self._log(txn, b"D", ids_bytes(ids))

    def replace_source(self, source: SourceRecord, faces: list[FaceRecord], *, new_persons=(),
                       person_updates=()) -> list[int]:
        """One transaction: drop the uri's previous faces, add these, write the source.

        new_persons: Persons created in the same transaction (ids in list order,
        set on the objects on return); faces refer to new_persons[i] by the
        placeholder person_id -2 - i. Their count is the store's; the centroid
        is the enrolled reference for a named one, a seed for an anonymous one.
        person_updates: Persons (id >= 0) whose name (unless None) and centroid
        are set as by update_person, in the same transaction.
        Person counts and identity sums follow the faces in this transaction; an
        anonymous person left without faces is deleted.
        """
        if not source.uri:
            raise BadInputError("source uri is empty")
        new_persons, person_updates = list(new_persons), list(person_updates)
        d, m = self._db, self._db["meta"]
        with self._lock, self._begin(write=True) as txn:
            persons: set[int] = set()
            for f in faces:
                self._check_face(f, source.uri, persons, txn, len(new_persons))
            used = {f.person_id for f in faces}
            for i, p in enumerate(new_persons):
                if p.name is None and -2 - i not in used:
                    raise BadInputError(f"new anonymous person {i} has no faces; it would be an orphan")
            assigned = [self._create_person(txn, p.name, p.centroid) for p in new_persons]
            for f in faces:
                if f.person_id <= -2:
                    f.person_id = assigned[-2 - f.person_id]
            deltas = _PersonDeltas()
            ukey = source.uri.encode()
            old = txn.get(ukey, db=d["sources"])
            if old is not None:
                _, src_no = decode_source(old)
                self._delete_faces(txn, ids_of(txn.get(ukey, db=d["src_faces"])), deltas)
            else:
                src_no = meta_int(txn, m, b"next_src")
                put_meta_int(txn, m, b"next_src", src_no + 1)
                txn.put(id_key(src_no), ukey, db=d["src_no"])
            first = meta_int(txn, m, b"next_face")
            ids = list(range(first, first + len(faces)))
            for fid, f in zip(ids, faces):
                k = id_key(fid)
                f.face_id = fid
                txn.put(k, encode_face(f), db=d["faces"])
                txn.put(k, encode_row(f.expression, f.timestamp_ms, src_no, f.person_id), db=d["vec"])
                ident = None
                if f.identity is not None:
                    ident = f.identity.astype("<f4").tobytes()
                    txn.put(k, ident, db=d["ident"])
                if f.thumbnail:
                    txn.put(k, bytes(f.thumbnail), db=d["thumbs"])
                if f.person_id >= 0:
                    txn.put(pair_key(f.person_id, fid), b"", db=d["person_faces"])
                    deltas.add(f.person_id, _unit64(ident), +1)
            put_meta_int(txn, m, b"next_face", first + len(faces))
            put_meta_int(txn, m, b"tail", meta_int(txn, m, b"tail") + len(faces))
            source.face_count = len(faces)
            txn.put(ukey, encode_source(source, src_no), db=d["sources"])
            txn.put(ukey, ids_bytes(ids), db=d["src_faces"])
            if ids:
                self._log(txn, b"A", ids_bytes(ids))
            for p in person_updates:
                self._update_person(txn, int(p.person_id), name=p.name, centroid=p.centroid)
            self._apply_deltas(txn, deltas)
            tail = meta_int(txn, m, b"tail")
        for p, pid in zip(new_persons, assigned):
            p.person_id = pid
        if tail >= self.shard_size:
            self._seal()
        return ids

    def remove_source(self, uri: str) -> None:
        """Drop the source and its faces; persons' counts follow (empty anonymous ones go)."""
        d = self._db
        with self._lock, self._begin(write=True) as txn:
            ukey = uri.encode()
            old = txn.get(ukey, db=d["sources"])
            if old is None:
                raise NotFoundError(f"source {uri!r} is not in the store")
            _, src_no = decode_source(old)
            deltas = _PersonDeltas()
            self._delete_faces(txn, ids_of(txn.get(ukey, db=d["src_faces"])), deltas)
            for name in ("sources", "src_faces"):
                txn.delete(ukey, db=d[name])
            txn.delete(id_key(src_no), db=d["src_no"])
            self._apply_deltas(txn, deltas)

    def put_tag(self, tag: Tag) -> None:
        if not tag.name:
            raise BadInputError("tag name is empty")
        v = np.asarray(tag.vectors, dtype=np.float32)
        if v.ndim != 2 or v.shape[1] != EXPR_DIM or len(v) == 0 or not np.isfinite(v).all():
            raise BadInputError(f"tag vectors must be (R>=1, {EXPR_DIM}) finite, got {v.shape}")
        if not tag.created_ms:
            tag.created_ms = int(time.time() * 1000)
        with self._lock, self._begin(write=True) as txn:
            txn.put(tag.name.encode(), encode_tag(tag), db=self._db["tags"])

    def delete_tag(self, name: str) -> None:
        with self._lock, self._begin(write=True) as txn:
            if not txn.delete(name.encode(), db=self._db["tags"]):
                raise NotFoundError(f"tag {name!r} does not exist",
                                    reason="TAG_NOT_FOUND", resource=("mien.v1.Tag", str(name)))

    # ------------------------------------------------------------ shards

    def _scan_rows(self, txn, first: int, last: int | None = None):
        """Face ids and VEC rows with first <= id (<= last) from LMDB."""
        cur = txn.cursor(db=self._db["vec"])
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

    def _train(self, rows: np.ndarray) -> bytes:
        import faiss

        index = ann_template(len(rows))
        index.train(np.ascontiguousarray(rows["e"], dtype=np.float32))
        return bytes(faiss.serialize_index(index))

    def _seal(self) -> None:
        """Seal the unsealed faces into shards of exactly shard_size faces (id order), registering each.

        Deterministic: which faces a shard holds depends only on the committed
        faces, never on when a seal ran or whether one was cut short. A crash
        before a shard is registered leaves its faces unsealed, and the next
        writer seals the same ones on open (_repair_shards). Fewer than
        shard_size unsealed faces stay in the LMDB tail.
        """
        m = self._db["meta"]
        with self._lock:
            while True:
                with self._begin() as txn:
                    sealed = meta_int(txn, m, b"sealed_upto")
                    template = txn.get(b"template", db=m)
                    template = bytes(template) if template is not None else None
                    epoch = meta_int(txn, m, b"epoch")
                    sealed_faces = sum(s["count"] for s in json.loads(bytes(txn.get(b"shards", db=m))))
                    ids, rows = self._scan_rows(txn, sealed + 1)
                if len(ids) < self.shard_size:
                    return
                unsealed = len(ids)
                ids, rows = ids[:self.shard_size], rows[:self.shard_size]
                if template is not None and ivf_outgrown(template_lists(template), sealed_faces + len(ids)):
                    # the store outgrew its IVF (lists too long for its size): retrain for the
                    # face count and rewrite every shard; that seals this tail too
                    self.rebuild_shards()
                    return
                new_template = template is None
                if new_template:
                    template = self._train(rows)
                name = shardio.shard_name(int(ids[0]), int(ids[-1]), epoch)
                shardio.write(self.path, name, shardio.build(template, ids, rows))
                with self._begin(write=True) as txn:
                    reg = json.loads(bytes(txn.get(b"shards", db=m)))
                    reg.append({"name": name, "first": int(ids[0]), "last": int(ids[-1]), "count": len(ids)})
                    txn.put(b"shards", json.dumps(reg).encode(), db=m)
                    put_meta_int(txn, m, b"sealed_upto", int(ids[-1]))
                    put_meta_int(txn, m, b"tail", unsealed - len(ids))
                    if new_template:
                        txn.put(b"template", template, db=m)
                    self._log(txn, b"S")
                    self._prune_log(txn)

    def _prune_log(self, txn) -> None:
        m = self._db["meta"]
        start, gen = meta_int(txn, m, b"log_start"), meta_int(txn, m, b"gen")
        if gen - start + 1 <= LOG_KEEP:
            return
        new_start = gen - LOG_KEEP // 2
        cur = txn.cursor(db=self._db["log"])
        while cur.first() and key_id(cur.key()) < new_start:
            cur.delete()
        put_meta_int(txn, m, b"log_start", new_start)

    def _repair_shards(self) -> None:
        """Writer open: drop unregistered/temp shard files, rebuild missing registered ones."""
        m = self._db["meta"]
        with self._begin() as txn:
            reg = json.loads(bytes(txn.get(b"shards", db=m)))
            template = txn.get(b"template", db=m)
            template = bytes(template) if template is not None else None
        known = {s["name"] for s in reg}
        for f in shardio.files(self.path):
            if f not in known:
                log.info("removing unregistered shard file %s", f)
                shardio.remove(self.path, f)
        present = set(shardio.files(self.path))
        for s in reg:
            if s["name"] not in present:
                log.warning("shard %s is missing; rebuilding it from LMDB", s["name"])
                with self._begin() as txn:
                    ids, rows = self._scan_rows(txn, s["first"], s["last"])
                    dead = {key_id(k) for k, _ in txn.cursor(db=self._db["dead"])}
                # the file must hold the registered id range; dead faces are gone from
                # LMDB, so they are simply absent (their tombstones match nothing)
                keep = np.array([i not in dead for i in ids], dtype=bool)
                shardio.write(self.path, s["name"], shardio.build(template, ids[keep], rows[keep]))
        with self._begin() as txn:
            tail = meta_int(txn, m, b"tail")
        if tail >= self.shard_size:
            # a writer died between committing faces and sealing them: seal now what an
            # uninterrupted run sealed then, so the shards do not depend on the crash
            self._seal()

    def rebuild_shards(self) -> None:
        """Compact: retrain the IVF on all live faces, rewrite every shard, drop tombstones."""
        d, m = self._db, self._db["meta"]
        with self._lock:
            with self._begin() as txn:
                ids, rows = self._scan_rows(txn, 0)
                old = json.loads(bytes(txn.get(b"shards", db=m)))
                epoch = meta_int(txn, m, b"epoch") + 1
            n_sealed = (len(ids) // self.shard_size) * self.shard_size
            template = self._train(rows) if n_sealed else None
            reg = []
            for lo in range(0, n_sealed, self.shard_size):
                sid, srows = ids[lo:lo + self.shard_size], rows[lo:lo + self.shard_size]
                name = shardio.shard_name(int(sid[0]), int(sid[-1]), epoch)
                shardio.write(self.path, name, shardio.build(template, sid, srows))
                reg.append({"name": name, "first": int(sid[0]), "last": int(sid[-1]), "count": len(sid)})
            with self._begin(write=True) as txn:
                txn.put(b"shards", json.dumps(reg).encode(), db=m)
                put_meta_int(txn, m, b"sealed_upto", int(ids[n_sealed - 1]) if n_sealed else 0)
                put_meta_int(txn, m, b"tail", len(ids) - n_sealed)
                put_meta_int(txn, m, b"epoch", epoch)
                if template is not None:
                    txn.put(b"template", template, db=m)
                else:
                    txn.delete(b"template", db=m)
                txn.drop(d["dead"], delete=False)
                txn.drop(d["log"], delete=False)
                self._log(txn, b"R")
                put_meta_int(txn, m, b"log_start", meta_int(txn, m, b"gen"))
            for s in old:
                if s["name"] not in {r["name"] for r in reg}:
                    shardio.remove(self.path, s["name"])

    # ------------------------------------------------------------ index sync

    def _load(self, txn) -> None:
        """Build the in-memory index from the registered shards plus the LMDB tail."""
        import faiss

        d, m = self._db, self._db["meta"]
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

        def add_part(ids, rows, bf16=None, part=None):
            if idx.ivf and part is None and len(ids):
                part = faiss.deserialize_index(np.frombuffer(template, dtype=np.uint8))
                part.add_with_ids(rows["e"], np.arange(len(ids), dtype=np.int64))
            if part is not None:
                parts.append((part, idx.ids.n))
            idx.append(ids, rows, ivf_done=idx.ivf, bf16=bf16)

        for s in reg:
            try:
                sh = shardio.load(self.path, s["name"])
            except (OSError, ValueError, KeyError) as exc:
                log.warning("shard %s unreadable (%s); loading its faces from LMDB", s["name"], exc)
                add_part(*self._scan_rows(txn, s["first"], s["last"]))
                continue
            rows = np.zeros(len(sh["face_ids"]), dtype=VEC_DTYPE)
            rows["ts"], rows["src"], rows["person"] = sh["ts"], sh["src"], -1
            if len(pf):
                pos = np.minimum(np.searchsorted(pf[:, 1], sh["face_ids"]), len(pf) - 1)
                hit = pf[pos, 1] == sh["face_ids"]
                rows["person"][hit] = pf[pos[hit], 0]
            add_part(sh["face_ids"], rows, bf16=sh["bf16"], part=sh["index"])
        add_part(*self._scan_rows(txn, meta_int(txn, m, b"sealed_upto") + 1))
        if idx.ivf:
            idx.merge_exact(parts)
        del parts
        dead = [key_id(k) for k in txn.cursor(db=d["dead"]).iternext(values=False)]
        if dead:
            idx.kill(dead)
        self._place(idx)
        self._idx, self._ident, self._occl = idx, None, None
        self._gen = meta_int(txn, m, b"gen")
        _trim_heap()

    def _place(self, idx: FaceIndex) -> None:
        """Optional GPU placement of the candidate index (faiss-gpu extra; untested here)."""
        if self.index_device != "gpu":
            return
        import faiss

        if not hasattr(faiss, "index_cpu_to_all_gpus") or faiss.get_num_gpus() == 0:
            raise BadInputError("index_device='gpu' needs the faiss GPU build and a visible GPU")
        idx.ann = faiss.index_cpu_to_all_gpus(idx.ann)

    def _sync(self, txn) -> None:
        m = self._db["meta"]
        gen = meta_int(txn, m, b"gen")
        if self._idx is not None and gen == self._gen:
            return
        if self._idx is None or self._gen + 1 < meta_int(txn, m, b"log_start"):
            self._load(txn)
            return
        cur = txn.cursor(db=self._db["log"])
        cur.set_range(id_key(self._gen + 1))
        for k, v in cur:
            if key_id(k) > gen:
                break
            op, payload = bytes(v[:1]), bytes(v[1:])
            if op == b"A":
                self._apply_add(txn, ids_of(payload))
            elif op == b"D":
                ids = ids_of(payload)
                self._idx.kill(ids)
                if self._ident is not None:
                    self._ident.kill(ids)
            elif op == b"P":
                ids = ids_of(payload)
                self._idx.set_person(ids[1:], int(ids[0]))
            elif op == b"S" and not self._idx.ivf:
                self._idx.to_ivf(bytes(txn.get(b"template", db=m)))
                self._place(self._idx)
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
        self._idx.append(present, decode_rows(vals))
        if self._ident is not None:
            self._ident_add(txn, present)
        if self._occl is not None and len(present):
            self._occl = np.union1d(self._occl, self._occluded_among(txn, present))

    def _occluded_among(self, txn, ids) -> np.ndarray:
        db, get = self._db["faces"], txn.get
        flagged = [int(i) for i in ids if (v := get(id_key(i), db=db)) is not None and face_occlusion(v)[0]]
        return np.asarray(flagged, dtype=np.int64)

    def _occluded_ids(self, txn) -> np.ndarray:
        """Sorted ids of faces FaceQA flagged as occluded (deleted ones may linger: callers
        intersect with live rows). One cursor pass over the face values the first time,
        then kept up to date by _sync."""
        if self._occl is None:
            flagged = [bytes(k) for k, v in txn.cursor(db=self._db["faces"]) if face_occlusion(v)[0]]
            self._occl = (np.frombuffer(b"".join(flagged), dtype=">i8").astype(np.int64)
                          if flagged else np.zeros(0, np.int64))
        return self._occl

    def occluded_face_ids(self) -> np.ndarray:
        """Sorted ids of the live faces FaceQA flagged as occluded (a hand or a mask over the mouth)."""
        with self._lock, self._begin() as txn:
            self._sync(txn)
            ids = self._occluded_ids(txn)
            idx = self._idx
            alive = idx.ids.a[idx.alive.a]
        return ids[np.isin(ids, alive)]

    # ------------------------------------------------------------ searches

    def _exp32(self, txn, face_ids: np.ndarray, keep: dict | None = None) -> np.ndarray:
        """float32 expression vectors from LMDB; NaN rows for faces that are gone.

        keep: a dict to receive {face_id: raw vec row}, so the hits' records can
        reuse the rows instead of reading them again.
        """
        vec, n, pack = self._db["vec"], EXPR_DIM * 4, ID_KEY.pack
        get = txn.get
        vals = [get(pack(fid), db=vec) for fid in face_ids]
        if keep is not None:
            keep.update(zip(face_ids.tolist(), vals))
        if all(v is not None for v in vals):
            return np.frombuffer(b"".join(v[:n] for v in vals), dtype="<f4").reshape(-1, EXPR_DIM).copy()
        out = np.full((len(face_ids), EXPR_DIM), np.nan, dtype=np.float32)
        for i, v in enumerate(vals):
            if v is not None:
                out[i] = np.frombuffer(v[:n], dtype="<f4")
        return out

    @staticmethod
    def _check_k(k: int) -> int:
        k = int(k)
        if k < 0:
            raise BadInputError(f"k must be >= 0, got {k}")
        return k

    def search(self, vector, k: int = 10, *, persons=None, exclude_persons=None, sources=None,
               time_range=None, exclude_face=None, exclude_occluded: bool = False, records: bool = False,
               thumbnails: bool = False) -> list[Hit]:
        """Top-k faces by squared L2 to the expression vector, with filters.

        persons / exclude_persons: iterables of person ids (-1 = unknown person);
        sources: iterable of uris; time_range: (start_ms, end_ms), inclusive,
        either may be None; exclude_face: a face id to leave out;
        exclude_occluded: leave out faces FaceQA flagged as occluded.
        records=True fills each Hit's `record` (a HitRecord, with the JPEG when
        thumbnails=True) from the same read transaction as the search, so a
        writer removing a hit meanwhile can't make the read fail.
        """
        q = as_vector(vector, EXPR_DIM, "query vector")
        k = self._check_k(k)
        if k == 0:
            return []
        with self._lock, self._begin() as txn:
            self._sync(txn)
            f = RowFilter(exclude_face=None if exclude_face is None else int(exclude_face))
            if persons is not None:
                f.persons = np.asarray(list(persons), dtype=np.int32)
            if exclude_persons is not None:
                f.exclude_persons = np.asarray(list(exclude_persons), dtype=np.int32)
            if sources is not None:
                nos = []
                for uri in sources:
                    v = txn.get(str(uri).encode(), db=self._db["sources"])
                    if v is not None:
                        nos.append(decode_source(v)[1])
                f.srcs = np.asarray(nos, dtype=np.int32)
            if time_range is not None:
                lo, hi = time_range
                f.time_range = (None if lo is None else int(lo), None if hi is None else int(hi))
            if exclude_occluded:
                f.exclude_ids = self._occluded_ids(txn)
            rows, d16 = self._idx.candidates(q, k, f)
            seen: dict | None = {} if records else None  # vec rows for the records
            ranked = self._idx.rank(q, k, rows, d16, f.exclude_face, lambda ids: self._exp32(txn, ids, seen))
            return self._hits(txn, ranked, records, thumbnails, seen)

    def search_person(self, vector, person_id: int, k: int = 10, *, exclude_face=None,
                      exclude_occluded: bool = False, records: bool = False,
                      thumbnails: bool = False) -> list[Hit]:
        """Top-k among one person's faces: exact up to probe_min faces, else over the
        query's nprobe nearest IVF lists (as search does) plus faces not yet in the IVF.
        exclude_occluded / records / thumbnails: as search."""
        if exclude_occluded:  # the filtered path: search() sends a one-person filter to the same search
            return self.search(vector, k, persons=[int(person_id)], exclude_face=exclude_face,
                               exclude_occluded=True, records=records, thumbnails=thumbnails)
        q = as_vector(vector, EXPR_DIM, "query vector")
        k = self._check_k(k)
        with self._lock, self._begin() as txn:
            if txn.get(id_key(person_id), db=self._db["persons"]) is None:
                raise NotFoundError(f"person {person_id} does not exist",
                                    reason="PERSON_NOT_FOUND", resource=("mien.v1.Person", str(person_id)))
            if k == 0:
                return []
            self._sync(txn)
            rows, d16 = self._idx.restricted(q, person_id, k + (exclude_face is not None))
            seen: dict | None = {} if records else None  # vec rows for the records
            ranked = self._idx.rank(q, k, rows, d16, exclude_face, lambda ids: self._exp32(txn, ids, seen))
            return self._hits(txn, ranked, records, thumbnails, seen)

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
            self._ident.add(np.asarray(got, np.int64), mat)

    def search_identity(self, vector, k: int = 10, *, exclude_face=None, exclude_occluded: bool = False,
                        records: bool = False, thumbnails: bool = False) -> list[Hit]:
        """Exact top-k by squared L2 over identity vectors (loaded on first use).
        exclude_occluded / records / thumbnails: as search."""
        dim = int(self.encoders.get("identity_dim", 0))
        if not dim:
            raise BadInputError("this store has no identity encoder")
        q = as_vector(vector, dim, "identity query vector")
        k = self._check_k(k)
        if k == 0:
            return []
        with self._lock, self._begin() as txn:
            self._sync(txn)
            if self._ident is None:
                self._ident = _IdentityIndex(dim)
                keys, vals = [], []
                for kk, v in txn.cursor(db=self._db["ident"]):
                    keys.append(kk)
                    vals.append(v)
                if keys:
                    ids = np.frombuffer(b"".join(keys), dtype=">i8").astype(np.int64)
                    self._ident.add(ids, np.frombuffer(b"".join(vals), dtype="<f4").reshape(len(ids), dim))
            ranked = self._ident.search(q, k, exclude_face, self._occluded_ids(txn) if exclude_occluded else None)
            return self._hits(txn, ranked, records, thumbnails)

    # ------------------------------------------------------------ records

    def _hits(self, txn, ranked, records: bool, thumbnails: bool, vec_rows: dict | None = None) -> list[Hit]:
        """Hits for ranked (face_id, distance) pairs, with their HitRecords if asked."""
        if not records:
            return [Hit(fid, dist) for fid, dist in ranked]
        recs = self._hit_records(txn, [fid for fid, _ in ranked], thumbnails, vec_rows)
        return [Hit(fid, dist, rec) for (fid, dist), rec in zip(ranked, recs)]

    def _hit_records(self, txn, face_ids, thumbnail: bool, vec_rows: dict | None = None) -> list[HitRecord]:
        """vec_rows: {face_id: raw vec row} this transaction already read (search's refine)."""
        d = self._db
        vec, faces, thumbs = d["vec"], d["faces"], d["thumbs"]
        get, pack = txn.get, ID_KEY.pack
        vec_rows = vec_rows or {}
        out = []
        for fid in face_ids:
            k = pack(fid)
            row = vec_rows.get(fid) or get(k, db=vec)
            if row is None:
                raise NotFoundError(f"face {int(fid)} does not exist",
                                    reason="FACE_NOT_FOUND", resource=("mien.v1.Face", str(int(fid))))
            t = get(k, db=thumbs) if thumbnail else None
            out.append(decode_hit(int(fid), get(k, db=faces), row, b"" if t is None else bytes(t)))
        return out

    def _face(self, txn, face_id: int, thumbnail: bool = True) -> FaceRecord:
        d, k = self._db, id_key(face_id)
        row = txn.get(k, db=d["vec"])
        if row is None:
            raise NotFoundError(f"face {face_id} does not exist",
                                reason="FACE_NOT_FOUND", resource=("mien.v1.Face", str(face_id)))
        ident = txn.get(k, db=d["ident"])
        thumb = txn.get(k, db=d["thumbs"]) if thumbnail else None
        return decode_face(
            int(face_id), txn.get(k, db=d["faces"]), row,
            None if ident is None else np.frombuffer(bytes(ident), dtype="<f4").copy(),
            b"" if thumb is None else bytes(thumb),
        )

    def get_face(self, face_id: int, *, thumbnail: bool = True) -> FaceRecord:
        with self._begin() as txn:
            return self._face(txn, int(face_id), thumbnail)

    def get_faces(self, face_ids, *, thumbnail: bool = False, identity: bool = True) -> list[FaceRecord]:
        """Records of many faces, in the order given, from ONE read transaction.

        No thumbnails unless asked (the JPEG is most of a record's bytes);
        identity=False skips the identity vectors (search hits don't show them).
        NotFoundError names the first missing face.
        """
        d = self._db
        vec, faces, ident, thumbs = d["vec"], d["faces"], d["ident"], d["thumbs"]
        out = []
        with self._begin() as txn:
            get = txn.get
            for fid in face_ids:
                k = id_key(fid)
                row = get(k, db=vec)
                if row is None:
                    raise NotFoundError(f"face {int(fid)} does not exist",
                                        reason="FACE_NOT_FOUND", resource=("mien.v1.Face", str(int(fid))))
                iv = get(k, db=ident) if identity else None
                t = get(k, db=thumbs) if thumbnail else None
                out.append(decode_face(
                    int(fid), get(k, db=faces), row,
                    None if iv is None else np.frombuffer(iv, dtype="<f4").copy(),
                    b"" if t is None else bytes(t)))
        return out

    def hit_records(self, face_ids, *, thumbnail: bool = False) -> list[HitRecord]:
        """What search hits show of these faces (uri, frame, time, bbox, track,
        person), in the order given, from ONE read transaction.

        Two LMDB gets and a struct unpack per face, where get_faces decodes whole
        records. NotFoundError names the first missing face.
        """
        with self._begin() as txn:
            return self._hit_records(txn, face_ids, thumbnail)

    def face_table(self, *, occlusion: bool = False) -> dict:
        """Every live face as columns, from the in-memory index (no record reads).

        {"face_id": int64, "person_id": int32, "source": int32 source number,
         "timestamp_ms": int64, "uris": {source number: uri}}, sorted by face_id;
        occlusion=True adds "occluded": bool (FaceQA's mouth-occlusion flag; the
        first call reads every face value once, later ones are kept up to date).
        """
        with self._lock, self._begin() as txn:
            self._sync(txn)
            idx = self._idx
            alive = idx.alive.a
            table = {"face_id": idx.ids.a[alive].copy(), "person_id": idx.person.a[alive].copy(),
                     "source": idx.src.a[alive].copy(), "timestamp_ms": idx.ts.a[alive].copy()}
            table["uris"] = {key_id(k): bytes(v).decode() for k, v in txn.cursor(db=self._db["src_no"])}
            if occlusion:
                table["occluded"] = np.isin(table["face_id"], self._occluded_ids(txn))
        order = np.argsort(table["face_id"], kind="stable")
        if len(order) and np.any(order != np.arange(len(order))):
            for key in ("face_id", "person_id", "source", "timestamp_ms", "occluded"):
                if key in table:
                    table[key] = table[key][order]
        return table

    def get_thumbnail(self, face_id: int) -> bytes:
        with self._begin() as txn:
            k = id_key(face_id)
            if txn.get(k, db=self._db["vec"]) is None:
                raise NotFoundError(f"face {face_id} does not exist",
                                    reason="FACE_NOT_FOUND", resource=("mien.v1.Face", str(face_id)))
            t = txn.get(k, db=self._db["thumbs"])
            return b"" if t is None else bytes(t)

    def faces_of_source(self, uri: str, *, thumbnail: bool = True) -> list[FaceRecord]:
        """The source's faces sorted by (timestamp_ms, face_id); [] for an unknown uri."""
        with self._begin() as txn:
            ids = ids_of(txn.get(uri.encode(), db=self._db["src_faces"]))
            faces = [self._face(txn, int(i), thumbnail) for i in ids]
        faces.sort(key=lambda f: (f.timestamp_ms, f.face_id))
        return faces

    def _gather(self, txn, db, ids: np.ndarray, part: slice, width: int) -> tuple[np.ndarray, np.ndarray]:
        """float32 (n, width) from each id's value[part], and a found mask; one transaction.

        For an id set covering much of the database, one sequential cursor pass
        and a searchsorted beat n random gets (no per-id Python call into LMDB).
        """
        n = len(ids)
        entries = txn.stat(db)["entries"]
        if n >= 4096 and 4 * n >= entries:
            cur = txn.cursor(db=db)
            keys = b"".join(cur.iternext(keys=True, values=False))
            vals = b"".join([v[part] for v in cur.iternext(keys=False, values=True)])
            all_ids = np.frombuffer(keys, dtype=">i8").astype(np.int64)
            data = np.frombuffer(vals, dtype="<f4").reshape(len(all_ids), width)
            pos = np.minimum(np.searchsorted(all_ids, ids), max(len(all_ids) - 1, 0))
            found = all_ids[pos] == ids if len(all_ids) else np.zeros(n, bool)
            out = data[pos] if len(all_ids) else np.zeros((n, width), np.float32)
        else:
            get = txn.get
            vals = [get(id_key(fid), db=db) for fid in ids]
            found = np.fromiter((v is not None for v in vals), dtype=bool, count=n)
            if found.all():
                out = np.frombuffer(b"".join([v[part] for v in vals]), dtype="<f4").reshape(n, width).copy()
            else:
                out = np.zeros((n, width), np.float32)
                if found.any():
                    out[found] = np.frombuffer(b"".join([v[part] for v in vals if v is not None]),
                                               dtype="<f4").reshape(-1, width)
        out[~found] = np.nan
        return out, found

    def vectors(self, face_ids, kind: str = "expression") -> np.ndarray:
        """(n, dim) float32 in the order given, from one read transaction.

        identity rows are NaN for faces without one; NotFoundError for a missing face.
        """
        ids = np.asarray(face_ids, dtype=np.int64).reshape(-1)
        d = self._db
        if kind not in ("expression", "pooled", "identity"):
            raise BadInputError(f"kind must be expression, pooled or identity, got {kind!r}")
        with self._begin() as txn:
            if kind == "expression":
                out, found = self._gather(txn, d["vec"], ids, slice(0, EXPR_DIM * 4), EXPR_DIM)
            elif kind == "pooled":  # the last 16 floats of a face value
                out, found = self._gather(txn, d["faces"], ids, slice(-EXPR_DIM * 4, None), EXPR_DIM)
            else:
                dim = int(self.encoders.get("identity_dim", 0))
                out, has = self._gather(txn, d["ident"], ids, slice(None), dim)
                found = has.copy()
                if not has.all():  # no identity is fine, no face is not
                    _, found[~has] = self._gather(txn, d["vec"], ids[~has], slice(0, 4), 1)
        if not found.all():
            missing = int(ids[np.flatnonzero(~found)[0]])
            raise NotFoundError(f"face {missing} does not exist", reason="FACE_NOT_FOUND",
                                resource=("mien.v1.Face", str(missing)))
        return out

    def get_source(self, uri: str) -> SourceRecord | None:
        with self._begin() as txn:
            v = txn.get(uri.encode(), db=self._db["sources"])
            return None if v is None else decode_source(v)[0]

    def list_sources(self) -> list[SourceRecord]:
        with self._begin() as txn:
            return [decode_source(v)[0] for _, v in txn.cursor(db=self._db["sources"])]

    def get_tag(self, name: str) -> Tag:
        with self._begin() as txn:
            v = txn.get(name.encode(), db=self._db["tags"])
            if v is None:
                raise NotFoundError(f"tag {name!r} does not exist",
                                    reason="TAG_NOT_FOUND", resource=("mien.v1.Tag", str(name)))
            return decode_tag(v)

    def list_tags(self) -> list[Tag]:
        with self._begin() as txn:
            return [decode_tag(v) for _, v in txn.cursor(db=self._db["tags"])]

    def stats(self) -> dict:
        d, m = self._db, self._db["meta"]
        with self._lock, self._begin() as txn:
            reg = json.loads(bytes(txn.get(b"shards", db=m)))
            out = {
                "faces": txn.stat(d["vec"])["entries"],
                "sources": txn.stat(d["sources"])["entries"],
                "persons": txn.stat(d["persons"])["entries"],
                "tags": txn.stat(d["tags"])["entries"],
                "shards": len(reg),
                "sealed_faces": sum(s["count"] for s in reg),
                "tombstones": txn.stat(d["dead"])["entries"],
                "encoders": dict(self.encoders),
                "schema": meta_int(txn, m, b"schema"),
                "generation": meta_int(txn, m, b"gen"),
            }
        size = 0
        for root, _, files in os.walk(self.path):
            for f in files:
                st = os.stat(os.path.join(root, f))
                size += st.st_blocks * 512  # real disk use: the LMDB map is sparse
        out["bytes"] = size
        idx = self._idx
        if idx is not None:
            out["index"] = {
                "kind": "ivf-sq8" if idx.ivf else "flat", "nprobe": idx.nprobe,
                "ram_bytes": idx.ram_bytes(), "rows": idx.ids.n,
            }
        return out
