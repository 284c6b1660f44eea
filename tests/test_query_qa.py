"""Query faces run FaceQA: the verdict says whether the indexer would have kept the face, and why not.

Real photos: blurred (eye sharpness below the threshold), a hand over the mouth, both.
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import pytest

from faces_support import analyzer
from mien.demo import photos
from mien.engine.faces.occlusion import THRESHOLD
from mien.engine.faces.query_qa import image_face_verdict, record_verdict
from test_faces_meshpose import cover_mouth


def assessed(image):
    a = analyzer(detector="mediapipe")
    (face,) = a.detect(image)
    a.assess(image, [face])
    return face, a.config


@pytest.fixture(scope="module")
def obama():
    image = photos.face_recognition_photo("obama.jpg")
    face, _ = assessed(image)
    return image, cover_mouth(image, face)


def test_a_clear_sharp_face_passes_silently(obama):
    image, _ = obama
    face, cfg = assessed(image)
    v = image_face_verdict(image, face, cfg)
    assert v.passed and v.reason == "" and v.explanation == ""
    assert v.sharpness >= cfg.sharpness_min and not v.occluded and v.occlusion < THRESHOLD
    assert (v.yaw, v.pitch, v.roll) == pytest.approx((face.quality.yaw, face.quality.pitch, face.quality.roll))


def test_a_blurred_face_would_have_been_rejected_and_the_verdict_says_why(obama):
    image, _ = obama
    blurred = cv2.GaussianBlur(image, (0, 0), 4)
    face, cfg = assessed(blurred)
    v = image_face_verdict(blurred, face, cfg)
    assert not v.passed and v.reason == "blurry"
    assert v.sharpness < cfg.sharpness_min
    assert "rejected" in v.explanation and f"{v.sharpness:.2f}" in v.explanation


def test_a_covered_mouth_is_reported_even_when_faceqa_rejects_the_face(obama):
    _, covered = obama
    face, cfg = assessed(covered)
    v = image_face_verdict(covered, face, cfg)
    assert v.passed and v.occluded and v.occlusion > THRESHOLD and "mouth covered" in v.explanation
    blurred = cv2.GaussianBlur(covered, (0, 0), 4)
    face, cfg = assessed(blurred)
    assert face.quality.occlusion == 0.0  # FaceQA spares the mesh passes on a rejected face...
    v = image_face_verdict(blurred, face, cfg)
    assert not v.passed and v.reason == "blurry" and v.occluded  # ...the query verdict measures it
    face, cfg = assessed(covered)
    strict = replace(cfg, reject_occluded=True)
    face.quality = None
    v = image_face_verdict(covered, face, strict)
    assert not v.passed and v.reason == "occluded" and "mouth covered" in v.explanation


def test_a_stored_face_passed_at_indexing_and_keeps_its_flag():
    from mien.engine.store.records import FaceRecord
    import numpy as np

    rec = FaceRecord("/x.jpg", 0, 0, (0, 0, 9, 9), np.zeros((5, 2)), 0.9, 7.5, 10.0, -3.0, 1.0,
                     np.zeros(16), np.zeros(16), None, occluded=True, occlusion=6.0)
    v = record_verdict(rec, analyzer(detector="mediapipe").config)
    assert v.passed and v.occluded and v.occlusion == 6.0 and v.sharpness == 7.5 and v.yaw == 10.0
