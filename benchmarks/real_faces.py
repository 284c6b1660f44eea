"""Every real face at hand, with who is who: the hard pair set of benchmarks/persons.py.

Photos (all from packages; nothing committed):
- face_recognition 1.3.0's sdist: obama, obama2, obama3, 32bit.png (Obama again), the two
  partial Obama faces, biden; scikit-image's astronaut (Eileen Collins); matplotlib's Grace
  Hopper; insightface's Tom Hanks (112 px, padded) and t1.jpg (six East-Asian adults: two
  young women, four men);
- @vladmandic/face-api's demo/sample1..6.jpg (npm, MIT): six group photos of 3-6 young women
  each, several East-Asian: same sex, same age, often same ethnicity, in one frame.

Each photo also in altered copies (mirrored, half size, darker, JPEG quality 25, blurred):
one person across sizes, lighting and compression. Truth: a single-person photo names its
person; a face of a group photo is "<photo>_<i>" (i = left to right in the original), so
two faces of one group photo are always two people. Whether women of two different face-api
photos are one person is not known (the shoots share models: by eye, one blonde woman is in
sample1 and sample3, and a dark-haired one may be in samples 1, 2 and 4), so those pairs are
left out of every count, except the blonde woman's, who is one person.

Every face the default front end finds and FaceQA passes (as `mien index` keeps them) is
embedded by each identity model on the same detections.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Looked at by eye (the contact sheet): both models' closest "different" pair was one blonde
# woman in two of face-api's shoots (sample1, right; sample3, middle).
SAME_PERSON = {"faceapi3_1": "faceapi1_2"}
SINGLE = {"obama.jpg": "obama", "obama2.jpg": "obama", "obama3.jpg": "obama", "32bit.png": "obama",
          "obama_partial_face.jpg": "obama", "obama_partial_face2.jpg": "obama", "biden.jpg": "biden",
          "astronaut": "collins", "grace_hopper": "hopper", "tom_hanks": "hanks"}


@dataclass
class RealFace:
    image: str          # photo name + variant
    photo: str          # the original photo
    label: str          # who (see module doc)
    index: int          # position in the image's face list
    crop: np.ndarray    # 112x112 RGB thumbnail for contact sheets
    vectors: dict = field(default_factory=dict)   # identity model -> unit vector


def photos() -> list[tuple[str, np.ndarray]]:
    import cv2

    from mien.demo import photos as pkg

    out = []
    fr = pkg.face_recognition_images_dir()
    for name in ("obama.jpg", "obama2.jpg", "obama3.jpg", "32bit.png", "obama_partial_face.jpg",
                 "obama_partial_face2.jpg", "biden.jpg"):
        out.append((name, cv2.imread(str(fr / name), cv2.IMREAD_COLOR)))
    out += [("astronaut", pkg.astronaut()), ("grace_hopper", pkg.grace_hopper()), ("t1", pkg.t1())]
    hanks = cv2.imread(str(pkg.tom_hanks_path()), cv2.IMREAD_COLOR)
    out.append(("tom_hanks", cv2.copyMakeBorder(cv2.resize(hanks, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC),
                                                112, 112, 112, 112, cv2.BORDER_REPLICATE)))
    try:
        samples = pkg.face_api_samples_dir()
        for k in range(1, 7):
            out.append((f"faceapi{k}", cv2.imread(str(samples / f"sample{k}.jpg"), cv2.IMREAD_COLOR)))
    except FileNotFoundError as exc:
        print(f"note: without @vladmandic/face-api's group photos: {exc}")
    return [(n, im) for n, im in out if im is not None]


VARIANTS = ("orig", "mirror", "half", "dark", "jpeg25", "blur")


def variant(image: np.ndarray, how: str):
    """(altered image, function mapping an original x, y to the altered one's)."""
    import cv2

    w = image.shape[1]
    if how == "mirror":
        return image[:, ::-1].copy(), lambda x, y: (w - 1 - x, y)
    if how == "half":
        return cv2.resize(image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA), lambda x, y: (x / 2, y / 2)
    if how == "dark":
        return cv2.convertScaleAbs(image, alpha=0.55, beta=-5), lambda x, y: (x, y)
    if how == "jpeg25":
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 25])
        return cv2.imdecode(data, cv2.IMREAD_COLOR), lambda x, y: (x, y)
    if how == "blur":
        return cv2.GaussianBlur(image, (0, 0), 2.0), lambda x, y: (x, y)
    return image, lambda x, y: (x, y)


def collect(models: dict, variants=VARIANTS) -> list[RealFace]:
    """Faces of every photo and variant that pass FaceQA, labelled, with each model's vector.

    models: name -> identity encoder (embed(image, faces) -> unit rows)."""
    import cv2

    from mien.engine.faces import EngineConfig, FaceAnalyzer
    from mien.engine.faces.align import arcface_crop

    analyzer = FaceAnalyzer(EngineConfig())
    out: list[RealFace] = []
    for name, image in photos():
        originals = analyzer.assess(image, analyzer.detect(image))
        centres = [(f.landmarks5[:2].mean(0), max(f.inter_ocular, 0.35 * (f.bbox[2] - f.bbox[0]))) for f in originals]
        single = SINGLE.get(name)
        for how in variants:
            altered, move = variant(image, how)
            faces = [f for f in analyzer.assess(altered, analyzer.detect(altered)) if f.quality.passed]
            labelled = []
            for f in faces:
                eye = f.landmarks5[:2].mean(0)
                best = None
                for i, (c, iod) in enumerate(centres):
                    cx, cy = move(*c)
                    scale = 0.5 if how == "half" else 1.0
                    d = np.hypot(eye[0] - cx, eye[1] - cy)
                    if d < 0.8 * iod * scale and (best is None or d < best[0]):
                        best = (d, i)
                if best is None:
                    continue       # a face the original has no detection for: no truth
                i = best[1]
                label = single if single and len(originals) == 1 else f"{name}_{i}"
                label = SAME_PERSON.get(label, label)
                labelled.append((f, label))
            if not labelled:
                continue
            vecs = {m: enc.embed(altered, [f for f, _ in labelled]) for m, enc in models.items()}
            for k, (f, label) in enumerate(labelled):
                crop = cv2.cvtColor(arcface_crop(altered, f.landmarks5, 112), cv2.COLOR_BGR2RGB)
                out.append(RealFace(f"{name}:{how}", name, label, k, crop,
                                    {m: np.asarray(v[k], np.float32) for m, v in vecs.items()}))
    return out


def _unknown(a: RealFace, b: RealFace) -> bool:
    """True when nobody knows whether a and b are one person (see the module doc)."""
    return (a.label != b.label and a.photo != b.photo and a.photo.startswith("faceapi")
            and b.photo.startswith("faceapi"))


def known_matrix(faces: list[RealFace]) -> np.ndarray:
    return np.array([[not _unknown(a, b) for b in faces] for a in faces])


def pairs(faces: list[RealFace], model: str):
    """(distances, same, i, j) over every pair of faces whose truth is known (upper triangle)."""
    vecs = np.stack([f.vectors[model] for f in faces])
    d = np.sqrt(np.maximum(2.0 - 2.0 * vecs @ vecs.T, 0.0))
    i, j = np.triu_indices(len(faces), 1)
    keep = known_matrix(faces)[i, j]
    i, j = i[keep], j[keep]
    labels = np.array([f.label for f in faces])
    return d[i, j], labels[i] == labels[j], i, j


def rates(dist, same, grid) -> list[dict]:
    rows = []
    for t in grid:
        merges = int(np.sum(dist[~same] <= t))
        rows.append({"threshold": round(float(t), 2), "false_merge_rate": float(merges / max(1, (~same).sum())),
                     "false_merges": merges, "split_rate": float(np.mean(dist[same] > t))})
    return rows


def at_split(rows: list[dict], limit: float = 0.05) -> dict:
    """The row with the fewest false merges whose split rate is at most `limit`."""
    ok = [r for r in rows if r["split_rate"] <= limit]
    return min(ok, key=lambda r: (r["false_merges"], r["threshold"])) if ok else {}


def bcubed_clusters(faces: list[RealFace], model: str, threshold: float) -> tuple[float, float, int]:
    """BCubed precision and recall of mien's person clustering (complete linkage, faces of one image
    cannot link) over the set at `threshold`, and the number of clusters."""
    from mien.indexer.persons import cluster

    vecs = np.stack([f.vectors[model] for f in faces])
    same_image = [(a, b) for a in range(len(faces)) for b in range(a + 1, len(faces))
                  if faces[a].image == faces[b].image]
    labels = cluster(vecs, threshold, cannot_link=same_image)
    truth = np.array([f.label for f in faces])
    known = known_matrix(faces)           # BCubed over the pairs whose truth is known
    same_c = (labels[:, None] == labels[None, :]) & known
    same_t = (truth[:, None] == truth[None, :]) & known
    both = (same_c & same_t).sum(1)
    return float(np.mean(both / same_c.sum(1))), float(np.mean(both / same_t.sum(1))), int(labels.max() + 1)


def _distinct(order, i, j, faces, n: int, key) -> list[int]:
    out, seen = [], set()
    for k in order:
        pair = key(faces[i[k]], faces[j[k]])
        if pair not in seen:
            seen.add(pair)
            out.append(k)
        if len(out) == n:
            break
    return out


def closest_different(faces, model: str, n: int = 8) -> list[tuple[float, int, int]]:
    """The n closest pairs of different people, one per pair of people."""
    dist, same, i, j = pairs(faces, model)
    order = [k for k in np.argsort(dist) if not same[k]]
    keep = _distinct(order, i, j, faces, n, lambda a, b: tuple(sorted((a.label, b.label))))
    return [(float(dist[k]), int(i[k]), int(j[k])) for k in keep]


def farthest_same(faces, model: str, n: int = 4) -> list[tuple[float, int, int]]:
    """The n farthest pairs of one person, one per pair of photos."""
    dist, same, i, j = pairs(faces, model)
    order = [k for k in np.argsort(-dist) if same[k]]
    keep = _distinct(order, i, j, faces, n, lambda a, b: tuple(sorted((a.photo, b.photo))))
    return [(float(dist[k]), int(i[k]), int(j[k])) for k in keep]


def contact_sheet(faces, rows_by_model: dict, path) -> None:
    """One row per pair: the two faces, the model, the distance and the labels."""
    import cv2

    lines = []
    for model, (title, rows) in rows_by_model.items():
        for d, a, b in rows:
            tile = np.full((112, 112 * 2 + 420, 3), 255, np.uint8)
            tile[:, :112] = faces[a].crop[:, :, ::-1]
            tile[:, 112:224] = faces[b].crop[:, :, ::-1]
            for k, text in enumerate([f"{model} {title}: d = {d:.3f}", f"{faces[a].label}  ({faces[a].image})",
                                      f"{faces[b].label}  ({faces[b].image})"]):
                cv2.putText(tile, text, (232, 28 + 30 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1,
                            cv2.LINE_AA)
            lines.append(tile)
    cv2.imwrite(str(path), np.vstack(lines))
