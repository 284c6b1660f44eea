"""The rated-triplet report: people's agreement, every expression vector and the learned head against them.

Run by `benchmarks/quality.py` (its default report). Material: benchmarks/data/rated/
(ratings.csv in FEC's format, features.npz from benchmarks/rated_features.py, faces.json,
crops.npz). The raters are the judge; no model judges anything. Every accuracy is
against the raters' majority and on the unanimous triplets, by FEC's triplet type; the
learned head's figures are face-disjoint cross-validated (no face, and no known person,
on both sides of a fold).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "rated"
KINDS = ("ONE_CLASS_TRIPLET", "TWO_CLASS_TRIPLET", "THREE_CLASS_TRIPLET", "all")
AU_SCALES = (0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0)
CURVE = (250, 500, 1000, None)
DEFAULT = "fer-au-478 (default)"                           # the default encoder, end to end
HEAD_478 = "head on fer-au-478's features (held out)"     # the default head's recipe on its features


def load(ratings=DATA / "ratings.csv", features=DATA / "features.npz"):
    from mien.training.rated import FeatureTable, read_rated, usable

    everything, stats = read_rated([ratings])
    table = FeatureTable.load(features)
    triplets, dropped = usable(everything, table)
    return everything, triplets, table, stats


def rater_agreement(triplets) -> dict:
    """FEC's agreement: each rater against the other raters' majority where the others agree
    (with three raters: where the other two give the same answer), by triplet type."""
    out: dict = {}
    for kind in KINDS:
        per: dict = {}
        for t in triplets:
            if kind != "all" and t.type != kind:
                continue
            for rater, answer in t.answers:
                others = [a for r, a in t.answers if r != rater]
                if len(others) >= 2 and len(set(others)) == 1:
                    hits, n = per.get(rater, (0, 0))
                    per[rater] = (hits + (answer == others[0]), n + 1)
        out[kind] = {"per_rater": {r: h / n for r, (h, n) in sorted(per.items())},
                     "mean": float(np.mean([h / n for h, n in per.values()])) if per else float("nan"),
                     "pairs": sum(n for _, n in per.values())}
    return out


def raw_pixels(table, faces: list[dict]) -> np.ndarray | None:
    """Baseline: the grey crop the raters saw, 32x32, zero mean, unit norm."""
    import cv2

    crops_path = DATA / "crops.npz"
    if not crops_path.is_file():
        return None
    with np.load(crops_path) as z:
        crops = {str(i): c for i, c in zip(z["ids"], z["crops"])}
    out = np.zeros((len(table.keys), 32 * 32))
    for i, face in enumerate(table_faces(table, faces)):
        v = cv2.resize(crops[face["id"]], (32, 32), interpolation=cv2.INTER_AREA).astype(np.float64).ravel()
        v -= v.mean()
        out[i] = v / max(np.linalg.norm(v), 1e-9)
    return out


def table_faces(table, faces: list[dict]) -> list[dict]:
    """The faces.json records in the table's row order (faces are keyed as the ratings file keys them)."""
    import sys

    sys.path.insert(0, str(DATA))
    from make_set import face_ref

    by_key = {face_ref(f).key: f for f in faces}
    return [by_key[k] for k in table.keys]


def landmarks_v1(table, faces: list[dict]) -> np.ndarray:
    """landmarks-v1 (dlib's 68 points): needs each face's picture (fetched from its package)."""
    from rated_features import detection_view

    from mien.engine.faces import EngineConfig
    from mien.engine.faces import expression_landmarks as lm
    from mien.engine.faces.boxes import iou
    from mien.engine.faces.dlib_detector import DlibDetector
    from mien.engine.faces.dlib_landmarks import to_gray

    dlib = DlibDetector(EngineConfig(detector="dlib"))
    ordered = table_faces(table, faces)
    out = np.zeros((len(table.keys), 16), np.float32)
    for i in sorted(range(len(ordered)), key=lambda i: ordered[i]["url"]):
        image, box = detection_view(ordered[i])
        best = max(dlib.detect(image), key=lambda d: iou(d.bbox, box), default=None)
        if best is None or iou(best.bbox, box) < 0.3:
            x1, y1, x2, y2 = box
            best = dlib._face(to_gray(image), (x1, y1, x2 - 1, y2 - 1), 0.0)
        out[i] = lm.encode(best.landmarks68)[0]
    return out


def fer_au_478(table, faces: list[dict]):
    """The default fer-au-478 encoder on each face as the rated features found it
    (rated_features.found_faces), its AUs read off the 478-point mesh: (its vectors, and a
    FeatureTable of its features with the table's faces, groups and folds)."""
    from rated_features import found_faces

    from mien.engine.faces import expression_features as xf
    from mien.engine.faces.expression_fer_au import FerAu478ExpressionEncoder
    from mien.training.rated import FeatureTable

    encoder = FerAu478ExpressionEncoder()
    out = np.zeros((len(table.keys), 16), np.float32)
    features = np.zeros_like(table.features)
    for i, image, face, _ in found_faces(table_faces(table, faces)):
        encoder.encode_image_faces(image, [face])
        out[i], features[i] = face.expression, face.expression_features
    return out, FeatureTable(table.keys, features, table.groups, table.folds, xf.FEATURES_478)


def best_fixed_answers(table, triplets, folds) -> tuple[dict, list]:
    """The best fixed vector the features give, chosen fairly: the fixed vector's AU weight picked on
    each fold's training triplets (unanimous, all types), applied to its held-out triplets."""
    from mien.engine.faces import expression_features as xf
    from mien.engine.faces import expression_fer_au as v2
    from mien.training.head import accuracy_report, fixed_answers

    probs = xf.softmax(xf.part(table.features, "log_probs"))
    aus = xf.part(table.features, "aus")
    answers_by_scale = {s: fixed_answers(table, triplets, v2.combine(probs, aus, s)) for s in AU_SCALES}
    out, chosen = {}, []
    for j in range(folds.k):
        train = set(folds.train[j])
        score = {s: accuracy_report(triplets, {i: a[i] for i in train})["all/unanimous"]["accuracy"]
                 for s, a in answers_by_scale.items()}
        best = max(AU_SCALES, key=lambda s: (score[s], -abs(s - v2.AU_SCALE)))
        chosen.append(best)
        out.update({i: answers_by_scale[best][i] for i in folds.test[j]})
    return out, chosen


def reembed_per_million(n_faces: int) -> dict:
    """Seconds `mien reembed` takes per million faces (one run of n_faces synthetic faces with
    features, the shipped head), against writing the same faces into a store."""
    import shutil
    import tempfile

    from mien.engine.faces import expression_features as xf
    from mien.engine.faces import expression_fer_au as fer_au
    from mien.engine.store import FaceRecord, SourceRecord, Store
    from mien.indexer.reembed import reembed

    rng = np.random.default_rng(0)
    folder = Path(tempfile.mkdtemp(prefix="mien-reembed-"))
    try:
        encoders = {"expression": "fer-au-v2", "expression_dim": 16, "identity": "none", "identity_dim": 0}
        per = 1000
        start = time.perf_counter()
        with Store(folder / "s", mode="w", encoders=encoders) as store:
            for s in range(n_faces // per):
                feats = rng.normal(size=(per, xf.DIM)).astype(np.float32)
                feats[:, xf.SLICES["log_probs"]] = np.log(rng.dirichlet(np.ones(7), per))
                vecs = fer_au.v2_vectors(feats)
                uri = f"/v/{s}.mp4"
                store.replace_source(SourceRecord(uri, str(s), "video", "done"), [FaceRecord(
                    source_uri=uri, frame_index=i, timestamp_ms=500 * i, bbox=(0, 0, 9, 9),
                    landmarks5=np.zeros((5, 2)), det_score=1.0, sharpness=9.0, yaw=0.0, pitch=0.0, roll=0.0,
                    expression=vecs[i], pooled=vecs[i], identity=None, track_id=i % 4, features=feats[i])
                    for i in range(per)])
        write_s = time.perf_counter() - start
        summary = reembed(folder / "s")
        return {"faces": n_faces, "reembed_s": summary.seconds, "write_s": write_s,
                "reembed_s_per_million": summary.seconds / n_faces * 1e6,
                "reembed_vs_writing_the_faces": summary.seconds / write_s}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def report(with_landmarks: bool = True, reembed_faces: int = 100_000, log=print, with_478: bool = True) -> dict:
    import json

    from mien.training.head import (
        HeadConfig, accuracy_report, fixed_answers, fixed_spaces, held_out_answers, make_folds,
    )

    everything, triplets, table, stats = load()
    faces = json.loads((DATA / "faces.json").read_text())
    folds = make_folds(table, triplets, 5)
    tested = sorted(i for j in range(folds.k) for i in folds.test[j])
    out = {"material": {"triplets": len(everything), "with_majority": len(triplets),
                        "unanimous": sum(t.unanimous for t in triplets),
                        "by_type": {k: sum(t.type == k for t in triplets) for k in KINDS[:3]},
                        "faces": len(table.keys), "persons": len(set(table.groups)),
                        "raters": len({r for t in everything for r, _ in t.answers})},
           "raters": rater_agreement(everything)}
    answers = {}
    for name, vectors in fixed_spaces(table).items():
        answers[name] = fixed_answers(table, triplets, vectors)
    pixels = raw_pixels(table, faces)
    if pixels is not None:
        answers["raw pixels"] = fixed_answers(table, triplets, pixels)
    if with_landmarks:
        log("landmarks-v1: dlib's 68 points on every face ...")
        try:
            answers["landmarks-v1"] = fixed_answers(table, triplets, landmarks_v1(table, faces))
        except (OSError, ValueError, RuntimeError) as exc:
            log(f"(no landmarks-v1: {exc})")
    answers["fer-au-v2, AU weight per fold"], out["best_fixed_au_scales"] = best_fixed_answers(table, triplets, folds)
    table_478 = None
    if with_478:
        log("fer-au-478: the 478-point landmarker on every face ...")
        vectors_478, table_478 = fer_au_478(table, faces)
        answers[DEFAULT] = fixed_answers(table, triplets, vectors_478)
        answers["fer-au-478, AU weight per fold"], out["best_fixed_au_scales_478"] = best_fixed_answers(
            table_478, triplets, folds)
    log("the learned head, face-disjoint 5-fold ...")
    default = HeadConfig()
    answers["head (held out)"] = held_out_answers(table, triplets, default, folds)
    if table_478 is not None:   # the same recipe on the default encoder's features
        answers[HEAD_478] = held_out_answers(table_478, triplets, default, folds)
    rich = HeadConfig(inputs=("log_probs", "aus", "mesh", "pooled"), epochs=150, lr=0.003)
    answers["head, all parts (held out)"] = held_out_answers(table, triplets, rich, folds)
    out["head_config"] = {"default": default.__dict__, "all parts": rich.__dict__}
    out["accuracy"] = {name: accuracy_report(triplets, {i: a[i] for i in tested}) for name, a in answers.items()}
    out["one_class_by_persons"] = one_class_by_persons(table, triplets, answers, tested)
    unanimous = [i for i in tested if triplets[i].unanimous]
    out["sign_tests_vs_fer-au-v2"] = sign_tests(
        answers, "fer-au-v2", ("head (held out)", "fer-au-v2, AU weight per fold", DEFAULT, HEAD_478),
        triplets, unanimous)
    if DEFAULT in answers:   # does a head beat the best fixed vector?
        out["sign_tests_vs_fer-au-478"] = sign_tests(answers, DEFAULT, ("head (held out)", HEAD_478),
                                                     triplets, unanimous)
    log("learning curve ...")
    out["learning_curve_unanimous"] = learning_curve(table, triplets, default, folds)
    if table_478 is not None:
        out["learning_curve_unanimous_478"] = learning_curve(table_478, triplets, default, folds)
    out["train_triplets_per_fold"] = [len(t) for t in folds.train]
    if reembed_faces:
        log(f"mien reembed on {reembed_faces} synthetic faces ...")
        out["reembed"] = reembed_per_million(reembed_faces)
    return out


def sign_tests(answers: dict, reference: str, names, triplets, unanimous: list[int]) -> dict:
    """Each of `names` (those answered) against `reference` on the unanimous triplets, by type."""
    from mien.training.head import sign_test

    return {name: {k: sign_test(answers[name], answers[reference], triplets,
                                [i for i in unanimous if k in ("all", triplets[i].type)]) for k in KINDS}
            for name in names if name in answers}


def learning_curve(table, triplets, config, folds) -> dict:
    """Held-out unanimous accuracy by type of the head trained on at most n triplets per fold
    (CURVE; 3 subsamples each, all of them once)."""
    from mien.training.head import accuracy_report, held_out_answers

    curve = {}
    for n in CURVE:
        runs = 1 if n is None else 3
        accs = [accuracy_report(triplets, held_out_answers(table, triplets, config, folds, max_train=n,
                                                           subsample_seed=100 * r)) for r in range(runs)]
        curve["all" if n is None else str(n)] = {
            k: float(np.mean([a[f"{k}/unanimous"]["accuracy"] for a in accs])) for k in KINDS}
    return curve


def one_class_by_persons(table, triplets, answers: dict, tested: list[int]) -> dict:
    """Unanimous one-class accuracy of each method, split by how many persons the three faces are:
    one (frames of one person: the expression alone differs) or three (identity differs as well)."""
    spanned = {i: len({table.groups[table.row[f.key]] for f in triplets[i].faces}) for i in tested
               if triplets[i].unanimous and triplets[i].type == "ONE_CLASS_TRIPLET"}
    out = {}
    for name, a in answers.items():
        out[name] = {}
        for n in sorted(set(spanned.values())):
            ids = [i for i, k in spanned.items() if k == n]
            out[name][str(n)] = {"accuracy": sum(a[i] == triplets[i].majority for i in ids) / len(ids), "n": len(ids)}
    return out


def print_report(r: dict) -> None:
    m = r["material"]
    print(f"rated set: {m['triplets']} triplets ({m['with_majority']} with a majority, {m['unanimous']} unanimous; "
          f"{m['by_type']}), {m['faces']} faces of {m['persons']} persons, {m['raters']} raters")
    print("rater agreement (each rater vs the other two where they agree): " + ", ".join(
        f"{k.split('_')[0].lower()} {r['raters'][k]['mean']:.3f}" for k in KINDS))
    print(f"\n{'accuracy: majority / unanimous':42s}" + "".join(f"{k.split('_')[0].lower():>16s}" for k in KINDS))
    for name, acc in r["accuracy"].items():
        print(f"{name:42s}" + "".join(
            f"{acc[k + '/majority']['accuracy']:8.3f} /{acc[k + '/unanimous']['accuracy']:6.3f}" for k in KINDS))
    print("\nunanimous one-class accuracy by how many persons the three faces are:")
    for name, per in r["one_class_by_persons"].items():
        print(f"  {name:42s}" + "  ".join(f"{n} person{'s' if n != '1' else ''} {v['accuracy']:.3f} (n={v['n']})"
                                          for n, v in per.items()))
    print("\nsign tests on unanimous triplets against fer-au-v2 (only this one right / only fer-au-v2 right, p):")
    _print_sign_tests(r["sign_tests_vs_fer-au-v2"])
    print(f"  best fixed: AU weight chosen per fold {r['best_fixed_au_scales']}"
          + (f"; on fer-au-478's features {r['best_fixed_au_scales_478']}" if "best_fixed_au_scales_478" in r else ""))
    if "sign_tests_vs_fer-au-478" in r:
        print("sign tests on unanimous triplets against fer-au-478, the default (only the head right / only "
              "fer-au-478 right, p):")
        _print_sign_tests(r["sign_tests_vs_fer-au-478"])
    print("\nlearning curve (held-out unanimous accuracy of the default head by training triplets per fold; "
          f"all = {r['train_triplets_per_fold']}):")
    _print_curve(r["learning_curve_unanimous"])
    if "learning_curve_unanimous_478" in r:
        print("the same on fer-au-478's features:")
        _print_curve(r["learning_curve_unanimous_478"])
    if "reembed" in r:
        e = r["reembed"]
        print(f"\nmien reembed: {e['reembed_s']:.1f} s for {e['faces']} faces = {e['reembed_s_per_million']:.0f} s per "
              f"million ({e['reembed_vs_writing_the_faces']:.2f}x the time it took to write them into the store)")


def _print_sign_tests(per_name: dict) -> None:
    for name, per in per_name.items():
        print(f"  {name:42s}" + "  ".join(f"{k.split('_')[0].lower()} {v['only_a']}/{v['only_b']} p={v['p']:.2f}"
                                          for k, v in per.items()))


def _print_curve(curve: dict) -> None:
    for n, acc in curve.items():
        print(f"  {n:>5s}: " + "  ".join(f"{k.split('_')[0].lower()} {v:.3f}" for k, v in acc.items()))


def plot(r: dict, path) -> None:
    """Held-out accuracy by training triplets (the learning curve) beside the fixed vectors and the
    raters' agreement, per triplet type: whether more ratings would pay."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = r["learning_curve_unanimous"]
    sizes = [int(n) if n != "all" else int(np.mean(r["train_triplets_per_fold"])) for n in curve]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), sharey=True)
    for ax, kind in zip(axes, KINDS[:3]):
        ax.plot(sizes, [curve[n][kind] for n in curve], "o-", color="tab:blue", label="head on fer-au-v2's features")
        if "learning_curve_unanimous_478" in r:
            c478 = r["learning_curve_unanimous_478"]
            ax.plot(sizes, [c478[n][kind] for n in c478], "s-", color="tab:purple",
                    label="head on fer-au-478's features")
        for name, style in (("fer-au-v2", "tab:orange"), ("fer-au-v2, AU weight per fold", "tab:green"),
                            (DEFAULT, "tab:red")):
            if name in r["accuracy"]:
                ax.axhline(r["accuracy"][name][f"{kind}/unanimous"]["accuracy"], color=style, ls="--", label=name)
        ax.axhline(r["raters"][kind]["mean"], color="grey", ls=":", label="raters' agreement")
        ax.set_title(kind.split("_")[0].lower() + "-class triplets")
        ax.set_xlabel("rated triplets the head trained on")
        ax.set_ylim(0.33, 1.0)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy on unanimous triplets")
    axes[1].legend(loc="lower center", fontsize=8)   # the panel with room below its lines
    fig.suptitle("Does a head learned from ratings (held out) beat the fixed vectors? (face-disjoint 5-fold, "
                 f"{r['material']['with_majority']} rated triplets)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
