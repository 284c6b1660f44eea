"""Identity clustering within a video and linking to the store's persons.

All distances are Euclidean between L2-normalised identity vectors
(d = sqrt(2 - 2 cos)). For dlib's 128-d ResNet the raw vectors have norm
~1.4, so dlib's usual "same person below 0.6" is ~0.43 after normalising.
Measured on the package photos: Obama vs Obama 0.24-0.29, different people
0.47-0.66. We use 0.40 for both clustering (DBSCAN eps) and linking: a
false merge of two people is worse for search than one person split in two.
ArcFace 512-d vectors are farther apart for the same person (cos ~0.4-0.6),
hence its own default.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_THRESHOLDS = {          # identity encoder name prefix -> max distance
    "dlib": 0.40,
    "arcface": 1.05,            # cos > ~0.45
}


def default_threshold(encoders: dict) -> float:
    name = str(encoders.get("identity", ""))
    for prefix, value in DEFAULT_THRESHOLDS.items():
        if name.startswith(prefix):
            return value
    return 0.40


def normalise(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n == 0, 1.0, n)


def cluster(vectors: np.ndarray, eps: float) -> np.ndarray:
    """DBSCAN labels with min_samples=1 for L2-normalised rows; every row gets a cluster.

    With min_samples=1 every point is a core point, so DBSCAN's clusters are
    exactly the connected components of the graph "distance <= eps" — computed
    here with numpy (importing scikit-learn costs seconds per run, more than the
    clustering of a video's tracks). Labels are numbered by first appearance.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    n = len(vectors)
    labels = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return labels
    sq = np.maximum(2.0 - 2.0 * (vectors @ vectors.T), 0.0)   # squared distances of unit rows
    adjacent = sq <= eps * eps
    current = 0
    for start in range(n):
        if labels[start] >= 0:
            continue
        labels[start] = current
        stack = [start]
        while stack:
            i = stack.pop()
            for j in np.flatnonzero(adjacent[i] & (labels < 0)):
                labels[j] = current
                stack.append(j)
        current += 1
    return labels


@dataclass
class KnownPerson:
    person_id: int
    name: str | None
    centroid: np.ndarray
    count: int


class PersonBook:
    """The persons of the store, mirrored in memory by the single writer.

    `match` prefers an enrolled (named) person within the threshold, then the
    closest anonymous one; `None` means a new person is needed.
    """

    def __init__(self, persons, threshold: float):
        self.threshold = threshold
        self.persons: dict[int, KnownPerson] = {}
        for p in persons:
            self.persons[p.person_id] = KnownPerson(p.person_id, p.name, normalise(p.centroid), int(p.count))

    def match(self, vector: np.ndarray) -> int | None:
        vector = normalise(vector)
        best_named, best_anon = (None, np.inf), (None, np.inf)
        for p in self.persons.values():
            if p.centroid is None or p.centroid.shape != vector.shape:
                continue
            d = float(np.linalg.norm(p.centroid - vector))
            if p.name:
                if d < best_named[1]:
                    best_named = (p.person_id, d)
            elif d < best_anon[1]:
                best_anon = (p.person_id, d)
        if best_named[0] is not None and best_named[1] <= self.threshold:
            return best_named[0]
        if best_anon[0] is not None and best_anon[1] <= self.threshold:
            return best_anon[0]
        return None

    def absorbed(self, person_id: int, vector: np.ndarray, n: int) -> tuple[np.ndarray, int]:
        """Centroid and count of `person_id` after adding n faces whose mean identity is `vector`."""
        p = self.persons[person_id]
        total = p.count + n
        centroid = normalise(p.centroid * max(p.count, 1) + normalise(vector) * n) if total else p.centroid
        return centroid, total

    def set(self, person_id: int, name, centroid, count) -> None:
        self.persons[person_id] = KnownPerson(person_id, name, normalise(centroid), int(count))

    def refresh(self, person) -> None:
        """Take a store Person as it is now (the store computes counts and centroids)."""
        self.set(person.person_id, person.name, person.centroid, person.count)

    def reload(self, persons) -> None:
        self.persons = {}
        for p in persons:
            self.refresh(p)
