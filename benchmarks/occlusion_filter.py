"""What leaving occluded faces out costs: the store's occluded list and exclude_occluded searches.

Builds a synthetic store (random unit vectors, a share of faces flagged occluded), then times
face_table(), the first occluded_face_ids() (one cursor pass over the face values), the cached
one, and search() with and without exclude_occluded. Prints a table; --out writes JSON.
Ratios are against the plain call measured in the same run.

    .venv/bin/python benchmarks/occlusion_filter.py --faces 100000 --out occl.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np


def build(root: str, n: int, share: float, per: int = 500) -> None:
    from mien.engine.store import SourceRecord, Store
    from mien.engine.store.records import FaceRecord

    rng = np.random.default_rng(0)
    with Store(root, "w", {"expression": "synthetic", "expression_dim": 16}) as s:
        for i in range(0, n, per):
            m = min(per, n - i)
            e = rng.normal(size=(m, 16)).astype(np.float32)
            e /= np.linalg.norm(e, axis=1, keepdims=True)
            uri = f"/synthetic/{i // per}.mp4"
            faces = [FaceRecord(uri, j, j * 500, (0, 0, 10, 10), np.zeros((5, 2)), 0.9, 5.0, 0.0, 0.0, 0.0,
                                e[j], e[j], None, track_id=0, occluded=bool(rng.random() < share),
                                occlusion=1.0) for j in range(m)]
            s.replace_source(SourceRecord(uri, str(i), "video", "done", face_count=m), faces)


def timed(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best * 1000.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--faces", type=int, default=100_000)
    ap.add_argument("--share", type=float, default=0.05, help="share of faces flagged occluded")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    from mien.engine.store import Store

    root = tempfile.mkdtemp(prefix="mien-occl-bench-")
    build(root, args.faces, args.share)
    q = np.ones(16, np.float32) / 4.0
    with Store(root, "r") as s:
        table_ms = timed(s.face_table, 3)
        t = time.perf_counter()
        n_occl = len(s.occluded_face_ids())
        first_ms = (time.perf_counter() - t) * 1000.0
        cached_ms = timed(s.occluded_face_ids, args.repeat)
        search_ms = timed(lambda: s.search(q, 10), args.repeat)
        excl_ms = timed(lambda: s.search(q, 10, exclude_occluded=True), args.repeat)
    rows = {
        "face_table_ms": table_ms, "occluded_list_first_ms": first_ms, "occluded_list_cached_ms": cached_ms,
        "search_ms": search_ms, "search_exclude_occluded_ms": excl_ms,
        "first_list_vs_face_table": first_ms / table_ms, "exclude_vs_plain_search": excl_ms / search_ms,
    }
    print(f"{args.faces} faces, {n_occl} occluded")
    for k, v in rows.items():
        print(f"{k:<28} {v:10.3f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"faces": args.faces, "occluded": n_occl, **rows}, f, indent=2)


if __name__ == "__main__":
    main()
