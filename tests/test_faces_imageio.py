"""load_image: real files and bytes in, clear errors for bad input."""

import struct
import zlib

import cv2
import numpy as np
import pytest

from mien.demo import photos
from mien.engine.faces import load_image
from mien.errors import BadInputError, TooLargeError


def png_header_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header announces width x height (its pixel data is a stub)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def test_path_and_bytes_give_the_same_bgr_image():
    path = photos.insightface_t1_path()
    a = load_image(path)
    b = load_image(path.read_bytes())
    c = load_image(str(path))
    assert a.shape == (886, 1280, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and np.array_equal(a, c)
    assert np.array_equal(a, cv2.imread(str(path)))  # BGR, like OpenCV


def test_png_with_alpha_and_grey_become_three_channels(tmp_path):
    rgba = cv2.cvtColor(photos.grace_hopper(), cv2.COLOR_BGR2BGRA)
    grey = cv2.cvtColor(photos.grace_hopper(), cv2.COLOR_BGR2GRAY)
    assert load_image(cv2.imencode(".png", rgba)[1].tobytes()).shape == (600, 512, 3)
    assert load_image(cv2.imencode(".png", grey)[1].tobytes()).shape == (600, 512, 3)


def test_truncated_jpeg_is_bad_input():
    data = photos.insightface_t1_path().read_bytes()
    with pytest.raises(BadInputError, match="corrupt or truncated"):
        load_image(data[: len(data) // 2])


def test_corrupt_and_non_image_inputs(tmp_path):
    with pytest.raises(BadInputError, match="not a readable image"):
        load_image(b"this is plain text, not a picture")
    data = bytearray(photos.insightface_t1_path().read_bytes())
    data[2:200] = b"\x00" * 198  # destroy the JPEG header
    with pytest.raises(BadInputError):
        load_image(bytes(data))
    with pytest.raises(BadInputError, match="empty"):
        load_image(b"")
    with pytest.raises(BadInputError, match="no such file"):
        load_image(tmp_path / "missing.jpg")
    with pytest.raises(BadInputError):
        load_image(12345)


def test_absurd_dimensions_rejected_from_the_header():
    bomb = png_header_claiming(100_000, 100_000)
    assert len(bomb) < 200  # nothing to decode: the header alone must trigger the limit
    with pytest.raises(TooLargeError, match="pixels"):
        load_image(bomb)
    with pytest.raises(TooLargeError, match="9000x9000"):
        load_image(png_header_claiming(9000, 9000))
    with pytest.raises(TooLargeError):
        load_image(photos.insightface_t1_path(), max_pixels=1280 * 886 - 1)
    assert load_image(photos.insightface_t1_path(), max_pixels=1280 * 886).shape == (886, 1280, 3)


def test_too_many_bytes(tmp_path):
    path = photos.insightface_t1_path()
    with pytest.raises(TooLargeError):
        load_image(path, max_bytes=1000)
