"""Mien.SuggestMerges: pairs of persons that may be one human, for a person to accept or reject.

Candidates come from the identity index: each person's identity centroid is
searched among the stored faces, and the persons of its nearest faces are its
candidates (so the cost grows with persons x k, not persons squared). A pair
is measured as the indexer links: the median squared distance between their
faces' identity vectors (up to SAMPLE of each), and suggested when that is
under the store's linking threshold loosened by SUGGEST_FACTOR. The indexer
links only what it is sure of (within the threshold and a margin closer than
anyone else: a split is cheap to merge, a wrong merge is not), so what it left
apart near its threshold is what a person should look at. Pairs a user
rejected (cannot-link, RejectMerge) and pairs that share an image or frame
(two faces of one frame are two people) are left out.
"""

from __future__ import annotations

import numpy as np

SUGGEST_FACTOR = 1.25
NEIGHBOURS = 16
SAMPLE = 64


def _unit(v) -> np.ndarray | None:
    v = np.asarray(v, dtype=np.float32).reshape(-1)
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else None


def suggest_merges(ctx, limit: int, only: int | None, should_stop=None) -> tuple[list, float]:
    """([(person a, person b, distance)], the distance limit), nearest first; only: pairs with this person."""
    store = ctx.store
    dim = ctx.identity_dim()
    rules = store.person_rules() or {}
    if rules.get("threshold"):
        threshold = float(rules["threshold"])
    else:   # no index run recorded its rules yet: the identity model's calibrated threshold
        from mien.indexer.persons import default_threshold

        threshold = default_threshold(store.encoders or {})
    max_distance = threshold * SUGGEST_FACTOR
    persons = {p.person_id: p for p in store.list_persons()}
    units = {pid: u for pid, p in persons.items()
             if p.count and (u := _unit(p.centroid)) is not None and (not dim or len(u) == dim)}
    rejected = store.cannot_links()
    faces: dict[int, np.ndarray] = {}

    def identities(pid: int) -> np.ndarray:
        if pid not in faces:
            faces[pid] = store.person_identities(pid)[1][:SAMPLE].astype(np.float32)
        return faces[pid]

    pairs: dict[tuple[int, int], float] = {}
    for pid in ([only] if only is not None else sorted(units)):
        if pid not in units:
            continue
        if should_stop is not None:
            should_stop()
        for hit in store.search_identity(units[pid], NEIGHBOURS, records=True):
            other = hit.record.person_id
            key = (min(pid, other), max(pid, other))
            if other < 0 or other == pid or other not in units or key in pairs or key in rejected:
                continue
            a, b = identities(pid), identities(other)
            if not len(a) or not len(b):
                continue
            distance = float(np.median(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)))
            if distance <= max_distance:
                pairs[key] = distance
    out = []
    for (a, b), distance in sorted(pairs.items(), key=lambda kv: (kv[1], kv[0])):
        if len(out) == limit:
            break
        if store.frame_conflicts(store.person_face_ids(a), store.person_face_ids(b), 1):
            continue  # they appear together: two people, whatever their faces look like
        out.append((persons[a], persons[b], distance))
    return out, max_distance
