"""Detection, landmarks and the analyzer's records on real package photos."""

import cv2
import numpy as np
import pytest

from faces_support import T1_CENTRES, analyzer, find, t1
from mien.demo import photos
from mien.engine.faces import EngineConfig, Face, Quality
from mien.errors import BadInputError


@pytest.fixture(scope="module")
def an():
    return analyzer()


@pytest.mark.parametrize("detector", ["mediapipe", "dlib"])
def test_t1_has_six_faces_with_68_and_5_points(detector):
    faces = analyzer(detector=detector, expression="landmarks").detect(t1())  # landmarks-v1: 68 at once
    assert len(faces) == 6
    for name, xy in T1_CENTRES.items():
        find(faces, xy)  # every known person is found where they sit
    for f in faces:
        assert isinstance(f, Face)
        assert f.landmarks68.shape == (68, 2) and f.landmarks5.shape == (5, 2)
        x1, y1, x2, y2 = f.bbox
        assert x2 - x1 >= 40 and y2 - y1 >= 40
        # 5 points: left eye is image-left of right eye, mouth below the eyes, all inside the box region
        le, re, nose, lm, rm = f.landmarks5
        assert le[0] < re[0] and lm[0] < rm[0]
        assert lm[1] > le[1] and rm[1] > re[1]
        if detector == "dlib":  # the 5 points come from the 68
            assert np.allclose(le, f.landmarks68[36:42].mean(0)) and np.allclose(nose, f.landmarks68[30])
        else:  # from the mesh; dlib's 68 are fitted in a box derived from it
            assert f.mesh.shape == (468, 3)
            assert np.linalg.norm(le - f.landmarks68[36:42].mean(0)) < 0.15 * f.inter_ocular
        assert x1 - 10 <= nose[0] <= x2 + 10 and y1 - 10 <= nose[1] <= y2 + 10


@pytest.mark.parametrize("loader", [photos.astronaut, photos.grace_hopper])
def test_single_face_photos(an, loader):
    assert len(an.detect(loader())) == 1


def test_no_face_image_gives_nothing(an):
    # a real photo region without faces: t1's poker table
    table = np.ascontiguousarray(t1()[600:886, 300:1000])
    assert an.analyze(table) == []
    assert an.detect(np.full((300, 400, 3), 128, np.uint8)) == []


def test_analyze_fills_every_field(an):
    faces = an.analyze(photos.grace_hopper())
    assert len(faces) == 1
    f = faces[0]
    assert isinstance(f.quality, Quality) and f.quality.passed and f.quality.reason == ""
    assert f.identity.shape == (128,) and abs(np.linalg.norm(f.identity) - 1) < 1e-4
    assert f.expression.shape == (16,) and abs(np.linalg.norm(f.expression) - 1) < 1e-4
    assert len(f.expression_components) == 7 + 16 and {"happy", "lip_corner_pull"} <= set(f.expression_components)
    assert f.crop.shape == (224, 224, 3)
    thumb = cv2.imdecode(np.frombuffer(f.thumbnail, np.uint8), cv2.IMREAD_COLOR)
    assert thumb.shape == (96, 96, 3)


def test_rejected_faces_kept_only_on_request(an):
    all_faces = an.analyze(t1(), identity=False, keep_rejected=True)
    passed = an.analyze(t1(), identity=False)
    assert len(all_faces) == 6
    assert len(passed) == sum(f.quality.passed for f in all_faces)
    assert all(f.quality.reason for f in all_faces if not f.quality.passed)
    assert all(f.identity is None for f in passed)  # identity=False skips it


def test_analyze_batch_matches_analyze(an):
    images = [photos.astronaut(), photos.grace_hopper()]
    batch = an.analyze_batch(images)
    assert [len(b) for b in batch] == [1, 1]
    single = an.analyze(images[1])
    assert np.allclose(batch[1][0].expression, single[0].expression)
    assert np.allclose(batch[1][0].identity, single[0].identity, atol=1e-5)


def test_large_image_detected_on_downscaled_copy(an):
    big = cv2.resize(photos.grace_hopper(), None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)  # 2048x2400
    small_faces = an.detect(photos.grace_hopper())
    big_faces = an.detect(big)
    assert len(big_faces) == 1
    # boxes and landmarks come back in source pixels
    assert np.allclose(big_faces[0].landmarks5 / 4, small_faces[0].landmarks5, atol=4)


def test_encoders_names_the_models(an):
    assert an.encoders == {"detector": "mediapipe-blazeface-full+facemesh", "identity": "dlib-resnet-5pt",
                           "identity_dim": 128, "expression": "fer-au-478", "expression_dim": 16,
                           "detector_min_face": 40}
    assert analyzer(detector="dlib").encoders["detector"] == "dlib-hog"


def test_bad_image_arrays_are_refused(an):
    with pytest.raises(BadInputError):
        an.analyze(np.zeros((100, 100), np.float32))
    with pytest.raises(BadInputError):
        an.analyze("not an image")


def test_unknown_model_names_are_refused():
    """The registry refuses a name it has no row for, before any model loads."""
    from mien.engine.faces import FaceAnalyzer

    for kind in ("detector", "expression", "identity"):
        with pytest.raises(BadInputError, match=f"EngineConfig.{kind}='yolo'; expected one of"):
            FaceAnalyzer(EngineConfig(**{kind: "yolo"}))
    with pytest.raises(BadInputError):
        EngineConfig(min_face=0)
