"""dlib identity: dlib's ResNet face descriptor, 128-d, on the chip dlib aligns from its landmarks.

Two alignments, two stored names (a store never mixes them: the chips differ by a pixel or two):
- "dlib-resnet-5pt" (EngineConfig identity "dlib5", the default for new stores): dlib's 5-point
  predictor, which dlib made to cut the same chips as the 68 and recommends for alignment, and
  which face_recognition uses by default. Its file is 9 MB and loads in ~0.1 s; the 68-point one
  is 99 MB and took 0.6-1.4 s, once per index worker, holding the GIL (benchmarks/persons.py
  compares the two on the real faces' pairs).
- "dlib-resnet" ("dlib"): the 68 points (the MediaPipe front end fits them on demand), as
  every store before.

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
from mien.engine.faces.dlib_landmarks import SHAPE_5, dlib_box, dlib_points5, fill_landmarks68, to_gray
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


def dlib_shape(points: np.ndarray):
    """A dlib full_object_detection from our (68, 2) or (5, 2) landmarks."""
    import dlib

    pts = np.round(points).astype(int)
    x1, y1 = pts.min(0)
    x2, y2 = pts.max(0)
    return dlib.full_object_detection(dlib.rectangle(int(x1), int(y1), int(x2), int(y2)),
                                      [dlib.point(int(x), int(y)) for x, y in pts])


class DlibIdentity:
    name = "dlib-resnet"
    dim = 128

    def __init__(self, cfg: EngineConfig, backend: str | None = None, threads: int | None = None):
        self.backend = dlib_backend(backend)
        if self.backend == "dlib":
            model = dlib_resnet()
            self.model = lambda chips: np.array([list(d) for d in model.compute_face_descriptor(chips)],
                                                np.float32)
        else:
            # the network is built on first use (ONNX conversion + session: ~0.9 s per process);
            # the weights file is checked now, so a missing one fails at construction
            dlib_model(MODEL_FILE)
            threads = threads or worker_threads()
            self.model = lambda chips: dlib_resnet_onnx(threads)(chips)

    def shapes(self, image: np.ndarray, faces) -> list[np.ndarray]:
        """The landmarks dlib aligns each face's chip on."""
        fill_landmarks68(image, faces)  # the MediaPipe front end fits them on demand
        if any(face.landmarks68 is None for face in faces):
            raise BadInputError("dlib identity needs 68 landmarks")
        return [face.landmarks68 for face in faces]

    def chips(self, image: np.ndarray, faces) -> list[np.ndarray]:
        """dlib's 150x150 aligned chips (RGB), as face_recognition computes them."""
        import cv2
        import dlib

        shapes = self.shapes(image, faces)
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        return [dlib.get_face_chip(rgb, dlib_shape(points), size=150, padding=0.25) for points in shapes]

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


class Dlib5Identity(DlibIdentity):
    """The same network on chips aligned by dlib's 5-point predictor, fitted in the box dlib's HOG
    would give the face (dlib_box of its 5 points, as the 68 are)."""
    name = "dlib-resnet-5pt"

    def __init__(self, cfg: EngineConfig, backend: str | None = None, threads: int | None = None):
        dlib_model(SHAPE_5)  # checked now, so a missing file fails at construction
        super().__init__(cfg, backend, threads)

    def shapes(self, image: np.ndarray, faces) -> list[np.ndarray]:
        if any(face.landmarks5 is None for face in faces):
            raise BadInputError("dlib identity needs a face's 5 landmarks")
        gray = to_gray(image) if faces else None
        return [dlib_points5(gray, dlib_box(np.asarray(face.landmarks5, np.float32))) for face in faces]
