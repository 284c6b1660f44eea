"""FaceAnalyzer: detect -> assess (FaceQA) -> align -> expression -> identity."""

from __future__ import annotations

import numpy as np

from mien.engine.faces import faceqa, registry
from mien.engine.faces.align import expression_crop
from mien.engine.faces.config import EngineConfig
from mien.engine.faces.imageio import check_image
from mien.engine.faces.protocols import ExpressionEncoder
from mien.engine.faces.types import Face


def encode_expressions(encoder: ExpressionEncoder, images, per_image) -> None:
    """Run the expression encoder: over all faces at once when it batches (FEENet),
    else image by image (encoders that read the image itself: fer-au-v2)."""
    if encoder.batches_faces:
        everyone = [f for faces in per_image for f in faces]
        if everyone:
            encoder.encode_faces(everyone)
        return
    for image, faces in zip(images, per_image):
        if faces:
            encoder.encode_image_faces(image, faces)


def thumbnail(crop: np.ndarray, size: int) -> bytes:
    """JPEG of the aligned crop at size x size (eyes level, whole face)."""
    import cv2

    small = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return buf.tobytes() if ok else b""


class FaceAnalyzer:
    """The one entry point of the face engine; models come from the EngineConfig (registry.py).

    All models load at construction, so a missing file fails here with
    ModelNotFoundError (naming the path and how to obtain it). `encoders`
    names the models so a store can refuse to mix them. Faces come back
    left to right. Not thread-safe: use one analyzer per worker.
    """

    def __init__(self, config: EngineConfig | None = None, threads: int | None = None):
        """threads: compute threads of the LiteRT models of detection and expression (default 1 per
        process, as index workers are one per core): a server answering one image query at a
        time gives them its cores. The results do not depend on it."""
        self.config = config or EngineConfig()
        registry.check(self.config)   # an unknown model name fails before any model loads
        self.detector = registry.build("detector", self.config, threads)
        self.expression_encoder = registry.build("expression", self.config, threads)
        self.identity_encoder = registry.build("identity", self.config)
        self._query_mesher = None

    @property
    def encoders(self) -> dict:
        return {
            "detector": self.detector.name,
            "identity": self.identity_encoder.name,
            "identity_dim": int(self.identity_encoder.dim),
            "expression": self.expression_encoder.name,
            "expression_dim": int(self.expression_encoder.dim),
            # not an embedding space, but landmark-derived vectors shift with the
            # detection scale: queries should be detected like the store's faces
            "detector_min_face": int(self.config.min_face),
        }

    # -- stages -----------------------------------------------------------
    def detect(self, image: np.ndarray) -> list[Face]:
        return self.detector.detect(image)

    def detect_query(self, image: np.ndarray) -> list[Face]:
        """The faces of a query photo: detect()'s, with less work where the detector knows how to
        spare it without moving a face (MediaPipe: no tiles when the whole picture shows every face
        it found at a size it sees reliably; small faces that only tiles find are then left out)."""
        return self.detector.detect_query(image)

    def assess(self, image: np.ndarray, faces: list[Face], occlusion: bool = True, mesher=None) -> list[Face]:
        """FaceQA on each face; occlusion=False leaves the mouth-occlusion score out (faceqa.assess_face).
        mesher: the FaceMesher the occlusion score's passes run on (default: the detector's)."""
        mesher = mesher or self.detector.mesher
        for face in faces:
            face.quality = faceqa.assess_face(image, face, self.config, occlusion=occlusion, mesher=mesher)
        return faces

    def align(self, image: np.ndarray, faces: list[Face]) -> list[Face]:
        for face in faces:
            face.crop = expression_crop(image, face.landmarks5)
            face.thumbnail = thumbnail(face.crop, self.config.thumbnail_size)
        return faces

    def embed_expression(self, image: np.ndarray, faces: list[Face]) -> list[Face]:
        self.embed_expressions([image], [faces])
        return faces

    def embed_expressions(self, images: list[np.ndarray], per_image: list[list[Face]]) -> None:
        """embed_expression for the faces of several images, in one encoder call where it batches."""
        for image, faces in zip(images, per_image):
            if any(f.crop is None for f in faces):
                self.align(image, [f for f in faces if f.crop is None])
        encode_expressions(self.expression_encoder, images, per_image)

    def query_face(self, image: np.ndarray, faces: list[Face], face: Face, expression: bool = True):
        """An image query's work on the face it searches with, after detect_query: FaceQA of every
        face (the mouth-occlusion score, 2 mesh passes, on this one only: the reply shows it), its
        verdict (query_qa.QueryQuality), and with `expression` its expression vector.

        fer-au-478's landmark pass, the largest part of the vector, runs on a helper thread with a
        one-thread model of its own meanwhile (LiteRT lets go of the GIL), and FaceQA's passes
        here on a one-thread FaceMesh: a query alone on two cores gains little from two LiteRT
        threads per model. The same vector and verdict as in order, to the bit."""
        from mien.engine.faces.query_qa import image_face_verdict

        start = getattr(self.expression_encoder, "start_query", None)
        started = start(image, face) if expression and start is not None and face.mesh is not None else None
        self.assess(image, [f for f in faces if f is not face], occlusion=False)
        self.assess(image, [face], mesher=self._one_thread_mesher() if started is not None else None)
        verdict = image_face_verdict(image, face, self.config)
        if started is not None:
            self.expression_encoder.finish_query(image, face, started)
        elif expression:
            self.embed_query_expression(image, face)
        return verdict

    def _one_thread_mesher(self):
        if self._query_mesher is None:
            from mien.engine.faces.facemesh import FaceMesher

            # the same meshes (LiteRT's do not depend on threads); private: the process-wide
            # one-thread model may be another analyzer's (an in-process index)
            self._query_mesher = FaceMesher(1, private=True)
        return self._query_mesher

    def embed_query_expression(self, image: np.ndarray, face: Face) -> Face:
        """embed_expression for a query face: the same vector, without the aligned crop and the
        thumbnail a stored face keeps unless the encoder reads the crop (encoders that take faces
        alone, FEENet)."""
        if self.expression_encoder.reads_crop and face.crop is None:
            face.crop = expression_crop(image, face.landmarks5)
        encode_expressions(self.expression_encoder, [image], [[face]])
        return face

    def embed_identity(self, image: np.ndarray, faces: list[Face]) -> list[Face]:
        vectors = self.identity_encoder.embed(image, faces)
        for face, vec in zip(faces, vectors):
            face.identity = vec
        return faces

    # -- whole pipeline ---------------------------------------------------
    def analyze(self, image: np.ndarray, identity: bool = True, keep_rejected: bool = False) -> list[Face]:
        """All faces of one BGR image, left to right; rejected ones only if keep_rejected."""
        check_image(image)
        faces = self.assess(image, self.detect(image))
        if not keep_rejected:
            faces = [f for f in faces if f.quality.passed]
        self.align(image, faces)
        self.embed_expression(image, faces)
        if identity:
            self.embed_identity(image, faces)
        return faces

    def analyze_batch(self, images: list[np.ndarray], identity: bool = True,
                      keep_rejected: bool = False) -> list[list[Face]]:
        """analyze() per image, with the expression encoder run once over all faces."""
        per_image = []
        for image in images:
            check_image(image)
            faces = self.assess(image, self.detect(image))
            if not keep_rejected:
                faces = [f for f in faces if f.quality.passed]
            self.align(image, faces)
            per_image.append(faces)
        self.embed_expressions(images, per_image)  # batched for FEENet
        if identity:
            for image, faces in zip(images, per_image):
                self.embed_identity(image, faces)
        return per_image
