"""Expression quality as people judge it: rated triplets (FEC's question, several raters each).

    .venv/bin/python benchmarks/quality.py [--out quality.json]              # the rated set (default)
    .venv/bin/python benchmarks/quality.py --set first [--out first.json]    # the first 100 triplets

The rated set (benchmarks/data/rated/, PROTOCOL.md there): 1,628 triplets over 467 real
faces, 3 raters each; the report (benchmarks/rated_report.py) gives rater agreement, every
fixed vector (fer-au-v2, its parts, raw pixels, landmarks-v1, the best fixed vector) and the
learned head (face-disjoint cross-validation), a learning curve, sign tests and the cost of
`mien reembed` per million faces. The first set (benchmarks/data/quality/, 100 triplets,
mostly LFW thumbnails) is scored by the code below: triplets.json (each face as its public
source + a box in source pixels, so any encoder can be run on it), sheets/ (what the
raters saw), PROTOCOL.md, and ratings/rater*.json. No model judges anything: the raters
are the judge.
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


# -- the material ----------------------------------------------------------------
def load_triplets(path: Path = DATA / "triplets.json") -> tuple[dict, list[dict]]:
    """(faces by face_id, triplets) of triplets.json."""
    import json

    data = json.loads(Path(path).read_text())
    faces = {f["face_id"]: f for f in data["faces"]}
    triplets = data["triplets"]
    for t in triplets:
        missing = [f for f in t["faces"] if f not in faces]
        if len(t["faces"]) != 3 or missing:
            raise ValueError(f"triplet {t['id']} must name 3 known faces (unknown: {missing})")
    return faces, triplets


def load_ratings(paths: list[Path], triplet_ids: list[str]) -> dict[str, dict[str, int]]:
    """{rater name: {triplet id: 1|2|3}}; every rater must answer every triplet with 1, 2 or 3."""
    import json

    ratings = {}
    for path in paths:
        answers = json.loads(Path(path).read_text())
        bad = {k: v for k, v in answers.items() if v not in (1, 2, 3)}
        missing = [t for t in triplet_ids if t not in answers]
        if bad or missing:
            raise ValueError(f"{path}: answers must be 1, 2 or 3 for every triplet "
                             f"(bad: {list(bad)[:5]}, missing: {missing[:5]})")
        ratings[Path(path).stem] = {t: int(answers[t]) for t in triplet_ids}
    return ratings


# -- people ------------------------------------------------------------------------
def majority(answers: list[int]) -> int | None:
    """The answer given by more than half of the raters, or None."""
    for a in set(answers):
        if answers.count(a) * 2 > len(answers):
            return a
    return None


def rater_agreement(ratings: dict[str, dict[str, int]], ids: list[str]) -> dict[str, dict]:
    """FEC's agreement: each rater against the majority of the others.

    With three raters the others' majority exists only where the other two
    agree; agreement is counted on those triplets.
    """
    out = {}
    for name, mine in ratings.items():
        hits = n = 0
        for t in ids:
            others = majority([r[t] for other, r in ratings.items() if other != name])
            if others is not None:
                n += 1
                hits += mine[t] == others
        out[name] = {"agreement": hits / n if n else float("nan"), "n": n}
    return out


# -- encoders' answers -------------------------------------------------------------
def odd_one_out(vectors) -> int:
    """1, 2 or 3: the face not in the closest pair (squared L2 distances).

    The same as the face whose summed squared distance to the other two is
    largest: that sum is the total of the three distances minus the distance
    of the pair without it.
    """
    v = [np.asarray(x, np.float64) for x in vectors]
    pairs = {2: np.sum((v[0] - v[1]) ** 2), 1: np.sum((v[0] - v[2]) ** 2), 0: np.sum((v[1] - v[2]) ** 2)}
    return min(pairs, key=lambda odd: (pairs[odd], odd)) + 1


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson interval of a proportion."""
    if n == 0:
        return float("nan"), float("nan")
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(centre - half), float(centre + half)


def accuracy(answers: dict[str, int], truth: dict[str, int | None], ids: list[str]) -> dict:
    """Share of `ids` with a truth where the answer matches it, with its 95 % interval."""
    scored = [t for t in ids if truth.get(t) is not None]
    hits = sum(answers.get(t) == truth[t] for t in scored)
    lo, hi = wilson(hits, len(scored))
    return {"accuracy": hits / len(scored) if scored else float("nan"), "hits": hits,
            "n": len(scored), "ci95": [lo, hi]}


# -- faces for the encoders ------------------------------------------------------------
def front_face(detector, image: np.ndarray, box) -> tuple["object", bool]:
    """(Face, found): the detection overlapping `box` best, or None if none overlaps it (IoU < 0.3)."""
    from mien.engine.faces.boxes import iou

    best = max(detector.detect(image), key=lambda f: iou(f.bbox, box), default=None)
    if best is not None and iou(best.bbox, box) >= 0.3:
        return best, True
    return None, False


def dlib_face(detector, image: np.ndarray, box) -> tuple["object", bool]:
    """(Face, found): dlib's detection of the face in `box`, else 68 landmarks fitted in `box`.

    Every encoder then sees exactly the same faces (no encoder loses a
    triplet to the detector); `found` says whether HOG itself found it.
    """
    from mien.engine.faces.dlib_landmarks import to_gray

    face, found = front_face(detector, image, box)
    if found:
        return face, True
    x1, y1, x2, y2 = box
    return detector._face(to_gray(image), (x1, y1, x2 - 1, y2 - 1), 0.0), False


def raw_pixels(image: np.ndarray, face) -> np.ndarray:
    """Baseline: the aligned expression crop, grey, 64x64, zero mean and unit norm."""
    import cv2

    from mien.engine.faces.align import expression_crop

    grey = cv2.cvtColor(expression_crop(image, face.landmarks5), cv2.COLOR_BGR2GRAY)
    v = cv2.resize(grey, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float64).ravel()
    v -= v.mean()
    return v / max(np.linalg.norm(v), 1e-9)


def encoders() -> dict:
    """name -> f(image, dlib Face) -> vector, for every encoder that is installed."""
    from mien.engine.faces import expression_landmarks

    out = {"landmarks-v1": lambda image, face: expression_landmarks.encode(face.landmarks68)[0]}
    try:
        from mien.engine.faces.expression_fer_au import VARIANTS
    except ImportError as exc:  # the v2 encoder not there (yet): say so, score the rest
        print(f"(no v2 expression encoders: {exc})", file=sys.stderr)
        VARIANTS = {}
    out.update(VARIANTS)
    out["raw-pixels"] = raw_pixels
    return out


def face_vectors(faces: dict, names: list[str] | None = None,
                 mediapipe: bool = True) -> tuple[dict, dict]:
    """({encoder: {face_id: vector}}, {front: faces it found itself}) for every face.

    Main rows: every encoder on the same dlib face. With `mediapipe`, the
    encoders that need no dlib landmarks also run on the MediaPipe front
    end's face ("NAME [mediapipe]"; the dlib face where MediaPipe finds none).
    """
    from mien.engine.faces import EngineConfig, FaceAnalyzer
    from mien.engine.faces.dlib_detector import DlibDetector

    detector = DlibDetector(EngineConfig(detector="dlib"))
    chosen = {k: f for k, f in encoders().items() if names is None or k in names}
    vectors: dict[str, dict] = {k: {} for k in chosen}
    mp = None
    if mediapipe:
        try:
            mp = FaceAnalyzer(EngineConfig(detector="mediapipe")).detector
        except Exception as exc:  # front end not installed / models not fetched: score the rest
            print(f"(no MediaPipe front end: {exc})", file=sys.stderr)
    mp_encoders = {k: f for k, f in chosen.items() if k != "landmarks-v1"} if mp else {}
    vectors.update({f"{k} [mediapipe]": {} for k in mp_encoders})
    found = {"dlib": 0, "mediapipe": 0}
    for face_id, record in faces.items():
        image, box = detection_view(record)
        face, hit = dlib_face(detector, image, box)
        found["dlib"] += hit
        for name, encode in chosen.items():
            vectors[name][face_id] = np.asarray(encode(image, face), np.float64)
        if mp_encoders:
            mp_face, hit = front_face(mp, image, box)
            found["mediapipe"] += hit
            for name, encode in mp_encoders.items():
                vectors[f"{name} [mediapipe]"][face_id] = np.asarray(encode(image, mp_face or face), np.float64)
    return vectors, found


# -- the report --------------------------------------------------------------------------
KINDS = ("random", "same_emotion")
REFERENCE = "fer-au-v2"   # the new default: compared pairwise with every other encoder


def score(triplets: list[dict], ratings: dict, vectors: dict) -> dict:
    """Rater agreement and each encoder's accuracy, by kind, vs majority and on unanimous triplets."""
    ids_by_kind = {k: [t["id"] for t in triplets if t["kind"] == k] for k in KINDS}
    ids_by_kind["all"] = [t["id"] for t in triplets]
    votes = {t["id"]: [r[t["id"]] for r in ratings.values()] for t in triplets}
    truth_majority = {t: majority(v) for t, v in votes.items()}
    truth_unanimous = {t: v[0] if len(set(v)) == 1 else None for t, v in votes.items()}
    report = {"material": {"kinds": {}}, "raters": {}, "encoders": {}}
    for kind, ids in ids_by_kind.items():
        report["material"]["kinds"][kind] = {
            "triplets": len(ids),
            "with_majority": sum(truth_majority[t] is not None for t in ids),
            "unanimous": sum(truth_unanimous[t] is not None for t in ids),
        }
        for name, agree in rater_agreement(ratings, ids).items():
            report["raters"].setdefault(name, {})[kind] = agree
    for name, by_face in vectors.items():
        answers = {t["id"]: odd_one_out([by_face[f] for f in t["faces"]]) for t in triplets}
        row = {kind: {"majority": accuracy(answers, truth_majority, ids),
                      "unanimous": accuracy(answers, truth_unanimous, ids)}
               for kind, ids in ids_by_kind.items()}
        row["mean_of_kinds"] = {
            truth: float(np.mean([row[k][truth]["accuracy"] for k in KINDS]))
            for truth in ("majority", "unanimous")}
        row["answers"] = answers
        report["encoders"][name] = row
    return report


def sign_test(only_a: int, only_b: int) -> float:
    """Two-sided exact sign test (McNemar) on the triplets exactly one of two encoders gets right."""
    from math import comb

    n = only_a + only_b
    if n == 0:
        return 1.0
    tail = sum(comb(n, i) for i in range(min(only_a, only_b) + 1)) / 2.0 ** n
    return min(1.0, 2 * tail)


def paired(report: dict, reference: str, triplets: list[dict], ratings: dict) -> dict:
    """`reference` against every other encoder on the unanimous triplets, by kind: who alone is right."""
    votes = {t["id"]: [r[t["id"]] for r in ratings.values()] for t in triplets}
    truth = {t: v[0] for t, v in votes.items() if len(set(v)) == 1}
    ref = report["encoders"][reference]["answers"]
    out = {}
    for name, row in report["encoders"].items():
        if name == reference:
            continue
        for kind in (*KINDS, "all"):
            ids = [t["id"] for t in triplets if t["id"] in truth and kind in ("all", t["kind"])]
            only_ref = sum(ref[t] == truth[t] != row["answers"][t] for t in ids)
            only_other = sum(row["answers"][t] == truth[t] != ref[t] for t in ids)
            out.setdefault(name, {})[kind] = {f"only_{reference}": only_ref, f"only_{name}": only_other,
                                              "sign_test_p": sign_test(only_ref, only_other)}
    return out


def label_answers(triplets: list[dict], faces: dict) -> dict[str, int]:
    """How easy the set is: the odd one out by the builder's broad-emotion labels alone.

    Only where they decide it (exactly two of the three share a label); a
    person's reading, not a model, and no row of the table.
    """
    out = {}
    for t in triplets:
        labels = [faces[f]["label"] for f in t["faces"]]
        for k in range(3):
            rest = labels[:k] + labels[k + 1:]
            if rest[0] == rest[1] != labels[k]:
                out[t["id"]] = k + 1
    return out


def easiness(triplets: list[dict], faces: dict, ratings: dict) -> dict:
    """Per kind: triplets the broad labels decide, and how often the raters' majority agrees."""
    answers = label_answers(triplets, faces)
    truth = {t["id"]: majority([r[t["id"]] for r in ratings.values()]) for t in triplets}
    out = {}
    for kind in (*KINDS, "all"):
        ids = [t["id"] for t in triplets if kind in ("all", t["kind"]) and t["id"] in answers]
        out[kind] = {"decided_by_broad_labels": len(ids), **accuracy(answers, truth, ids)}
    return out


def print_report(report: dict) -> None:
    from benchmarks.common import print_table

    m = report["material"]["kinds"]
    print("triplets: " + ", ".join(f"{k} {v['triplets']} ({v['with_majority']} with a majority, "
                                    f"{v['unanimous']} unanimous)" for k, v in m.items()))
    rows = []
    for name, r in report["raters"].items():
        rows.append({"who": name, **{f"{k} maj": r[k]["agreement"] for k in (*KINDS, "all")}})
    if rows:
        rows.append({"who": "raters (mean)", **{f"{k} maj": float(np.mean([r[k]["agreement"] for r in
                                                    report["raters"].values()])) for k in (*KINDS, "all")}})
    for name, r in report["encoders"].items():
        row = {"who": name}
        for k in (*KINDS, "all"):
            row[f"{k} maj"] = r[k]["majority"]["accuracy"]
            row[f"{k} unan"] = r[k]["unanimous"]["accuracy"]
        row["mean kinds unan"] = r["mean_of_kinds"]["unanimous"]
        rows.append(row)
    cols = ["who"] + [f"{k} {t}" for k in (*KINDS, "all") for t in ("maj", "unan")] + ["mean kinds unan"]
    print("rater rows: agreement with the other two raters' majority; encoder rows: accuracy "
          "vs the majority (maj) and on unanimous triplets (unan); chance 0.333")
    print_table(rows, cols)


def finite(value):
    """The report with NaN (an empty subset) as null, so the JSON is strict."""
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if isinstance(value, float) and value != value:
        return None
    return value


def main(argv=None) -> int:
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="write the report as JSON here")
    parser.add_argument("--set", choices=("rated", "first"), default="rated",
                        help="rated: the 1,628-triplet set (default); first: the first 100 triplets")
    parser.add_argument("--no-landmarks", action="store_true",
                        help="rated set: skip landmarks-v1 (it needs every face's picture from its package)")
    parser.add_argument("--reembed-faces", type=int, default=100_000,
                        help="rated set: time mien reembed on this many synthetic faces (0 = skip)")
    parser.add_argument("--no-478", action="store_true",
                        help="rated set: skip the rows of the default fer-au-478 (the 478-point landmarker "
                             "on every face, ~20 s)")
    parser.add_argument("--plot", type=Path, help="rated set: draw the learning curve (PNG) here")
    parser.add_argument("--triplets", type=Path, default=DATA / "triplets.json")
    parser.add_argument("--ratings", type=Path, nargs="+",
                        help="rater files (default: data/quality/ratings/rater*.json)")
    parser.add_argument("--encoders", nargs="+", help="only these encoders (default: all installed)")
    args = parser.parse_args(argv)
    if args.set == "rated":
        from benchmarks import rated_report

        report = rated_report.report(with_landmarks=not args.no_landmarks, reembed_faces=args.reembed_faces,
                                     log=lambda msg: print(msg, file=sys.stderr), with_478=not args.no_478)
        rated_report.print_report(report)
        if args.plot:
            rated_report.plot(report, args.plot)
            print(f"wrote {args.plot}")
        if args.out:
            args.out.write_text(json.dumps(finite(report), indent=1, allow_nan=False) + "\n")
            print(f"wrote {args.out}")
        return 0
    try:
        faces, triplets = load_triplets(args.triplets)
        paths = args.ratings or sorted((DATA / "ratings").glob("rater*.json"))
        if len(paths) < 3:
            raise ValueError(f"need at least 3 rater files, found {[str(p) for p in paths]}")
        ratings = load_ratings(paths, [t["id"] for t in triplets])
    except (OSError, ValueError, KeyError) as exc:
        print(f"quality.py: {exc}", file=sys.stderr)
        return 2
    vectors, found = face_vectors(faces, args.encoders)
    report = score(triplets, ratings, vectors)
    report["material"]["easiness"] = easiness(triplets, faces, ratings)
    if REFERENCE in report["encoders"]:
        report["paired_vs_" + REFERENCE] = paired(report, REFERENCE, triplets, ratings)
    report["material"]["faces"] = len(faces)
    report["material"]["faces_found_by_front_end"] = found
    report["material"]["raters"] = [str(p) for p in paths]
    print(f"{len(faces)} faces; found by dlib HOG: {found['dlib']} (the rest landmarked in their "
          f"stored box), by MediaPipe: {found['mediapipe']} (the rest: the dlib face); "
          f"raters: {', '.join(ratings)}")
    print_report(report)
    e = report["material"]["easiness"]
    print("how easy: the builder's broad labels (smile / slight smile / neutral / open mouth / other) "
          "alone decide " + ", ".join(f"{e[k]['decided_by_broad_labels']} {k}" for k in KINDS)
          + f" triplets, and match the raters' majority on {e['all']['accuracy']:.0%} of those")
    pairs = report.get("paired_vs_" + REFERENCE, {})
    if pairs:
        print(f"paired on the unanimous triplets (all kinds): triplets only {REFERENCE} gets right / "
              "only the other gets right, exact sign-test p")
        for name, r in pairs.items():
            a = r["all"]
            print(f"  vs {name}: {a['only_' + REFERENCE]} / {a['only_' + name]}, p = {a['sign_test_p']:.2f}")
    if args.out:
        args.out.write_text(json.dumps(finite(report), indent=1, allow_nan=False) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
