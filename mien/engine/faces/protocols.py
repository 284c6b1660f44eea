"""What a model of each kind offers the analyzer: Detector, ExpressionEncoder, IdentityEncoder.

A model is any class with these members (registry.py checks them when it builds one).
Optional capabilities are flags the model sets, each naming the method it then
has, so callers ask the flag instead of probing for the method.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from mien.engine.faces.facemesh import FaceMesher
from mien.engine.faces.types import Face


@runtime_checkable
class Detector(Protocol):
    """Finds faces: bbox, score, the 5 points (and the 68 or a FaceMesh where it has them),
    left to right."""

    name: str                   # what a store records (the store refuses to mix detectors)
    # the FaceMesh runner its faces' meshes come from (the occlusion score's passes reuse it);
    # None: no FaceMesh of its own
    mesher: FaceMesher | None
    # detect_following(image, boxes) -> list[Face] | None: a video frame between keyframes from
    # the previous frame's boxes, None when one of those faces is lost (MediaPipe)
    follows: bool
    # detect_near(image, boxes) -> list[Face | None]: each known face re-found in a region
    # around its previous box (dlib HOG)
    refinds: bool

    def detect(self, image: np.ndarray) -> list[Face]:
        ...

    def detect_query(self, image: np.ndarray) -> list[Face]:
        """A query photo's faces: detect()'s, with less work where the detector can spare it
        without moving a face."""
        ...


@runtime_checkable
class ExpressionEncoder(Protocol):
    """Sets face.expression (dim values, unit norm) and, where it has them, face.expression_components
    and face.expression_features."""

    name: str                   # the vector space (a store refuses to mix spaces)
    dim: int
    # True: encode_faces(faces) over the faces of many images at once (batches: FEENet), reading
    # only what the faces carry; False: encode_image_faces(image, faces), one image at a time
    batches_faces: bool
    # it reads face.crop (the aligned crop), so a query face needs one too
    reads_crop: bool


@runtime_checkable
class IdentityEncoder(Protocol):
    """L2-normalised identity rows; each aligns the face itself from the landmarks."""

    name: str
    dim: int

    def embed(self, image: np.ndarray, faces: list[Face]) -> np.ndarray:
        """(len(faces), dim) rows for faces of one image."""
        ...

    def embed_many(self, pairs: list[tuple[np.ndarray, Face]]) -> np.ndarray:
        """One face in each of several images [(image, face)], in one call: the same rows as
        one embed() per image."""
        ...
