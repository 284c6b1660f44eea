"""Shared helpers of the face-engine tests: one analyzer, the package photos."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from mien.demo import photos

# Rough face centres in insightface's t1.jpg (1280x886), left to right:
# Rachel (neutral woman, far left), Monica (neutral woman, turned),
# Ross (smiling man, centre-left), Chandler (laughing man, centre-right),
# Joey (standing, near profile), Phoebe (smiling woman, right).
T1_CENTRES = {
    "woman_left": (120, 337), "woman_second": (320, 221), "smiling_man": (519, 362),
    "laughing_man": (778, 421), "standing_man": (935, 132), "woman_right": (1172, 337),
}


@lru_cache(maxsize=None)
def analyzer(**overrides):
    from mien.engine.faces import EngineConfig, FaceAnalyzer

    return FaceAnalyzer(EngineConfig(**overrides))


@lru_cache(maxsize=None)
def t1() -> np.ndarray:
    img = photos.t1()
    img.setflags(write=False)
    return img


def centre(face) -> np.ndarray:
    x1, y1, x2, y2 = face.bbox
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2])


def find(faces, xy, tol: float = 60.0):
    """The face whose box centre is nearest to xy (within tol px), else AssertionError."""
    dists = [float(np.linalg.norm(centre(f) - np.asarray(xy, float))) for f in faces]
    assert dists, "no faces"
    i = int(np.argmin(dists))
    assert dists[i] <= tol, f"no face near {xy}: nearest at {centre(faces[i])}"
    return faces[i]


def t1_named(faces) -> dict:
    return {name: find(faces, xy) for name, xy in T1_CENTRES.items()}


def sqdist(a, b) -> float:
    return float(((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2).sum())
