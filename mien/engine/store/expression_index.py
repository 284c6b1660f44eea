"""The in-memory expression index a Store holds (readers and the writer alike).

Per face row (rows are in face_id order; a row never moves until a rebuild):
    face_id int64 (8 B) | bfloat16 expression (32 B) | timestamp int64 (8 B)
    source number int32 (4 B) | person int32 (4 B) | alive bool (1 B)
    IVF list uint16 (2 B; NO_LIST while the row is not in the IVF)
plus the candidate index: IVF-SQ8 (16 B code + 8 B row id) once a template is
trained, exact IndexFlatL2 (64 B) before that; plus person -> rows (4 B per
assigned face; a person above probe_min rows keeps them ordered by IVF list,
with where each list starts: 4 B per list). About 85 B per face with IVF.

A query takes candidates from the IVF (or the exact candidate set of a
selective filter), re-ranks them on the bfloat16 rows, and computes the
final distances on the float32 vectors fetched from LMDB for the few survivors
(`refine`), so reported distances are exact and ties break by face_id.

A person-restricted query (`restricted`) scans a person's rows exactly up to
probe_min rows. Above that, with an IVF, it makes the main index's approximation
inside the person: only its rows in the query's nprobe nearest IVF lists (plus
its rows not in the IVF yet, exactly), a few contiguous slices of its rows; it
scans the whole person if those hold fewer than 4 k rows.

The bfloat16 codec and growable row arrays are rows.py's; how many IVF lists
and probes, ivf.py's.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass

import numpy as np

# template_lists only for benchmarks/search.py, which imports the IVF sizing from here (as it was)
from mien.engine.store.ivf import ivf_probes, template_lists  # noqa: F401
from mien.engine.store.records import EXPR_DIM
from mien.engine.store.rows import BF16_EPS, Grow, from_bf16, to_bf16, window

CHUNK = 1 << 18
# rank() takes the bfloat16 short list in Python up to this many candidates, in numpy above
SHORT = 256


_swig_ptr = None  # faiss.swig_ptr, bound on first use (faiss is imported lazily)


def _swig_ptrs(*arrays: np.ndarray) -> list:
    global _swig_ptr
    if _swig_ptr is None:
        import faiss

        _swig_ptr = faiss.swig_ptr
    return [_swig_ptr(a) for a in arrays]


_UNSET = object()
_exact_top = _UNSET  # mien.native's exact_top, None where it is not built


def _native_exact_top():
    """The compiled exact finish (mien/native/rank.h, extension mien.native._rank), or None where it
    is not built. FaceIndex.rank is the Python equivalent."""
    global _exact_top
    if _exact_top is _UNSET:
        try:
            from mien.native import _rank
        except ImportError:
            _rank = None
        _exact_top = getattr(_rank, "exact_top", None)
    return _exact_top


NO_LIST = 0xFFFF  # `lists` value of a row that is not in the IVF (exact index phase)


@dataclass
class RowFilter:
    persons: np.ndarray | None = None          # int32 person ids to keep
    exclude_persons: np.ndarray | None = None  # int32 person ids to drop
    srcs: np.ndarray | None = None             # int32 source numbers to keep
    time_range: tuple[int | None, int | None] | None = None  # inclusive ms bounds
    exclude_face: int | None = None
    exclude_ids: np.ndarray | None = None      # sorted int64 face ids to drop (occluded faces)

    def is_empty(self) -> bool:
        return (self.persons is None and self.exclude_persons is None and self.srcs is None
                and self.time_range is None and self.exclude_ids is None)


class FaceIndex:
    def __init__(self, nprobe: int = 16, k_factor: int = 4, exact_limit: int = 65536,
                 probe_min: int = 4096):
        self.nprobe, self.k_factor, self.exact_limit = nprobe, k_factor, exact_limit
        self.base_probes = nprobe  # nprobe at <= BASE_LISTS lists; start() scales it (ivf_probes)
        self.probe_min = probe_min  # persons with more rows probe IVF lists in restricted()
        self.ids = Grow(np.int64)
        self.vec = Grow(np.uint16, EXPR_DIM)  # bfloat16 bits
        self.max_norm = 0.0  # of any row: scales the bfloat16 error bound
        self.ts = Grow(np.int64)
        self.src = Grow(np.int32)
        self.person = Grow(np.int32)
        self.alive = Grow(np.bool_)
        self.lists = Grow(np.uint16)  # IVF list of each row, NO_LIST if none (nlist <= MAX_LISTS)
        self.ann = None  # faiss index whose ids are rows
        self.ivf = False
        self.person_rows: dict[int, np.ndarray] = {}
        # person (> probe_min rows) -> (its person_rows array, reordered by IVF list;
        # where each list starts in it): valid while that very array is person_rows[p]
        self.by_list: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.src_rows: dict[int, list[int]] = {}  # source number -> [first row, end row)
        self.n_dead = 0
        # rows whose float32 vectors a shard file maps (shards.MappedRows): first rows, and
        # (end row, MappedRows) per shard, in row order (holding the MappedRows keeps each file
        # mapped: the two views below read its bytes); _mapped_at: (end row, the mapped bytes,
        # the byte offset of row 0 in them) per shard, for exact_rows
        self._mapped_starts: list[int] = []
        self._mapped: list[tuple[int, object]] = []
        self._mapped_at: list[tuple[int, memoryview, int]] = []
        # int64 (first row, end row, address of row 0's float32 bytes less first row * 64) per
        # shard: the compiled finish's view of the same mapped rows
        self._mapped_table = np.zeros((0, 3), np.int64)
        self._ann_buf = None  # _ann_rows(reuse=True): (distances, rows, their swig pointers)

    def reserve(self, n: int) -> None:
        """Size the row arrays for n faces up front (no growth slack after a load)."""
        for g in (self.ids, self.vec, self.ts, self.src, self.person, self.alive, self.lists):
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
            self.nprobe = ivf_probes(faiss.extract_index_ivf(self.ann).nlist, self.base_probes)
            self.ann.nprobe = self.nprobe
            self.ivf = True

    def append(self, face_ids: np.ndarray, rows: np.ndarray, ivf_done: bool = False,
               bf16: np.ndarray | None = None, exact=None) -> None:
        """Append faces in increasing face_id order.

        rows is a VEC_DTYPE array (person is honoured); bf16 overrides the bfloat16
        vectors (shards store them); ivf_done=True: the caller fills the IVF itself
        (merge_exact of shard files); exact: the faces' float32 vectors mapped from
        their shard file (shards.MappedRows), which exact_rows reads.
        """
        if len(face_ids) == 0:
            return
        if self.ids.n and face_ids[0] <= self.ids.a[-1]:
            raise RuntimeError("face rows must be appended in increasing face_id order")
        start = self.ids.n
        if exact is not None:
            self._mapped_starts.append(start)
            self._mapped.append((start + len(face_ids), exact))
            view, offset = exact.bytes()
            self._mapped_at.append((start + len(face_ids), view, offset - start * 64))
            self._mapped_table = np.vstack([self._mapped_table,
                                            [(start, start + len(face_ids), exact.address - start * 64)]])
        self.ids.extend(face_ids)
        e = rows["e"] if bf16 is None else from_bf16(bf16)
        self.vec.extend(to_bf16(rows["e"]) if bf16 is None else bf16)
        self.max_norm = max(self.max_norm, float(np.sqrt(np.einsum("ij,ij->i", e, e).max())))
        self.ts.extend(rows["ts"])
        self.src.extend(rows["src"])
        self.person.extend(rows["person"])
        self.alive.extend(np.ones(len(face_ids), dtype=np.bool_))
        new_rows = np.arange(start, start + len(face_ids), dtype=np.int64)
        lists = np.full(len(face_ids), NO_LIST, np.uint16)
        if ivf_done:
            pass  # merge_exact sets their lists
        elif self.ivf:
            x = np.ascontiguousarray(e, dtype=np.float32)
            ivf = self._ivf()
            if ivf is not None:  # the list add_with_ids puts them in (same quantizer, same x)
                lists[:] = ivf.quantizer.assign(x, 1)[:, 0]
            self.ann.add_with_ids(x, new_rows)
        else:
            self.ann.add(np.ascontiguousarray(e, dtype=np.float32))
        self.lists.extend(lists)
        self._index_groups(new_rows)

    def merge_exact(self, parts: list) -> None:
        """Fill the (empty) IVF with several same-template IVF parts, (index, row offset).

        Unlike repeated merge_from, each inverted list is sized once: std::vector
        growth would otherwise leave up to 2x slack on the 24 B/face of codes + ids.
        """
        import faiss

        ivf = faiss.extract_index_ivf(self.ann)
        inv, nlist, cs = ivf.invlists, ivf.nlist, ivf.code_size
        srcs = [(faiss.extract_index_ivf(p).invlists, off) for p, off in parts]
        sizes = np.zeros(nlist, np.int64)
        for sinv, _ in srcs:
            sizes += [sinv.list_size(lst) for lst in range(nlist)]
        for lst in np.flatnonzero(sizes):
            inv.resize(int(lst), int(sizes[lst]))
        pos = np.zeros(nlist, np.int64)
        for sinv, off in srcs:
            for lst in range(nlist):
                n = sinv.list_size(lst)
                if n == 0:
                    continue
                ids = faiss.rev_swig_ptr(sinv.get_ids(lst), n).astype(np.int64) + off
                self.lists.buf[ids] = lst
                codes = faiss.rev_swig_ptr(sinv.get_codes(lst), n * cs)
                inv.update_entries(lst, int(pos[lst]), n, faiss.swig_ptr(ids), faiss.swig_ptr(codes))
                pos[lst] += n
        ivf.ntotal = self.ann.ntotal = int(sizes.sum())
        self.by_list.clear()

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
            self.ann.add_with_ids(from_bf16(self.vec.a[lo:hi]), np.arange(lo, hi, dtype=np.int64))
        import faiss

        self.by_list.clear()
        inv = faiss.extract_index_ivf(self.ann).invlists
        for lst in range(inv.nlist):
            n = inv.list_size(lst)
            if n:
                self.lists.buf[faiss.rev_swig_ptr(inv.get_ids(lst), n)] = lst

    def _ivf(self):
        """The CPU IndexIVF inside ann, or None (exact phase, or placed on a GPU)."""
        if not self.ivf:
            return None
        import faiss

        try:
            return faiss.extract_index_ivf(self.ann)
        except Exception:  # noqa: BLE001 - GPU indexes: restricted() stays exact
            return None

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
                    self.by_list.pop(int(old), None)
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
        if f.exclude_ids is not None and len(f.exclude_ids):  # sorted: a binary search, not np.isin's sort
            ids, ex = self.ids.a[rows], f.exclude_ids
            pos = np.minimum(np.searchsorted(ex, ids), len(ex) - 1)
            m &= ex[pos] != ids
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
        """float32 copies of the rows' bfloat16 vectors.

        The row gather goes through a uint64 view: numpy's 2-D fancy indexing
        is ~8x slower than np.take on one 8-byte column.
        """
        codes = self.vec.buf.view(np.uint64).take(rows, axis=0)
        return from_bf16(codes.view(np.uint16))

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
        """Rows (alive, passing f) and their bfloat16 distances; holds the top k_eff."""
        k_eff = k + (1 if f is not None and f.exclude_face is not None else 0)
        n = self.ids.n
        if n == 0 or k_eff <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        if f is not None and f.is_empty():
            f_mask = RowFilter()  # only alive matters, exclude_face handled later
        else:
            f_mask = f
        if (f_mask is not None and f_mask.persons is not None and len(f_mask.persons) == 1
                and f_mask.persons[0] >= 0 and f_mask.exclude_persons is None
                and f_mask.srcs is None and f_mask.time_range is None and f_mask.exclude_ids is None):
            # one person: the person-restricted search (its rows in the query's nprobe IVF
            # lists once it is large), not the whole IVF filtered down to 1 % of its hits
            return self.restricted(q, int(f_mask.persons[0]), k_eff)
        cand = self._candidate_rows(f_mask)
        if cand is not None and len(cand) <= self.exact_limit:
            return self._exact(q, k_eff, cand, f_mask)
        want = k_eff * self.k_factor
        if (f_mask is None or f_mask.is_empty()) and self.n_dead == 0:
            # the common case: every row alive and wanted, so the loop below would stop after
            # its first search with these rows
            rows = self._ann_rows(q, min(n, want))
            return rows, self._dist16(q, rows)
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

    def nearest(self, q: np.ndarray, k: int, refine) -> list[tuple[int, float, int]]:
        """The unfiltered top-k as rank() gives it: (face_id, distance, row). With every row alive
        and the compiled finish built, the candidates go to it in one call (rank's steps in C++,
        distances within float rounding of rank's); it declines a row whose float32 vector is
        not mapped (the LMDB tail) and hits tied within rounding, and rank runs instead."""
        n = self.ids.n
        exact_top = _native_exact_top() if len(self._mapped_table) else None
        if exact_top is None or self.n_dead or n == 0 or k <= 0:
            rows, d16 = self.candidates(q, k, None)
            return self.rank(q, k, rows, d16, None, refine)
        rows = self._ann_rows(q, min(n, k * self.k_factor), reuse=True)
        got = exact_top(q, rows, self.vec.buf, self.ids.buf, BF16_EPS * self.max_norm, k, self._mapped_table)
        if got is not None:
            return got
        return self.rank(q, k, rows, self._dist16(q, rows), None, refine)

    def _ann_rows(self, q: np.ndarray, fetch: int, reuse: bool = False) -> np.ndarray:
        """The rows of the ANN index's `fetch` nearest to q (fewer when its probed lists hold
        fewer). Calls the index's C++ search directly: faiss's Python wrapper costs a few
        microseconds of checks and copies per call, as much as a tenth of a whole search.
        reuse: into buffers this index keeps (and their pointers), for a caller done with the
        rows before the next search (the store's lock serialises searches)."""
        if reuse:
            if self._ann_buf is None or len(self._ann_buf[1]) != fetch:
                dist, rows = np.empty(fetch, np.float32), np.empty(fetch, np.int64)
                self._ann_buf = (dist, rows, *_swig_ptrs(dist, rows))
            dist, rows, dp, rp = self._ann_buf
        else:
            dist, rows = np.empty(fetch, np.float32), np.empty(fetch, np.int64)
            dp, rp = _swig_ptrs(dist, rows)
        (qp,) = _swig_ptrs(q)
        self.ann.search_c(1, qp, fetch, dp, rp)
        return rows if rows[-1] >= 0 else rows[rows >= 0]

    def exact_rows(self, rows: list[int]) -> list:
        """The float32 vectors (64 bytes each, memoryviews of the mapped file: use them before
        this index goes) of the rows a shard file maps; None for the others (the LMDB tail,
        shards written before they held them)."""
        starts, mapped = self._mapped_starts, self._mapped_at
        if not starts:
            return [None] * len(rows)
        out = []
        for r in rows:
            p = bisect_right(starts, r) - 1
            if p >= 0:
                end, view, at = mapped[p]
                if r < end:  # no method call per row: a dozen rows per search
                    at += r * 64
                    out.append(view[at:at + 64])
                    continue
            out.append(None)
        return out

    def rank(self, q: np.ndarray, k: int, rows: np.ndarray, d16: np.ndarray,
             exclude_face: int | None, refine) -> list[tuple[int, float, int]]:
        """Exact top-k of the candidate rows as (face_id, distance, row): bfloat16 short list,
        float32 final.

        refine(rows, ids) (lists) -> (their float32 vectors with NaN rows for vanished faces,
        whether all were found). The short list and the final order, (distance, face_id), are
        taken in Python on the few dozen candidates of an unfiltered search: there each numpy
        call costs microseconds, more than the work it does."""
        if len(rows) == 0:
            return []
        k_eff = k + (1 if exclude_face is not None else 0)
        if len(rows) > k_eff:
            bound = BF16_EPS * self.max_norm
            if len(rows) <= SHORT:
                d = d16.tolist()
                w = window(sorted(d)[k_eff - 1], bound)
                rows = [r for r, x in zip(rows.tolist(), d) if x <= w]
            else:
                kth = float(np.partition(d16, k_eff - 1)[k_eff - 1])
                rows = rows[d16 <= window(kth, bound)].tolist()
        else:
            rows = rows.tolist()
        ids = self.ids.buf.take(rows).tolist()
        e32, complete = refine(rows, ids)
        d = e32 - q
        d32 = np.einsum("ij,ij->i", d, d).tolist()
        found = zip(d32, ids, rows)
        # NaN: a face gone since the index was read; inf: a query too large to square
        if not complete or exclude_face is not None or not math.isfinite(sum(d32)):
            found = [c for c in found if math.isfinite(c[0]) and c[1] != exclude_face]
        return [(fid, dist, row) for dist, fid, row in sorted(found)[:k]]

    def restricted(self, q: np.ndarray, person: int, k_eff: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.person_rows.get(int(person))
        if rows is None:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        kk = k_eff * 4
        if len(rows) > self.probe_min and self.ivf:
            near = self._probe(q, int(person))
            if near is not None and self.n_dead:
                near = near[self.alive.a[near]]
            if near is not None and len(near) >= kk:  # else too few there: scan the person
                if len(near) <= 4 * kk:
                    return near, self._dist16(q, near)
                rows = near
        if self.n_dead:
            rows = rows[self.alive.a[rows]]
        if len(rows) <= 4 * kk:
            return rows, self._dist16(q, rows)
        # a short list in C++ instead of a full partition in numpy
        import faiss

        x = self._decode(rows)
        d, ix = faiss.knn(q.reshape(1, -1), x, kk)
        d, ix = d[0], ix[0]
        if d[-1] <= window(float(d[k_eff - 1]), BF16_EPS * self.max_norm):  # short list too short
            x -= q
            return rows, np.einsum("ij,ij->i", x, x)
        return rows[ix], d

    def _probe(self, q: np.ndarray, person: int) -> np.ndarray | None:
        """The person's rows in the query's nprobe nearest IVF lists, plus its rows not
        in the IVF (any order; dead rows included)."""
        ivf = self._ivf()
        if ivf is None:
            return None
        rows = self.person_rows[person]
        got = self.by_list.get(person)
        if got is None or got[0] is not rows:
            # reorder the person's rows by list once (until they change); NO_LIST last
            lists = self.lists.buf.take(rows)
            order = np.argsort(lists, kind="stable")
            rows = self.person_rows[person] = rows[order]
            starts = np.searchsorted(lists[order], np.arange(ivf.nlist + 1)).astype(np.int32)
            got = self.by_list[person] = (rows, starts)
        rows, starts = got
        _, near = ivf.quantizer.search(q.reshape(1, -1), min(self.nprobe, ivf.nlist))
        near = near[0][near[0] >= 0]
        parts = [rows[lo:hi] for lo, hi in zip(starts[near].tolist(), starts[near + 1].tolist())]
        parts.append(rows[int(starts[-1]):])
        return np.concatenate(parts)

    def ram_bytes(self) -> int:
        """Bytes held per the layout in the module docstring (buffers at capacity)."""
        total = sum(g.buf.nbytes for g in (self.ids, self.vec, self.ts, self.src, self.person, self.alive, self.lists))
        total += sum(a.nbytes + 100 for a in self.person_rows.values())
        total += sum(starts.nbytes + 100 for _, starts in self.by_list.values())
        total += len(self.src_rows) * 200
        if self.ann is not None:
            if self.ivf:
                import faiss

                ivf = faiss.extract_index_ivf(self.ann)
                total += self.ann.ntotal * (ivf.code_size + 8) + ivf.nlist * (EXPR_DIM * 4 + 64)
            else:
                total += self.ann.ntotal * EXPR_DIM * 4
        return total
