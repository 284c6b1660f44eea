"""Expression features: what the fer-au encoders compute per face and the store keeps to re-embed."""

from __future__ import annotations

import numpy as np
import pytest

from indexer_support import copy_photo, small_photo


@pytest.fixture(scope="module")
def faces_of_photos():
    from mien.demo.videos import photo
    from mien.engine.faces import EngineConfig, FaceAnalyzer

    analyzer = FaceAnalyzer(EngineConfig())
    out = []
    for name in ("obama", "obama2", "biden", "t1"):
        image = photo(name)
        out += [(name, image, f) for f in analyzer.analyze(image, identity=False)]
    return out


def test_features_hold_what_v2_is_made_of(faces_of_photos):
    from mien.engine.faces import expression_features as xf
    from mien.engine.faces import expression_fer_au as v2

    assert len(faces_of_photos) >= 8
    feats = np.stack([f.expression_features for _, _, f in faces_of_photos])
    assert feats.shape == (len(faces_of_photos), xf.DIM) and np.all(np.isfinite(feats))
    # the distribution fer-au-v2 uses is the softmax of the stored logits
    probs = xf.softmax(xf.part(feats, "log_probs"))
    want = np.array([[f.expression_components[e] for e in v2.EMOTIONS] for _, _, f in faces_of_photos])
    np.testing.assert_allclose(probs, want, atol=1e-5)
    np.testing.assert_allclose(xf.part(feats, "aus"),
                               [[f.expression_components[n] for n in v2.au.NAMES] for _, _, f in faces_of_photos],
                               atol=1e-5)
    # so the v2 vector can always be rebuilt from the features
    np.testing.assert_allclose(v2.v2_vectors(feats), [f.expression for _, _, f in faces_of_photos], atol=1e-5)
    # the pooled block and mesh code are not constant: they tell faces apart
    assert np.all(xf.part(feats, "pooled").std(0).mean() > 0.05)
    assert np.all(np.abs(xf.part(feats, "mesh")).max(1) > 0.01)


def test_mesh_code_follows_the_mouth(faces_of_photos):
    """obama.jpg's broad smile widens the mouth: its lip corners sit further out than Biden's."""
    from mien.engine.faces import expression_features as xf

    code = {name: xf.mesh_code(f.mesh).reshape(-1, 2) for name, _, f in faces_of_photos if name in ("obama", "biden")}
    corners = xf.MESH_POINTS.index(61), xf.MESH_POINTS.index(291)
    width = {n: c[corners[1], 0] - c[corners[0], 0] for n, c in code.items()}
    assert width["obama"] > width["biden"] + 0.1


def test_the_store_keeps_features_and_drops_them_with_the_face(tmp_path):
    from mien.engine.faces import expression_features as xf
    from mien.engine.faces import expression_fer_au as v2
    from mien.engine.store import Store
    from mien.indexer import IndexOptions, index_paths

    archive = tmp_path / "a"
    small_photo("obama", archive / "obama.jpg")
    copy_photo("t1", archive / "t1.jpg")
    store_dir = tmp_path / "store"
    index_paths([str(archive)], str(store_dir), IndexOptions(workers=1))
    with Store(store_dir, mode="r") as store:
        ids = store.face_table()["face_id"]
        feats, has = store.features(ids)
        faces = store.get_faces(ids)
    assert len(ids) >= 4 and has.all() and feats.shape == (len(ids), xf.DIM)
    # float16 on disk: the v2 vectors rebuilt from stored features are the stored vectors to 1e-3
    np.testing.assert_allclose(v2.v2_vectors(feats), [f.expression for f in faces], atol=2e-3)
    (archive / "t1.jpg").unlink()
    index_paths([str(archive)], str(store_dir), IndexOptions(workers=1, prune=True))
    with Store(store_dir, mode="w") as store:
        left = store.face_table()["face_id"]
        assert 0 < len(left) < len(ids)
        with store._begin() as txn:
            assert txn.stat(store._db["feats"])["entries"] == len(left)
