"""FaceMesh: MediaPipe's 468 3-D face landmarks (face_landmark.tflite) run by LiteRT.

The model sees a 192x192 RGB crop in [0, 1] of a square, rotated region of
interest (ROI) in which the eyes are level, 1.5x the face's size, as in
MediaPipe's face_landmark graphs. The first ROI comes from a detection (its
box centre and size, rotation from its two eyes); the optional second pass
re-crops from the first pass's landmarks (ROI = the mesh's extent in the
eye-levelled frame, x1.5, rotation from the outer eye corners 33 -> 263),
which centres and scales the face the way the model was trained on and
makes the result nearly independent of the detector's box.

The mesh is returned in source-image pixels: x, y as usual, z (depth,
smaller = nearer the camera, relative to the face's centre) in the same
pixel scale, as MediaPipe projects it. `presence` is the model's
face-presence probability (sigmoid of its second output).

Mesh indices used elsewhere: eye contours (RIGHT_EYE on the image left for a
frontal face, LEFT_EYE on the image right), nose tip 1, mouth corners 61
(image left) and 291 (image right).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mien.engine.faces import litert
from mien.engine.faces.types import Face
from mien.engine.faces.warp import warp_affine

MODEL = "face_landmark.tflite"
SIZE = 192           # model input side
ROI_SCALE = 1.5      # ROI side / face size, as MediaPipe's detection- and landmark-to-ROI steps
N_POINTS = 468

# The person's right eye (image left on a frontal face) and left eye: contour points.
RIGHT_EYE = [33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246]
LEFT_EYE = [263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466]
NOSE_TIP = 1
MOUTH_RIGHT, MOUTH_LEFT = 61, 291   # person's right corner (image left), left corner (image right)
EYE_OUTER_R, EYE_OUTER_L = 33, 263


@dataclass(frozen=True)
class Roi:
    """A square, rotated region: centre (px), side (px), angle (radians) of its x axis in the image."""

    cx: float
    cy: float
    side: float
    angle: float

    def to_crop(self, size: int = SIZE) -> np.ndarray:
        """2x3 affine: image pixels -> size x size crop pixels."""
        k = size / self.side
        c, s = math.cos(self.angle), math.sin(self.angle)
        u, v = np.array([c, s]), np.array([-s, c])
        centre = np.array([self.cx, self.cy])
        return np.array([[u[0] * k, u[1] * k, size / 2 - k * centre @ u],
                         [v[0] * k, v[1] * k, size / 2 - k * centre @ v]], dtype=np.float64)

    def to_image(self, pts: np.ndarray, size: int = SIZE) -> np.ndarray:
        """Crop-pixel (x, y, z) points of a size x size crop -> image pixels (z scaled like x and y)."""
        k = self.side / size
        c, s = math.cos(self.angle), math.sin(self.angle)
        x, y = pts[:, 0] - size / 2, pts[:, 1] - size / 2
        out = np.empty_like(pts, dtype=np.float32)
        out[:, 0] = self.cx + k * (x * c - y * s)
        out[:, 1] = self.cy + k * (x * s + y * c)
        out[:, 2] = k * pts[:, 2]
        return out


def mesh_box(mesh: np.ndarray) -> tuple[float, float, float, float]:
    """The mesh's extent (x/y min-max of its points)."""
    x, y = mesh[:, 0], mesh[:, 1]
    return float(x.min()), float(y.min()), float(x.max()), float(y.max())


def roi_from_box(box, eye_a, eye_b, scale: float = ROI_SCALE) -> Roi:
    """ROI from a detection: box centre, scale x the longer box side, eyes (image left, right) level."""
    x1, y1, x2, y2 = (float(v) for v in box)
    angle = math.atan2(float(eye_b[1]) - float(eye_a[1]), float(eye_b[0]) - float(eye_a[0]))
    return Roi((x1 + x2) / 2, (y1 + y2) / 2, scale * max(x2 - x1, y2 - y1, 1.0), angle)


def roi_from_mesh(mesh: np.ndarray, scale: float = ROI_SCALE) -> Roi:
    """ROI from landmarks: their extent in the frame where the outer eye corners are level."""
    a, b = mesh[EYE_OUTER_R, :2], mesh[EYE_OUTER_L, :2]
    angle = math.atan2(float(b[1] - a[1]), float(b[0] - a[0]))
    c, s = math.cos(angle), math.sin(angle)
    pts = mesh[:, :2].astype(np.float64)
    ux, vy = pts @ np.array([c, s]), pts @ np.array([-s, c])  # coordinates in the levelled frame
    mu, mv = (ux.min() + ux.max()) / 2, (vy.min() + vy.max()) / 2
    side = scale * max(ux.max() - ux.min(), vy.max() - vy.min(), 1.0)
    return Roi(mu * c - mv * s, mu * s + mv * c, side, angle)


def crop(image_bgr: np.ndarray, roi: Roi, size: int = SIZE) -> np.ndarray:
    """The model's input: size x size x 3 RGB float32 in [0, 1]."""
    import cv2

    patch = warp_affine(image_bgr, roi.to_crop(size), (size, size), flags=cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE)
    # cvtColor + one ufunc: 20x faster than converting the reversed-channel view
    return np.multiply(cv2.cvtColor(patch, cv2.COLOR_BGR2RGB), np.float32(1.0 / 255.0), dtype=np.float32)


class FaceMesher:
    """Runs FaceMesh on ROIs of an image; one instance per worker (LiteRT is not thread-safe)."""

    def __init__(self, threads: int | None = None, private: bool = False):
        """private: an interpreter of its own, not the process-wide one (load) other code runs."""
        self.model = litert.model(MODEL, threads, private)

    def run(self, image_bgr: np.ndarray, roi: Roi) -> tuple[np.ndarray, float]:
        """(468x3 float32 mesh in image pixels, presence probability) for one ROI."""
        outs = self.model.run(crop(image_bgr, roi)[None])
        pts = next(o for o in outs if o.size == N_POINTS * 3).reshape(N_POINTS, 3)
        logit = float(next(o for o in outs if o.size == 1).reshape(()))
        presence = 1.0 / (1.0 + math.exp(-max(-80.0, min(80.0, logit))))
        return roi.to_image(pts), presence

    def mesh(self, image_bgr: np.ndarray, roi: Roi, passes: int = 2) -> tuple[np.ndarray, float]:
        """Mesh and presence after `passes` passes (2 = re-crop from the first pass's mesh)."""
        mesh, presence = self.run(image_bgr, roi)
        for _ in range(max(0, passes - 1)):
            mesh, presence = self.run(image_bgr, roi_from_mesh(mesh))
        return mesh, presence

    def fill(self, image_bgr: np.ndarray, face: Face, passes: int = 2) -> float:
        """Set face.mesh (and face.mesh_presence) from the face's box and eyes; returns the presence."""
        roi = roi_from_box(face.bbox, face.landmarks5[0], face.landmarks5[1])
        face.mesh, face.mesh_presence = self.mesh(image_bgr, roi, passes)
        return face.mesh_presence


_default: FaceMesher | None = None


def fill_mesh(image_bgr: np.ndarray, face: Face, passes: int = 2) -> Face:
    """Fill face.mesh for a detected face (any detector: needs bbox and landmarks5); returns the face."""
    global _default
    if _default is None:
        _default = FaceMesher()
    _default.fill(image_bgr, face, passes)
    return face


def landmarks5(mesh: np.ndarray) -> np.ndarray:
    """The engine's 5 points from a mesh: eye centres (image left, right), nose tip, mouth corners."""
    pts = mesh[:, :2]
    five = np.stack([pts[RIGHT_EYE].mean(0), pts[LEFT_EYE].mean(0), pts[NOSE_TIP],
                     pts[MOUTH_RIGHT], pts[MOUTH_LEFT]])
    return five.astype(np.float32)
