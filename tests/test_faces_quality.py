"""FaceQA: eye sharpness and head pose on real faces and on projected 3D landmarks."""

import cv2
import numpy as np
import pytest

from faces_support import analyzer, find, t1, T1_CENTRES
from mien.demo import photos
from mien.engine.faces import EngineConfig, Face
from mien.engine.faces import faceqa


@pytest.fixture(scope="module")
def an():
    return analyzer()


def blurred(image, face, factor=12.0):
    return cv2.GaussianBlur(image, (0, 0), face.inter_ocular / factor)


@pytest.mark.parametrize("loader", [photos.grace_hopper, photos.astronaut, t1])
def test_blurred_copy_fails_sharpness_original_passes(an, loader):
    image = loader()
    faces = an.detect(image)
    face = find(faces, T1_CENTRES["smiling_man"]) if loader is t1 else faces[0]
    q = faceqa.assess_face(image, face, an.config)
    assert q.sharpness >= 3.0 and "blurry" not in q.reason
    qb = faceqa.assess_face(blurred(image, face), face, an.config)
    assert qb.sharpness < 3.0 and not qb.passed and "blurry" in qb.reason
    assert qb.sharpness < q.sharpness / 2


def test_sharpness_threshold_is_configurable(an):
    image = photos.grace_hopper()
    face = an.detect(image)[0]
    sid = faceqa.sharpness(image, face.landmarks5)
    strict = faceqa.assess_face(image, face, EngineConfig(sharpness_min=sid + 1))
    assert not strict.passed and strict.reason == "blurry"


def test_sharpness_does_not_depend_on_face_resolution(an):
    # measured at a fixed 70 px inter-ocular scale: halving the photo barely moves it
    image = photos.grace_hopper()
    face = an.detect(image)[0]
    half = cv2.resize(image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    a = faceqa.sharpness(image, face.landmarks5)
    b = faceqa.sharpness(half, face.landmarks5 / 2)
    assert abs(a - b) / a < 0.35


def face_at(landmarks5):
    return Face(bbox=(0, 0, 1, 1), det_score=1.0, landmarks5=landmarks5.astype(np.float32))


def test_projected_pose_is_recovered():
    for yaw, pitch, roll in [(0, 0, 0), (30, 10, 5), (-45, -15, 20), (70, 0, 0)]:
        pts = faceqa.project(yaw, pitch, roll, (600, 512), (260, 230), distance_mm=455)
        est = faceqa.head_pose(pts, (600, 512))
        assert np.allclose(est, (yaw, pitch, roll), atol=1.0), (yaw, pitch, roll, est)


def test_turned_head_fails_yaw_frontal_passes():
    image = photos.grace_hopper()
    nose = analyzer().detect(image)[0].landmarks5[2]
    cfg = EngineConfig()
    frontal = faceqa.assess_face(image, face_at(faceqa.project(0, 0, 0, image.shape, nose, 455)), cfg)
    turned = faceqa.assess_face(image, face_at(faceqa.project(70, 0, 0, image.shape, nose, 455)), cfg)
    assert frontal.passed and abs(frontal.yaw) < 1
    assert not turned.passed and "yaw" in turned.reason and turned.yaw == pytest.approx(70, abs=1)
    lenient = faceqa.assess_face(image, face_at(faceqa.project(70, 0, 0, image.shape, nose, 455)),
                                 EngineConfig(yaw_max=80))
    assert "yaw" not in lenient.reason


def test_real_yaw_flips_sign_in_the_mirror(an):
    image = t1()
    face = find(an.detect(image), T1_CENTRES["woman_right"])
    mirrored = np.ascontiguousarray(image[:, ::-1])
    w = image.shape[1]
    mface = find(an.detect(mirrored), (w - T1_CENTRES["woman_right"][0], T1_CENTRES["woman_right"][1]))
    yaw = faceqa.head_pose(face.landmarks5, image.shape)[0]
    myaw = faceqa.head_pose(mface.landmarks5, mirrored.shape)[0]
    assert abs(yaw) > 10 and np.sign(yaw) == -np.sign(myaw) and abs(abs(yaw) - abs(myaw)) < 8


def test_every_face_keeps_scores_and_reason():
    # PnP pose of dlib faces (the mesh pose is tested in test_faces_meshpose.py)
    faces = analyzer(detector="dlib").analyze(t1(), identity=False, keep_rejected=True)
    for f in faces:
        q = f.quality
        assert all(np.isfinite([q.sharpness, q.yaw, q.pitch, q.roll]))
        assert q.passed == (q.reason == "")
    # the standing man looks sideways, far beyond 50 degrees
    assert "yaw" in find(faces, T1_CENTRES["standing_man"]).quality.reason


def test_degenerate_keypoints_give_an_unknown_pose_not_an_opencv_error():
    """A detector can put its 5 keypoints on (almost) one point; PnP then has no answer."""
    import math

    pts = np.full((5, 2), 100.0, np.float32)
    assert all(math.isnan(v) for v in faceqa.head_pose(pts, (480, 640)))
