"""Google's Facial Expression Comparison (FEC) CSV -> labelled triplets.

`faceexp-comparison-data-{train,test}-public.csv`, no header. Per row:
three faces, each `url, x1, x2, y1, y2` (box as fractions of the image width
and height), the triplet type, then `(rater_id, annotation)` pairs where the
annotation (1, 2 or 3) names the face most unlike the other two.

A triplet's label is the raters' majority odd-one-out; the share of raters who
chose it is its agreement. Rows without a strict majority (e.g. 3 vs 3) carry
no label and are dropped (counted by the parser).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from mien.errors import BadInputError

TRIPLET_TYPES = ("ONE_CLASS_TRIPLET", "TWO_CLASS_TRIPLET", "THREE_CLASS_TRIPLET")


@dataclass(frozen=True)
class FaceRef:
    """One face of an FEC row: an image URL and a fractional box."""

    url: str
    x1: float
    x2: float
    y1: float
    y2: float

    @property
    def key(self) -> str:
        """Stable id of the face crop (a URL can hold several faces)."""
        text = f"{self.url}|{self.x1:.6f}|{self.x2:.6f}|{self.y1:.6f}|{self.y2:.6f}"
        return hashlib.sha1(text.encode()).hexdigest()[:20]

    def pixel_box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(x1, y1, x2, y2) in pixels, clipped to the image, at least 1 px wide."""
        x1 = min(max(int(round(self.x1 * width)), 0), width - 1)
        x2 = min(max(int(round(self.x2 * width)), x1 + 1), width)
        y1 = min(max(int(round(self.y1 * height)), 0), height - 1)
        y2 = min(max(int(round(self.y2 * height)), y1 + 1), height)
        return x1, y1, x2, y2


@dataclass
class Triplet:
    """Three faces and the majority odd-one-out (index 0, 1 or 2)."""

    faces: tuple[FaceRef, FaceRef, FaceRef]
    type: str
    odd: int
    agreement: float            # share of raters who chose `odd`
    votes: tuple[int, int, int]  # raters per face
    row: int = -1                # 0-based line in the CSV

    @property
    def anchor_positive_negative(self) -> tuple[FaceRef, FaceRef, FaceRef]:
        """(a, p, n): the two similar faces in CSV order, then the odd one."""
        similar = [f for i, f in enumerate(self.faces) if i != self.odd]
        return similar[0], similar[1], self.faces[self.odd]

    def to_json(self) -> dict:
        d = asdict(self)
        d["faces"] = [asdict(f) for f in self.faces]
        d["keys"] = [f.key for f in self.faces]
        d["votes"] = list(self.votes)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Triplet":
        faces = tuple(FaceRef(**f) for f in d["faces"])
        return cls(faces=faces, type=d["type"], odd=int(d["odd"]),  # type: ignore[arg-type]
                   agreement=float(d["agreement"]), votes=tuple(d["votes"]),  # type: ignore[arg-type]
                   row=int(d.get("row", -1)))


@dataclass
class ParseStats:
    rows: int = 0
    triplets: int = 0
    no_majority: int = 0
    malformed: int = 0
    per_type: Counter = field(default_factory=Counter)


def _face(fields: list[str], start: int) -> FaceRef:
    url = fields[start].strip()
    x1, x2, y1, y2 = (float(v) for v in fields[start + 1:start + 5])
    if not url or not (0.0 <= x1 < x2 <= 1.0 + 1e-6 and 0.0 <= y1 < y2 <= 1.0 + 1e-6):
        raise ValueError(f"bad face {fields[start:start + 5]}")
    return FaceRef(url, x1, x2, y1, y2)


def parse_answers(fields: list[str]) -> tuple[tuple[FaceRef, FaceRef, FaceRef], str, list[tuple[str, int]]]:
    """One CSV row -> (faces, triplet type, [(rater id, answer 1|2|3)]). ValueError if malformed."""
    fields = [f.strip() for f in fields]
    while fields and fields[-1] == "":
        fields.pop()
    if len(fields) < 16 + 2:
        raise ValueError(f"{len(fields)} fields; an FEC row has 15 face fields, a type and rater pairs")
    faces = (_face(fields, 0), _face(fields, 5), _face(fields, 10))
    kind = fields[15]
    if kind not in TRIPLET_TYPES:
        raise ValueError(f"unknown triplet type {kind!r}")
    ratings = fields[16:]
    if len(ratings) % 2:
        raise ValueError("rater fields do not come in (rater_id, annotation) pairs")
    answers = []
    for rater, annotation in zip(ratings[0::2], ratings[1::2]):
        choice = int(annotation)
        if choice not in (1, 2, 3):
            raise ValueError(f"annotation {annotation!r} is not 1, 2 or 3")
        answers.append((rater, choice))
    return faces, kind, answers


def parse_row(fields: list[str], row: int = -1) -> Triplet | None:
    """One CSV row -> Triplet, or None when the raters have no strict majority.

    Raises ValueError on a malformed row.
    """
    faces, kind, answers = parse_answers(fields)
    votes = [0, 0, 0]
    for _, choice in answers:
        votes[choice - 1] += 1
    best = max(votes)
    if votes.count(best) > 1:
        return None
    odd = votes.index(best)
    return Triplet(faces=faces, type=kind, odd=odd, agreement=best / sum(votes),
                   votes=tuple(votes), row=row)  # type: ignore[arg-type]


def iter_triplets(lines: Iterable[str], stats: ParseStats | None = None) -> Iterator[Triplet]:
    stats = stats if stats is not None else ParseStats()
    for i, fields in enumerate(csv.reader(lines)):
        if not fields or all(not f.strip() for f in fields):
            continue
        stats.rows += 1
        try:
            triplet = parse_row(fields, row=i)
        except ValueError:
            stats.malformed += 1
            continue
        if triplet is None:
            stats.no_majority += 1
            continue
        stats.triplets += 1
        stats.per_type[triplet.type] += 1
        yield triplet


def read_csv(path: str | os.PathLike, limit: int | None = None) -> tuple[list[Triplet], ParseStats]:
    """All labelled triplets of an FEC CSV (the first `limit` rows if given)."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"FEC CSV {path} does not exist")
    stats = ParseStats()
    with open(path, newline="", encoding="utf-8") as fh:
        lines: Iterable[str] = fh
        if limit is not None:
            lines = (line for _, line in zip(range(limit), fh))
        triplets = list(iter_triplets(lines, stats))
    if stats.rows and not triplets and stats.malformed == stats.rows:
        raise BadInputError(f"{path}: none of its {stats.rows} rows is an FEC triplet row")
    return triplets, stats


def parse_text(text: str) -> tuple[list[Triplet], ParseStats]:
    stats = ParseStats()
    return list(iter_triplets(io.StringIO(text), stats)), stats


def predict_odd(d_01: float, d_02: float, d_12: float) -> int:
    """Odd-one-out from pairwise distances: the face outside the closest pair."""
    closest = min((d_01, 2), (d_02, 1), (d_12, 0))
    return closest[1]
