"""What the identity encoders share: L2-normalised rows and the compute threads of their networks.

The encoders (registry.py has their rows): identity_dlib (dlib ResNet, 128-d, the default),
identity_facenet (FaceNet Inception-ResNet-v1, 512-d) and identity_arcface (an ArcFace ONNX,
512-d). All return L2-normalised float32 rows; each aligns the face itself from the landmarks
(dlib: its own 150x150 chip from the 68 points; FaceNet: an MTCNN-style box with margin at
160x160; ArcFace: the 112x112 template crop).
"""

from __future__ import annotations

import numpy as np


def l2n(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(n, 1e-12)


def worker_threads() -> int:
    """The process's compute thread count: worker.init sets OpenCV's to the worker's
    share (1 in pool workers); elsewhere OpenCV's default, the cores."""
    import cv2

    return max(1, cv2.getNumThreads())
