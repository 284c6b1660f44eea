"""`mien reembed`: a store's expression vectors recomputed from the features it keeps, no media read.

The store keeps each face's expression features (expression_features.py). A new
metric — a head trained on rated triplets (`mien train head`), or back to the fixed
vector the features give (fer-au-v2's or fer-au-478's) — is applied to them, the
pooled vectors of videos are pooled again the way the indexer pools them (per
person, else per track, in time order), and Store.replace_vectors swaps everything
in one transaction (revectors.py: a kill at any moment leaves the old store or the
new one; a re-run gives the same store).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np

from mien.errors import BadInputError

CHUNK = 20_000   # faces read per transaction while gathering


@dataclass
class ReembedSummary:
    faces: int
    encoder_before: str
    encoder_after: str
    seconds: float


def new_space(head_path, fixed: bool, features: str):
    """(the encoder name, embed(features) -> vectors, engine-record changes) of the target metric
    for a store keeping `features` (expression_features.VERSIONS): the fixed vector those features
    give (fer-au-v2's or fer-au-478's), or a head trained on such features."""
    if fixed:
        from mien.engine.faces import expression_fer_au as fer_au

        name, expression = fer_au.FIXED_OF_FEATURES[features]
        return name, fer_au.v2_vectors, {"expression": expression, "model": None}
    from mien.engine.faces.expression_head import DEFAULT_HEAD, load_head, space_name

    path = head_path or DEFAULT_HEAD
    head = load_head(path)
    if head.features_version != features:
        raise BadInputError(f"the head {path} reads the expression features {head.features_version!r}, the "
                            f"store keeps {features!r} (other AUs under the same names); train a head on "
                            "this store's features (mien train head --store ...), or go back to its fixed "
                            "vectors (--fixed)")
    return space_name(head), head.embed, {"expression": "fer-au-head", "model": (path, head.sha256)}


def pooled_vectors(store, ids: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """The pooled vector of every face: images pool to themselves; a video's faces are median-pooled
    per person (per track for faces without one) in time order, as the indexer does."""
    from mien.indexer.pooling import median_pool

    pooled = vectors.copy()
    kinds = {s.uri: s.kind for s in store.list_sources()}
    row = {int(f): i for i, f in enumerate(ids)}
    sequences: dict = {}
    for lo in range(0, len(ids), CHUNK):
        for rec in store.hit_records(ids[lo:lo + CHUNK]):
            if kinds.get(rec.source_uri) != "video":
                continue
            who = ("p", rec.person_id) if rec.person_id >= 0 else ("t", rec.track_id)
            sequences.setdefault((rec.source_uri, who), []).append(
                (rec.timestamp_ms, rec.track_id, row[rec.face_id]))
    for members in sequences.values():
        members.sort()
        at = [i for _, _, i in members]
        pooled[at] = median_pool(vectors[at])
    return pooled


def updated_encoders(encoders: dict, name: str, change: dict, features: str) -> dict:
    """The store's encoders with the new expression space and, in its engine record, the head file
    (and the features it keeps, which a re-embedding does not change)."""
    out = dict(encoders)
    out["expression"] = name
    raw = out.get("engine")
    if raw:
        from pathlib import Path

        record = json.loads(raw) if isinstance(raw, str) else dict(raw)
        record["expression"] = change["expression"]
        record["features"] = features
        models = dict(record.get("models") or {})
        models.pop("expression_head", None)
        if change["model"] is not None:
            path, sha = change["model"]
            path = Path(path).resolve()
            models["expression_head"] = {"path": str(path), "sha256": sha, "size": path.stat().st_size}
        record["models"] = models
        out["engine"] = json.dumps(record, sort_keys=True)
    return out


def reembed(store_dir, head_path=None, *, fixed: bool = False, progress=None) -> ReembedSummary:
    """Re-embed every face of the store at `store_dir` with `head_path` (default: the head mien
    ships), or with the fixed vector its features give (fer-au-v2's or fer-au-478's) when `fixed`."""
    from mien.engine.faces.engine_record import stored_features
    from mien.engine.store import Store

    start = time.perf_counter()
    with Store(store_dir, mode="w") as store:
        before = str(store.encoders.get("expression", ""))
        kept = stored_features(store.encoders)   # which features, not their values
        if kept is None:
            raise BadInputError(f"the store's expression encoder is {before!r}: only stores built with the "
                                "fer-au encoders keep the features a re-embedding needs (fer-au-478 stores "
                                "since it became the default)")
        name, embed, change = new_space(head_path, fixed, kept)
        ids = store.face_table()["face_id"]
        parts, missing = [], 0
        for lo in range(0, len(ids), CHUNK):
            feats, has = store.features(ids[lo:lo + CHUNK])
            missing += int((~has).sum())
            parts.append(feats)
            if progress:
                progress(min(lo + CHUNK, len(ids)), len(ids))
        if missing:
            raise BadInputError(
                f"{missing} of {len(ids)} faces were indexed without expression features (by a mien "
                "older than the features, or another encoder); re-index their sources "
                "(mien index --force ...) before re-embedding")
        features = np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)
        vectors = embed(features) if len(ids) else np.zeros((0, 16), np.float32)
        pooled = pooled_vectors(store, ids, vectors)
        store.replace_vectors(ids, vectors, pooled, updated_encoders(store.encoders, name, change, kept))
    return ReembedSummary(len(ids), before, name, time.perf_counter() - start)
