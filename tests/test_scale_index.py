"""Index parameters follow the face count: IVF lists from the number of faces,
probes from the lists, and a store that outgrows its IVF retrains it."""

from __future__ import annotations

import json

import numpy as np

from mien.engine.store import Store
from mien.engine.store.ivf import (
    BASE_PROBES, MAX_LISTS, ivf_lists, ivf_outgrown, ivf_probes, template_lists,
)
from store_support import ENC, brute, source_faces, source_record


def test_lists_and_probes_grow_with_the_face_count():
    assert [ivf_lists(n) for n in (100_000, 1_000_000, 10_000_000, 10**9)] == [1024, 2048, 8192, MAX_LISTS]
    assert ivf_lists(100) == 2 and ivf_lists(1) == 1       # >= 39 training faces per list
    assert ivf_probes(1024) == ivf_probes(8192) == BASE_PROBES
    assert ivf_probes(4 * 8192) == 2 * BASE_PROBES
    assert not ivf_outgrown(1024, 200_000) and ivf_outgrown(1024, 300_000)
    assert not ivf_outgrown(8192, 10_000_000) and ivf_outgrown(4096, 10_000_000)


def test_a_growing_store_retrains_its_ivf_and_stays_exact(tmp_path):
    vectors = {}
    lists_seen = []
    with Store(tmp_path / "s", mode="w", encoders=ENC, shard_size=100) as st:
        for i in range(40):
            ids = st.replace_source(source_record(f"u{i}", 1), source_faces(f"u{i}", 1, n=20))
            for fid, f in zip(ids, source_faces(f"u{i}", 1, n=20)):
                vectors[fid] = f.expression
            with st._begin() as txn:
                t = txn.get(b"template", db=st._db["meta"])
                if t is not None:
                    lists_seen.append(template_lists(bytes(t)))
        reg = json.loads(bytes(st._begin().get(b"shards", db=st._db["meta"])))
    # trained at the first seal (100 faces: 2 lists), retrained as the store grew
    assert lists_seen[0] == 2 and lists_seen[-1] >= 8, lists_seen
    assert all(a <= b for a, b in zip(lists_seen, lists_seen[1:]))
    assert sum(s["count"] for s in reg) == 800
    rng = np.random.default_rng(3)
    with Store(tmp_path / "s", mode="r") as r:
        for _ in range(20):
            q = rng.normal(size=16).astype(np.float32)
            q /= np.linalg.norm(q)
            got = [(h.face_id, h.distance) for h in r.search(q, k=10)]
            want = brute(r, vectors, q, 10)
            assert [g[0] for g in got] == [w[0] for w in want]


def test_a_one_person_filter_is_the_person_restricted_search(tmp_path):
    """search(persons=[p]) takes search_person's path (the person's rows in the query's
    IVF lists once it is large), so both give the same hits."""
    with Store(tmp_path / "s", mode="w", encoders=ENC, shard_size=500) as st:
        pid = st.add_person("P", np.ones(ENC["identity_dim"], np.float32))
        for i in range(100):
            persons = (pid, -1) if i % 2 else (-1,)
            st.replace_source(source_record(f"u{i}", 1), source_faces(f"u{i}", 1, persons=persons, n=20))
    rng = np.random.default_rng(5)
    with Store(tmp_path / "s", mode="r", probe_min=100) as r:
        assert len(r.person_face_ids(pid)) > 100
        for _ in range(10):
            q = rng.normal(size=16).astype(np.float32)
            q /= np.linalg.norm(q)
            via_filter = [(h.face_id, h.distance) for h in r.search(q, k=10, persons=[pid])]
            restricted = [(h.face_id, h.distance) for h in r.search_person(q, pid, k=10)]
            assert via_filter == restricted and len(via_filter) == 10
