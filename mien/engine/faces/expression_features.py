"""The expression features a store keeps per face, so a new metric can be applied without media.

One vector per face (FEATURES_VERSION, DIM values; the store keeps it as float16, 2 * DIM + 4 bytes):

    [ fer log-probabilities (7) | fer pooled block (128) | AU intensities (16) | mesh code (64) ]

- fer log-probabilities: the log of the 7-emotion distribution fer-au-v2 uses (the network's
  output averaged over the face and its mirror image, floored at 1e-7), so the distribution is
  their softmax exactly.
- fer pooled block: the network's last residual block (4x4x128), averaged over the grid:
  what the network sees before it names an emotion (a smile with the eyes, a grin...).
- AU intensities: expression_au.NAMES, from the pose-normalised FaceMesh.
- mesh code: 32 expressive mesh points (lips, brows, lids, cheeks, nose wings, chin) in the
  head frame of expression_au (IOD units, rotation removed), x and y, minus the same points of
  the neutral reference mesh: where the face moved, without naming it.

Two versions share this layout and differ in the mesh the AUs and the mesh code are read from:
FEATURES_VERSION (fer-au-v2's 468-point FaceMesh) and FEATURES_478 (the 478-point Face Landmarker's
first 468 points, fer-au-478's). A store keeps one of them (its engine record says which), and a
head is trained on one: reading one as the other would be reading other AUs under the same names.

The fixed vector is a function of these features (expression_fer_au.v2_vectors: fer-au-v2's from
the first version, fer-au-478's from the second), so a store with features can always go back to
it; the learned head (expression_head.py) reads all of them.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from mien.engine.faces import expression_au as au
from mien.engine.faces import expression_fer as fer

FEATURES_VERSION = "fer-au-features-1"        # AUs and mesh code of the 468-point FaceMesh (fer-au-v2)
FEATURES_478 = "fer-au-478-features-1"        # the same of the 478-point Face Landmarker (fer-au-478)
VERSIONS = (FEATURES_VERSION, FEATURES_478)
# the mesh points of the code: MediaPipe's canonical indices
MESH_POINTS = (
    61, 291, 0, 17, 37, 267, 84, 314,          # lips, outer: corners, centres, peaks, lower sides
    13, 14, 78, 308, 82, 312, 87, 317,         # lips, inner
    70, 105, 107, 300, 334, 336,               # brows: outer, middle, inner (right, left)
    159, 145, 386, 374,                        # lids: upper and lower centres (right, left)
    50, 280, 48, 278, 2, 152,                  # cheeks, nose wings, nose base, chin
)
SLICES = {
    "log_probs": slice(0, 7),
    "pooled": slice(7, 7 + fer.POOLED_DIM),
    "aus": slice(7 + fer.POOLED_DIM, 7 + fer.POOLED_DIM + len(au.NAMES)),
    "mesh": slice(7 + fer.POOLED_DIM + len(au.NAMES), 7 + fer.POOLED_DIM + len(au.NAMES) + 2 * len(MESH_POINTS)),
}
DIM = SLICES["mesh"].stop
assert DIM == 215


@lru_cache(maxsize=1)
def _reference_points() -> np.ndarray:
    from mien.engine.faces.mesh_reference import reference

    return au.head_frame(reference())[list(MESH_POINTS), :2]


def mesh_code(mesh: np.ndarray, frame: np.ndarray | None = None) -> np.ndarray:
    """(64,) where the MESH_POINTS sit in the head frame, relative to the neutral reference (frame:
    the mesh's au.head_frame, when the caller has it already)."""
    frame = au.head_frame(mesh) if frame is None else frame
    return (frame[list(MESH_POINTS), :2] - _reference_points()).reshape(-1)


PROB_FLOOR = 1e-7


def assemble(probs: np.ndarray, pooled: np.ndarray, aus: np.ndarray, meshes=None, codes=None) -> np.ndarray:
    """(N, DIM) float32 features from the emotion distributions, pooled block, AU intensities and
    meshes of N faces (or their mesh codes, computed already)."""
    if codes is None:
        codes = np.stack([mesh_code(m) for m in meshes]) if len(meshes) else np.zeros((0, 2 * len(MESH_POINTS)))
    log_probs = np.log(np.maximum(np.asarray(probs, np.float64), PROB_FLOOR))
    return np.concatenate([log_probs.astype(np.float32), np.asarray(pooled, np.float32),
                           np.asarray(aus, np.float32), codes.astype(np.float32)], axis=1)


def part(features: np.ndarray, name: str) -> np.ndarray:
    """One named part (SLICES) of (N, DIM) features."""
    return np.asarray(features, np.float32)[:, SLICES[name]]


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return (z / z.sum(axis=1, keepdims=True)).astype(np.float32)
