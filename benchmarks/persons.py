"""Persons against the truth: which identity model keeps people apart and together?

    .venv/bin/python benchmarks/persons.py [--models dlib,facenet] [--out persons.json] [--keep DIR]
                                          [--sheet bench-out/persons-closest.png]
                                          [--identity arcface --identity-model w600k_r50.onnx]

Two parts, each run for every identity model side by side:

1. Real faces (benchmarks/real_faces.py): every real face at hand, the group photos of
   same-sex, same-age people included, in altered copies; per threshold the false-merge
   and split rates over all labelled pairs, the threshold with the fewest false merges at a
   split rate <= 5 % (how mien chooses its default identity model), BCubed of mien's own
   clustering at the model's calibrated threshold, the closest different-people pairs
   (a contact sheet, --sheet) and the identity CPU cost per face.
2. The rendered set below, indexed by `mien index` (the whole person logic).

The identity set is built from photos that ship in packages: face_recognition's
obama/obama2/obama3/biden, the six people of insightface's t1.jpg, scikit-image's
astronaut (Eileen Collins), matplotlib's Grace Hopper and insightface's Tom Hanks
(scikit-image's lfw_subset is not usable: 25x25 px crops without names). From
them it writes:
- the photos themselves, and altered copies (flipped, downscaled, darker, a
  low-quality JPEG) so one person shows up in several sources;
- group pictures: square portraits of 2-4 people side by side (their faces are
  one image: never one person);
- videos (10 fps, mp4v) of 2-3 people side by side, people entering and leaving
  part-way, two clips of the same people.
Every face's person is known from where its portrait was placed. `mien index`
runs on its defaults (a subprocess, like a user) into a temp store; each
stored face with a truth label (centre within 0.6 face widths) is scored:

- BCubed precision / recall over faces (a face's person vs its human);
- persons vs people; same-frame violations (two faces of one frame in one person);
- the threshold table from the same/different pair set: one identity vector
  per image face or video track (what linking compares), every pair labelled
  same or different; false-merge rate = different pairs within the threshold,
  split rate = same pairs beyond it. It says where the calibrated threshold in
  mien/indexer/persons.py comes from.

Targets on the defaults: precision >= 0.99 with recall >= 0.90.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmarks.common import print_table, timer, write_json  # noqa: E402

PORTRAIT = 2.4          # portrait side in face widths (as mien.demo.videos)
GRID = [round(0.20 + 0.02 * i, 2) for i in range(61)]   # thresholds 0.20 .. 1.40 (dlib ~0.35, FaceNet ~0.9)


# ------------------------------------------------------------------ people

@dataclass
class Person:
    label: str
    portrait: np.ndarray    # square BGR crop, face centred, face side = side / PORTRAIT


@dataclass
class Truth:
    """Where each human's face is, per source and frame: label -> (cx, cy, face side)."""
    frames: dict = field(default_factory=dict)   # (file name, frame index) -> {label: (cx, cy, side)}


def _photos() -> dict:
    import cv2

    from mien.demo import photos, videos

    out = {n: videos.photo(n) for n in ("obama", "obama2", "obama3", "biden", "astronaut", "grace_hopper", "t1")}
    out["tom_hanks"] = cv2.imread(str(photos.tom_hanks_path()), cv2.IMREAD_COLOR)
    return out


HUMAN = {"obama": "obama", "obama2": "obama", "obama3": "obama", "biden": "biden", "astronaut": "collins",
         "grace_hopper": "hopper", "tom_hanks": "hanks"}


# Face boxes (x1, y1, x2, y2) in the photos, measured once with dlib's HOG detector: the truth
# of where each person's face is, whatever detector `mien index` runs. t1.jpg's six, left to right.
BOXES = {
    "obama": [(350, 142, 619, 411)], "obama2": [(172, 291, 440, 559)], "obama3": [(650, 306, 933, 589)],
    "biden": [(418, 241, 739, 561)], "astronaut": [(176, 77, 267, 167)], "grace_hopper": [(181, 140, 368, 326)],
    "tom_hanks": [(7, 27, 98, 112)],
    "t1": [(68, 283, 177, 392), (266, 176, 356, 267), (451, 295, 559, 404), (725, 367, 834, 476),
           (871, 68, 1001, 198), (1119, 283, 1228, 392)],
}


def _portrait(image, box) -> np.ndarray:
    import cv2

    x1, y1, x2, y2 = box
    cx, cy, side = (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1)
    s = int(round(side * PORTRAIT))
    padded = cv2.copyMakeBorder(image, s, s, s, s, cv2.BORDER_REPLICATE)
    x, y = int(round(cx - s / 2)) + s, int(round(cy - s / 2)) + s
    return np.ascontiguousarray(padded[y:y + s, x:x + s])


def people(images: dict) -> tuple[dict, dict]:
    """({label: Person}, {photo name: [(label, box)]}) for the photos' faces."""
    persons, boxes = {}, {}
    for name, image in images.items():
        found = BOXES[name]
        labels = [f"t1_{i}" for i in range(len(found))] if name == "t1" else [HUMAN[name]]
        boxes[name] = list(zip(labels, found))
        for label, box in zip(labels, found):
            key = label if label not in persons else f"{label}@{name}"
            persons[key] = Person(label, _portrait(image, box))
    return persons, boxes


# ------------------------------------------------------------------ rendering

def _place(canvas, tile, cx, cy, side) -> tuple[float, float, float]:
    """Paste `tile` scaled so its face is `side` px, centred at (cx, cy); the face's truth."""
    import cv2

    scale = side * PORTRAIT / tile.shape[0]
    t = cv2.resize(tile, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    h, w = t.shape[:2]
    x1, y1 = int(round(cx - w / 2)), int(round(cy - h / 2))
    cx1, cy1 = max(x1, 0), max(y1, 0)
    cx2, cy2 = min(x1 + w, canvas.shape[1]), min(y1 + h, canvas.shape[0])
    canvas[cy1:cy2, cx1:cx2] = t[cy1 - y1:cy2 - y1, cx1 - x1:cx2 - x1]
    return cx, cy, side


def group_picture(tiles: list[Person], face: int = 110) -> tuple[np.ndarray, dict]:
    gap = int(face * PORTRAIT)
    canvas = np.full((gap, gap * len(tiles), 3), 110, np.uint8)
    truth = {}
    for k, p in enumerate(tiles):
        truth[p.label] = _place(canvas, p.portrait, gap * (k + 0.5), gap / 2, face)
    return canvas, truth


def write_video(path: Path, cast: list[tuple[Person, float, float]], seconds: float = 6.0, fps: float = 10.0,
                size=(640, 300), motion: str = "pan", face: float = 0.34, blur: float = 0.0) -> dict:
    """cast: (person, enters at s, leaves at s) in slots left to right; returns {frame: {label: truth}}.

    motion: pan, zoom, or cross (the first two people swap sides, passing in front
    of each other: where trackers swap identities). face: face side / frame height.
    """
    import cv2

    w, h = size
    n = len(cast)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    truth = {}
    for i in range(int(round(seconds * fps))):
        t = i / fps
        u = t / seconds
        canvas = np.full((h, w, 3), 96, np.uint8)
        frame = {}
        for k, (p, t_in, t_out) in enumerate(cast):
            if not t_in <= t < t_out:
                continue
            side = h * face * ((0.85 + 0.35 * u) if motion == "zoom" else 1.0)
            cx = w * (k + 0.5) / n + (w / n) * 0.12 * (u - 0.5) * (motion == "pan")
            if motion == "cross" and k < 2:
                cx = w * (0.2 + 0.6 * u) if k == 0 else w * (0.8 - 0.6 * u)
            frame[p.label] = _place(canvas, p.portrait, cx, h * 0.5, side)
        if motion == "cross" and len(frame) == 2:
            (a, ta), (b, tb) = frame.items()
            if abs(ta[0] - tb[0]) < 0.8 * ta[2]:  # the one pasted first is hidden behind the other
                del frame[a]
        if blur:
            canvas = cv2.GaussianBlur(canvas, (0, 0), blur)
        truth[i] = frame
        writer.write(canvas)
    writer.release()
    return truth


def build(folder: Path) -> tuple[Truth, dict]:
    """Write the identity set into `folder`; its truth and what it holds."""
    import cv2

    images = _photos()
    persons, boxes = people(images)
    P = {k: v for k, v in persons.items()}
    truth = Truth()

    def still(name: str, image, labelled: dict) -> None:
        path = folder / name
        ok = cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 90]) if name.endswith(".jpg") \
            else cv2.imwrite(str(path), image)
        assert ok, path
        truth.frames[(name, 0)] = labelled

    def box_truth(b, scale=1.0, flip_w=None):
        x1, y1, x2, y2 = b
        cx = (x1 + x2) / 2
        if flip_w is not None:
            cx = flip_w - cx
        return cx * scale, (y1 + y2) / 2 * scale, max(x2 - x1, y2 - y1) * scale

    # the photos and altered copies of them
    for name, image in images.items():
        still(f"{name}.png", image, {lab: box_truth(b) for lab, b in boxes[name]})
    alter = {
        "obama2": ("flip", None), "obama3": ("scale", 0.4), "biden": ("dark", 0.6), "astronaut": ("flip", None),
        "grace_hopper": ("scale", 0.6), "tom_hanks": ("scale", 2.0), "t1": ("jpeg", 35),
    }
    for name, (how, arg) in alter.items():
        image = images[name]
        w = image.shape[1]
        if how == "flip":
            out, lab = image[:, ::-1].copy(), {lab: box_truth(b, flip_w=w) for lab, b in boxes[name]}
        elif how == "scale":
            out = cv2.resize(image, None, fx=arg, fy=arg, interpolation=cv2.INTER_AREA if arg < 1 else cv2.INTER_CUBIC)
            lab = {lab: box_truth(b, scale=arg) for lab, b in boxes[name]}
        elif how == "dark":
            out, lab = (image.astype(np.float32) * arg).astype(np.uint8), {lab: box_truth(b) for lab, b in boxes[name]}
        else:
            ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, arg])
            out, lab = cv2.imdecode(data, cv2.IMREAD_COLOR), {lab: box_truth(b) for lab, b in boxes[name]}
        still(f"{name}-{how}.png", out, lab)

    # group pictures: faces in one image are different people
    t1 = sorted(k for k in P if k.startswith("t1_"))
    groups = [["obama", "biden", "hopper"], [t1[0], t1[3], "collins"], ["hanks", t1[5], "obama@obama3"],
              ["biden", t1[1]], [t1[2], t1[4], "hopper", "obama@obama2"]]
    for k, members in enumerate(groups):
        members = [m for m in members if m in P]
        image, lab = group_picture([P[m] for m in members])
        still(f"group{k}.png", image, lab)
    # small faces (48 px) and a blurred group: where identity vectors of different people come closer
    small = [["obama", "biden", t1[0], t1[3]], ["collins", "hopper", t1[1], t1[5], "hanks"]]
    for k, members in enumerate(small):
        image, lab = group_picture([P[m] for m in members if m in P], face=48)
        still(f"small{k}.png", image, lab)
    image, lab = group_picture([P[m] for m in ["biden", t1[2], "collins"] if m in P], face=90)
    still("blurred-group.png", cv2.GaussianBlur(image, (0, 0), 1.5), lab)

    # videos: several people per clip, entering and leaving, the same people in two clips
    clips = {
        "v0-obama-biden.mp4": [(P["obama"], 0, 9), (P["biden"], 0, 9)],
        "v1-t1-enter-leave.mp4": [(P[t1[0]], 0, 9), (P[t1[2]], 2.0, 9), (P[t1[3]], 0, 3.0)],
        "v2-obama-zoom.mp4": [(P.get("obama@obama3", P["obama"]), 0, 9)],
        "v3-collins-hopper-hanks.mp4": [(P["collins"], 0, 9), (P["hopper"], 0, 4.0), (P["hanks"], 3.0, 9)],
        "v4-biden-t1.mp4": [(P["biden"], 0, 9), (P[t1[5]], 0, 9), (P[t1[1]], 0, 4.0)],
        "v5-t1-collins-again.mp4": [(P[t1[0]], 0, 9), (P["collins"], 1.0, 5.0)],
        "v6-crowd-small.mp4": [(P[t1[0]], 0, 9), (P[t1[2]], 0, 9), (P[t1[3]], 1.0, 9), (P[t1[5]], 0, 4.0),
                               (P["obama"], 2.0, 9)],
        "v7-crossing.mp4": [(P["biden"], 0, 9), (P[t1[1]], 0, 9)],
        "v8-crossing-blurred.mp4": [(P["hopper"], 0, 9), (P["collins"], 0, 9)],
    }
    how = {"v2-obama-zoom.mp4": dict(motion="zoom"), "v6-crowd-small.mp4": dict(size=(800, 240), face=0.24),
           "v7-crossing.mp4": dict(motion="cross"), "v8-crossing-blurred.mp4": dict(motion="cross", blur=1.2)}
    for name, cast in clips.items():
        for i, frame in write_video(folder / name, cast, **how.get(name, {})).items():
            truth.frames[(name, i)] = frame
    return truth, {"photos": len(images), "stills": sum(1 for k in truth.frames if k[1] == 0 and not k[0].endswith(".mp4")),
                   "videos": len(clips), "people": sorted({p.label for p in P.values()})}


# ------------------------------------------------------------------ scoring

def label_faces(store, truth: Truth) -> list[dict]:
    """Stored faces with their truth label (None when no placed face is near)."""
    out = []
    for source in store.list_sources():
        name = os.path.basename(source.uri)
        for f in store.faces_of_source(source.uri, thumbnail=False):
            placed = truth.frames.get((name, f.frame_index), {})
            x1, y1, x2, y2 = f.bbox
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            best, label = None, None
            for lab, (tx, ty, side) in placed.items():
                d = np.hypot(cx - tx, cy - ty)
                if d <= 0.6 * side and (best is None or d < best):
                    best, label = d, lab
            ident = None if f.identity is None else f.identity / np.linalg.norm(f.identity)
            out.append({"face": f.face_id, "source": name, "frame": f.frame_index, "track": f.track_id,
                        "person": f.person_id, "label": label, "identity": ident})
    return out


def score_store(store_dir, truth: Truth):
    from mien.engine.store import Store

    with Store(str(store_dir), "r") as store:
        return label_faces(store, truth), store.person_rules() or {}, dict(store.encoders), len(store.list_persons())


def summarise(store_dir, truth: Truth) -> dict:
    faces, _, _, total = score_store(store_dir, truth)
    p, r = bcubed(faces)
    return {"bcubed_precision": p, "bcubed_recall": r,
            "persons": len({f["person"] for f in faces if f["label"] and f["person"] >= 0}),
            "persons_in_store": total, "same_frame_violations": same_frame_violations(faces)}


def bcubed(faces: list[dict]) -> tuple[float, float]:
    lab = [f for f in faces if f["label"] is not None]
    if not lab:
        return float("nan"), float("nan")
    person = np.array([f["person"] if f["person"] >= 0 else -1 - i for i, f in enumerate(lab)])
    truth = np.array([f["label"] for f in lab])
    same_p = person[:, None] == person[None, :]
    same_t = truth[:, None] == truth[None, :]
    both = (same_p & same_t).sum(1)
    return float(np.mean(both / same_p.sum(1))), float(np.mean(both / same_t.sum(1)))


def same_frame_violations(faces: list[dict]) -> int:
    seen, bad = {}, 0
    for f in faces:
        if f["person"] < 0:
            continue
        key = (f["source"], f["frame"], f["person"])
        bad += key in seen
        seen[key] = True
    return bad


def pair_table(faces: list[dict]) -> tuple[list[dict], dict]:
    """Threshold -> false-merge and split rate over one vector per image face / video track."""
    obs = {}
    for f in faces:
        if f["label"] is None or f["identity"] is None:
            continue
        key = (f["source"], f["track"]) if f["source"].endswith(".mp4") else (f["source"], f["face"])
        obs.setdefault(key, (f["label"], f["identity"]))
    labels = [v[0] for v in obs.values()]
    vecs = np.stack([v[1] for v in obs.values()])
    d = np.sqrt(np.maximum(2 - 2 * vecs @ vecs.T, 0))
    iu = np.triu_indices(len(vecs), 1)
    same = np.array([labels[i] == labels[j] for i, j in zip(*iu)])
    dist = d[iu]
    rows = []
    for t in GRID:
        rows.append({"threshold": t,
                     "false_merge_rate": float(np.mean(dist[~same] <= t)) if (~same).any() else 0.0,
                     "split_rate": float(np.mean(dist[same] > t)) if same.any() else 0.0})
    closest_diff = float(dist[~same].min()) if (~same).any() else float("nan")
    farthest_same = float(dist[same].max()) if same.any() else float("nan")
    pairs = {"observations": len(vecs), "same_pairs": int(same.sum()), "different_pairs": int((~same).sum()),
             "farthest_same": farthest_same, "closest_different": closest_diff,
             "same_p99": float(np.percentile(dist[same], 99)) if same.any() else float("nan"),
             "different_p01": float(np.percentile(dist[~same], 1)) if (~same).any() else float("nan")}
    if (~same).any():
        i = int(np.argmin(np.where(~same, dist, np.inf)))
        pairs["closest_different_pair"] = [labels[iu[0][i]], labels[iu[1][i]]]
    return rows, pairs


# ------------------------------------------------------------------ main

def _compact(rows: list[dict]) -> list[dict]:
    """The rows of a threshold table where something happens (no merge yet and no split left cut)."""
    live = [r for r in rows if r["split_rate"] < 0.5 and r["false_merge_rate"] < 0.02]
    return live or rows


def identity_cost(models: dict, faces) -> dict:
    """CPU ms per face of each identity model over the same real faces (one thread, one call
    per image as the indexer makes it), measured side by side, twice, best kept."""
    import time

    import cv2

    from real_faces import photos  # noqa: E402

    from mien.engine.faces import EngineConfig, FaceAnalyzer

    analyzer = FaceAnalyzer(EngineConfig())
    work = []
    for _, image in photos():
        found = [f for f in analyzer.assess(image, analyzer.detect(image)) if f.quality.passed]
        if found:
            work.append((image, found))
    n = sum(len(f) for _, f in work)
    cv2.setNumThreads(1)
    out = {m: float("inf") for m in models}
    for _ in range(2):
        for name, enc in models.items():
            t = time.process_time()
            for image, found in work:
                enc.embed(image, found)
            out[name] = min(out[name], (time.process_time() - t) * 1000 / n)
    return {"faces": n, "cpu_ms_per_face": out}


def real_section(model_names: list[str], sheet: Path | None) -> dict:
    """The real-face pair set (benchmarks/real_faces.py) under each identity model."""
    import real_faces as rf  # noqa: E402

    from mien.engine.faces import EngineConfig
    from mien.engine.faces import registry
    from mien.indexer.persons import link_rules

    import cv2

    cv2.setNumThreads(1)   # every model's session gets one thread, as in an index worker
    models = {name: registry.build("identity", EngineConfig(identity=name)) for name in model_names}
    with timer() as t_collect:
        faces = rf.collect(models)
    labels = sorted({f.label for f in faces})
    multi = sorted(lab for lab in labels if len({f.photo for f in faces if f.label == lab}) > 1)
    out = {"faces": len(faces), "people": len(labels), "people_in_several_photos": multi,
           "photos": sorted({f.photo for f in faces}), "variants": list(rf.VARIANTS), "models": {}}
    print(f"\nreal faces: {len(faces)} faces (FaceQA passed) of {len(labels)} people in "
          f"{len(out['photos'])} photos x {len(rf.VARIANTS)} variants; people in several photos: {multi} "
          f"({t_collect():.0f} s)")
    for name, enc in models.items():
        dist, same, i, j = rf.pairs(faces, name)
        rows = rf.rates(dist, same, GRID)
        choice = rf.at_split(rows)
        zero = [r for r in rows if r["false_merges"] == 0]
        rules = link_rules({"identity": enc.name})
        p, r, clusters = rf.bcubed_clusters(faces, name, rules.threshold)
        closest = rf.closest_different(faces, name, 6)
        far = rf.farthest_same(faces, name, 4)
        # linking margin: how much closer a face's own person is than the nearest other person,
        # for faces whose own person is within the threshold (5th percentile)
        vecs = np.stack([f.vectors[name] for f in faces])
        d = np.sqrt(np.maximum(2 - 2 * vecs @ vecs.T, 0))
        lab = np.array([f.label for f in faces])
        known = rf.known_matrix(faces)
        gaps = []
        for k in range(len(faces)):
            own = (lab == lab[k]) & (np.arange(len(faces)) != k) & known[k]
            other = (lab != lab[k]) & known[k]
            if own.any() and other.any() and d[k, own].min() <= rules.threshold:
                gaps.append(d[k, other].min() - d[k, own].min())
        model = {"encoder": enc.name, "same_pairs": int(same.sum()), "different_pairs": int((~same).sum()),
                 "thresholds": rows, "at_split_5pct": choice,
                 "largest_zero_merge": zero[-1] if zero else None,
                 "rules": rules.as_dict(), "bcubed_precision": p, "bcubed_recall": r, "clusters": clusters,
                 "margin_gap_p05": float(np.percentile(gaps, 5)) if gaps else None,
                 "closest_different": [(dd, faces[a].image, faces[a].label, faces[b].image, faces[b].label)
                                       for dd, a, b in closest],
                 "farthest_same": [(dd, faces[a].image, faces[b].image) for dd, a, b in far]}
        out["models"][name] = model
        print(f"\n{name} ({enc.name}): {model['same_pairs']} same-person pairs, "
              f"{model['different_pairs']} different-people pairs")
        print_table(_compact(rows), ["threshold", "false_merges", "false_merge_rate", "split_rate"], "{:.4f}")
        print(f"  fewest false merges at split <= 5 %: {choice}")
        print(f"  largest threshold without a false merge: {model['largest_zero_merge']}")
        print(f"  mien's rules {rules.as_dict()}: BCubed precision {p:.4f} recall {r:.4f} ({clusters} clusters "
              f"for {len(labels)} people; faces of one image cannot link); margin gap p05 "
              f"{model['margin_gap_p05']}")
        for dd, a, b in closest:
            print(f"  closest different {dd:.3f}: {faces[a].label} ({faces[a].image}) ~ {faces[b].label} "
                  f"({faces[b].image})")
        for dd, a, b in far:
            print(f"  farthest same     {dd:.3f}: {faces[a].image} ~ {faces[b].image}")
    cost = identity_cost(models, faces)
    out["identity_cost"] = cost
    print("\nidentity cost, CPU ms per face (one thread, same faces, side by side): "
          + ", ".join(f"{m} {v:.1f}" for m, v in cost["cpu_ms_per_face"].items()) + f" over {cost['faces']} faces")
    if sheet:
        sheet.parent.mkdir(parents=True, exist_ok=True)
        rf.contact_sheet(faces, {m: ("closest different", rf.closest_different(faces, m, 6)) for m in models}, sheet)
        print(f"contact sheet of the closest different-people pairs: {sheet}")
    return out


def pipeline_run(args, identity: str | None, data: Path, truth: Truth, work: Path, held: dict) -> dict:
    """`mien index` on the rendered set with one identity model, scored (the person logic end to end)."""
    from mien.indexer.persons import link_rules

    tag = identity or "default"
    store_dir = work / f"store-{tag}"
    cmd = [os.path.join(os.path.dirname(sys.executable), "mien"), "index", str(data), "--store", str(store_dir),
           "--quiet", "--json", str(work / f"summary-{tag}.json")]
    if identity:
        cmd += ["--identity", identity]
    if args.identity_model:
        cmd += ["--identity-model", args.identity_model]
    if args.detector:
        cmd += ["--detector", args.detector]
    print("\n$", " ".join(cmd))
    with timer() as t_index:
        subprocess.run(cmd, check=True)
    faces, rules, encoders, persons_total = score_store(store_dir, truth)
    baseline = None
    if args.baseline_src:
        base_cmd = [sys.executable, "-c", "import sys; from mien.cli import main; sys.exit(main())",
                    "index", str(data), "--store", str(work / f"baseline-store-{tag}"), "--quiet"]
        base_cmd += ["--detector", args.detector] if args.detector else []
        env = dict(os.environ, PYTHONPATH=os.path.abspath(args.baseline_src))
        print(f"$ PYTHONPATH={env['PYTHONPATH']}", " ".join(base_cmd[3:]))
        # run from the baseline tree: `python -c` puts the working directory first on sys.path
        subprocess.run(base_cmd, check=True, env=env, cwd=env["PYTHONPATH"])
        baseline = dict(source=os.path.abspath(args.baseline_src), **summarise(work / f"baseline-store-{tag}", truth))
    sweep = []
    for t in [float(x) for x in (args.sweep or "").split(",") if x.strip()]:
        extra = ["--identity-threshold", str(t)]
        row = {"threshold": t}
        subprocess.run(cmd[:4] + [str(work / f"sweep-{tag}-{t}"), "--quiet"] + cmd[8:] + extra, check=True,
                       stdout=subprocess.DEVNULL)
        row.update({f"mien_{k}": v for k, v in summarise(work / f"sweep-{tag}-{t}", truth).items()})
        if args.baseline_src:
            subprocess.run(base_cmd[:6] + [str(work / f"base-sweep-{tag}-{t}")] + base_cmd[7:] + extra, check=True,
                           env=env, cwd=env["PYTHONPATH"], stdout=subprocess.DEVNULL)
            row.update({f"baseline_{k}": v for k, v in summarise(work / f"base-sweep-{tag}-{t}", truth).items()})
        sweep.append(row)

    precision, recall = bcubed(faces)
    labelled = [f for f in faces if f["label"] is not None]
    people_seen = sorted({f["label"] for f in labelled})
    persons_seen = sorted({f["person"] for f in labelled if f["person"] >= 0})
    rows, pairs = pair_table(faces)
    current = link_rules(encoders).threshold
    zero = [r["threshold"] for r in rows if r["false_merge_rate"] == 0.0]
    print(f"faces stored {len(faces)}, labelled {len(labelled)}, without identity "
          f"{sum(1 for f in labelled if f['person'] < 0)}")
    print(f"BCubed precision {precision:.4f}  recall {recall:.4f}  persons {len(persons_seen)} "
          f"(store: {persons_total})  people {len(people_seen)}  same-frame violations "
          f"{same_frame_violations(faces)}")
    print(f"rules recorded in the store: {rules}")
    if baseline:
        print(f"baseline ({baseline['source']}): BCubed precision {baseline['bcubed_precision']:.4f}  recall "
              f"{baseline['bcubed_recall']:.4f}  persons {baseline['persons']}  same-frame violations "
              f"{baseline['same_frame_violations']}")
    print(f"pair set ({encoders.get('identity')}): {pairs}")
    print_table(_compact(rows), ["threshold", "false_merge_rate", "split_rate"], "{:.4f}")
    if sweep:
        print("whole pipeline at other thresholds (mien index --identity-threshold T):")
        cols = ["threshold"] + [c for c in sweep[0] if c.endswith(("precision", "recall", "persons",
                                                                   "same_frame_violations"))]
        print_table(sweep, cols, "{:.4f}")
    print(f"largest threshold without a false merge: {max(zero) if zero else None}; mien's: {current}")
    return {
        "bcubed_precision": precision, "bcubed_recall": recall,
        "persons": len(persons_seen), "persons_in_store": persons_total, "people": len(people_seen),
        "same_frame_violations": same_frame_violations(faces),
        "faces": len(faces), "faces_labelled": len(labelled),
        "thresholds": rows, "pairs": pairs, "threshold_used": current, "rules": rules,
        "encoders": encoders, "set": held, "index_seconds": t_index(), "command": " ".join(cmd),
        "targets_met": bool(precision >= 0.99 and recall >= 0.90),
        "baseline": baseline, "sweep": sweep,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", help="write the results as JSON")
    ap.add_argument("--keep", help="build the set and the store in this folder (kept) instead of a temp dir")
    ap.add_argument("--models", default="dlib,facenet",
                    help="identity models compared side by side (real-face pair set and the pipeline)")
    ap.add_argument("--identity", default=None,
                    help="one identity model only (e.g. arcface with --identity-model); overrides --models")
    ap.add_argument("--identity-model", default=None, help="pass --identity-model to mien index")
    ap.add_argument("--sheet", default="bench-out/persons-closest.png",
                    help="contact sheet of the closest different-people pairs of the real faces ('' = none)")
    ap.add_argument("--no-real", action="store_true", help="skip the real-face pair set")
    ap.add_argument("--no-pipeline", action="store_true", help="skip the mien index runs on the rendered set")
    ap.add_argument("--detector", default=None,
                    help="pass --detector to every mien index run, the baseline's too (compare the person "
                         "logic of two trees on one front end)")
    ap.add_argument("--baseline-src", metavar="DIR",
                    help="also index the set with the mien source tree in DIR (e.g. an older commit: "
                         "git archive COMMIT | tar -x -C DIR) and score it in the same run")
    ap.add_argument("--sweep", metavar="T,T,...",
                    help="also index with --identity-threshold T for each T (and the baseline at each T): "
                         "how precision and recall of the whole pipeline move with the threshold")
    args = ap.parse_args()
    names = [args.identity] if args.identity else [m.strip() for m in args.models.split(",") if m.strip()]

    result = {"models": names}
    if not args.no_real and not args.identity_model:
        result["real"] = real_section(names, Path(args.sheet) if args.sheet else None)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="mien-persons-"))
    if not args.no_pipeline:
        data = work / "set"
        data.mkdir(parents=True, exist_ok=True)
        with timer() as t_build:
            truth, held = build(data)
        print(f"\nrendered identity set: {held['stills']} images, {held['videos']} videos, people "
              f"{held['people']} (built in {t_build():.1f} s) in {data}")
        result["pipeline"] = {name: pipeline_run(args, name, data, truth, work, held) for name in names}
    if "real" in result:
        print("\nside by side (real faces): model, false merges at split <= 5 % (threshold), largest "
              "threshold without a false merge (split there), CPU ms per face")
        for name, m in result["real"]["models"].items():
            c, z = m["at_split_5pct"], m["largest_zero_merge"] or {}
            print(f"  {name:8s} {c.get('false_merges')} at {c.get('threshold')} (split {c.get('split_rate', 0):.3f});"
                  f" {z.get('threshold')} (split {z.get('split_rate', 0):.3f}); "
                  f"{result['real']['identity_cost']['cpu_ms_per_face'][name]:.1f} ms")
    if args.out:
        write_json(args.out, result)
    if args.keep:
        print(f"kept {work}")
    else:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
