"""fer-au-478, the default expression encoder: the fer-au vector with its AUs read from the 478-point
Face Landmarker, on real photos, through the indexer, a real store, reembed and a real gRPC server."""

import shutil

import numpy as np
import pytest

from faces_support import analyzer, t1, t1_named
from indexer_support import small_photo
from mien.engine.faces import expression_au as au
from mien.engine.faces import expression_fer_au as v2
from mien.engine.faces import expression_features as xf
from mien.engine.faces import explain
from mien.engine.faces.facemesh478 import FaceLandmarker478


@pytest.fixture(scope="module")
def t1_pair():
    """The same t1 faces encoded by fer-au-v2 and by fer-au-478 (the default)."""
    return (t1_named(analyzer(expression="fer-au").analyze(t1(), identity=False)),
            t1_named(analyzer().analyze(t1(), identity=False)))


def test_the_478_point_mesh_lies_on_the_face_its_468_point_mesh_found():
    landmarker = FaceLandmarker478()
    medians = []
    for face in analyzer().detect(t1()):
        refined = landmarker.refine(t1(), face.mesh)
        assert refined.shape == (478, 3)
        iod = face.inter_ocular
        # the shared topology: point i is the same place on the face in both meshes
        gaps = np.linalg.norm(refined[:468, :2] - face.mesh[:, :2], axis=1) / iod
        medians.append(np.median(gaps))
        # the 10 iris points sit inside the eyes
        eyes = face.landmarks5[:2]
        irises = refined[[468, 473], :2]
        assert min(np.linalg.norm(irises[0] - eyes, axis=1)) < 0.2 * iod
        assert min(np.linalg.norm(irises[1] - eyes, axis=1)) < 0.2 * iod
    # 2-3 % of the inter-ocular distance on the frontal faces, 7 % on the man in near profile
    assert max(medians) < 0.1 and np.median(medians) < 0.03, medians


def test_the_vector_shares_fer_with_v2_and_reads_its_aus_off_the_finer_mesh(t1_pair):
    by_v2, by_478 = t1_pair
    for name in by_v2:
        a, b = by_v2[name], by_478[name]
        assert b.expression.shape == (16,) and abs(np.linalg.norm(b.expression) - 1) < 1e-5
        # the emotion part is the same distribution: its direction is the same
        np.testing.assert_allclose(a.expression[:7] / np.linalg.norm(a.expression[:7]),
                                   b.expression[:7] / np.linalg.norm(b.expression[:7]), atol=1e-5)
        # the named components are what the vector holds, as for fer-au-v2 (why it matched)
        shown = {c.name: c.value for c in explain.components(b.expression, "fer-au-478")}
        for n in v2.COMPONENT_NAMES:
            assert abs(shown[n] - b.expression_components[n]) < 1e-3, n
        # its features: fer the same as v2's, the AUs and the mesh code its own; they give its vector back
        fa, fb = a.expression_features, b.expression_features
        np.testing.assert_allclose(xf.part(fb[None], "log_probs"), xf.part(fa[None], "log_probs"), atol=1e-5)
        np.testing.assert_allclose(xf.part(fb[None], "pooled"), xf.part(fa[None], "pooled"), atol=1e-5)
        assert not np.allclose(xf.part(fb[None], "mesh"), xf.part(fa[None], "mesh"), atol=1e-3)
        np.testing.assert_allclose(v2.v2_vectors(fb[None])[0], b.expression, atol=1e-5)
    # the AUs come from another mesh: close to the 468-point ones, not the same
    aus_v2 = np.array([[by_v2[n].expression_components[k] for k in au.NAMES] for n in by_v2])
    aus_478 = np.array([[by_478[n].expression_components[k] for k in au.NAMES] for n in by_v2])
    assert not np.allclose(aus_v2, aus_478, atol=1e-3)
    assert np.corrcoef(aus_v2.ravel(), aus_478.ravel())[0, 1] > 0.7   # 0.78 here
    # and they still read the expressions: the laughing man's lips part more than the neutral woman's
    assert (by_478["laughing_man"].expression_components["lips_part"]
            > by_478["woman_left"].expression_components["lips_part"] + 0.5)


def test_a_default_store_answers_image_queries_and_reembeds_from_its_own_features(tmp_path):
    from mien.clients.client import Client
    from mien.engine.faces.engine_record import stored_features, stored_record
    from mien.engine.faces.expression_head import DEFAULT_HEAD
    from mien.engine.store import Store
    from mien.errors import BadInputError
    from mien.indexer import IndexOptions, index_paths
    from mien.indexer.reembed import reembed
    from server_support import serving

    archive, store_dir = tmp_path / "archive", tmp_path / "store"
    for name in ("obama", "biden", "obama2"):
        small_photo(name, archive / f"{name}.jpg")
    summary = index_paths([str(archive)], str(store_dir), IndexOptions(workers=1))
    assert summary.faces_passed == 3
    with Store(store_dir, mode="r") as store:
        encoders = store.stored_encoders()
        ids = store.face_table()["face_id"]
        before = store.vectors(ids)
        features, has = store.features(ids)
    assert encoders["expression"] == "fer-au-478" and stored_record(encoders)["expression"] == "fer-au-478"
    assert stored_features(encoders) == xf.FEATURES_478 and has.all()
    query = shutil.copy(archive / "obama.jpg", tmp_path / "query.jpg")
    with serving(store_dir, front="python") as target, Client(target) as client:
        result = client.search(str(query), k=3, explain=True)
        assert result.hits[0].source_uri.endswith("obama.jpg") and result.hits[0].distance < 1e-3
        assert result.query.components and result.hits[1].differing   # named components, as with v2
    # the shipped head reads fer-au-v2's features: refused, with what to do instead
    with pytest.raises(BadInputError, match="fer-au-478-features-1.*--fixed"):
        reembed(store_dir, DEFAULT_HEAD)
    # back to the fixed vectors from the stored (float16) features: the same space, the same vectors
    done = reembed(store_dir, fixed=True)
    assert (done.encoder_before, done.encoder_after, done.faces) == ("fer-au-478", "fer-au-478", 3)
    with Store(store_dir, mode="r") as store:
        np.testing.assert_allclose(store.vectors(ids), before, atol=3e-3)
        assert stored_features(store.stored_encoders()) == xf.FEATURES_478
