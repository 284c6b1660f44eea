"""Alignment: the 224 expression crop and the 112 ArcFace crop."""

import cv2
import numpy as np
import pytest

from faces_support import analyzer, t1
from mien.demo import photos
from mien.engine.faces import align


def blob_centres(image):
    """Centroids of the bright blobs of a grey image, left to right."""
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    grey = grey.astype(np.float64)
    n, labels = cv2.connectedComponents((grey > 40).astype(np.uint8))
    centres = []
    for i in range(1, n):
        ys, xs = np.nonzero(labels == i)
        w = grey[ys, xs]
        centres.append((float((xs * w).sum() / w.sum()), float((ys * w).sum() / w.sum())))
    return sorted(centres)


@pytest.mark.parametrize("angle,iod", [(0, 70), (25, 180), (-40, 33)])
def test_eyes_land_on_the_template_in_pixels(angle, iod):
    # two bright dots where the eyes are, rolled and scaled; the warped crop must put them on the template
    img = np.zeros((600, 800, 3), np.uint8)
    c = np.array([400.0, 300.0])
    d = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))]) * iod / 2
    le, re = c - d, c + d
    for p in (le, re):
        cv2.circle(img, (int(round(p[0] * 16)), int(round(p[1] * 16))), 4 * 16, (255, 255, 255), -1,
                   lineType=cv2.LINE_AA, shift=4)
    lm5 = np.array([le, re, c + [0, 20], c + [-15, 40], c + [15, 40]], np.float32)
    crop = align.expression_crop(img, lm5)
    assert crop.shape == (224, 224, 3)
    found = blob_centres(crop)
    assert len(found) == 2
    assert np.allclose(found[0], align.EXPR_LEFT_EYE, atol=1.0)
    assert np.allclose(found[1], align.EXPR_RIGHT_EYE, atol=1.0)
    assert abs(np.hypot(*np.subtract(found[1], found[0])) - 70) <= 1.0


def test_real_faces_eyes_level_and_70px_apart():
    an = analyzer()
    for image in (t1(), photos.astronaut(), photos.grace_hopper()):
        for face in an.detect(image):
            m = align.expression_matrix(face.landmarks5)
            le, re = align.apply(m, face.landmarks5[:2])
            assert np.allclose(le, align.EXPR_LEFT_EYE, atol=1e-3)
            assert np.allclose(re, align.EXPR_RIGHT_EYE, atol=1e-3)
            assert abs(np.linalg.norm(re - le) - 70.0) < 1e-3
            # the rest of the face lands inside the crop, mouth below the eyes (profiles too)
            nose, lm, rm = align.apply(m, face.landmarks5[2:])
            assert 0 < nose[0] < 224 and lm[1] > le[1] + 30 and rm[1] < 224


def test_arcface_crop_recovers_the_template():
    # template points under a known similarity: the fit must undo it exactly
    ang, s, t = np.radians(17), 2.7, np.array([300.0, 120.0])
    rot = s * np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    pts = align.ARCFACE_DST @ rot.T + t
    m = align.arcface_matrix(pts)
    assert np.allclose(align.apply(m, pts), align.ARCFACE_DST, atol=1e-4)


def test_arcface_crop_of_a_real_face():
    an = analyzer()
    face = an.detect(photos.grace_hopper())[0]
    crop = align.arcface_crop(photos.grace_hopper(), face.landmarks5)
    assert crop.shape == (112, 112, 3)
    residual = align.apply(align.arcface_matrix(face.landmarks5), face.landmarks5) - align.ARCFACE_DST
    assert np.abs(residual).max() < 6  # a real face is not the template, but close
    # and the crop shows a face dlib finds again, eyes near the template
    big = cv2.resize(crop, (336, 336), interpolation=cv2.INTER_CUBIC)
    again = an.detect(cv2.copyMakeBorder(big, 60, 60, 60, 60, cv2.BORDER_CONSTANT))
    assert len(again) == 1
    eyes = (again[0].landmarks5[:2] - 60) / 3
    assert np.allclose(eyes, align.ARCFACE_DST[:2], atol=4)
