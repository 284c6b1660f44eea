"""Build the rated-triplet material: faces, triplets.json and the contact sheets.

    .venv/bin/python benchmarks/data/quality/make_sheets.py

Run once (it is deterministic, seed below); its outputs are committed and the
raters' answers refer to them, so re-running must not change them.

Faces: every public face photo on the machine that shows a real, distinct
expression (see README.md beside this file for what was left out and why).
The engine (dlib, default config) only finds and aligns the photo faces;
the broad-emotion label of each face is a person's reading of it (written
below, decided by looking at the faces, no model), used only to form the
"same broad emotion" triplets.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from benchmarks.quality import source_image  # noqa: E402

SEED = 13
CROP = 160           # face crop side on the sheets
PER_SHEET = 5        # 5 rows keep a sheet under ~1 Mpx: image viewers show it unscaled
MAX_USES = 4         # no face in more than this many triplets
SAME_EMOTION = {"smile": 18, "neutral": 18, "open_mouth": 8, "slight_smile": 6}
RANDOM = 50

# The photo faces: (source, index of the face left to right as the engine finds it, label).
PHOTO_FACES = [
    ({"package": "face_recognition", "file": "obama.jpg"}, 0, "smile", "obama"),
    ({"package": "face_recognition", "file": "obama2.jpg"}, 0, "open_mouth", "obama"),
    ({"package": "face_recognition", "file": "obama3.jpg"}, 0, "slight_smile", "obama"),
    ({"package": "face_recognition", "file": "biden.jpg"}, 0, "neutral", "biden"),
    ({"package": "insightface", "file": "t1.jpg"}, 0, "slight_smile", "t1/0"),
    ({"package": "insightface", "file": "t1.jpg"}, 1, "neutral", "t1/1"),
    ({"package": "insightface", "file": "t1.jpg"}, 2, "smile", "t1/2"),
    ({"package": "insightface", "file": "t1.jpg"}, 3, "smile", "t1/3"),
    # t1 face 4 is a near-profile (FaceQA rejects it for yaw): its expression cannot be read
    ({"package": "insightface", "file": "t1.jpg"}, 5, "smile", "t1/5"),
    ({"package": "insightface", "file": "Tom_Hanks_54745.png"}, 0, "slight_smile", "hanks"),
    ({"package": "matplotlib", "file": "grace_hopper.jpg"}, 0, "neutral", "hopper"),
    ({"package": "skimage", "name": "astronaut"}, 0, "smile", "collins"),
]

# skimage.data.lfw_subset()[0:100] are faces (25x25 grey). Labels read by eye from
# 150 px enlargements. Left out: 4 (too dark), 13 (unreadable), 16 (hand over the
# face), 28 (washed out), 30 (blurred, hair), 59 (sunglasses), 67 (lighting),
# 75 and 82 (turned away, blurred).
LFW_LABELS = {
    "smile": [1, 11, 18, 19, 21, 23, 24, 27, 31, 36, 37, 38, 45, 50, 52, 53, 69, 74, 79, 81, 85,
              91, 93, 94, 96],
    "slight_smile": [2, 8, 9, 10, 15, 41, 63, 68, 78, 88, 99],
    "neutral": [3, 5, 6, 7, 12, 17, 20, 25, 26, 32, 34, 35, 40, 42, 43, 46, 47, 57, 60, 62, 65, 66,
                70, 71, 72, 73, 76, 80, 83, 86, 89, 90, 98],
    "open_mouth": [0, 14, 29, 33, 48, 49, 51, 55, 58, 61, 64, 77, 92, 95, 97],
    "other": [22, 39, 44, 54, 56, 84, 87],   # pursed lips, frowns, grimaces, looking up
}


def photo_faces() -> list[dict]:
    from mien.engine.faces import EngineConfig, FaceAnalyzer

    analyzer = FaceAnalyzer(EngineConfig())
    found: dict[str, list] = {}
    faces = []
    for source, index, label, person in PHOTO_FACES:
        key = json.dumps(source, sort_keys=True)
        if key not in found:
            found[key] = analyzer.analyze(source_image(source), identity=False, keep_rejected=True)
        face = found[key][index]
        name = source.get("file") or source.get("name")
        faces.append({
            "face_id": f"{source['package']}:{name}#{index}",
            "source": source,
            "bbox": [round(float(v), 1) for v in face.bbox],
            "eyes": [[round(float(v), 1) for v in face.landmarks5[i]] for i in (0, 1)],
            "label": label,
            "person": person,
        })
    return faces


def lfw_faces() -> list[dict]:
    faces = []
    for label, indices in LFW_LABELS.items():
        for i in indices:
            faces.append({
                "face_id": f"skimage:lfw_subset#{i}",
                "source": {"package": "skimage", "name": "lfw_subset", "index": i},
                "bbox": [0, 0, 25, 25],
                "eyes": None,              # already aligned by LFW (deep funnelling)
                "label": label,
                "person": f"lfw/{i}",
            })
    return sorted(faces, key=lambda f: f["source"]["index"])


def crop(face: dict) -> np.ndarray:
    """CROP x CROP grey crop, eyes level, framed like the LFW thumbnails."""
    import cv2

    from mien.engine.faces.align import eyes_transform

    image = source_image(face["source"])
    if face["eyes"] is None:
        x1, y1, x2, y2 = face["bbox"]
        out = cv2.resize(image[y1:y2, x1:x2], (CROP, CROP), interpolation=cv2.INTER_CUBIC)
    else:
        # like the LFW thumbnails: eyes ~39 % down, inter-ocular ~42 % of the side
        m = eyes_transform(face["eyes"][0], face["eyes"][1], (CROP * 0.29, CROP * 0.39),
                           (CROP * 0.71, CROP * 0.39))
        out = cv2.warpAffine(image, m, (CROP, CROP), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    return cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)


def pick_triplets(faces: list[dict], rng: np.random.Generator) -> list[dict]:
    uses = {f["face_id"]: 0 for f in faces}
    seen: set[frozenset] = set()

    def draw(pool: list[dict]) -> list[dict] | None:
        for _ in range(2000):
            free = [f for f in pool if uses[f["face_id"]] < MAX_USES]
            if len(free) < 3:
                return None
            # prefer the least-used faces, so every face is seen about equally often
            w = np.array([MAX_USES - uses[f["face_id"]] for f in free], float) ** 2
            idx = rng.choice(len(free), 3, replace=False, p=w / w.sum())
            trio = [free[i] for i in idx]
            persons = {f["person"] for f in trio}
            key = frozenset(f["face_id"] for f in trio)
            if len(persons) < 3 or key in seen:   # same person twice: identity would decide
                continue
            seen.add(key)
            for f in trio:
                uses[f["face_id"]] += 1
            return trio
        return None

    triplets = []
    for label, count in SAME_EMOTION.items():
        pool = [f for f in faces if f["label"] == label]
        for _ in range(count):
            trio = draw(pool)
            if trio:
                triplets.append({"kind": "same_emotion", "emotion": label, "faces": trio})
    for _ in range(RANDOM):
        trio = draw(faces)
        if trio:
            triplets.append({"kind": "random", "emotion": None, "faces": trio})
    order = rng.permutation(len(triplets))
    triplets = [triplets[i] for i in order]
    for n, t in enumerate(triplets, 1):
        t["id"] = f"T{n:03d}"
    return triplets


def render_sheet(rows: list[tuple[str, list[np.ndarray]]], title: str) -> np.ndarray:
    import cv2

    gap, label_w, num_h, head = 24, 150, 40, 90
    row_h = CROP + num_h + 20
    width = label_w + 3 * (CROP + gap)
    sheet = np.full((head + row_h * len(rows), width, 3), 255, np.uint8)
    for k, line in enumerate(title.split("\n")):
        cv2.putText(sheet, line, (12, 34 + 34 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.75, (0, 0, 0), 2, cv2.LINE_AA)
    for r, (tid, crops) in enumerate(rows):
        y = head + r * row_h
        cv2.line(sheet, (0, y), (width, y), (160, 160, 160), 1)
        cv2.putText(sheet, tid, (12, y + 10 + CROP // 2 + 12), cv2.FONT_HERSHEY_SIMPLEX, 1.1,
                    (0, 0, 160), 3, cv2.LINE_AA)
        for k, c in enumerate(crops):
            x = label_w + k * (CROP + gap)
            sheet[y + 10:y + 10 + CROP, x:x + CROP] = c[:, :, None]
            cv2.putText(sheet, str(k + 1), (x + CROP // 2 - 12, y + 10 + CROP + 34),
                        cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 0, 0), 3, cv2.LINE_AA)
    return sheet


def main() -> None:
    import cv2

    rng = np.random.default_rng(SEED)
    faces = photo_faces() + lfw_faces()
    triplets = pick_triplets(faces, rng)
    crops = {f["face_id"]: crop(f) for f in faces}
    sheets_dir = HERE / "sheets"
    sheets_dir.mkdir(exist_ok=True)
    sheets = []
    for s in range(0, len(triplets), PER_SHEET):
        part = triplets[s:s + PER_SHEET]
        name = f"sheet{s // PER_SHEET + 1:02d}.png"
        title = (f"{name}: triplets {part[0]['id']} to {part[-1]['id']}\n"
                 "Which face's expression is most unlike the other two?")
        rows = [(t["id"], [crops[f["face_id"]] for f in t["faces"]]) for t in part]
        cv2.imwrite(str(sheets_dir / name), render_sheet(rows, title))
        for t in part:
            t["sheet"] = f"sheets/{name}"
        sheets.append(name)
    out = {
        "about": "FEC-style triplets on public faces; see PROTOCOL.md. Face boxes are in source "
                 "pixels; benchmarks/quality.py source_image()/detection_view() load them.",
        "faces": faces,
        "triplets": [{"id": t["id"], "kind": t["kind"], "emotion": t["emotion"], "sheet": t["sheet"],
                      "faces": [f["face_id"] for f in t["faces"]]} for t in triplets],
    }
    (HERE / "triplets.json").write_text(json.dumps(out, indent=1) + "\n")
    uses = {}
    for t in triplets:
        for f in t["faces"]:
            uses[f["face_id"]] = uses.get(f["face_id"], 0) + 1
    kinds = {}
    for t in triplets:
        kinds[t["kind"] + (f"/{t['emotion']}" if t["emotion"] else "")] = \
            kinds.get(t["kind"] + (f"/{t['emotion']}" if t["emotion"] else ""), 0) + 1
    print(f"{len(faces)} faces, {len(uses)} used, uses per face: max {max(uses.values())}, "
          f"mean {np.mean(list(uses.values())):.2f}; {len(triplets)} triplets {kinds}; sheets {sheets}")


if __name__ == "__main__":
    main()
