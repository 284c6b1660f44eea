"""FaceNet identity (Inception-ResNet-v1, 512-d), cropped the way FaceNet was trained.

FaceNet (davidsandberg/facenet) was trained and evaluated on MTCNN crops: the
MTCNN box grown by a margin, no rotation, resized to 160x160 (LFW evaluation:
margin 32 px on ~110 px boxes). mien's detectors give other boxes, so the
MTCNN box is placed from the 5 landmarks: fitted once to MTCNN's own boxes
(facenet-pytorch 2.6.0's port of the MTCNN weights FaceNet used, run on the
15 faces of the package photos), in units of u = |mouth centre - eye centre|:
width 2.30 u, height 2.95 u, centred 0.21 u above the midpoint of eyes and
mouth (means, rounded). The margin adds MARGIN of the box width on each side,
then the box is stretched to 160x160 as FaceNet's aligner does. MARGIN was
chosen on benchmarks/persons.py's real faces: false merges at a split rate
<= 5 % were 4, 34 and 355 for 0.25, 0.35 and 0.45 (and worse for 0 and 0.15 in
an earlier pass), so FaceNet's own LFW margin (~0.15) is not the best here.

The network is the converted graph (facenet_onnx) on ONNX Runtime; its file
comes from `mien models fetch` (bundled.py), never downloaded at run time.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from mien.engine.faces.bundled import bundled_path
from mien.engine.faces.config import EngineConfig
from mien.engine.faces.facenet_onnx import DIM, SIZE, FaceNetONNX
from mien.engine.faces.identity import l2n, worker_threads

BOX_W, BOX_H, BOX_UP = 2.30, 2.95, 0.21      # MTCNN's box in eye-to-mouth units (see above)
MARGIN = 0.25                                # per side, in box widths (see above)
MODEL_FILE = "facenet-inception-resnet-v1.onnx"


def facenet_model(threads: int):
    """The converted FaceNet graph (`mien models fetch` writes it) on ONNX Runtime; a missing
    file is a ModelNotFoundError naming that command."""
    return _facenet_session(str(bundled_path(MODEL_FILE)), threads)


@lru_cache(maxsize=4)
def _facenet_session(path: str, threads: int):
    return FaceNetONNX(path, threads=threads)


def mtcnn_box(landmarks5: np.ndarray) -> tuple[float, float, float, float]:
    """The box MTCNN would give this face (x1, y1, x2, y2), from its 5 points."""
    p = np.asarray(landmarks5, np.float64)
    eye, mouth = p[:2].mean(0), p[3:5].mean(0)
    u = max(float(np.linalg.norm(mouth - eye)), 1.0)
    cx, cy = (eye + mouth) / 2 - [0.0, BOX_UP * u]
    return cx - BOX_W * u / 2, cy - BOX_H * u / 2, cx + BOX_W * u / 2, cy + BOX_H * u / 2


def facenet_crop(image: np.ndarray, landmarks5: np.ndarray, margin: float = MARGIN,
                 size: int = SIZE) -> np.ndarray:
    """The RGB size x size crop FaceNet takes: the MTCNN box plus margin, stretched to a square."""
    import cv2

    x1, y1, x2, y2 = mtcnn_box(landmarks5)
    m = margin * (x2 - x1)
    x1, y1, x2, y2 = (int(round(v)) for v in (x1 - m, y1 - m, x2 + m, y2 + m))
    h, w = image.shape[:2]
    pad = max(0, -x1, -y1, x2 - w, y2 - h)
    if pad:   # a face at the border: repeat the edge pixels rather than squeeze the crop
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x1, y1, x2, y2 = x1 + pad, y1 + pad, x2 + pad, y2 + pad
    patch = image[y1:y2, x1:x2]
    shrink = max(patch.shape[0], patch.shape[1]) > 2 * size
    crop = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)


class FaceNetIdentity:
    """FaceNet VGGFace2-style identity, 512-d, L2-normalised (the graph normalises)."""

    name = "facenet-irv1"
    dim = DIM

    def __init__(self, cfg: EngineConfig, threads: int | None = None):
        self.model = facenet_model(threads or worker_threads())
        self.batch_size = max(1, int(cfg.batch_size))

    def embed(self, image: np.ndarray, faces) -> np.ndarray:
        return self.embed_many([(image, f) for f in faces])

    def embed_many(self, pairs) -> np.ndarray:
        """Faces of one or several images [(image, face)], through the network in batches."""
        if not pairs:
            return np.zeros((0, self.dim), np.float32)
        crops = [facenet_crop(image, face.landmarks5) for image, face in pairs]
        rows = [self.model(crops[i:i + self.batch_size]) for i in range(0, len(crops), self.batch_size)]
        return l2n(np.concatenate(rows))
