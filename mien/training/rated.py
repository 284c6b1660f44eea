"""Rated triplets in FEC's own file format, and the expression features of their faces.

A rated-triplet file is an FEC CSV (fec.py): per row three faces (`url, x1, x2, y1, y2`,
the box as fractions of the image), the triplet type, then `(rater_id, answer)` pairs.
The same triplet may appear on several rows (the Rate page and `mien rate` append one
row per answer, crash-safe); read_rated merges them. So FEC's public CSV, the project's
benchmark set (benchmarks/data/rated/) and a user's own ratings are read by one parser.

A URL names the picture: an http(s) URL (FEC), a file path (a store's source), or a
package file (`npm:NAME@VERSION/PATH`, `pypi:NAME==VERSION/PATH`, the benchmark set).
A video frame adds a fragment: `#t=SECONDS` (a store's source) or `#frame=N`.

A FeatureTable holds the expression features (expression_features.py) of faces by their
FaceRef.key, with the group each face belongs to (its person where known, else its
picture): folds of the cross-validation never split a group.
"""

from __future__ import annotations

import csv
import io
import os
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mien.engine.faces import expression_features as xf
from mien.errors import BadInputError
from mien.training.fec import TRIPLET_TYPES, FaceRef, ParseStats, parse_answers


@dataclass
class RatedTriplet:
    faces: tuple[FaceRef, FaceRef, FaceRef]
    type: str
    answers: list[tuple[str, int]] = field(default_factory=list)   # (rater id, 1|2|3)

    @property
    def key(self) -> tuple[str, str, str]:
        return tuple(f.key for f in self.faces)  # type: ignore[return-value]

    @property
    def votes(self) -> tuple[int, int, int]:
        v = [0, 0, 0]
        for _, a in self.answers:
            v[a - 1] += 1
        return tuple(v)  # type: ignore[return-value]

    @property
    def majority(self) -> int | None:
        """The odd one out (0, 1 or 2) more than half the raters named, else None."""
        v = self.votes
        best = max(v)
        return v.index(best) if best * 2 > sum(v) else None

    @property
    def unanimous(self) -> bool:
        return len(self.answers) >= 2 and max(self.votes) == len(self.answers)

    @property
    def agreement(self) -> float:
        return max(self.votes) / max(1, len(self.answers))


def read_rated(paths, min_raters: int = 1) -> tuple[list[RatedTriplet], ParseStats]:
    """The triplets of one or more rated-triplet files, rows of the same triplet merged (in first
    appearance order), keeping those with at least `min_raters` answers. A malformed row (a
    half-written last line after a kill included) is counted and skipped."""
    stats = ParseStats()
    merged: dict[tuple, RatedTriplet] = {}
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise BadInputError(f"rated-triplet file {path} does not exist")
        with open(path, newline="", encoding="utf-8", errors="replace") as fh:
            for i, fields in enumerate(csv.reader(fh)):
                if not fields or all(not f.strip() for f in fields):
                    continue
                stats.rows += 1
                try:
                    faces, kind, answers = parse_answers(fields)
                except ValueError:
                    stats.malformed += 1
                    continue
                t = RatedTriplet(faces, kind)
                t = merged.setdefault(t.key, t)
                t.answers.extend(answers)
    out = [t for t in merged.values() if len(t.answers) >= min_raters]
    stats.triplets = len(out)
    stats.per_type = Counter(t.type for t in out)
    stats.no_majority = sum(t.majority is None for t in out)
    return out, stats


def row_fields(faces, kind: str, answers) -> list[str]:
    if kind not in TRIPLET_TYPES:
        raise BadInputError(f"triplet type {kind!r}; expected one of {', '.join(TRIPLET_TYPES)}")
    out: list[str] = []
    for f in faces:
        out += [f.url, f"{f.x1:.6f}", f"{f.x2:.6f}", f"{f.y1:.6f}", f"{f.y2:.6f}"]
    out.append(kind)
    for rater, answer in answers:
        if str(answer).strip() not in ("1", "2", "3"):
            raise BadInputError(f"an answer is 1, 2 or 3, got {answer!r}")
        if not str(rater).strip() or any(c in str(rater) for c in ",\"\r\n"):
            raise BadInputError(f"a rater id is a non-empty name without commas or quotes, got {rater!r}")
        out += [str(rater), str(int(answer))]
    return out


def append_answer(path, faces, kind: str, rater: str, answer: int) -> None:
    """Append one rater's answer as its own row, whole or not at all: the line is written with one
    write() on an O_APPEND descriptor and fsynced, so a kill loses at most the answer in flight
    (a torn last line is skipped by read_rated as malformed)."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(row_fields(faces, kind, [(rater, answer)]))
    data = buf.getvalue().encode("utf-8")
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size:   # a previous writer killed mid-line: start on a fresh line
            with open(path, "rb") as fh:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    data = b"\n" + data
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def write_rated(path, triplets: list[RatedTriplet]) -> None:
    """All triplets, one row each with all their answers (FEC's layout)."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        for t in triplets:
            w.writerow(row_fields(t.faces, t.type, t.answers))


# -- the faces' features ------------------------------------------------------------------
@dataclass
class FeatureTable:
    keys: list[str]              # FaceRef.key of each face
    features: np.ndarray         # (n, expression_features.DIM) float32
    groups: list[str]            # person (or picture) of each face: CV folds never split one
    folds: np.ndarray | None = None   # a fold given to each face (the benchmark set's), or None
    version: str = xf.FEATURES_VERSION   # which features (expression_features.VERSIONS) the rows are

    def __post_init__(self) -> None:
        self.row = {k: i for i, k in enumerate(self.keys)}

    def save(self, path) -> None:
        arrays = {"keys": np.array(self.keys), "features": self.features.astype(np.float32),
                  "groups": np.array(self.groups)}
        if self.folds is not None:
            arrays["folds"] = self.folds.astype(np.int32)
        if self.version != xf.FEATURES_VERSION:   # tables of fer-au-v2's features predate the field
            arrays["version"] = np.array(self.version)
        from mien.engine.npz import npz_bytes

        Path(path).write_bytes(npz_bytes(arrays, compress=True))

    @classmethod
    def load(cls, path) -> "FeatureTable":
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls([str(k) for k in z["keys"]], z["features"].astype(np.float32),
                           [str(g) for g in z["groups"]], z["folds"] if "folds" in z.files else None,
                           str(z["version"]) if "version" in z.files else xf.FEATURES_VERSION)
        except (OSError, KeyError, ValueError) as exc:
            raise BadInputError(f"{path} is not a feature table (keys, features, groups): {exc}") from None

    def fold_of_group(self, k: int) -> dict[str, int]:
        """Each group's fold: the given folds, else a stable hash of the group name."""
        if self.folds is not None:
            return {g: int(f) for g, f in zip(self.groups, self.folds)}
        return {g: zlib.crc32(g.encode()) % k for g in set(self.groups)}


def usable(triplets: list[RatedTriplet], table: FeatureTable) -> tuple[list[RatedTriplet], int]:
    """The triplets with a majority whose three faces are in the table; and how many were not."""
    keep = [t for t in triplets if t.majority is not None and all(f.key in table.row for f in t.faces)]
    return keep, len(triplets) - len(keep)


# -- a store's faces as the ratings name them ------------------------------------------------------
def media_size(path: str) -> tuple[int, int]:
    """(width, height) of an image or video file, from its header."""
    import cv2

    try:
        from PIL import Image

        with Image.open(path) as im:
            return im.size
    except Exception:   # not an image PIL reads: a video
        cap = cv2.VideoCapture(path)
        try:
            w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        finally:
            cap.release()
        if w <= 0 or h <= 0:
            raise BadInputError(f"cannot read the size of {path}") from None
        return w, h


def face_url(uri: str, timestamp_ms: int, kind: str) -> str:
    """The URL a rating file gives a store face: its source, and for a video frame `#t=SECONDS`."""
    return uri if kind != "video" else f"{uri}#t={timestamp_ms / 1000:.3f}"


def store_face_ref(record, kind: str, size: tuple[int, int]) -> FaceRef:
    """A store face as a rating names it (a file name that is not UTF-8 escaped, mien.filenames)."""
    from mien.filenames import escape

    w, h = size
    x1, y1, x2, y2 = record.bbox
    return FaceRef(face_url(escape(record.source_uri), record.timestamp_ms, kind),
                   min(max(x1 / w, 0.0), 1.0), min(max(x2 / w, 0.0), 1.0),
                   min(max(y1 / h, 0.0), 1.0), min(max(y2 / h, 0.0), 1.0))


def store_face_ids(store, refs) -> dict[str, tuple[int, int]]:
    """{FaceRef.key: (face id, person id)} of the refs that are faces of `store`: matched by source,
    video time (#t=, to the millisecond) and box (the best overlap, at least 0.5)."""
    from mien.engine.faces.boxes import iou

    from mien.filenames import find

    sources = {s.uri for s in store.list_sources()}
    by_source: dict[str, list[FaceRef]] = {}
    for ref in refs:
        by_source.setdefault(ref.url.partition("#")[0], []).append(ref)
    out = {}
    for text, group in by_source.items():
        uri = find(text, sources.__contains__)   # the name as written, else the one its \x escapes stand for
        if uri is None:
            continue
        try:
            size = media_size(uri)
        except (BadInputError, OSError):
            continue
        records = store.faces_of_source(uri, thumbnail=False)
        for ref in group:
            fragment = ref.url.partition("#")[2]
            t_ms = round(float(fragment[2:]) * 1000) if fragment.startswith("t=") else None
            box = ref.pixel_box(*size)
            candidates = [r for r in records if t_ms is None or abs(r.timestamp_ms - t_ms) <= 1]
            best = max(candidates, key=lambda r: iou(r.bbox, box), default=None)
            if best is not None and iou(best.bbox, box) >= 0.5:
                out[ref.key] = (best.face_id, best.person_id)
    return out


def table_from_store(store, triplets: list[RatedTriplet]) -> tuple[FeatureTable, int]:
    """The features of the rated faces that are faces of `store` (store_face_ids); and how many rated
    faces are not in it (or have no features)."""
    wanted = {f.key: f for t in triplets for f in t.faces}
    found = store_face_ids(store, wanted.values())
    keys = list(found)
    ids = [found[k][0] for k in keys]
    groups = [f"person:{found[k][1]}" if found[k][1] >= 0 else f"source:{wanted[k].url.partition('#')[0]}"
              for k in keys]
    features, has = store.features(ids) if ids else (np.zeros((0, 0), np.float32), np.zeros(0, bool))
    keep = [i for i in range(len(ids)) if has[i]]
    missing = len(wanted) - len(keep)
    from mien.engine.faces.engine_record import stored_features

    version = stored_features(store.encoders) or xf.FEATURES_VERSION   # none kept: the table is empty
    return FeatureTable([keys[i] for i in keep], features[keep], [groups[i] for i in keep], None, version), missing


def table_from_fec_data(data_dir, triplets: list[RatedTriplet]) -> tuple[FeatureTable, int]:
    """The features of rated faces from `mien fec fetch`'s cache (crops/<FaceRef.key>.jpg, the
    engine's 224 px expression crops of FEC's faces): the face found in each crop (the largest;
    none found, the face is left out). Each face is its own group (FEC names no person; its
    faces are distinct photos). The features are the default encoder's (fer-au-478's), so the head
    applies to stores it builds. Returns the table and how many rated faces it lacks."""
    import cv2

    from mien.engine.faces import EngineConfig, FaceAnalyzer

    crops = Path(data_dir) / "crops"
    wanted = list({f.key: f for t in triplets for f in t.faces})
    analyzer = FaceAnalyzer(EngineConfig(expression="fer-au-478"))   # its encoder keeps FEATURES_478
    keys, rows = [], []
    for key in wanted:
        image = cv2.imread(str(crops / f"{key}.jpg"), cv2.IMREAD_COLOR)
        if image is None:
            continue
        found = analyzer.detect(image)
        if not found:
            continue
        face = max(found, key=lambda f: (f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1]))
        analyzer.expression_encoder.encode_image_faces(image, [face])
        keys.append(key)
        rows.append(face.expression_features)
    features = np.stack(rows).astype(np.float32) if rows else np.zeros((0, xf.DIM), np.float32)
    return FeatureTable(keys, features, list(keys), None, xf.FEATURES_478), len(wanted) - len(keys)
