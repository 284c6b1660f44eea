"""mien reembed: every vector recomputed from the stored features, in one crash-safe switch."""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from head_support import seeded_head
from indexer_support import env_for_subprocess, small_photo


def synthetic_store(path, n_sources: int = 40, per_source: int = 1000, shard_size: int = 20000, seed: int = 0):
    """A store of real records with random (valid) features: big enough that a re-embedding takes
    a while and the store has sealed shards."""
    from mien.engine.faces import expression_features as xf
    from mien.engine.faces import expression_fer_au as fer_au
    from mien.engine.store import FaceRecord, SourceRecord, Store

    rng = np.random.default_rng(seed)
    encoders = {"expression": "fer-au-v2", "expression_dim": 16, "identity": "none", "identity_dim": 0}
    with Store(path, mode="w", encoders=encoders, shard_size=shard_size) as store:
        for s in range(n_sources):
            feats = rng.normal(size=(per_source, xf.DIM)).astype(np.float32)
            feats[:, xf.SLICES["log_probs"]] = np.log(rng.dirichlet(np.ones(7), per_source))
            vectors = fer_au.v2_vectors(feats)
            uri = f"/archive/video{s:03d}.mp4"
            faces = [FaceRecord(source_uri=uri, frame_index=i, timestamp_ms=500 * i, bbox=(10, 10, 90, 90),
                                landmarks5=np.zeros((5, 2), np.float32), det_score=0.9, sharpness=9.0, yaw=0.0,
                                pitch=0.0, roll=0.0, expression=vectors[i], pooled=vectors[i], identity=None,
                                track_id=i % 3, features=feats[i])
                     for i in range(per_source)]
            store.replace_source(SourceRecord(uri, f"fp{s}", "video", "done"), faces)


def contents(store_dir) -> dict:
    from mien.engine.store import Store

    with Store(store_dir, mode="r") as store:
        ids = store.face_table()["face_id"]
        faces = store.get_faces(ids, identity=False)
        q = faces[len(faces) // 2].expression
        return {"ids": ids, "expression": np.stack([f.expression for f in faces]),
                "pooled": np.stack([f.pooled for f in faces]), "encoders": store.stored_encoders(),
                "hits": [(h.face_id, round(h.distance, 5)) for h in store.search(q, k=20)]}


def reembed_cmd(store, head):
    return [sys.executable, "-m", "mien", "reembed", "--store", str(store), "--head", str(head)]


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    from mien.demo.videos import write_clip
    from mien.indexer import IndexOptions, index_paths

    root = tmp_path_factory.mktemp("reembed")
    archive = root / "archive"
    small_photo("obama", archive / "obama.jpg")
    small_photo("biden", archive / "biden.jpg")
    write_clip(archive / "moods.mp4", ["obama2", "biden"], fps=10, seconds=3.0, size=(640, 360))
    store = root / "store"
    index_paths([str(archive)], str(store), IndexOptions(workers=1))
    return store


def test_reembed_applies_the_head_pools_videos_and_goes_back(indexed, tmp_path):
    from mien.engine.faces import expression_features as xf
    from mien.engine.faces import expression_fer_au as fer_au
    from mien.engine.store import Store
    from mien.indexer.pooling import median_pool
    from mien.indexer.reembed import reembed

    store_dir = tmp_path / "store"
    shutil.copytree(indexed, store_dir)
    before = contents(store_dir)
    head = seeded_head(tmp_path / "head.npz", seed=7)
    summary = reembed(store_dir, tmp_path / "head.npz")
    assert summary.faces == len(before["ids"]) >= 6 and summary.encoder_before == "fer-au-478"
    after = contents(store_dir)
    with Store(store_dir, mode="r") as store:
        feats, has = store.features(after["ids"])
        faces = store.get_faces(after["ids"], identity=False)
        kinds = {s.uri: s.kind for s in store.list_sources()}
    assert has.all()
    np.testing.assert_allclose(after["expression"], head.embed(feats), atol=1e-6)
    assert after["encoders"]["expression"] == f"test-head-7@{head.sha256[:12]}"
    assert '"expression": "fer-au-head"' in after["encoders"]["engine"] and head.sha256 in after["encoders"]["engine"]
    # photos pool to themselves; a video's faces are median-pooled per person in time order
    video = [i for i, f in enumerate(faces) if kinds[f.source_uri] == "video"]
    assert len(video) >= 4
    for person in {faces[i].person_id for i in video}:
        seq = sorted((faces[i].timestamp_ms, faces[i].track_id, i) for i in video if faces[i].person_id == person)
        at = [i for *_, i in seq]
        np.testing.assert_allclose(after["pooled"][at], median_pool(after["expression"][at]), atol=1e-6)
    photos = [i for i, f in enumerate(faces) if kinds[f.source_uri] == "image"]
    np.testing.assert_array_equal(after["pooled"][photos], after["expression"][photos])
    # the nearest face to a face's own new vector is itself
    with Store(store_dir, mode="r") as store:
        assert store.search(after["expression"][0], k=1)[0].face_id == after["ids"][0]
    # again: the same store
    reembed(store_dir, tmp_path / "head.npz")
    again = contents(store_dir)
    np.testing.assert_array_equal(again["expression"], after["expression"])
    np.testing.assert_array_equal(again["pooled"], after["pooled"])
    # back to the fixed vector: what indexing stored, to float16 precision of the features
    reembed(store_dir, fixed=True)
    back = contents(store_dir)
    assert back["encoders"]["expression"] == "fer-au-478"   # the default store's own fixed vector
    assert '"expression": "fer-au-478"' in back["encoders"]["engine"]
    np.testing.assert_allclose(back["expression"], before["expression"], atol=2e-3)
    np.testing.assert_allclose(back["expression"], fer_au.v2_vectors(feats), atol=1e-6)


def test_a_server_store_switches_without_a_restart(indexed, tmp_path):
    from mien.engine.store import Store
    from mien.indexer.reembed import reembed

    store_dir = tmp_path / "store"
    shutil.copytree(indexed, store_dir)
    head = seeded_head(tmp_path / "head.npz", seed=8)
    with Store(store_dir, mode="r") as reader:
        ids = reader.face_table()["face_id"]
        old = reader.vectors(ids)
        q = old[0]
        first = reader.search(q, k=3)
        assert first[0].face_id == ids[0] and first[0].distance < 1e-6
        done = subprocess.run(reembed_cmd(store_dir, tmp_path / "head.npz"), env=env_for_subprocess(),
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "re-embedded" in done.stdout
        feats, _ = reader.features(ids)
        np.testing.assert_allclose(reader.vectors(ids), head.embed(feats), atol=1e-6)
        hits = reader.search(head.embed(feats[:1])[0], k=1)
        assert hits[0].face_id == ids[0] and hits[0].distance < 1e-6
        assert reader.stored_encoders()["expression"].startswith("test-head-8@")


def test_kill_9_during_reembed_then_rerun_equals_an_uninterrupted_run(tmp_path):
    original = tmp_path / "original"
    synthetic_store(original)   # no engine record, named fer-au-v2: fer-au-v2's features
    seeded_head(tmp_path / "head.npz", seed=9, kind="residual", features="fer-au-features-1")
    reference = tmp_path / "reference"
    shutil.copytree(original, reference)
    started = time.monotonic()
    done = subprocess.run(reembed_cmd(reference, tmp_path / "head.npz"), env=env_for_subprocess(),
                          capture_output=True, text=True, timeout=300)
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    want = contents(reference)
    before = contents(original)
    assert len(want["ids"]) == 40000

    rng = random.Random(5)
    kills = attempt = 0
    # kill points spread over a run (start-up, reads, the commit, sealing), scaled by the reference
    # run's duration; an attempt whose run ended first doesn't count (a busy machine runs slower)
    while kills < 3 and attempt < 8:
        store = tmp_path / f"killed{attempt}"
        shutil.copytree(original, store)
        proc = subprocess.Popen(reembed_cmd(store, tmp_path / "head.npz"), env=env_for_subprocess(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(took * rng.uniform(0.15, 0.85))
        killed = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        now = contents(store)
        # after a kill the store is the old one or the new one, never a mix
        same_as = ("old" if np.array_equal(now["expression"], before["expression"]) else
                   "new" if np.array_equal(now["expression"], want["expression"]) else "mixed")
        assert same_as != "mixed", f"attempt {attempt}: a kill left a mixed store"
        assert now["hits"] == (before if same_as == "old" else want)["hits"]
        done = subprocess.run(reembed_cmd(store, tmp_path / "head.npz"), env=env_for_subprocess(),
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        got = contents(store)
        np.testing.assert_array_equal(got["ids"], want["ids"])
        np.testing.assert_array_equal(got["expression"], want["expression"])
        np.testing.assert_array_equal(got["pooled"], want["pooled"])
        assert got["encoders"] == want["encoders"] and got["hits"] == want["hits"]
        kills += killed
        attempt += 1
        shutil.rmtree(store)
    assert kills >= 2, "the kills must land inside runs"


def test_a_store_without_features_says_what_to_do(tmp_path):
    from mien.engine.store import FaceRecord, SourceRecord, Store
    from mien.errors import BadInputError
    from mien.indexer.reembed import reembed

    encoders = {"expression": "fer-au-v2", "expression_dim": 16, "identity": "none", "identity_dim": 0}
    with Store(tmp_path / "old", mode="w", encoders=encoders) as store:
        v = np.eye(16, dtype=np.float32)[0]
        store.replace_source(SourceRecord("/a.jpg", "f", "image", "done"), [FaceRecord(
            source_uri="/a.jpg", frame_index=0, timestamp_ms=0, bbox=(0, 0, 9, 9), landmarks5=np.zeros((5, 2)),
            det_score=1.0, sharpness=9.0, yaw=0.0, pitch=0.0, roll=0.0, expression=v, pooled=v, identity=None)])
    with pytest.raises(BadInputError, match="1 of 1 faces were indexed without expression features"):
        reembed(tmp_path / "old", fixed=True)
    with Store(tmp_path / "old", mode="r") as store:
        assert store.stored_encoders()["expression"] == "fer-au-v2"


def test_a_running_server_answers_image_queries_in_the_new_space(indexed, tmp_path):
    from mien.clients.client import Client
    from mien.demo.videos import photo
    from mien.engine.faces import EngineConfig, FaceAnalyzer
    from server_support import start_server, stop_server

    store_dir = tmp_path / "store"
    shutil.copytree(indexed, store_dir)
    head = seeded_head(tmp_path / "head.npz", seed=11)
    query = small_photo("obama", tmp_path / "q.jpg")
    server, target = start_server(store_dir, front="python")
    try:
        with Client(target) as client:
            v2_vector = client.search(str(query), k=3).query.vector
            face = FaceAnalyzer(EngineConfig()).analyze(__import__("cv2").imread(str(query)), identity=False)[0]
            np.testing.assert_allclose(v2_vector, face.expression, atol=1e-4)
            done = subprocess.run(reembed_cmd(store_dir, tmp_path / "head.npz"), env=env_for_subprocess(),
                                  capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr
            result = client.search(str(query), k=3, explain=True)
            np.testing.assert_allclose(result.query.vector, head.embed(face.expression_features[None])[0],
                                       atol=1e-4)
            assert result.hits[0].distance < 0.05       # obama.jpg itself, in the new space
            # hits in a learned space are explained by the fer-au-v2 components of the two faces
            assert abs(result.query.components["happy"] - face.expression_components["happy"]) < 1e-3
            assert result.hits[0].components and result.hits[0].agreeing
    finally:
        stop_server(server)
