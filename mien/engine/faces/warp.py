"""Crops of a large image, with the source region read into the cache first.

A face crop (cv2.warpAffine) of a video frame or photo reads a few hundred rows of
the source, a few hundred bytes of each, in the order its output blocks need them.
Between two crops the landmark models run and push the frame out of the CPU's
caches, so that read waits on memory line by line: on the 2-core VM of
benchmarks/index.py a 192x192 FaceMesh crop of a 720p frame took 0.64 ms, and
0.13 ms when the same crop was repeated at once. Summing the source region first
reads the same rows front to back, which the hardware prefetches well, and the
warp then finds them in the cache: both together took about half the time of the
cold warp (12 % of a video worker's time went to crops before).

Only regions up to WARM_REGION_BYTES are read first. A larger one (a big face in a
12-megapixel photo) costs more to sum than the cold warp, which reads only two rows
per output row of it: a 192x192 crop of a 2500-pixel region took 1.05 ms cold and 3.9 ms
with the sum first, while regions up to 0.8 MB took half the time of the cold warp in
frames of 720p and 4000x3000 alike.

The warp itself is unchanged (same call, same matrix), so every crop is the same
to the bit.
"""

from __future__ import annotations

import math

import numpy as np

# below this many bytes the source is likely still in the cache, and the sum costs more than it saves
WARM_BYTES = 1 << 20
# above this many bytes the region is summed no more (see the module doc): about a core's L2
WARM_REGION_BYTES = 1 << 20


def source_region(shape, matrix: np.ndarray, dsize: tuple[int, int], pad: int = 2) -> tuple[int, int, int, int]:
    """(x1, y1, x2, y2) of the pixels of an image of `shape` that warpAffine(matrix, dsize) reads
    (the output rectangle mapped back, `pad` pixels of margin for the interpolation), clipped to
    it; empty (x2 <= x1) when the matrix is singular. Plain floats: this runs for every crop."""
    (a, b, c), (d, e, f) = ((float(v) for v in row) for row in matrix)
    det = a * e - b * d
    if not math.isfinite(det) or abs(det) < 1e-12:
        return 0, 0, 0, 0
    # the inverse map: output (u, v) -> source (ia u + ib v + ic, id u + ie v + if_)
    ia, ib, id_, ie = e / det, -b / det, -d / det, a / det
    ic, if_ = -(ia * c + ib * f), -(id_ * c + ie * f)
    w, h = dsize
    xs = (ic + min(0.0, ia * w) + min(0.0, ib * h), ic + max(0.0, ia * w) + max(0.0, ib * h))
    ys = (if_ + min(0.0, id_ * w) + min(0.0, ie * h), if_ + max(0.0, id_ * w) + max(0.0, ie * h))
    if not all(math.isfinite(v) for v in xs + ys):
        return 0, 0, 0, 0
    x1, y1 = max(0, math.floor(xs[0]) - pad), max(0, math.floor(ys[0]) - pad)
    x2 = min(shape[1], math.ceil(xs[1]) + pad)
    y2 = min(shape[0], math.ceil(ys[1]) + pad)
    return x1, y1, max(x1, x2), max(y1, y2)


def warm(image: np.ndarray, matrix: np.ndarray, dsize: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """Read the region warpAffine(image, matrix, dsize) will read, front to back, when the image is
    large enough to have left the cache and the region small enough to pay (module doc); the region
    read, or None."""
    import cv2

    if image.nbytes < WARM_BYTES:
        return None
    x1, y1, x2, y2 = source_region(image.shape, matrix, dsize)
    pixel_bytes = image.nbytes // (image.shape[0] * image.shape[1])
    if x2 <= x1 or y2 <= y1 or (x2 - x1) * (y2 - y1) * pixel_bytes > WARM_REGION_BYTES:
        return None
    cv2.sumElems(image[y1:y2, x1:x2])
    return x1, y1, x2, y2


def warp_affine(image: np.ndarray, matrix: np.ndarray, dsize: tuple[int, int], **options) -> np.ndarray:
    """cv2.warpAffine(image, matrix, dsize, **options), its source read into the cache first."""
    import cv2

    warm(image, matrix, dsize)
    return cv2.warpAffine(image, matrix, dsize, **options)
