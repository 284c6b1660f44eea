"""FEC-style rated triplets on public faces: how well expression vectors agree with people.

    .venv/bin/python benchmarks/quality.py [--out quality.json]

The material is benchmarks/data/quality/: triplets.json (each face as its
public source + a box in source pixels, so any encoder can be run on it),
sheets/ (what the raters saw), PROTOCOL.md, and ratings/rater*.json (each
rater's odd one out, 1, 2 or 3, per triplet id). No model judges anything:
the raters are the judge.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "quality"

# LFW faces in skimage's lfw_subset are 25x25 tight crops: detectors and
# landmark models need them larger and with some context, so encoders see
# this deterministic view of them (bicubic upscale, edge-replicated border).
LFW_UPSCALE = 8
LFW_PAD = 100


# -- where the faces come from -------------------------------------------------
def source_image(source: dict) -> np.ndarray:
    """The BGR uint8 image a face record's `source` names, read from the package that ships it."""
    import cv2

    from mien.demo import photos

    package = source["package"]
    if package == "face_recognition":
        return photos.face_recognition_photo(source["file"])
    if package == "insightface":
        path = photos.insightface_t1_path().parent / source["file"]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"cannot read {path}")
        return image
    if package == "matplotlib" and source["file"] == "grace_hopper.jpg":
        return photos.grace_hopper()
    if package == "skimage" and source.get("name") == "astronaut":
        return photos.astronaut()
    if package == "skimage" and source.get("name") == "lfw_subset":
        import skimage.data

        grey = np.round(skimage.data.lfw_subset()[int(source["index"])] * 255).astype(np.uint8)
        return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    raise ValueError(f"unknown face source {source!r}")


def detection_view(face: dict) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """(image, box) on which a detector / landmark model should look for this face.

    The source image itself, except for the 25x25 LFW thumbnails, which are
    upscaled LFW_UPSCALE x and padded LFW_PAD px (the box maps accordingly).
    """
    import cv2

    image = source_image(face["source"])
    x1, y1, x2, y2 = (float(v) for v in face["bbox"])
    if face["source"]["package"] == "skimage" and face["source"].get("name") == "lfw_subset":
        s, p = LFW_UPSCALE, LFW_PAD
        big = cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_CUBIC)
        big = cv2.copyMakeBorder(big, p, p, p, p, cv2.BORDER_REPLICATE)
        return big, (x1 * s + p, y1 * s + p, x2 * s + p, y2 * s + p)
    return image, (x1, y1, x2, y2)
