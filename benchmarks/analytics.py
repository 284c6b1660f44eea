"""Analytics benchmark: tagging throughput and summary time on a synthetic store.

    .venv/bin/python benchmarks/analytics.py [--faces 1000000] [--person-faces 100000]
                                             [--tags 10] [--dir DIR] [--out results.json]

Builds a real Store (LMDB + FAISS) of random unit 16-d expression vectors:
sources of 1000 faces, one person holding --person-faces faces, 200 others and
some unknown faces. Then measures, in the same run:
  - tag_store with --tags tags (3 references each) over every face: faces/s,
    against the bare record read pass (baseline) and the in-memory distance
    computation alone, so the table shows where the time goes;
  - tag_source on one 1000-face video;
  - summarize_person for the big person: k-means K=8 and Ward N=10, against
    reading that person's vectors (baseline).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import peak_rss_mb, print_table, timer, write_json  # noqa: E402

ENCODERS = {"detector": "dlib-hog", "identity": "dlib-resnet", "identity_dim": 128,
            "expression": "landmarks-v1", "expression_dim": 16}
PER_SOURCE = 1000


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def build_store(path: str, faces: int, person_faces: int, seed: int = 0) -> dict:
    from tqdm import tqdm

    from mien.engine.store import FaceRecord, SourceRecord, Store

    rng = np.random.default_rng(seed)
    store = Store(path, mode="w", encoders=ENCODERS)
    big = store.add_person("big", _unit(rng.normal(size=(1, 16)))[0])
    others = [store.add_person(f"p{i}", _unit(rng.normal(size=(1, 16)))[0]) for i in range(200)]
    n_sources = -(-faces // PER_SOURCE)
    big_sources = set(range(0, n_sources, max(1, n_sources * PER_SOURCE // max(person_faces, 1))))
    lm = np.zeros((5, 2), np.float32)
    made = 0
    for s in tqdm(range(n_sources), desc="build store", unit="src"):
        n = min(PER_SOURCE, faces - made)
        vec = _unit(rng.normal(size=(n, 16)))
        if s in big_sources and made < faces:
            person = np.full(n, big)
        else:
            person = rng.choice(others + [-1], size=n)
        uri = f"/bench/video{s:05d}.mp4"
        recs = [FaceRecord(uri, i, 500 * i, (0.0, 0.0, 50.0, 50.0), lm, 1.0, 10.0, 0.0, 0.0, 0.0,
                           vec[i], vec[i], None, track_id=int(i % 7), person_id=int(person[i]))
                for i in range(n)]
        store.replace_source(SourceRecord(uri, f"fp{s}", "video", "done", face_count=n,
                                          duration_ms=500 * n, frames=n), recs)
        made += n
    store.close()
    return {"big": big, "faces": made}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=int, default=1_000_000)
    ap.add_argument("--person-faces", type=int, default=100_000)
    ap.add_argument("--tags", type=int, default=10)
    ap.add_argument("--dir", default=None, help="store directory (reused if it holds a store)")
    ap.add_argument("--out", default=None, help="write results as JSON")
    args = ap.parse_args(argv)

    from mien.engine import analytics
    from mien.engine.analytics.scan import face_batches
    from mien.engine.store import Store, Tag

    workdir = args.dir or tempfile.mkdtemp(prefix="mien-bench-analytics-")
    path = os.path.join(workdir, "store")
    rows: list[dict] = []
    if os.path.exists(os.path.join(path, "data.mdb")):
        with Store(path, mode="r") as s:
            info = {"big": s.find_person("big").person_id, "faces": s.stats()["faces"]}
        print(f"reusing {path} ({info['faces']} faces)")
    else:
        with timer() as t:
            info = build_store(path, args.faces, args.person_faces)
        rows.append({"measure": "build store (setup)", "faces": info["faces"], "seconds": t(),
                     "faces_per_s": info["faces"] / t()})

    rng = np.random.default_rng(1)
    with Store(path, mode="w") as w:
        for i in range(args.tags):
            w.put_tag(Tag(name=f"bench{i}", vectors=_unit(rng.normal(size=(3, 16))), threshold=0.5))
    tags = [f"bench{i}" for i in range(args.tags)]

    store = Store(path, mode="r")
    n = info["faces"]

    with timer() as t:  # baseline: the read pass alone
        read = sum(len(ids) for ids, _, _ in face_batches(store))
    base_read = t()
    rows.append({"measure": "read pass (baseline)", "faces": read, "seconds": base_read,
                 "faces_per_s": read / base_read})

    with timer() as t:
        report = analytics.tag_store(store, tags)
    rows.append({"measure": f"tag_store {args.tags} tags", "faces": report.faces, "seconds": t(),
                 "faces_per_s": report.faces / t(), "vs_baseline": t() / base_read})

    vecs = _unit(rng.normal(size=(min(n, 1_000_000), 16)))
    tag_objs = [store.get_tag(name) for name in tags]
    with timer() as t:
        for start in range(0, len(vecs), 65536):
            analytics.tag_distances(vecs[start:start + 65536], tag_objs)
    rows.append({"measure": f"distances only, {args.tags} tags (in RAM)", "faces": len(vecs),
                 "seconds": t(), "faces_per_s": len(vecs) / t()})

    uri = "/bench/video00001.mp4"
    with timer() as t:
        src = analytics.tag_source(store, uri, tags)
    rows.append({"measure": f"tag_source 1 video, {args.tags} tags", "faces": src.faces, "seconds": t(),
                 "faces_per_s": src.faces / t()})

    ids = store.person_face_ids(info["big"])
    with timer() as t:
        store.vectors(ids, kind="expression")
    base_vec = t()
    rows.append({"measure": "read person vectors (baseline)", "faces": len(ids), "seconds": base_vec,
                 "faces_per_s": len(ids) / base_vec})
    for method, k in (("kmeans", 8), ("ward", 10)):
        with timer() as t:
            summary = analytics.summarize_person(store, info["big"], method=method, k=k, seed=0)
        rows.append({"measure": f"summary {method} k={k}", "faces": summary.faces, "seconds": t(),
                     "faces_per_s": summary.faces / t(), "vs_baseline": t() / base_vec})
    store.close()

    print()
    print_table(rows, ["measure", "faces", "seconds", "faces_per_s", "vs_baseline"], floatfmt="{:.2f}")
    print(f"peak RSS {peak_rss_mb():.0f} MiB; store at {path}")
    write_json(args.out, {"faces": n, "person_faces": int(len(ids)), "tags": args.tags, "rows": rows,
                          "peak_rss_mb": peak_rss_mb()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
