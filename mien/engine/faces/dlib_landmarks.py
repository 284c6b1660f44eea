"""dlib's 68 landmarks: the shape predictor, fitted in a box on the full-resolution image.

Every front end gives faces the 68 points through here: dlib HOG and insightface
fit them in their own boxes; the MediaPipe front end fits them on demand
(fill_landmarks68) in the box dlib's HOG would give the face (dlib_box), so the
points land where they do with the dlib front end. The 68 feed the landmark
expression encoder and dlib identity.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from mien.engine.faces.modelfiles import dlib_model

SHAPE_68 = "shape_predictor_68_face_landmarks.dat"
# dlib's 5-point model (eye corners, under the nose): made to align the same face chips as the 68,
# and what face_recognition aligns with by default; a 9 MB file that loads in ~0.1 s, not 99 MB in 0.6-1.4
SHAPE_5 = "shape_predictor_5_face_landmarks.dat"
# dlib HOG box from the mesh's 5 points: side = DLIB_SIDE x the distance from the
# eyes' midpoint to the mouth corners' midpoint (unchanged by yaw), centred on the
# 5 points' mean moved up by DLIB_DY x that distance. Fitted on the 15 faces both
# detectors find in the public photos (side ratio mean 2.29, sd 0.25 — HOG's own
# boxes are quantised to its pyramid, +-10 %; offsets mean -0.04 / -0.10, sd 0.07 / 0.09).
DLIB_SIDE = 2.3
DLIB_DY = -0.10


@lru_cache(maxsize=1)
def shape_predictor_68():
    import dlib

    return dlib.shape_predictor(dlib_model(SHAPE_68))


@lru_cache(maxsize=1)
def shape_predictor_5():
    import dlib

    return dlib.shape_predictor(dlib_model(SHAPE_5))


def to_gray(image: np.ndarray) -> np.ndarray:
    import cv2

    if image.ndim == 2:
        return image
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def five_from_68(lm68: np.ndarray) -> np.ndarray:
    """Eye centres (mean of each eye's 6 points), nose tip (30), mouth corners (48, 54)."""
    return np.stack([lm68[36:42].mean(0), lm68[42:48].mean(0), lm68[30], lm68[48], lm68[54]]).astype(np.float32)


def _fit(predictor, gray: np.ndarray, box) -> np.ndarray:
    import dlib

    x1, y1, x2, y2 = (int(round(v)) for v in box)
    shape = predictor(gray, dlib.rectangle(x1, y1, x2, y2))
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def landmarks68(gray: np.ndarray, box) -> np.ndarray:
    """dlib's 68 landmarks inside a dlib-style box on the full-resolution grey image."""
    return _fit(shape_predictor_68(), gray, box)


def dlib_points5(gray: np.ndarray, box) -> np.ndarray:
    """dlib's 5 landmarks (the two corners of each eye, the point under the nose) inside a
    dlib-style box on the full-resolution grey image."""
    return _fit(shape_predictor_5(), gray, box)


def dlib_box(five: np.ndarray) -> tuple[float, float, float, float]:
    """The square, axis-aligned box dlib's HOG detector would give this face (approximately)."""
    em = float(np.linalg.norm((five[0] + five[1]) / 2 - (five[3] + five[4]) / 2))
    cx, cy = five.mean(0)
    cy += DLIB_DY * em
    half = DLIB_SIDE * em / 2
    return float(cx - half), float(cy - half), float(cx + half), float(cy + half)


def fill_landmarks68(image: np.ndarray, faces) -> None:
    """dlib's 68 points for faces that have none, fitted in the HOG-like box of their 5 points."""
    todo = [f for f in faces if f.landmarks68 is None and f.landmarks5 is not None]
    if todo:
        gray = to_gray(image)
        for face in todo:
            face.landmarks68 = landmarks68(gray, dlib_box(np.asarray(face.landmarks5, np.float32)))
