"""How different a face's mouth patch (occlusion.mouth_patch) gets: the calibration of SAME_MOUTH.

    .venv/bin/python benchmarks/occlusion_carry.py [--out carry.json]

Rows: the same faces in the next sampled frame of the 20 s pan clip (what carry-over should
reuse); the package portraits with the synthetic hand patch of tests/test_faces_meshpose.py
over the mouth, 2 seeds (what must be scored afresh); three photos of one man against each
other (other expression, light and framing). Units: mean absolute difference of the two
zero-mean, unit-variance 24x24 grey patches.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from common import print_table, write_json  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out")
    args = parser.parse_args()
    from test_faces_meshpose import cover_mouth

    from mien.demo import photos
    from mien.demo.videos import write_clip
    from mien.engine.faces import EngineConfig, FaceAnalyzer, occlusion
    from mien.indexer.video import RangeReader

    an = FaceAnalyzer(EngineConfig())
    clip = write_clip(Path(tempfile.mkdtemp()) / "pan.mp4", ["obama2", "biden"], motion="pan", fps=30.0,
                      size=(1280, 720), seconds=20)
    frames = [f.image for f in RangeReader(str(clip.path), 0, None, 2.0, seek=False)]
    same, previous = [], None
    for image in frames:
        current = [occlusion.mouth_patch(image, f.mesh) for f in an.detect(image)]
        if previous:
            same += [min(float(np.abs(p - q).mean()) for q in previous) for p in current]
        previous = current
    names = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"]
    images = {n: photos.face_recognition_photo(n) for n in names}
    images["astronaut"], images["grace_hopper"] = photos.astronaut(), photos.grace_hopper()
    hand, patches = [], {}
    for name, image in images.items():
        face = an.detect(image)[0]
        patches[name] = occlusion.mouth_patch(image, face.mesh)
        for seed in (0, 1):
            covered = cover_mouth(image, face, seed)
            got = an.detect(covered)
            if got:
                hand.append(float(np.abs(occlusion.mouth_patch(covered, got[0].mesh) - patches[name]).mean()))
    obama = [float(np.abs(patches[a] - patches[b]).mean()) for i, a in enumerate(names[:3]) for b in names[i + 1:3]]
    rows = [{"pair": label, "n": len(v), "min": min(v), "median": float(np.median(v)), "max": max(v)}
            for label, v in [("same face, next sampled frame (pan clip)", same),
                             ("hand patch over the mouth vs clear", hand),
                             ("obama: one photo vs another", obama)]]
    print_table(rows, ["pair", "n", "min", "median", "max"], "{:.3f}")
    print(f"SAME_MOUTH = {occlusion.SAME_MOUTH}")
    write_json(args.out, {"rows": rows, "same_mouth": occlusion.SAME_MOUTH})
    return 0


if __name__ == "__main__":
    sys.exit(main())
