"""The in-memory identity index: exact squared-L2 search over identity vectors.

Separate from the expression index (expression_index.py) because most searches never need
it: it holds dim * 4 bytes per face (512 B at 128-d) and is loaded on the first
identity search only (live.py), then kept up to date like the other.
"""

from __future__ import annotations

import numpy as np

from mien.engine.store.rows import Grow


class IdentityIndex:
    """Exact squared-L2 search over the faces that carry an identity vector."""

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
