"""The store's searches: expression (filtered), one person's faces, identity.

Each runs under the store's lock in one read transaction: sync the live
indexes (live.py), take candidates from the in-memory index (expression_index.py), rank
them exactly on the float32 vectors read from LMDB, and, when asked, fill the
hits' records from the same transaction (reads.py), so a writer removing a
hit meanwhile can't make the read fail.
"""

from __future__ import annotations

import numpy as np

from mien.engine.store.db import StoreEnv
from mien.engine.store.expression_index import RowFilter
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

    def _exp32(self, txn, rows: list, face_ids: list) -> tuple[np.ndarray, bool]:
        """float32 expression vectors of the index rows, NaN rows for faces that are gone, and
        whether none was gone: from the shard files' mapped vectors where they have them (one
        cache line each), else from LMDB (a B-tree walk each)."""
        vals = self._live.idx.exact_rows(rows)
        if None in vals:
            vec, n, pack, get = self._db["vec"], EXPR_DIM * 4, ID_KEY.pack, txn.get
            for i, fid in enumerate(face_ids):
                if vals[i] is None:
                    v = get(pack(fid), db=vec)
                    vals[i] = None if v is None else v[:n]
        if None not in vals:
            return np.frombuffer(b"".join(vals), dtype="<f4").reshape(-1, EXPR_DIM), True
        out = np.full((len(face_ids), EXPR_DIM), np.nan, dtype=np.float32)
        for i, v in enumerate(vals):
            if v is not None:
                out[i] = np.frombuffer(v, dtype="<f4")
        return out, False

    def _hits(self, txn, ranked, records: bool, thumbnails: bool) -> list[Hit]:
        """Hits for ranked (face_id, distance[, index row]) tuples, with their HitRecords if
        asked; a row gives the face's person from the index (synced to this transaction), so
        its vector row need not be read for it."""
        if not records:
            return [Hit(r[0], r[1]) for r in ranked]
        ids = [r[0] for r in ranked]
        persons = None
        if ranked and len(ranked[0]) > 2:
            persons = dict(zip(ids, self._live.idx.person.a.take([r[2] for r in ranked]).tolist()))
        recs = self._reads.hit_records_in(txn, ids, thumbnails, persons=persons)
        return [Hit(r[0], r[1], rec) for r, rec in zip(ranked, recs)]

    def _in_txn(self, vector, dim: int, what: str, k, search, check=None) -> list[Hit]:
        """The preamble every search shares: the query vector and k checked, then
        search(txn, q, k) under the store's lock in one read transaction, the live indexes
        synced to it. check(txn) runs before k == 0 answers no hits (a person that must exist)."""
        q = as_vector(vector, dim, what)
        k = check_k(k)
        if k == 0 and check is None:
            return []
        with self._env.lock, self._env.begin() as txn:
            if check is not None:
                check(txn)
                if k == 0:
                    return []
            self._live.sync(txn)
            return search(txn, q, k)

    def search(self, vector, k: int, *, persons, exclude_persons, sources, time_range, exclude_face,
               exclude_occluded: bool, records: bool, thumbnails: bool) -> list[Hit]:
        plain = (persons is None and exclude_persons is None and sources is None and time_range is None
                 and exclude_face is None and not exclude_occluded)

        def run(txn, q, k):
            live = self._live
            if plain:  # no filter to build or check: the common query
                ranked = live.idx.nearest(q, k, lambda r, ids: self._exp32(txn, r, ids))
                return self._hits(txn, ranked, records, thumbnails)
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
            ranked = live.idx.rank(q, k, rows, d16, f.exclude_face, lambda r, ids: self._exp32(txn, r, ids))
            return self._hits(txn, ranked, records, thumbnails)

        return self._in_txn(vector, EXPR_DIM, "query vector", k, run)

    def search_person(self, vector, person_id: int, k: int, *, exclude_face, exclude_occluded: bool,
                      records: bool, thumbnails: bool) -> list[Hit]:
        if exclude_occluded:  # the filtered path: search() sends a one-person filter to the same search
            return self.search(vector, k, persons=[int(person_id)], exclude_persons=None, sources=None,
                               time_range=None, exclude_face=exclude_face, exclude_occluded=True,
                               records=records, thumbnails=thumbnails)

        def exists(txn):
            if txn.get(id_key(person_id), db=self._db["persons"]) is None:
                raise NotFoundError(f"person {person_id} does not exist",
                                    reason="PERSON_NOT_FOUND", resource=("mien.v1.Person", str(person_id)))

        def run(txn, q, k):
            idx = self._live.idx
            rows, d16 = idx.restricted(q, person_id, k + (exclude_face is not None))
            ranked = idx.rank(q, k, rows, d16, exclude_face, lambda r, ids: self._exp32(txn, r, ids))
            return self._hits(txn, ranked, records, thumbnails)

        return self._in_txn(vector, EXPR_DIM, "query vector", k, run, check=exists)

    def search_identity(self, vector, k: int, *, exclude_face, exclude_occluded: bool, records: bool,
                        thumbnails: bool) -> list[Hit]:
        dim = int(self._encoders.get("identity_dim", 0))
        if not dim:
            raise BadInputError("this store has no identity encoder")

        def run(txn, q, k):
            live = self._live
            ident = live.identity(txn, dim)
            ranked = ident.search(q, k, exclude_face, live.occluded_ids(txn) if exclude_occluded else None)
            return self._hits(txn, ranked, records, thumbnails)

        return self._in_txn(vector, dim, "identity query vector", k, run)
