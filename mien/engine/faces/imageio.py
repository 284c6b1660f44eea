"""load_image: bytes or a path -> BGR uint8, with clear errors for bad input; check_image:
what every stage of the engine takes (BGR uint8 HxWx3, large enough to hold a face).

The pixel limit is checked from the file header, before anything is decoded,
so a small file claiming a huge size (a decompression bomb) costs nothing.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from mien.errors import BadInputError, TooLargeError

DEFAULT_MAX_PIXELS = 64_000_000  # ~ 8000x8000; larger stills are not face photos

# OpenCV's own guard (read when cv2 is first imported): never decode more than this.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(2 * DEFAULT_MAX_PIXELS))


def _read_bytes(source, max_bytes: int | None, name: str | None = None) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        name = name or "<bytes>"
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise BadInputError(f"cannot read image {path}: no such file")
        if max_bytes is not None and path.stat().st_size > max_bytes:
            raise TooLargeError(f"image {path} is {path.stat().st_size} bytes; limit is {max_bytes}")
        data = path.read_bytes()
        name = str(path)
    else:
        raise BadInputError(f"load_image takes bytes or a path, not {type(source).__name__}")
    if not data:
        raise BadInputError(f"image {name} is empty")
    if max_bytes is not None and len(data) > max_bytes:
        raise TooLargeError(f"image {name} is {len(data)} bytes; limit is {max_bytes}")
    return data, name


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the header only, or None when PIL cannot identify it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:  # lazy: reads the header only
            return int(im.size[0]), int(im.size[1])
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None
    except Image.DecompressionBombError as exc:  # PIL's own, coarser guard fired first
        raise TooLargeError(f"image is far too large: {exc}") from None


def load_image(path_or_bytes, max_pixels: int = DEFAULT_MAX_PIXELS,
               max_bytes: int | None = None, name: str | None = None) -> np.ndarray:
    """Decode an image file to a BGR uint8 HxWx3 array.

    name: what error messages call bytes (the file they were read from); default '<bytes>'.

    Raises BadInputError for missing, empty, corrupt, truncated or non-image
    input and TooLargeError when the header announces more than max_pixels.
    EXIF orientation is applied; alpha is dropped; grey becomes 3 channels.
    """
    import cv2

    data, name = _read_bytes(path_or_bytes, max_bytes, name)
    try:
        size = image_size(data)
    except TooLargeError as exc:
        raise TooLargeError(f"{name}: {exc}") from None
    if size is None:
        raise BadInputError(f"{name} is not a readable image (unknown format or corrupt header)")
    width, height = size
    if width <= 0 or height <= 0:
        raise BadInputError(f"{name} has invalid dimensions {width}x{height}")
    if width * height > max_pixels:
        raise TooLargeError(
            f"{name} is {width}x{height} = {width * height} pixels; limit is {max_pixels}"
        )
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        # cv2 refuses truncated/corrupt data; PIL may still read exotic formats.
        image = _decode_with_pil(data, name)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise BadInputError(f"{name} decoded to an unsupported layout {image.shape} {image.dtype}")
    return image


def _decode_with_pil(data: bytes, name: str) -> np.ndarray:
    from PIL import Image, ImageOps

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()  # raises on truncated data
            im = ImageOps.exif_transpose(im).convert("RGB")
            return np.ascontiguousarray(np.asarray(im)[:, :, ::-1])
    except (OSError, ValueError, SyntaxError) as exc:
        raise BadInputError(f"{name} is corrupt or truncated: {exc}") from None


def check_image(image) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        desc = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise BadInputError(f"expected a BGR uint8 HxWx3 image, got {desc}")
    if min(image.shape[:2]) < 8:
        raise BadInputError(f"image {image.shape[1]}x{image.shape[0]} is too small to hold a face")
    return image
