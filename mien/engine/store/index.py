"""The in-memory expression index a Store holds (readers and the writer alike).

Per face row (rows are in face_id order; a row never moves until a rebuild):
    face_id int64 (8 B) | float16 expression (32 B) | timestamp int64 (8 B)
    source number int32 (4 B) | person int32 (4 B) | alive bool (1 B)
plus the candidate index: IVF-SQ8 (16 B code + 8 B row id) once a template is
trained, exact IndexFlatL2 (64 B) before that; plus person -> rows (4 B per
assigned face). About 85 B per face with IVF.

A query takes candidates from the IVF (or the exact candidate set of a
selective filter), re-ranks them exactly on the float16 rows, and computes the
final distances on the float32 vectors fetched from LMDB for the few survivors
(`refine`), so reported distances are exact and ties break by face_id.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mien.engine.store.records import EXPR_DIM

# float16 rows are off by at most ~1e-3 in squared distance for unit vectors;
# everything within this of the k-th float16 distance gets the float32 check.
F16_TOL = 2.5e-3
CHUNK = 1 << 18


class Grow:
    """A numpy array with amortised appends (growth factor 1.25, not 2: RAM)."""

    def __init__(self, dtype, width: int | None = None, cap: int = 1024):
        self.width = width
        shape = (cap,) if width is None else (cap, width)
        self.buf = np.zeros(shape, dtype=dtype)
        self.n = 0

    def extend(self, a: np.ndarray) -> None:
        need = self.n + len(a)
        if need > len(self.buf):
            cap = max(need, int(len(self.buf) * 1.25) + 1024)
            shape = (cap,) if self.width is None else (cap, self.width)
            new = np.zeros(shape, dtype=self.buf.dtype)
            new[: self.n] = self.buf[: self.n]
            self.buf = new
        self.buf[self.n : need] = a
        self.n = need

    @property
    def a(self) -> np.ndarray:
        return self.buf[: self.n]


@dataclass
class RowFilter:
    persons: np.ndarray | None = None          # int32 person ids to keep
    exclude_persons: np.ndarray | None = None  # int32 person ids to drop
    srcs: np.ndarray | None = None             # int32 source numbers to keep
    time_range: tuple[int | None, int | None] | None = None  # inclusive ms bounds
    exclude_face: int | None = None

    def is_empty(self) -> bool:
        return (self.persons is None and self.exclude_persons is None and self.srcs is None
                and self.time_range is None)


def ann_template(n_train: int):
    """An untrained IVF-SQ8 sized for n_train training vectors."""
    import faiss

    nlist = int(max(1, min(4096, 4 * np.sqrt(n_train), n_train // 39)))
    nlist = 1 << int(np.log2(nlist))  # a power of two: tidy, no other reason
    return faiss.index_factory(EXPR_DIM, f"IVF{nlist},SQ8", faiss.METRIC_L2)


class FaceIndex:
    def __init__(self, nprobe: int = 16, k_factor: int = 4, exact_limit: int = 65536):
        self.nprobe, self.k_factor, self.exact_limit = nprobe, k_factor, exact_limit
        self.ids = Grow(np.int64)
        self.vec = Grow(np.float16, EXPR_DIM)
        self.ts = Grow(np.int64)
        self.src = Grow(np.int32)
        self.person = Grow(np.int32)
        self.alive = Grow(np.bool_)
        self.ann = None  # faiss index whose ids are rows
        self.ivf = False
        self.person_rows: dict[int, np.ndarray] = {}
        self.src_rows: dict[int, list[int]] = {}  # source number -> [first row, end row)
        self.n_dead = 0
        import faiss

        self._f16 = faiss.IndexScalarQuantizer(EXPR_DIM, faiss.ScalarQuantizer.QT_fp16)

    def reserve(self, n: int) -> None:
        """Size the row arrays for n faces up front (no growth slack after a load)."""
        for g in (self.ids, self.vec, self.ts, self.src, self.person, self.alive):
            if len(g.buf) < n:
                new = np.zeros((n,) + g.buf.shape[1:], dtype=g.buf.dtype)
                new[: g.n] = g.buf[: g.n]
                g.buf = new

    # ------------------------------------------------------------ building

    def start(self, template_bytes: bytes | None) -> None:
        import faiss

        if template_bytes is None:
            self.ann, self.ivf = faiss.IndexFlatL2(EXPR_DIM), False
        else:
            self.ann = faiss.deserialize_index(np.frombuffer(template_bytes, dtype=np.uint8))
            self.ann.nprobe = self.nprobe
            self.ivf = True

    def append(self, face_ids: np.ndarray, rows: np.ndarray, shard_index=None,
               vec16: np.ndarray | None = None) -> None:
        """Append faces in increasing face_id order.

        rows is a VEC_DTYPE array (person is honoured); vec16 overrides the float16
        vectors (shards store them); shard_index is that shard's IVF, with local ids.
        """
        if len(face_ids) == 0:
            return
        if self.ids.n and face_ids[0] <= self.ids.a[-1]:
            raise RuntimeError("face rows must be appended in increasing face_id order")
        start = self.ids.n
        self.ids.extend(face_ids)
        self.vec.extend(rows["e"].astype(np.float16) if vec16 is None else vec16)
        self.ts.extend(rows["ts"])
        self.src.extend(rows["src"])
        self.person.extend(rows["person"])
        self.alive.extend(np.ones(len(face_ids), dtype=np.bool_))
        new_rows = np.arange(start, start + len(face_ids), dtype=np.int64)
        if shard_index is not None and self.ivf:
            self.ann.merge_from(shard_index, start)  # codes reused, ids shifted to rows
        elif self.ivf:
            e = rows["e"] if vec16 is None else vec16.astype(np.float32)
            self.ann.add_with_ids(np.ascontiguousarray(e, dtype=np.float32), new_rows)
        else:
            e = rows["e"] if vec16 is None else vec16.astype(np.float32)
            self.ann.add(np.ascontiguousarray(e, dtype=np.float32))
        self._index_groups(new_rows)

    def _index_groups(self, new_rows: np.ndarray) -> None:
        src = self.src.a[new_rows]
        # a source's faces are committed together, so they are contiguous rows
        bounds = np.flatnonzero(np.diff(src)) + 1
        for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(src)]):
            s, r0, r1 = int(src[lo]), int(new_rows[lo]), int(new_rows[hi - 1]) + 1
            old = self.src_rows.get(s)
            self.src_rows[s] = [min(old[0], r0), max(old[1], r1)] if old else [r0, r1]
        pers = self.person.a[new_rows]
        assigned = pers >= 0
        if assigned.any():
            self._add_person_rows(pers[assigned], new_rows[assigned].astype(np.int32))

    def _add_person_rows(self, pers: np.ndarray, rows: np.ndarray) -> None:
        order = np.argsort(pers, kind="stable")
        pers, rows = pers[order], rows[order]
        cuts = np.flatnonzero(np.diff(pers)) + 1
        for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(pers)]):
            p = int(pers[lo])
            old = self.person_rows.get(p)
            self.person_rows[p] = rows[lo:hi].copy() if old is None else np.concatenate([old, rows[lo:hi]])

    def to_ivf(self, template_bytes: bytes) -> None:
        """Switch from the exact bootstrap index to IVF once a template exists."""
        self.start(template_bytes)
        for lo in range(0, self.ids.n, CHUNK):
            hi = min(self.ids.n, lo + CHUNK)
            self.ann.add_with_ids(self.vec.a[lo:hi].astype(np.float32), np.arange(lo, hi, dtype=np.int64))

    def rows_of(self, face_ids) -> np.ndarray:
        """Rows of the given face ids that this index holds (others dropped)."""
        face_ids = np.asarray(face_ids, dtype=np.int64)
        ids = self.ids.a
        pos = np.searchsorted(ids, face_ids)
        ok = pos < len(ids)
        pos = pos[ok]
        return pos[ids[pos] == face_ids[ok]]

    def kill(self, face_ids) -> None:
        rows = self.rows_of(face_ids)
        self.n_dead += int(self.alive.a[rows].sum())
        self.alive.a[rows] = False

    def set_person(self, face_ids, person: int) -> None:
        rows = self.rows_of(face_ids).astype(np.int32)
        if len(rows) == 0:
            return
        for old in np.unique(self.person.a[rows]):
            if old >= 0 and int(old) in self.person_rows:
                left = np.setdiff1d(self.person_rows[int(old)], rows, assume_unique=True)
                if len(left):
                    self.person_rows[int(old)] = left
                else:
                    del self.person_rows[int(old)]
        self.person.a[rows] = person
        if person >= 0:
            self._add_person_rows(np.full(len(rows), person, dtype=np.int32), rows)

    # ------------------------------------------------------------ queries

    def count_alive(self) -> int:
        return self.ids.n - self.n_dead

    def _mask(self, rows: np.ndarray, f: RowFilter | None) -> np.ndarray:
        m = self.alive.a[rows]
        if f is None:
            return m
        if f.persons is not None:
            m &= np.isin(self.person.a[rows], f.persons)
        if f.exclude_persons is not None:
            m &= ~np.isin(self.person.a[rows], f.exclude_persons)
        if f.srcs is not None:
            m &= np.isin(self.src.a[rows], f.srcs)
        if f.time_range is not None:
            lo, hi = f.time_range
            ts = self.ts.a[rows]
            if lo is not None:
                m &= ts >= lo
            if hi is not None:
                m &= ts <= hi
        return m

    def _candidate_rows(self, f: RowFilter | None) -> np.ndarray | None:
        """The rows a selective filter allows (a superset), or None if unbounded."""
        if f is None:
            return None
        sets = []
        if f.persons is not None and not (f.persons < 0).any():  # unknowns aren't grouped
            parts = [self.person_rows[int(p)] for p in f.persons if int(p) in self.person_rows]
            sets.append(np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64))
        if f.srcs is not None:
            parts = [np.arange(*self.src_rows[int(s)], dtype=np.int64)
                     for s in f.srcs if int(s) in self.src_rows]
            sets.append(np.concatenate(parts) if parts else np.zeros(0, np.int64))
        return min(sets, key=len) if sets else None

    def _decode(self, rows: np.ndarray) -> np.ndarray:
        """float32 copies of the rows' float16 vectors.

        numpy's 2-D fancy indexing and float16 casts are slow (~10x); a row
        gather through a uint64 view plus faiss's SIMD fp16 decoder is not.
        """
        codes = np.take(self.vec.buf.view(np.uint64), rows, axis=0)
        return self._f16.sa_decode(codes.view(np.uint8))

    def _dist16(self, q: np.ndarray, rows: np.ndarray) -> np.ndarray:
        if len(rows) == 0:
            return np.zeros(0, np.float32)
        d = self._decode(rows)
        d -= q
        return np.einsum("ij,ij->i", d, d)

    def _exact(self, q, k_eff, rows, f) -> tuple[np.ndarray, np.ndarray]:
        rows = rows[self._mask(rows, f)]
        return rows, self._dist16(q, rows)

    def _scan_all(self, q, f) -> tuple[np.ndarray, np.ndarray]:
        rs, ds = [], []
        for lo in range(0, self.ids.n, CHUNK):
            r, d = self._exact(q, 0, np.arange(lo, min(self.ids.n, lo + CHUNK)), f)
            rs.append(r)
            ds.append(d)
        return (np.concatenate(rs), np.concatenate(ds)) if rs else (np.zeros(0, np.int64), np.zeros(0, np.float32))

    def candidates(self, q: np.ndarray, k: int, f: RowFilter | None) -> tuple[np.ndarray, np.ndarray]:
        """Rows (alive, passing f) and their float16 distances; holds the top k_eff."""
        k_eff = k + (1 if f is not None and f.exclude_face is not None else 0)
        n = self.ids.n
        if n == 0 or k_eff <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        if f is not None and f.is_empty():
            f_mask = RowFilter()  # only alive matters, exclude_face handled later
        else:
            f_mask = f
        cand = self._candidate_rows(f_mask)
        if cand is not None and len(cand) <= self.exact_limit:
            return self._exact(q, k_eff, cand, f_mask)
        want = k_eff * self.k_factor
        fetch = min(n, int(want * (n / max(1, len(cand))) if cand is not None else want))
        if f_mask is not None and not f_mask.is_empty() and cand is None:
            fetch = min(n, want * 4)  # unknown selectivity: start wider
        qq = q.reshape(1, -1)
        while True:
            _, ix = self.ann.search(qq, max(1, fetch))
            got = ix[0][ix[0] >= 0]
            keep = got[self._mask(got, f_mask)]
            if len(keep) >= want or fetch >= n:
                break
            if len(got) < fetch:  # the probed lists are exhausted
                if len(keep) >= k_eff or f_mask is None or f_mask.is_empty():
                    break
                return self._scan_all(q, f_mask)  # too selective for IVF: be exact
            if fetch >= 16384:
                return self._scan_all(q, f_mask)
            fetch = min(n, fetch * 8)
        return keep, self._dist16(q, keep)

    def rank(self, q: np.ndarray, k: int, rows: np.ndarray, d16: np.ndarray,
             exclude_face: int | None, refine) -> list[tuple[int, float]]:
        """Exact top-k of the candidate rows: float16 short list, float32 final."""
        if len(rows) == 0:
            return []
        k_eff = k + (1 if exclude_face is not None else 0)
        if len(rows) > k_eff:
            kth = np.partition(d16, k_eff - 1)[k_eff - 1]
            close = d16 <= kth + F16_TOL
            rows = rows[close]
        ids = self.ids.a[rows]
        e32 = refine(ids)  # (m, 16) float32 from LMDB, NaN rows for vanished faces
        d = e32 - q
        d32 = np.einsum("ij,ij->i", d, d)
        ok = np.isfinite(d32)
        if exclude_face is not None:
            ok &= ids != exclude_face
        ids, d32 = ids[ok], d32[ok]
        order = np.lexsort((ids, d32))[:k]
        return [(int(ids[i]), float(d32[i])) for i in order]

    def restricted(self, q: np.ndarray, person: int, k_eff: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.person_rows.get(int(person))
        if rows is None:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        if self.n_dead:
            rows = rows[self.alive.a[rows]]
        kk = k_eff * 4
        if len(rows) <= 4 * kk:
            return rows, self._dist16(q, rows)
        # a short list in C++ instead of a full partition in numpy
        import faiss

        x = self._decode(rows)
        d, ix = faiss.knn(q.reshape(1, -1), x, kk)
        d, ix = d[0], ix[0]
        if d[-1] <= d[k_eff - 1] + F16_TOL:  # ties reach past the short list: take all
            x -= q
            return rows, np.einsum("ij,ij->i", x, x)
        return rows[ix], d

    def ram_bytes(self) -> int:
        """Bytes held per the layout in the module docstring (buffers at capacity)."""
        total = sum(g.buf.nbytes for g in (self.ids, self.vec, self.ts, self.src, self.person, self.alive))
        total += sum(a.nbytes + 100 for a in self.person_rows.values())
        total += len(self.src_rows) * 200
        if self.ann is not None:
            if self.ivf:
                import faiss

                ivf = faiss.extract_index_ivf(self.ann)
                total += self.ann.ntotal * (ivf.code_size + 8) + ivf.nlist * (EXPR_DIM * 4 + 64)
            else:
                total += self.ann.ntotal * EXPR_DIM * 4
        return total
