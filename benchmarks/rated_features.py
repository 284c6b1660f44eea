"""The expression features of every face of the rated-triplet set, computed by the product's encoder.

    .venv/bin/python benchmarks/rated_features.py [--out benchmarks/data/rated/features.npz]

Each face is found the way the engine finds faces (the default front end on its picture;
LFW's 25 px thumbnails are enlarged 8x with a 100 px border first, as quality.py does);
the detection that overlaps the face's box best is taken, or, where the front end finds
none, dlib's 68 points fitted in the box and the mesh fitted on them. The encoder
(expression_fer_au.encode_image_faces) then gives what a store keeps per face. The table
(mien.training.rated.FeatureTable) keys faces as the ratings file does (FaceRef.key), with
each face's person and fold: `mien train head --features` reads it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

DATA = HERE / "data" / "rated"
LFW_UPSCALE, LFW_PAD = 8, 100


def detection_view(face: dict):
    """(image, box x1 y1 x2 y2) the engine looks at for this face."""
    import cv2

    import rated_media

    image = rated_media.load(face["url"])
    x1, y1, x2, y2 = face["bbox"]
    if "lfw_subset" in face["url"]:
        s, p = LFW_UPSCALE, LFW_PAD
        image = cv2.copyMakeBorder(cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_CUBIC),
                                   p, p, p, p, cv2.BORDER_REPLICATE)
        x1, y1, x2, y2 = x1 * s + p, y1 * s + p, x2 * s + p, y2 * s + p
    return image, (x1, y1, x2, y2)


def found_faces(faces: list[dict], progress=None):
    """(index in `faces`, image, Face with its mesh, found by the front end itself) of every face,
    decoded in URL order (each video once)."""
    from mien.engine.faces import EngineConfig, FaceAnalyzer
    from mien.engine.faces.boxes import iou
    from mien.engine.faces.dlib_detector import DlibDetector
    from mien.engine.faces.dlib_landmarks import to_gray

    analyzer = FaceAnalyzer(EngineConfig())
    dlib = None
    order = sorted(range(len(faces)), key=lambda i: faces[i]["url"])
    for n, i in enumerate(order):
        image, box = detection_view(faces[i])
        best = max(analyzer.detect(image), key=lambda d: iou(d.bbox, box), default=None)
        found = best is not None and iou(best.bbox, box) >= 0.3
        if not found:
            dlib = dlib or DlibDetector(EngineConfig(detector="dlib"))
            x1, y1, x2, y2 = box
            best = dlib._face(to_gray(image), (x1, y1, x2 - 1, y2 - 1), 0.0)
        yield i, image, best, found
        if progress and (n + 1) % 50 == 0:
            progress(n + 1, len(faces))


def face_features(faces: list[dict], progress=None) -> tuple[np.ndarray, int]:
    """((n, DIM) features in the order given, how many faces the front end found itself)."""
    from mien.engine.faces import expression_fer_au as v2

    out, found = [None] * len(faces), 0
    for i, image, face, by_front_end in found_faces(faces, progress):
        found += by_front_end
        v2.encode_image_faces(image, [face])
        out[i] = face.expression_features
    return np.stack(out).astype(np.float32), found


def build_table(faces: list[dict], progress=None):
    from make_set import face_ref

    from mien.training.rated import FeatureTable

    features, found = face_features(faces, progress)
    table = FeatureTable([face_ref(f).key for f in faces], features, [f["person"] for f in faces],
                         np.array([f["fold"] for f in faces], np.int32))
    return table, found


def main(argv=None) -> int:
    sys.path.insert(0, str(DATA))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DATA / "features.npz")
    args = parser.parse_args(argv)
    faces = json.loads((DATA / "faces.json").read_text())
    table, found = build_table(faces, lambda i, n: print(f"  {i}/{n} faces", file=sys.stderr))
    table.save(args.out)
    print(f"{len(faces)} faces ({found} found by the front end, {len(faces) - found} fitted in their box) "
          f"-> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
