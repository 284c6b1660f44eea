"""Expression head files: load, refuse what they are not, embed deterministically, run as an encoder."""

from __future__ import annotations

import numpy as np
import pytest

from head_support import seeded_head


def test_a_head_round_trips_and_embeds_unit_vectors(tmp_path):
    from mien.engine.faces import expression_features as xf
    from mien.engine.faces.expression_head import load_head

    made = seeded_head(tmp_path / "h.npz", seed=3, kind="residual")
    again = seeded_head(tmp_path / "h2.npz", seed=3, kind="residual")
    assert made.sha256 == again.sha256          # the same weights give the same bytes
    head = load_head(tmp_path / "h.npz")
    assert head.sha256 == made.sha256 and head.kind == "residual"
    feats = np.random.default_rng(0).normal(size=(5, xf.DIM)).astype(np.float32)
    feats[:, xf.SLICES["log_probs"]] = np.log(np.random.default_rng(1).dirichlet(np.ones(7), 5))
    v = head.embed(feats)
    assert v.shape == (5, 16) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(v, made.embed(feats))


@pytest.mark.parametrize("damage", ["not_npz", "truncated", "wrong_features", "wrong_width"])
def test_a_bad_head_file_is_refused_with_its_name(tmp_path, damage):
    from mien.engine.faces.expression_head import ExpressionHead, HeadFileError, load_head

    path = tmp_path / "bad.npz"
    if damage == "not_npz":
        path.write_text("hello")
    elif damage == "truncated":
        seeded_head(path)
        path.write_bytes(path.read_bytes()[:300])
    else:
        head = seeded_head(tmp_path / "good.npz")
        if damage == "wrong_features":
            head.meta["features"] = "something-else"
        else:
            head = ExpressionHead(head.meta, head.mu[:-1], head.sd[:-1], head.layers)
        head.save(path)
    with pytest.raises(HeadFileError, match=str(path.name)):
        load_head(path)


def test_the_head_encoder_embeds_faces_from_their_features(tmp_path):
    from mien.demo.videos import photo
    from mien.engine.faces import EngineConfig, FaceAnalyzer

    head = seeded_head(tmp_path / "h.npz", seed=5)
    analyzer = FaceAnalyzer(EngineConfig(expression="fer-au-head", expression_head=str(tmp_path / "h.npz")))
    assert analyzer.encoders["expression"] == f"test-head-5@{head.sha256[:12]}"
    faces = analyzer.analyze(photo("t1"), identity=False)
    assert len(faces) >= 4
    feats = np.stack([f.expression_features for f in faces])
    np.testing.assert_allclose([f.expression for f in faces], head.embed(feats), atol=1e-6)
    # the named components stay fer-au-v2's (what explains a hit)
    assert {"happy", "lip_corner_pull"} <= set(faces[0].expression_components)
