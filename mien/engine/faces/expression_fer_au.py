"""The fer-au expression vectors: fer's emotion distribution + mesh action units.

Two encoders give this vector, differing only in the mesh the AUs are read from:
"fer-au-478" (the default: the 478-point Face Landmarker's mesh, refined from the face's
468-point FaceMesh; it agrees with raters more often, docs/learning-the-metric.md) and
"fer-au-v2" (the 468-point FaceMesh the detector runs; the default before it).

16 dimensions, L2-normalised:

    v = normalise([ sqrt(p_1..p_7),  AU_SCALE * clip(a_1..a_9, -AU_CLIP, AU_CLIP) ])

- p: the 7-emotion distribution of fer's network (expression_fer.py). Its
  square roots are a unit vector (Hellinger geometry): it carries the coarse
  differences (a smile against a frown).
- a: 9 of the action-unit intensities of expression_au.py (VECTOR_AUS), ~0 on
  a relaxed face: the fine differences within one emotion (a grin against a
  closed smile, a little against a lot of brow). A relaxed face adds ~nothing,
  so neutral faces don't scatter in AU directions; the AUs' share of the
  squared norm grows with the strength of the action (AU_SCALE sets it; see
  the note on it below).

The vector is invertible, so the store's 16 numbers give back every named
component (components_of): |v[:7]| = 1 / norm, so p = (v[:7] / |v[:7]|)^2 and
a = v[7:] / (|v[:7]| * AU_SCALE). Nothing beyond the vector needs storing.

The AUs need the FaceMesh (face.mesh): faces from the MediaPipe detector carry
it; for faces from another detector (dlib, insightface) the encoder fills it
with facemesh.fill_mesh from the face's box and eyes.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from mien.engine.faces import expression_au as au
from mien.engine.faces import expression_features as xf
from mien.engine.faces import expression_fer as fer
from mien.engine.faces import still_faces
from mien.engine.faces.facemesh import fill_mesh

VERSION = "fer-au-v2"
VERSION_478 = "fer-au-478"   # the same vector, its AUs read from the 478-point mesh (encode_image_faces_478)
# the fixed vector each features version gives (v2_vectors), and the EngineConfig.expression of its encoder
FIXED_OF_FEATURES = {xf.FEATURES_VERSION: (VERSION, "fer-au"), xf.FEATURES_478: (VERSION_478, "fer-au-478")}
EMOTIONS = fer.EMOTIONS
VECTOR_AUS = ("inner_brow_raise", "outer_brow_raise", "brow_lowerer", "eye_closure", "upper_lip_raise",
              "lip_corner_pull", "lip_corner_depress", "lip_stretch", "lips_part")
DIM = len(EMOTIONS) + len(VECTOR_AUS)
assert DIM == 16
AU_CLIP = 3.0   # |intensity| beyond this is a mesh failure more often than a face
# AU_SCALE: for the AU dims to take ~0.3 of the squared norm (the prototype's best
# share), c^2 |a|^2 = 0.43; expressive faces have |a| ~ 1.5-3, so c ~ 0.3, set before the
# rated triplets existed. On them (benchmarks/expression_design.py: dlib faces, unanimous
# triplets, mean of the random and same-emotion kinds): c = 0.1 / 0.2 / 0.3 / 0.45 / 0.6 / 1.0
# give 0.55 / 0.57 / 0.58 / 0.58 / 0.60 / 0.55 (fer alone 0.55, the 9 AUs alone 0.49; on
# MediaPipe faces 0.54 / 0.52 / 0.54 / 0.57 / 0.55 / 0.55) -- 0.3 kept: with 34 + 35
# unanimous triplets (one triplet = 3 points) the differences are noise.
AU_SCALE = 0.3
_AU_INDEX = [au.NAMES.index(n) for n in VECTOR_AUS]
COMPONENT_NAMES = tuple(EMOTIONS) + VECTOR_AUS


def combine(p: np.ndarray, aus: np.ndarray, au_scale: float = AU_SCALE) -> np.ndarray:
    """(N, 7) distributions and (N, 16) AU intensities (expression_au.NAMES order) -> (N, 16) vectors."""
    h = fer.hellinger(p).astype(np.float64)
    a = np.clip(np.asarray(aus, np.float64)[:, _AU_INDEX], -AU_CLIP, AU_CLIP) * au_scale
    v = np.concatenate([h, a], axis=1)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def components_of(vector) -> dict[str, float]:
    """The named components a stored v2 vector holds: 7 emotion probabilities, 9 AU intensities."""
    v = np.asarray(vector, np.float64).reshape(-1)
    if v.shape != (DIM,):
        raise ValueError(f"a {VERSION} vector has {DIM} values, got {v.shape[0]}")
    head = float(np.linalg.norm(v[:7]))
    if head < 1e-9:
        raise ValueError(f"not a {VERSION} vector: its emotion part is zero")
    p = (v[:7] / head) ** 2
    a = v[7:] / (head * AU_SCALE)
    return {**{n: float(x) for n, x in zip(EMOTIONS, p)}, **{n: float(x) for n, x in zip(VECTOR_AUS, a)}}


def v2_vectors(features: np.ndarray) -> np.ndarray:
    """The fixed vectors of faces from their stored features (expression_features.py: the distribution
    is the softmax of the log-probabilities; the store's float16 moves the vector by ~1e-3): fer-au-v2's
    from FEATURES_VERSION features, fer-au-478's from FEATURES_478 ones (FIXED_OF_FEATURES)."""
    return combine(xf.softmax(xf.part(features, "log_probs")), xf.part(features, "aus"))


def ensure_mesh(image: np.ndarray, faces) -> None:
    """Fill face.mesh for faces whose detector gave none."""
    for face in faces:
        if getattr(face, "mesh", None) is None:
            fill_mesh(image, face)


def au_matrix(image: np.ndarray, faces) -> np.ndarray:
    ensure_mesh(image, faces)
    return np.stack([au.intensities(f.mesh) for f in faces]) if faces else np.zeros((0, len(au.NAMES)))


def encode_image_faces(image: np.ndarray, faces, crop: str = "aligned", au_scale: float = AU_SCALE) -> None:
    """Set face.expression (16-d), face.expression_components and face.expression_features
    (expression_features.py: what a store keeps to apply a learned head later) for faces of one BGR image.

    expression_components: the 7 emotion probabilities and all 16 AU intensities
    (the 9 in the vector and the 7 others, for display).
    """
    if not faces:
        return
    aus = au_matrix(image, faces)   # fills the meshes first: fer's crop is placed by the mesh's eyes
    p, _, pooled = fer.network_outputs(image, faces, crop)
    features = xf.assemble(p, pooled, aus, [f.mesh for f in faces])
    _set(faces, combine(p, aus, au_scale), p, aus, features)


def encode_image_faces_478(image: np.ndarray, faces, landmarker) -> None:
    """fer-au-478: as encode_image_faces, with the AUs (and the features' mesh code) read from the
    478-point Face Landmarker mesh (facemesh478.py) refined from each face's own mesh. Its features
    are version FEATURES_478: fer-au-v2's layout with these AUs (the store records which it keeps)."""
    if not faces:
        return
    ensure_mesh(image, faces)
    # fer's crop stays placed by the FaceMesh's eyes; in a video run of frames a still face reuses
    # its last landmark pass (still_faces.py)
    read = partial(refined_parts, landmarker=landmarker)
    set_478(faces, fer.network_outputs(image, faces), [still_faces.parts_of(image, f.mesh, read) for f in faces])


def set_478(faces, fer_outputs, parts) -> None:
    """The fer-au-478 vectors, components and features of faces from fer's network_outputs and
    what refined_parts read of their refined meshes."""
    p, _, pooled = fer_outputs
    aus = np.stack([a for a, _ in parts])
    codes = np.stack([c for _, c in parts])
    _set(faces, combine(p, aus), p, aus, xf.assemble(p, pooled, aus, codes=codes))


def refined_468(image: np.ndarray, mesh: np.ndarray, landmarker) -> np.ndarray:
    """The 478-point mesh's first 468 points: the FaceMesh topology the AUs and the mesh code read."""
    return landmarker.refine(image, mesh)[:len(mesh)]


def refined_parts(image: np.ndarray, mesh: np.ndarray, landmarker) -> tuple[np.ndarray, np.ndarray]:
    """(AU intensities, mesh code) of a face's refined mesh (refined_468): all set_478 reads of it."""
    refined = refined_468(image, mesh, landmarker)
    frame = au.head_frame(refined)   # both read the mesh in the head frame: computed once
    return au.intensities(refined, frame), xf.mesh_code(refined, frame)


def _set(faces, vectors, p, aus, features) -> None:
    for face, vec, pi, ai, fi in zip(faces, vectors, p, aus, features):
        face.expression = vec
        face.expression_features = fi
        face.expression_components = {**{n: float(x) for n, x in zip(EMOTIONS, pi)},
                                      **{n: float(x) for n, x in zip(au.NAMES, ai)}}


class FerAuExpressionEncoder:
    """Encoder object the analyzer uses; it needs the image (fer crop, mesh), so it has no encode_faces."""

    name = VERSION
    dim = DIM
    batches_faces = False
    reads_crop = False

    def encode_image_faces(self, image: np.ndarray, faces) -> None:
        encode_image_faces(image, faces)


class FerAu478ExpressionEncoder:
    """fer-au-478: the fer-au-v2 vector with AUs from the 478-point Face Landmarker (its own model file)."""

    name = VERSION_478
    dim = DIM
    batches_faces = False
    reads_crop = False

    def __init__(self, threads: int | None = None):
        from mien.engine.faces.facemesh478 import FaceLandmarker478

        self.landmarker = FaceLandmarker478(threads)
        self._helper = None   # (one-thread executor, one-thread landmarker): start_query's, made on first use

    def encode_image_faces(self, image: np.ndarray, faces) -> None:
        encode_image_faces_478(image, faces, self.landmarker)

    def start_query(self, image: np.ndarray, face):
        """The query face's landmark pass, the largest part of its vector, started on a helper
        thread with a one-thread model of its own, and the AUs and mesh code read from its mesh
        there too: LiteRT lets go of the GIL, so FaceQA and fer run meanwhile on the caller's
        thread and the server's second core (a query alone on two cores gains little from two
        LiteRT threads per model), and the caller, which has more to do, finds them done.
        finish_query takes it up."""
        if self._helper is None:
            from concurrent.futures import ThreadPoolExecutor

            from mien.engine.faces.facemesh478 import FaceLandmarker478

            # private: the process-wide one-thread model may be another analyzer's (an in-process index)
            self._helper = (ThreadPoolExecutor(1, thread_name_prefix="mien-landmarks"),
                            FaceLandmarker478(1, private=True))
        pool, landmarker = self._helper
        return pool.submit(refined_parts, image, face.mesh, landmarker)

    def finish_query(self, image: np.ndarray, face, started) -> None:
        """encode_image_faces for the face start_query started: the same vector to the bit. fer
        runs first, while the helper's pass may still be running."""
        outputs = fer.network_outputs(image, [face])
        set_478([face], outputs, [started.result()])


# -- the encoder and its parts alone, for the quality benchmark -----------------------------
def encode(image: np.ndarray, face) -> np.ndarray:
    """The fer-au-v2 vector of one face (16-d, unit norm)."""
    aus = au_matrix(image, [face])
    return combine(fer.distributions(image, [face]), aus)[0]


def encode_fer_only(image: np.ndarray, face) -> np.ndarray:
    """The learned part alone: 7-d Hellinger vector of fer's distribution (crop placed as in v2)."""
    ensure_mesh(image, [face])
    return fer.hellinger(fer.distributions(image, [face]))[0]


def encode_au_only(image: np.ndarray, face, names=VECTOR_AUS, bias: float = 1.0) -> np.ndarray:
    """The geometry part alone: the AUs named, plus a constant `bias` dim so that a relaxed face
    has a stable direction (as landmarks-v1 does), L2-normalised."""
    a = np.clip(au_matrix(image, [face])[0][[au.NAMES.index(n) for n in names]], -AU_CLIP, AU_CLIP)
    v = np.append(a, bias)
    return (v / np.linalg.norm(v)).astype(np.float32)


VARIANTS = {VERSION: encode, "fer-only": encode_fer_only, "au-only": encode_au_only}
