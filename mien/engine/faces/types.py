"""Face and Quality records the analyzer returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Quality:
    """FaceQA scores of one face; ``reason`` is "" when it passed."""

    sharpness: float
    yaw: float
    pitch: float
    roll: float
    passed: bool
    reason: str = ""
    # mouth occlusion (a hand, a microphone): the score of occlusion.py (measured on faces
    # with a FaceMesh that passed the other checks, else 0) and whether it exceeds the threshold.
    # Stored with the face; rejects it only with EngineConfig.reject_occluded.
    occluded: bool = False
    occlusion: float = 0.0


@dataclass
class Face:
    """One detected face and everything the pipeline computed for it.

    Coordinates are source-image pixels; landmarks5 are left eye centre,
    right eye centre, nose tip, left mouth corner, right mouth corner
    (image left/right). `mesh` is set by the MediaPipe front end
    (mien.engine.faces.facemesh), None for other detectors unless filled.
    """

    bbox: tuple[float, float, float, float]
    det_score: float
    landmarks5: np.ndarray
    landmarks68: np.ndarray | None = None
    # FaceMesh: (468, 3) float32 in source-image pixels (z in the same pixel
    # scale, smaller = nearer), and the mesh model's face-presence probability
    mesh: np.ndarray | None = None
    mesh_presence: float | None = None
    quality: Quality | None = None
    identity: np.ndarray | None = None
    expression: np.ndarray | None = None
    expression_components: dict[str, float] = field(default_factory=dict)
    # what the fer-au encoders computed on the way (expression_features.py), kept by the store
    expression_features: np.ndarray | None = None
    crop: np.ndarray | None = None
    thumbnail: bytes = b""

    @property
    def inter_ocular(self) -> float:
        return float(np.linalg.norm(self.landmarks5[1] - self.landmarks5[0]))
