"""dlib identity: dlib's ResNet face descriptor, 128-d, on the chip dlib aligns from the 68 points.

dlib's network runs on ONNX Runtime from dlib's own weights (dlib_resnet_onnx:
~13x less CPU than dlib-bin, same vectors to float tolerance, so stores keep
the name "dlib-resnet"). MIEN_IDENTITY_BACKEND=dlib runs dlib's own forward
pass instead, for verification and benchmarks.
"""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np

from mien.engine.faces.config import EngineConfig
from mien.engine.faces.dlib_landmarks import fill_landmarks68
from mien.engine.faces.dlib_resnet_onnx import MODEL_FILE, DlibResNetONNX
from mien.engine.faces.identity import l2n, worker_threads
from mien.engine.faces.modelfiles import dlib_model
from mien.errors import BadInputError

DLIB_BACKENDS = ("onnx", "dlib")


@lru_cache(maxsize=1)
def dlib_resnet():
    import dlib

    return dlib.face_recognition_model_v1(dlib_model("dlib_face_recognition_resnet_model_v1.dat"))


@lru_cache(maxsize=4)
def dlib_resnet_onnx(threads: int):
    return DlibResNetONNX(dlib_model(MODEL_FILE), threads=threads)


def dlib_backend(backend: str | None = None) -> str:
    backend = backend or os.environ.get("MIEN_IDENTITY_BACKEND", "") or "onnx"
    if backend not in DLIB_BACKENDS:
        raise BadInputError(f"MIEN_IDENTITY_BACKEND={backend!r}; expected one of {DLIB_BACKENDS}")
    return backend


def dlib_shape(lm68: np.ndarray):
    """A dlib full_object_detection from our (68, 2) landmarks."""
    import dlib

    pts = np.round(lm68).astype(int)
    x1, y1 = pts.min(0)
    x2, y2 = pts.max(0)
    return dlib.full_object_detection(dlib.rectangle(int(x1), int(y1), int(x2), int(y2)),
                                      [dlib.point(int(x), int(y)) for x, y in pts])


class DlibIdentity:
    name = "dlib-resnet"
    dim = 128

    def __init__(self, cfg: EngineConfig, backend: str | None = None):
        self.backend = dlib_backend(backend)
        if self.backend == "dlib":
            model = dlib_resnet()
            self.model = lambda chips: np.array([list(d) for d in model.compute_face_descriptor(chips)],
                                                np.float32)
        else:
            # the network is built on first use (ONNX conversion + session: ~0.9 s per process);
            # the weights file is checked now, so a missing one fails at construction
            dlib_model(MODEL_FILE)
            threads = worker_threads()
            self.model = lambda chips: dlib_resnet_onnx(threads)(chips)

    def chips(self, image: np.ndarray, faces) -> list[np.ndarray]:
        """dlib's 150x150 aligned chips (RGB), as face_recognition computes them."""
        import cv2
        import dlib

        fill_landmarks68(image, faces)  # the MediaPipe front end fits them on demand
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        out = []
        for face in faces:
            if face.landmarks68 is None:
                raise BadInputError("dlib identity needs 68 landmarks")
            out.append(dlib.get_face_chip(rgb, dlib_shape(face.landmarks68), size=150, padding=0.25))
        return out

    def embed(self, image: np.ndarray, faces) -> np.ndarray:
        if not faces:
            return np.zeros((0, self.dim), np.float32)
        return l2n(self.model(self.chips(image, faces)))  # every face of the image in one batch

    def embed_many(self, pairs) -> np.ndarray:
        """One face in each of several images [(image, face)]: chips cut per image, then
        all through the network in one batch (the same vectors as one call per image)."""
        if not pairs:
            return np.zeros((0, self.dim), np.float32)
        return l2n(self.model([chip for image, face in pairs for chip in self.chips(image, [face])]))
