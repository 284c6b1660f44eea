"""Collecting people's judgements of a store's faces: triplets to rate, and their answers.

The data engine behind `mien rate` and the web app's Rate page. A rater is shown three
of the store's faces and FEC's question; each answer is appended to a rated-triplet file
(rated.append_answer: FEC's format, crash-safe), which `mien train head --store` learns
from. What to ask:

- random: three faces drawn at random (coarse differences);
- one-class: three faces fer calls the same emotion (FEC's hard case: three smiles);
- active: where the store's metric is least sure: of many random candidates, the triplet
  on which the store's vectors and the fixed vectors of the stored features (fer-au-478's or -v2's)
  disagree, else the one whose closest pair is closest to the runner-up, so each answer
  teaches the most.

Faces are grouped (a person, else a source) and the groups dealt to FOLDS folds; a triplet
is drawn within one fold, so a face-disjoint evaluation of the answers loses none. Three
faces of one person, or of three, never two and one: identity would decide.
"""

from __future__ import annotations

import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mien.errors import BadInputError, NotFoundError
from mien.training.fec import TRIPLET_TYPES

MODES = ("random", "one-class", "active")
FOLDS = 5
CANDIDATES = 200        # random triplets an active draw chooses among
QUESTION = "Which face's expression is most unlike the other two?"


@dataclass
class Proposal:
    face_ids: tuple[int, int, int]
    type: str            # FEC's triplet type, from fer's dominant emotion of each face
    mode: str


class TripletSampler:
    """Draws triplets of a store's faces to rate; the answers go to one rated-triplet file."""

    def __init__(self, store, ratings_path, seed: int | None = None):
        self.store = store
        self.path = Path(ratings_path)
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()

    # -- what the store holds --------------------------------------------------------------
    def _faces(self) -> dict:
        table = self.store.face_table()
        ids = table["face_id"]
        if len(ids) < 3:
            raise NotFoundError("the store has fewer than 3 faces: nothing to rate yet")
        uris = table["uris"]
        groups = [f"person:{p}" if p >= 0 else f"source:{uris.get(int(s), s)}"
                  for p, s in zip(table["person_id"], table["source"])]
        folds = np.array([zlib.crc32(g.encode()) % FOLDS for g in groups])
        return {"ids": ids, "groups": np.array(groups), "folds": folds}

    def _emotions(self, ids) -> np.ndarray:
        """fer's dominant emotion of each face (from its features; -1 where it has none)."""
        from mien.engine.faces import expression_features as xf

        feats, has = self.store.features(ids)
        out = np.full(len(ids), -1)
        if has.any():
            out[has] = np.argmax(xf.part(feats[has], "log_probs"), axis=1)
        return out

    @staticmethod
    def fec_type(emotions) -> str:
        return TRIPLET_TYPES[len(set(int(e) for e in emotions)) - 1]

    # -- drawing ---------------------------------------------------------------------------------
    def _draw_one(self, faces: dict, emotions: np.ndarray | None) -> tuple[int, int, int] | None:
        rng = self._rng
        ids, groups, folds = faces["ids"], faces["groups"], faces["folds"]
        for _ in range(200):
            first = int(rng.integers(len(ids)))
            same = folds == folds[first]
            if emotions is not None:
                same &= emotions == emotions[first]
            same_person = rng.random() < 0.5
            if same_person:
                pool = np.flatnonzero(same & (groups == groups[first]))
            else:
                pool = np.flatnonzero(same & (groups != groups[first]))
            pool = pool[pool != first]
            if len(pool) < 2:
                continue
            two = rng.choice(pool, 2, replace=False)
            if not same_person and groups[two[0]] == groups[two[1]]:
                continue
            return first, int(two[0]), int(two[1])
        return None

    def propose(self, mode: str = "random", rater: str | None = None) -> Proposal:
        if mode not in MODES:
            raise BadInputError(f"mode {mode!r}; expected one of {', '.join(MODES)}")
        with self._lock:
            faces = self._faces()
            emotions = self._emotions(faces["ids"])
            seen = self.answered_by(rater) if rater else set()
            picks = []
            for _ in range(CANDIDATES if mode == "active" else 20):
                trio = self._draw_one(faces, emotions if mode == "one-class" else None)
                if trio is None:
                    continue
                ids = tuple(int(faces["ids"][i]) for i in trio)
                if frozenset(ids) not in seen:
                    picks.append((ids, tuple(emotions[list(trio)])))
                if mode != "active" and picks:
                    break
            if not picks:
                raise NotFoundError(f"no {mode} triplet left to rate in this store"
                                    + (f" for {rater}" if rater else ""))
            ids, emo = self._least_sure(picks) if mode == "active" else picks[0]
            return Proposal(ids, self.fec_type(emo), mode)

    def _least_sure(self, picks):
        """The candidate the store's metric is least sure of (see the module doc)."""
        from mien.engine.faces import expression_fer_au as fer_au
        from mien.training.head import odd_one_out

        ids = sorted({i for trio, _ in picks for i in trio})
        row = {i: k for k, i in enumerate(ids)}
        vectors = self.store.vectors(ids)
        feats, has = self.store.features(ids)
        fixed = np.full_like(vectors, np.nan)
        if has.any():
            fixed[has] = fer_au.v2_vectors(feats[has])

        def score(pick):
            rows = [row[i] for i in pick[0]]
            v = vectors[rows]
            d = sorted(float(((v[a] - v[b]) ** 2).sum()) for a, b in ((0, 1), (0, 2), (1, 2)))
            disagree = not np.isnan(fixed[rows]).any() and odd_one_out(v) != odd_one_out(fixed[rows])
            return (not disagree, d[1] - d[0])

        return min(picks, key=score)

    # -- answers ---------------------------------------------------------------------------------
    def face_refs(self, face_ids):
        """The faces as a rated-triplet file names them (source URL, #t= for a video, box fractions)."""
        from mien.training.rated import media_size, store_face_ref

        kinds = {s.uri: s.kind for s in self.store.list_sources()}
        records = self.store.get_faces(list(face_ids), identity=False)
        out = []
        for r in records:
            try:
                size = media_size(r.source_uri)
            except (BadInputError, OSError) as exc:
                raise NotFoundError(f"face {r.face_id}: its source {r.source_uri} cannot be read ({exc}); "
                                    "a rating names a face by its picture") from None
            out.append(store_face_ref(r, kinds.get(r.source_uri, "image"), size))
        return tuple(out)

    def answer(self, face_ids, kind: str, rater: str, answer) -> bool:
        """Record one answer (1, 2 or 3: the odd face; 0: can't tell, recorded nowhere). True if written."""
        from mien.training.rated import append_answer

        if str(answer).strip() == "0":
            return False
        if len(face_ids) != 3 or len(set(face_ids)) != 3:
            raise BadInputError("an answer is about three different faces")
        refs = self.face_refs(face_ids)
        with self._lock:
            append_answer(self.path, refs, kind, rater, answer)
        return True

    def answer_count(self, rater: str) -> int:
        """How many answers `rater` has in the ratings file."""
        from mien.training.rated import read_rated

        if not self.path.is_file():
            return 0
        triplets, _ = read_rated([self.path])
        return sum(r == rater for t in triplets for r, _ in t.answers)

    def answered_by(self, rater: str) -> set:
        """The triplets (frozensets of face ids) `rater` already answered, as far as the store still
        holds their faces."""
        from mien.training.rated import read_rated, store_face_ids

        if not self.path.is_file():
            return set()
        triplets, _ = read_rated([self.path])
        mine = [t for t in triplets if any(r == rater for r, _ in t.answers)]
        found = store_face_ids(self.store, {f.key: f for t in mine for f in t.faces}.values())
        return {frozenset(found[f.key][0] for f in t.faces) for t in mine if all(f.key in found for f in t.faces)}
