"""Helpers for the store tests: deterministic faces, brute force, writer subprocesses."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np

from mien.engine.store import FaceRecord, SourceRecord

ENC = {"detector": "dlib-hog", "identity": "dlib-resnet", "identity_dim": 32,
       "expression": "landmarks-v1", "expression_dim": 16}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def unit(rng, n: int, d: int = 16) -> np.ndarray:
    v = rng.normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def seeded(uri: str, version: int) -> np.random.Generator:
    h = hashlib.sha256(f"{uri}#{version}".encode()).digest()
    return np.random.default_rng(int.from_bytes(h[:8], "little"))


def source_faces(uri: str, version: int, persons=(-1,), n: int | None = None):
    """The faces of one source version: fully determined by (uri, version)."""
    rng = seeded(uri, version)
    n = int(rng.integers(1, 30)) if n is None else n
    e, ident = unit(rng, n), unit(rng, n, ENC["identity_dim"])
    faces = []
    for i in range(n):
        faces.append(FaceRecord(
            source_uri=uri, frame_index=i, timestamp_ms=int(rng.integers(0, 100_000)),
            bbox=(1.0 * i, 2.0, 30.0 + i, 40.0), landmarks5=rng.random((5, 2)).astype(np.float32) * 50,
            det_score=0.9, sharpness=5.0 + i, yaw=1.0, pitch=2.0, roll=3.0,
            expression=e[i], pooled=e[(i + 1) % n], identity=ident[i] if i % 3 else None,
            track_id=i % 4, person_id=int(persons[i % len(persons)]),
            thumbnail=f"jpeg:{uri}:{version}:{i}".encode(),
        ))
    return faces


def source_record(uri: str, version: int, kind: str = "video") -> SourceRecord:
    return SourceRecord(uri=uri, fingerprint=f"v{version}", kind=kind, status="done", duration_ms=1000)


def brute(store, vectors_by_id: dict[int, np.ndarray], q: np.ndarray, k: int, keep=lambda fid: True):
    """Exact answer over the float32 vectors: [(face_id, distance)] by (distance, id)."""
    ids = np.array([i for i in vectors_by_id if keep(i)], dtype=np.int64)
    if len(ids) == 0:
        return []
    m = np.stack([vectors_by_id[i] for i in ids])
    d = m - q
    dist = np.einsum("ij,ij->i", d, d)
    order = np.lexsort((ids, dist))[:k]
    return [(int(ids[i]), float(dist[i])) for i in order]


def run_py(code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def popen_py(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-u", "-c", code, *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# A writer that replaces random sources forever: argv = store_dir seed shard_size.
# Each source version's faces are fully determined by (uri, version) so a checker
# can tell a complete batch from a partial one.
WRITER = r"""
import sys, numpy as np
from mien.engine.store import Store
from tests.store_support import ENC, source_faces, source_record
path, seed, shard = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(seed)
with Store(path, "w", ENC, shard_size=shard) as w:
    persons = [p.person_id for p in w.list_persons()] or [w.add_person(f"p{i}", np.ones(32)) for i in range(3)]
    print("ready", flush=True)
    step = 0
    while True:
        uri = f"file:///v/{int(rng.integers(0, 40))}.mp4"
        version = int(rng.integers(0, 1_000_000))
        if rng.random() < 0.1 and w.get_source(uri) is not None:
            w.remove_source(uri)
        else:
            w.replace_source(source_record(uri, version), source_faces(uri, version, persons=persons + [-1]))
        step += 1
        if len(sys.argv) > 4 and step >= int(sys.argv[4]):
            break
print("done", flush=True)
"""


def check_consistent(store) -> int:
    """Every source is one complete version; records, vectors and search agree. Returns faces."""
    total = 0
    stats = store.stats()
    for src in store.list_sources():
        version = int(src.fingerprint[1:])
        faces = store.faces_of_source(src.uri)
        persons = sorted({p.person_id for p in store.list_persons()}) + [-1]
        want = source_faces(src.uri, version, persons=persons)
        assert src.face_count == len(want) == len(faces), (src.uri, src.face_count, len(faces))
        got = {f.frame_index: f for f in faces}
        for w in want:
            f = got[w.frame_index]
            np.testing.assert_array_equal(f.expression, w.expression)
            assert f.thumbnail == w.thumbnail
        # the index holds exactly this source's faces
        ids = sorted(f.face_id for f in faces)
        hits = store.search(faces[0].expression, k=len(ids) + 5, sources=[src.uri])
        assert sorted(h.face_id for h in hits) == ids
        total += len(faces)
    assert stats["faces"] == total
    # every searchable face has a record: a k covering everything returns exactly them
    hits = store.search(np.eye(16, dtype=np.float32)[0], k=total + 10)
    if not store._idx.ivf:
        assert len(hits) == total
    for h in hits[:50]:
        store.get_face(h.face_id)
    assert store._idx.count_alive() == total
    return total


def check_snapshot(store) -> None:
    """What a reader may assert while a writer works: each call sees whole batches."""
    for src in store.list_sources():
        faces = store.faces_of_source(src.uri)  # one transaction
        if not faces:
            continue  # removed since list_sources
        versions = {f.thumbnail.split(b":")[-2] for f in faces}
        assert len(versions) == 1, (src.uri, versions)
        version = int(versions.pop())
        persons = sorted({p.person_id for p in store.list_persons()}) + [-1]
        want = source_faces(src.uri, version, persons=persons)
        assert len(faces) == len(want), (src.uri, len(faces), len(want))
        got = {f.frame_index: f.expression for f in faces}
        for w in want:
            np.testing.assert_array_equal(got[w.frame_index], w.expression)
    hits = store.search(np.eye(16, dtype=np.float32)[1], k=200)
    assert len({h.face_id for h in hits}) == len(hits)


def assert_same_faces(faces_a: dict, faces_b: dict) -> None:
    """Two stores' faces per source (Store.faces_of_source) are the same: ids, frames,
    timestamps, tracks, persons, and boxes and vectors within float tolerance."""
    assert sorted(faces_a) == sorted(faces_b)
    for uri in faces_a:
        a, b = faces_a[uri], faces_b[uri]
        assert len(a) == len(b), uri
        for fa, fb in zip(a, b):
            assert (fa.face_id, fa.frame_index, fa.timestamp_ms, fa.track_id, fa.person_id) == \
                   (fb.face_id, fb.frame_index, fb.timestamp_ms, fb.track_id, fb.person_id), uri
            np.testing.assert_allclose(fa.bbox, fb.bbox, atol=1e-3)
            np.testing.assert_allclose(fa.expression, fb.expression, atol=1e-5)
            np.testing.assert_allclose(fa.pooled, fb.pooled, atol=1e-5)
            if fa.identity is None:
                assert fb.identity is None
            else:
                np.testing.assert_allclose(fa.identity, fb.identity, atol=1e-5)
