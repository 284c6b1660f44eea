"""Reads of faces: records, hit records, thumbnails, vectors and the face table.

Everything a caller asks about faces it already has ids of, each call from ONE
read transaction (so a concurrent writer can't show it half a change). The
record formats are records.py's; `hit_records_in` is shared with the searches
(search.py), which fill their hits' records from the search's own transaction.
"""

from __future__ import annotations

import numpy as np

from mien.engine.store.db import StoreEnv, ids_of
from mien.engine.store.live import LiveIndex
from mien.engine.store.records import (
    EXPR_DIM, ID_KEY, FaceRecord, HitRecord, decode_face, decode_features, decode_hit, id_key, key_id, uri_key,
    uri_of,
)
from mien.errors import BadInputError, NotFoundError


def face_not_found(face_id) -> NotFoundError:
    return NotFoundError(f"face {int(face_id)} does not exist",
                         reason="FACE_NOT_FOUND", resource=("mien.v1.Face", str(int(face_id))))


class FaceReads:
    def __init__(self, env: StoreEnv, live: LiveIndex, encoders: dict):
        self._env, self._db = env, env.db
        self._live, self._encoders = live, encoders

    def hit_records_in(self, txn, face_ids, thumbnail: bool, persons: dict | None = None) -> list[HitRecord]:
        """persons: {face_id: person id} the caller knows (a search's index, synced to txn): those
        faces need no read of their vector row, which holds the person otherwise."""
        d = self._db
        vec, faces, thumbs = d["vec"], d["faces"], d["thumbs"]
        get, pack = txn.get, ID_KEY.pack
        persons = persons or {}
        out = []
        for fid in face_ids:
            k = pack(fid)
            person = persons.get(fid)
            value = get(k, db=faces)
            row = get(k, db=vec) if person is None else None
            if value is None or (person is None and row is None):
                raise face_not_found(fid)
            t = get(k, db=thumbs) if thumbnail else None
            out.append(decode_hit(int(fid), value, row, b"" if t is None else bytes(t), person))
        return out

    def hit_records(self, face_ids, thumbnail: bool) -> list[HitRecord]:
        with self._env.begin() as txn:
            return self.hit_records_in(txn, face_ids, thumbnail)

    def _face(self, txn, face_id: int, thumbnail: bool = True) -> FaceRecord:
        d, k = self._db, id_key(face_id)
        row = txn.get(k, db=d["vec"])
        if row is None:
            raise face_not_found(face_id)
        ident = txn.get(k, db=d["ident"])
        thumb = txn.get(k, db=d["thumbs"]) if thumbnail else None
        return decode_face(
            int(face_id), txn.get(k, db=d["faces"]), row,
            None if ident is None else np.frombuffer(bytes(ident), dtype="<f4").copy(),
            b"" if thumb is None else bytes(thumb),
        )

    def get_face(self, face_id: int, thumbnail: bool) -> FaceRecord:
        with self._env.begin() as txn:
            return self._face(txn, int(face_id), thumbnail)

    def get_faces(self, face_ids, thumbnail: bool, identity: bool) -> list[FaceRecord]:
        d = self._db
        vec, faces, ident, thumbs = d["vec"], d["faces"], d["ident"], d["thumbs"]
        out = []
        with self._env.begin() as txn:
            get = txn.get
            for fid in face_ids:
                k = id_key(fid)
                row = get(k, db=vec)
                if row is None:
                    raise face_not_found(fid)
                iv = get(k, db=ident) if identity else None
                t = get(k, db=thumbs) if thumbnail else None
                out.append(decode_face(
                    int(fid), get(k, db=faces), row,
                    None if iv is None else np.frombuffer(iv, dtype="<f4").copy(),
                    b"" if t is None else bytes(t)))
        return out

    def face_table(self, occlusion: bool) -> dict:
        live = self._live
        with self._env.lock, self._env.begin() as txn:
            live.sync(txn)
            idx = live.idx
            alive = idx.alive.a
            table = {"face_id": idx.ids.a[alive].copy(), "person_id": idx.person.a[alive].copy(),
                     "source": idx.src.a[alive].copy(), "timestamp_ms": idx.ts.a[alive].copy()}
            table["uris"] = {key_id(k): uri_of(v) for k, v in txn.cursor(db=self._db["src_no"])}
            if occlusion:
                table["occluded"] = np.isin(table["face_id"], live.occluded_ids(txn))
        order = np.argsort(table["face_id"], kind="stable")
        if len(order) and np.any(order != np.arange(len(order))):
            for key in ("face_id", "person_id", "source", "timestamp_ms", "occluded"):
                if key in table:
                    table[key] = table[key][order]
        return table

    def features(self, face_ids) -> tuple[np.ndarray, np.ndarray]:
        """(float32 (n, dim) expression features, bool (n,) has-features mask), one transaction.

        Rows of faces stored without features are NaN; NotFoundError for a missing face.
        """
        d = self._db
        found, values = [], []
        with self._env.begin() as txn:
            for fid in face_ids:
                k = id_key(fid)
                if txn.get(k, db=d["vec"]) is None:
                    raise face_not_found(fid)
                v = txn.get(k, db=d["feats"])
                found.append(v is not None)
                values.append(None if v is None else decode_features(v))
        dim = next((len(v) for v in values if v is not None), 0)
        out = np.full((len(values), dim), np.nan, np.float32)
        for i, v in enumerate(values):
            if v is not None:
                if len(v) != dim:
                    raise BadInputError(f"face {int(face_ids[i])}: features of {len(v)} values, others {dim}")
                out[i] = v
        return out, np.array(found, dtype=bool)

    def get_thumbnail(self, face_id: int) -> bytes:
        with self._env.begin() as txn:
            k = id_key(face_id)
            if txn.get(k, db=self._db["vec"]) is None:
                raise face_not_found(face_id)
            t = txn.get(k, db=self._db["thumbs"])
            return b"" if t is None else bytes(t)

    def faces_of_source(self, uri: str, thumbnail: bool) -> list[FaceRecord]:
        with self._env.begin() as txn:
            ids = ids_of(txn.get(uri_key(uri), db=self._db["src_faces"]))
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

    def vectors(self, face_ids, kind: str) -> np.ndarray:
        ids = np.asarray(face_ids, dtype=np.int64).reshape(-1)
        d = self._db
        if kind not in ("expression", "pooled", "identity"):
            raise BadInputError(f"kind must be expression, pooled or identity, got {kind!r}")
        with self._env.begin() as txn:
            if kind == "expression":
                out, found = self._gather(txn, d["vec"], ids, slice(0, EXPR_DIM * 4), EXPR_DIM)
            elif kind == "pooled":  # the last 16 floats of a face value
                out, found = self._gather(txn, d["faces"], ids, slice(-EXPR_DIM * 4, None), EXPR_DIM)
            else:
                dim = int(self._encoders.get("identity_dim", 0))
                out, has = self._gather(txn, d["ident"], ids, slice(None), dim)
                found = has.copy()
                if not has.all():  # no identity is fine, no face is not
                    _, found[~has] = self._gather(txn, d["vec"], ids[~has], slice(0, 4), 1)
        if not found.all():
            raise face_not_found(ids[np.flatnonzero(~found)[0]])
        return out
