"""Sources and their faces: the one place faces are written.

A source (an image or a video, by uri) and all its faces change in ONE write
transaction: its previous faces go, the new ones come with fresh face ids, the
persons they name are created, updated and counted (persons.py), and the
change-log entries readers replay are appended (changelog.py). A kill -9 at
any moment leaves the source either as it was or as given. Sealing (sealing.py)
runs after the commit, once the unsealed tail reaches a shard's size.
"""

from __future__ import annotations

import numpy as np

from mien.engine.store import changelog
from mien.engine.store.db import StoreEnv, ids_bytes, ids_of, meta_int, put_meta_int
from mien.engine.store.persons import PersonDeltas, Persons, unit64
from mien.engine.store.records import (
    EXPR_DIM, VEC_DTYPE, FaceRecord, SourceRecord, as_vector, decode_source, encode_face, encode_features,
    encode_row, encode_source, id_key, pair_key, uri_bytes, uri_key,
)
from mien.engine.store.sealing import Sealer
from mien.errors import BadInputError, NotFoundError


class Sources:
    def __init__(self, env: StoreEnv, encoders: dict, persons: Persons, sealer: Sealer):
        self._env, self._db = env, env.db
        self._encoders, self._persons, self._sealer = encoders, persons, sealer

    def _check_face(self, f: FaceRecord, uri: str, persons: set[int], txn, n_new: int = 0) -> None:
        if f.source_uri != uri:
            raise BadInputError(f"face source_uri {f.source_uri!r} differs from source {uri!r}")
        f.expression = as_vector(f.expression, EXPR_DIM, "expression vector")
        f.pooled = as_vector(f.pooled, EXPR_DIM, "pooled vector")
        if f.identity is not None:
            dim = int(self._encoders.get("identity_dim", len(np.ravel(f.identity))))
            f.identity = as_vector(f.identity, dim, "identity vector")
        if f.person_id < -1 and not -2 - f.person_id < n_new:
            raise BadInputError(f"face person_id {f.person_id}: placeholders -2 - i need new_persons[i]")
        if f.person_id >= 0 and f.person_id not in persons:
            if txn.get(id_key(f.person_id), db=self._db["persons"]) is None:
                raise NotFoundError(f"person {f.person_id} does not exist",
                                    reason="PERSON_NOT_FOUND", resource=("mien.v1.Person", str(f.person_id)))
            persons.add(f.person_id)

    def _delete_faces(self, txn, ids: np.ndarray, deltas: PersonDeltas) -> None:
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
                deltas.add(person, unit64(txn.get(k, db=d["ident"])), -1)
            for name in ("vec", "faces", "ident", "thumbs", "feats"):
                txn.delete(k, db=d[name])
            if fid <= sealed:
                txn.put(k, b"", db=d["dead"])  # a tombstone until the next rebuild
            else:
                tail -= 1
        put_meta_int(txn, m, b"tail", tail)
        changelog.append(txn, d, b"D", ids_bytes(ids))

    def replace_source(self, source: SourceRecord, faces: list[FaceRecord], new_persons,
                       person_updates) -> list[int]:
        if not source.uri:
            raise BadInputError("source uri is empty")
        new_persons, person_updates = list(new_persons), list(person_updates)
        d, m = self._db, self._db["meta"]
        with self._env.lock, self._env.begin(write=True) as txn:
            persons: set[int] = set()
            for f in faces:
                self._check_face(f, source.uri, persons, txn, len(new_persons))
            used = {f.person_id for f in faces}
            for i, p in enumerate(new_persons):
                if p.name is None and -2 - i not in used:
                    raise BadInputError(f"new anonymous person {i} has no faces; it would be an orphan")
            assigned = [self._persons.create(txn, p.name, p.centroid) for p in new_persons]
            for f in faces:
                if f.person_id <= -2:
                    f.person_id = assigned[-2 - f.person_id]
            deltas = PersonDeltas()
            ukey = uri_key(source.uri)
            old = txn.get(ukey, db=d["sources"])
            if old is not None:
                _, src_no = decode_source(old)
                self._delete_faces(txn, ids_of(txn.get(ukey, db=d["src_faces"])), deltas)
            else:
                src_no = meta_int(txn, m, b"next_src")
                put_meta_int(txn, m, b"next_src", src_no + 1)
                txn.put(id_key(src_no), uri_bytes(source.uri), db=d["src_no"])  # whole, however long
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
                if f.features is not None:
                    txn.put(k, encode_features(f.features), db=d["feats"])
                if f.person_id >= 0:
                    txn.put(pair_key(f.person_id, fid), b"", db=d["person_faces"])
                    deltas.add(f.person_id, unit64(ident), +1)
            put_meta_int(txn, m, b"next_face", first + len(faces))
            put_meta_int(txn, m, b"tail", meta_int(txn, m, b"tail") + len(faces))
            source.face_count = len(faces)
            txn.put(ukey, encode_source(source, src_no), db=d["sources"])
            txn.put(ukey, ids_bytes(ids), db=d["src_faces"])
            if ids:
                changelog.append(txn, d, b"A", ids_bytes(ids))
            for p in person_updates:
                self._persons.update(txn, int(p.person_id), name=p.name, centroid=p.centroid)
            self._persons.apply_deltas(txn, deltas)
            tail = meta_int(txn, m, b"tail")
        for p, pid in zip(new_persons, assigned):
            p.person_id = pid
        if tail >= self._sealer.shard_size:
            self._sealer.seal()
        return ids

    def remove_source(self, uri: str) -> None:
        d = self._db
        with self._env.lock, self._env.begin(write=True) as txn:
            ukey = uri_key(uri)
            old = txn.get(ukey, db=d["sources"])
            if old is None:
                raise NotFoundError(f"source {uri!r} is not in the store")
            _, src_no = decode_source(old)
            deltas = PersonDeltas()
            self._delete_faces(txn, ids_of(txn.get(ukey, db=d["src_faces"])), deltas)
            for name in ("sources", "src_faces"):
                txn.delete(ukey, db=d[name])
            txn.delete(id_key(src_no), db=d["src_no"])
            self._persons.apply_deltas(txn, deltas)

    def get_source(self, uri: str) -> SourceRecord | None:
        with self._env.begin() as txn:
            v = txn.get(uri_key(uri), db=self._db["sources"])
            return None if v is None else decode_source(v)[0]

    def list_sources(self) -> list[SourceRecord]:
        with self._env.begin() as txn:
            return [decode_source(v)[0] for _, v in txn.cursor(db=self._db["sources"])]
