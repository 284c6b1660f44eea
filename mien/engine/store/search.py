"""The store's searches: expression (filtered), one person's faces, identity.

Each runs under the store's lock in one read transaction: sync the live
indexes (live.py), take candidates from the in-memory index (index.py), rank
them exactly on the float32 vectors read from LMDB, and, when asked, fill the
hits' records from the same transaction (reads.py), so a writer removing a
hit meanwhile can't make the read fail.
"""

from __future__ import annotations

import numpy as np

from mien.engine.store.db import StoreEnv
from mien.engine.store.index import RowFilter
from mien.engine.store.live import LiveIndex
from mien.engine.store.reads import FaceReads
from mien.engine.store.records import EXPR_DIM, ID_KEY, Hit, as_vector, decode_source, id_key, uri_key
from mien.errors import BadInputError, NotFoundError


def check_k(k: int) -> int:
    k = int(k)
    if k < 0:
        raise BadInputError(f"k must be >= 0, got {k}")
    return k


class Searcher:
    def __init__(self, env: StoreEnv, live: LiveIndex, reads: FaceReads, encoders: dict):
        self._env, self._db = env, env.db
        self._live, self._reads, self._encoders = live, reads, encoders

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

    def _hits(self, txn, ranked, records: bool, thumbnails: bool, vec_rows: dict | None = None) -> list[Hit]:
        """Hits for ranked (face_id, distance) pairs, with their HitRecords if asked."""
        if not records:
            return [Hit(fid, dist) for fid, dist in ranked]
        recs = self._reads.hit_records_in(txn, [fid for fid, _ in ranked], thumbnails, vec_rows)
        return [Hit(fid, dist, rec) for (fid, dist), rec in zip(ranked, recs)]

    def search(self, vector, k: int, *, persons, exclude_persons, sources, time_range, exclude_face,
               exclude_occluded: bool, records: bool, thumbnails: bool) -> list[Hit]:
        q = as_vector(vector, EXPR_DIM, "query vector")
        k = check_k(k)
        if k == 0:
            return []
        live = self._live
        with self._env.lock, self._env.begin() as txn:
            live.sync(txn)
            f = RowFilter(exclude_face=None if exclude_face is None else int(exclude_face))
            if persons is not None:
                f.persons = np.asarray(list(persons), dtype=np.int32)
            if exclude_persons is not None:
                f.exclude_persons = np.asarray(list(exclude_persons), dtype=np.int32)
            if sources is not None:
                nos = []
                for uri in sources:
                    v = txn.get(uri_key(str(uri)), db=self._db["sources"])
                    if v is not None:
                        nos.append(decode_source(v)[1])
                f.srcs = np.asarray(nos, dtype=np.int32)
            if time_range is not None:
                lo, hi = time_range
                f.time_range = (None if lo is None else int(lo), None if hi is None else int(hi))
            if exclude_occluded:
                f.exclude_ids = live.occluded_ids(txn)
            rows, d16 = live.idx.candidates(q, k, f)
            seen: dict | None = {} if records else None  # vec rows for the records
            ranked = live.idx.rank(q, k, rows, d16, f.exclude_face, lambda ids: self._exp32(txn, ids, seen))
            return self._hits(txn, ranked, records, thumbnails, seen)

    def search_person(self, vector, person_id: int, k: int, *, exclude_face, exclude_occluded: bool,
                      records: bool, thumbnails: bool) -> list[Hit]:
        if exclude_occluded:  # the filtered path: search() sends a one-person filter to the same search
            return self.search(vector, k, persons=[int(person_id)], exclude_persons=None, sources=None,
                               time_range=None, exclude_face=exclude_face, exclude_occluded=True,
                               records=records, thumbnails=thumbnails)
        q = as_vector(vector, EXPR_DIM, "query vector")
        k = check_k(k)
        live = self._live
        with self._env.lock, self._env.begin() as txn:
            if txn.get(id_key(person_id), db=self._db["persons"]) is None:
                raise NotFoundError(f"person {person_id} does not exist",
                                    reason="PERSON_NOT_FOUND", resource=("mien.v1.Person", str(person_id)))
            if k == 0:
                return []
            live.sync(txn)
            rows, d16 = live.idx.restricted(q, person_id, k + (exclude_face is not None))
            seen: dict | None = {} if records else None  # vec rows for the records
            ranked = live.idx.rank(q, k, rows, d16, exclude_face, lambda ids: self._exp32(txn, ids, seen))
            return self._hits(txn, ranked, records, thumbnails, seen)

    def search_identity(self, vector, k: int, *, exclude_face, exclude_occluded: bool, records: bool,
                        thumbnails: bool) -> list[Hit]:
        dim = int(self._encoders.get("identity_dim", 0))
        if not dim:
            raise BadInputError("this store has no identity encoder")
        q = as_vector(vector, dim, "identity query vector")
        k = check_k(k)
        if k == 0:
            return []
        live = self._live
        with self._env.lock, self._env.begin() as txn:
            live.sync(txn)
            ident = live.identity(txn, dim)
            ranked = ident.search(q, k, exclude_face, live.occluded_ids(txn) if exclude_occluded else None)
            return self._hits(txn, ranked, records, thumbnails)
