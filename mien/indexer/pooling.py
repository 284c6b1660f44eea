"""Temporal median pooling of expression vectors (paper: 3 frames, centred)."""

from __future__ import annotations

import numpy as np


def median_pool(vectors: np.ndarray, window: int = 3) -> np.ndarray:
    """Element-wise median over a centred window of `window` rows, re-normalised.

    `vectors` are one person's expression vectors in time order, shape (N, D).
    At the ends the window is truncated (the first row pools rows 0..1), so a
    single vector pools to itself. The median of unit vectors is not unit
    length, and every distance in mien assumes unit vectors, hence the L2 step.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    if len(vectors) <= 1:
        return vectors.copy()
    half = window // 2
    out = np.empty_like(vectors)
    for i in range(len(vectors)):
        lo, hi = max(0, i - half), min(len(vectors), i + half + 1)
        out[i] = np.median(vectors[lo:hi], axis=0)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (out / norms).astype(np.float32)
