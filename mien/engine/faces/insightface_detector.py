"""insightface's front end: an SCRFD / RetinaFace ONNX finds faces and their 5 points,
dlib's shape predictor adds the 68 (dlib_landmarks).

Detection runs on a copy downscaled to max_side; boxes are mapped back and
landmarks are fitted on the full-resolution image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mien.engine.faces.config import EngineConfig
from mien.engine.faces.dlib_landmarks import five_from_68, landmarks68, shape_predictor_68, to_gray
from mien.engine.faces.imageio import check_image
from mien.engine.faces.modelfiles import require_file
from mien.engine.faces.types import Face
from mien.errors import BadInputError, ModelNotFoundError

HOW_TO_OBTAIN = ("an insightface detection pack (SCRFD/RetinaFace), e.g. buffalo_l's det_10g.onnx "
                 "from https://github.com/deepinsight/insightface/tree/master/model_zoo; "
                 "copy it to this machine and give its path or directory")


def downscale(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """A copy whose longest side is <= max_side, and the scale factor applied (<= 1)."""
    import cv2

    h, w = image.shape[:2]
    scale = min(1.0, max_side / float(max(h, w)))
    if scale >= 1.0:
        return image, 1.0
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def find_detector_onnx(path: Path) -> Path:
    """The detection .onnx in a pack directory (det_*.onnx first), or the file itself."""
    if path.is_file():
        return path
    candidates = sorted(path.glob("det*.onnx")) or sorted(path.glob("*.onnx"))
    if not candidates:
        raise ModelNotFoundError(f"insightface model: no .onnx file in {path}; {HOW_TO_OBTAIN}")
    return candidates[0]


class InsightFaceDetector:
    """SCRFD / RetinaFace ONNX through insightface.model_zoo; 68 points still come from dlib."""

    mesher = None
    follows = refinds = False

    def __init__(self, cfg: EngineConfig, input_size: tuple[int, int] = (640, 640)):
        self.cfg = cfg
        onnx_path = find_detector_onnx(require_file(cfg.detector_model, "insightface", HOW_TO_OBTAIN))
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

    detect_query = detect   # nothing to spare for a query photo
