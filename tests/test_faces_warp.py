"""warp.py: the source region a crop reads, read into the cache first, and the crop unchanged."""

import cv2
import numpy as np
import pytest

from mien.engine.faces import warp
from mien.engine.faces.facemesh import Roi


def frame(h=720, w=1280, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


CROPS = [  # (roi, output side): level, rolled, shrinking, enlarging, half outside the frame
    (Roi(640.3, 360.7, 330.2, 0.0), 192),
    (Roi(300.0, 200.0, 420.0, 0.6), 256),
    (Roi(900.5, 500.25, 80.0, -1.2), 224),
    (Roi(20.0, 700.0, 300.0, 0.3), 192),
]


@pytest.mark.parametrize("roi,size", CROPS)
def test_the_region_holds_every_pixel_the_warp_reads(roi, size):
    # scramble everything outside the region: the crop must not change
    image = frame()
    matrix = roi.to_crop(size)
    x1, y1, x2, y2 = warp.source_region(image.shape, matrix, (size, size))
    assert 0 <= x1 < x2 <= image.shape[1] and 0 <= y1 < y2 <= image.shape[0]
    before = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    scrambled = frame(seed=1)
    scrambled[y1:y2, x1:x2] = image[y1:y2, x1:x2]
    after = cv2.warpAffine(scrambled, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    assert np.array_equal(before, after)
    # and it is tight: the output's corners map to within 3 pixels of its edges (the pad)
    inv = cv2.invertAffineTransform(matrix)
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64) @ inv[:, :2].T + inv[:, 2]
    lo = np.maximum(np.floor(corners.min(0)) - 2, 0)
    hi = np.minimum(np.ceil(corners.max(0)) + 2, [image.shape[1], image.shape[0]])
    assert (x1, y1, x2, y2) == (int(lo[0]), int(lo[1]), int(hi[0]), int(hi[1]))


@pytest.mark.parametrize("roi,size", CROPS)
def test_warp_affine_is_cv2_warp_affine_to_the_bit(roi, size):
    image = frame()
    matrix = roi.to_crop(size)
    options = dict(flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    assert np.array_equal(warp.warp_affine(image, matrix, (size, size), **options),
                          cv2.warpAffine(image, matrix, (size, size), **options))


def test_a_degenerate_matrix_reads_nothing_and_still_warps():
    image = frame()
    for matrix in (np.zeros((2, 3)), np.array([[1.0, 0, np.nan], [0, 1, 0]])):
        assert warp.source_region(image.shape, matrix, (64, 64))[2:] == warp.source_region(
            image.shape, matrix, (64, 64))[:2]   # empty
        assert warp.warp_affine(image, matrix, (64, 64)).shape == (64, 64, 3)


def test_a_crop_off_the_frame_reads_nothing():
    image = frame()
    matrix = Roi(-500.0, -500.0, 100.0, 0.0).to_crop(64)
    x1, y1, x2, y2 = warp.source_region(image.shape, matrix, (64, 64))
    assert x2 <= x1 or y2 <= y1
    assert warp.warp_affine(image, matrix, (64, 64), borderMode=cv2.BORDER_REPLICATE).shape == (64, 64, 3)


def test_only_a_large_image_and_a_region_up_to_the_cap_are_read_first():
    # a 640x480 query sits in the cache; a face of a 720p frame is read first; a big face of a
    # 4000x3000 photo is not (its sum costs more than the cold warp)
    matrix = Roi(300.0, 200.0, 300.0, 0.2).to_crop(192)
    assert warp.warm(frame(480, 640), matrix, (192, 192)) is None
    region = warp.warm(frame(), matrix, (192, 192))
    assert region == warp.source_region((720, 1280, 3), matrix, (192, 192))
    photo = np.zeros((3000, 4000, 3), np.uint8)
    big = Roi(2000.0, 1500.0, 2500.0, 0.2).to_crop(192)
    assert warp.warm(photo, big, (192, 192)) is None
    x1, y1, x2, y2 = warp.source_region(photo.shape, big, (192, 192))
    assert (x2 - x1) * (y2 - y1) * 3 > warp.WARM_REGION_BYTES
