"""Custom expression tags: create/list/delete, tag one video, tag the whole store.

A tag is a name plus reference expression vectors (from face images or indexed
faces). Creating one only stores vectors; nothing is retrained. A face carries a
tag when its pooled (3-frame median) expression is within the tag's threshold of
any reference: squared L2 on unit vectors, default 0.5 (docs/interfaces.md).
"""

from __future__ import annotations

import re
import time

import numpy as np

from mien.engine.analytics.scan import face_batches, occluded_ids, person_names
from mien.engine.analytics.segments import merge_segments, sample_period_ms
from mien.errors import AlreadyExistsError, BadInputError, EncoderMismatchError, NotFoundError
from mien.results.analytics import PersonTagCount, PersonTagResult, SourceTagReport, StoreTagReport

DEFAULT_THRESHOLD = 0.5
MAX_DISTANCE = 4.0  # squared L2 between unit vectors never exceeds 4
MAX_REFERENCES = 256
_NAME = re.compile(r"^[^\x00-\x1f/]{1,64}$")


# ---------------------------------------------------------------- tag CRUD


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name.strip()) or name != name.strip():
        raise BadInputError(
            f"bad tag name {name!r}: 1-64 characters, no slash, no control characters, "
            "no surrounding spaces"
        )
    return name


def _check_threshold(threshold: float) -> float:
    threshold = float(threshold)
    if not (0.0 < threshold <= MAX_DISTANCE):
        raise BadInputError(
            f"tag threshold {threshold} outside (0, {MAX_DISTANCE}] (squared L2 on unit vectors)"
        )
    return threshold


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if np.any(norms < 1e-6) or not np.all(np.isfinite(vectors)):
        raise BadInputError("reference expression vector is zero or not finite")
    return vectors / norms


def expression_from_image(image, analyzer, face_index: int | None = None) -> np.ndarray:
    """Expression vector of one face of an image (bytes, path or BGR array).

    Faces are numbered left to right (as FaceQuery.face_index in the gRPC API);
    face_index None needs exactly one usable face. BadInputError otherwise.
    """
    from mien.engine.faces import load_image

    if not isinstance(image, np.ndarray):
        image = load_image(image)
    faces = [f for f in analyzer.analyze(image, identity=False) if f.expression is not None]
    faces.sort(key=lambda f: ((f.bbox[0] + f.bbox[2]) / 2, (f.bbox[1] + f.bbox[3]) / 2))
    if not faces:
        raise BadInputError("no usable face in the reference image (none found or all failed FaceQA)",
                            reason="NO_FACE")
    if face_index is None and len(faces) > 1:
        raise BadInputError(
            f"the reference image holds {len(faces)} faces; choose one with face_index 0..{len(faces) - 1}",
            reason="MULTIPLE_FACES", metadata={"faces": len(faces)}, field="face_index")
    index = face_index or 0
    if not 0 <= index < len(faces):
        raise BadInputError(f"face_index {index} is out of range: the image holds {len(faces)} face(s)",
                            reason="FACE_INDEX_OUT_OF_RANGE", metadata={"faces": len(faces)}, field="face_index")
    return np.asarray(faces[index].expression, dtype=np.float32)


def create_tag(
    store,
    name: str,
    *,
    images=(),
    face_ids=(),
    vectors=None,
    threshold: float = DEFAULT_THRESHOLD,
    analyzer=None,
    replace: bool = False,
    pictures=(),
):
    """Create (or with replace=True overwrite) a tag from reference faces and store it.

    images: image bytes, paths or BGR arrays, or (image, face_index) pairs, each
    holding one usable face unless face_index says which (needs `analyzer`, a
    FaceAnalyzer with the store's expression encoder);
    face_ids: indexed faces whose raw expression vectors become references;
    vectors: raw (R, 16) expression vectors. At least one reference is needed.
    pictures: JPEG pictures of references that are not stored faces, kept with the tag.
    """
    from mien.engine.store import Tag

    _check_name(name)
    threshold = _check_threshold(threshold)
    if not replace and _tag_exists(store, name):
        raise AlreadyExistsError(f"tag {name!r} already exists (delete it first or replace it)",
                                 reason="TAG_EXISTS", resource=("mien.v1.Tag", name))

    refs: list[np.ndarray] = []
    images = list(images or ())
    if images:
        if analyzer is None:
            raise BadInputError("reference images need a face analyzer")
        for key in ("expression", "detector_min_face"):
            want = (store.encoders or {}).get(key)
            have = analyzer.encoders.get(key)
            if want and have and want != have:
                raise EncoderMismatchError(
                    f"store {key} is {want!r}, the analyzer's is {have!r} "
                    "(build it with engine_record.matching_store(EngineConfig(...), store.encoders))"
                )
        for image in images:
            index = None
            if isinstance(image, tuple):
                image, index = image
            refs.append(expression_from_image(image, analyzer, index))
    face_ids = [int(f) for f in (face_ids or ())]
    for face_id in face_ids:
        store.get_face(face_id)  # NotFoundError names the missing face
    if face_ids:
        refs.extend(np.asarray(store.vectors(face_ids, kind="expression"), dtype=np.float32))
    if vectors is not None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim == 1:
            vectors = vectors[None, :]
        refs.extend(vectors)
    if not refs:
        raise BadInputError("a tag needs at least one reference face (image, face id or vector)")
    if len(refs) > MAX_REFERENCES:
        raise BadInputError(f"a tag holds at most {MAX_REFERENCES} references, got {len(refs)}")
    matrix = np.stack(refs).astype(np.float32)
    dim = (store.encoders or {}).get("expression_dim", matrix.shape[1])
    if matrix.ndim != 2 or matrix.shape[1] != dim:
        raise BadInputError(f"reference vectors must be {dim}-d, got shape {matrix.shape}")
    tag = Tag(
        name=name,
        vectors=_unit(matrix),
        threshold=threshold,
        reference_face_ids=face_ids,
        created_ms=int(time.time() * 1000),
        reference_pictures=[bytes(p) for p in pictures if p],
    )
    store.put_tag(tag)
    return tag


def set_threshold(store, name: str, threshold: float):
    """Change a tag's distance threshold, keeping its references; the tag."""
    tag = store.get_tag(name)  # NotFoundError for an unknown tag
    tag.threshold = _check_threshold(threshold)
    store.put_tag(tag)
    return tag


def _tag_exists(store, name: str) -> bool:
    try:
        return store.get_tag(name) is not None
    except NotFoundError:
        return False


def list_tags(store) -> list:
    return sorted(store.list_tags(), key=lambda t: t.name)


def delete_tag(store, name: str) -> None:
    if not _tag_exists(store, name):
        raise NotFoundError(f"no tag named {name!r}", reason="TAG_NOT_FOUND", resource=("mien.v1.Tag", name))
    store.delete_tag(name)


def _resolve_tags(store, tags) -> list:
    """Tag objects from names / Tag objects / None (= every stored tag)."""
    if tags is None:
        found = list_tags(store)
        if not found:
            raise NotFoundError("the store holds no tags; create one first")
        return found
    out = []
    for tag in tags:
        if isinstance(tag, str):
            if not _tag_exists(store, tag):
                raise NotFoundError(f"no tag named {tag!r}", reason="TAG_NOT_FOUND", resource=("mien.v1.Tag", tag))
            tag = store.get_tag(tag)
        out.append(tag)
    if not out:
        raise BadInputError("no tags given")
    return out


# ---------------------------------------------------------------- distances


def tag_distances(vectors: np.ndarray, tags: list) -> np.ndarray:
    """(N, T) squared-L2 distance of each vector to the nearest reference of each tag.

    One (N x R_total) matrix product for all tags at once, then a min per tag's
    columns: the whole cost is tags x faces x 16 multiply-adds.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    refs = np.concatenate([np.asarray(t.vectors, dtype=np.float32).reshape(-1, vectors.shape[1]) for t in tags])
    bounds = np.cumsum([0] + [np.asarray(t.vectors).reshape(-1, vectors.shape[1]).shape[0] for t in tags])
    sq = (
        np.einsum("ij,ij->i", vectors, vectors)[:, None]
        + np.einsum("ij,ij->i", refs, refs)[None, :]
        - 2.0 * (vectors @ refs.T)
    )
    np.maximum(sq, 0.0, out=sq)
    out = np.empty((vectors.shape[0], len(tags)), dtype=np.float32)
    for t in range(len(tags)):
        out[:, t] = sq[:, bounds[t] : bounds[t + 1]].min(axis=1)
    return out


def _within(distances: np.ndarray, tags: list) -> np.ndarray:
    thresholds = np.asarray([float(t.threshold) for t in tags], dtype=np.float32)
    return distances <= thresholds[None, :]


# ---------------------------------------------------------------- one video


def tag_source(store, uri: str, tags=None, *, max_gap_ms: int | None = -1,
               include_occluded: bool = False) -> SourceTagReport:
    """Tag one indexed source: per person and tag, time segments and appearance rate.

    Faces are grouped by person (unknown faces by track). max_gap_ms: tagged samples
    further apart than this start a new segment; -1 (default) = twice the video's
    sample period, None = never split on gaps. Faces FaceQA flagged as occluded (a hand
    over the mouth: their expression is guessed) are left out unless include_occluded.
    """
    source = store.get_source(uri)
    if source is None:
        raise NotFoundError(f"no indexed source {uri!r}", reason="SOURCE_NOT_FOUND",
                            resource=("mien.v1.Source", uri))
    tags = _resolve_tags(store, tags)
    faces = store.faces_of_source(uri)
    period = sample_period_ms([f.timestamp_ms for f in faces])  # of every sample, occluded or not
    n_all = len(faces)
    if not include_occluded:
        faces = [f for f in faces if not getattr(f, "occluded", False)]
    if max_gap_ms == -1:
        max_gap_ms = 2 * period if period > 0 else None
    names = person_names(store)

    groups: dict[tuple[int, int], list] = {}
    for face in faces:  # faces_of_source is in time order, so groups are first-seen order
        key = (face.person_id, -1) if face.person_id >= 0 else (-1, face.track_id)
        groups.setdefault(key, []).append(face)

    results: list[PersonTagResult] = []
    for (person_id, track_id), members in groups.items():
        pooled = np.stack([np.asarray(f.pooled, dtype=np.float32) for f in members])
        dist = tag_distances(pooled, tags)
        hit = _within(dist, tags)
        ts = [f.timestamp_ms for f in members]
        ids = [f.face_id for f in members]
        for t, tag in enumerate(tags):
            tagged = int(hit[:, t].sum())
            results.append(
                PersonTagResult(
                    tag=tag.name,
                    person_id=person_id,
                    person_name=names.get(person_id) if person_id >= 0 else None,
                    track_id=track_id,
                    faces=len(members),
                    tagged=tagged,
                    rate=tagged / len(members),
                    segments=merge_segments(ts, ids, dist[:, t], hit[:, t], max_gap_ms=max_gap_ms),
                )
            )
    return SourceTagReport(
        uri=uri,
        duration_ms=int(getattr(source, "duration_ms", 0) or 0),
        faces=len(faces),
        sample_period_ms=period,
        tags=[t.name for t in tags],
        results=results,
        occluded_left_out=n_all - len(faces),
    )


# ---------------------------------------------------------------- whole store


def tag_store(store, tags=None, *, chunk: int = 65536, progress=None,
              include_occluded: bool = False) -> StoreTagReport:
    """Which persons show each tag and how often, over every face of the store.

    Vectorised: faces are read in batches (one pass over the records) and each
    batch is compared with all tags' references in one matrix product. Unknown
    faces count as person -1. Occluded faces are left out unless include_occluded.
    """
    tags = _resolve_tags(store, tags)
    names = person_names(store)
    n_tags = len(tags)
    total_faces = 0
    # per-person accumulators, keyed by person id; arrays per batch keep it vectorised
    totals: dict[int, int] = {}
    tagged: dict[int, np.ndarray] = {}
    best_d: dict[int, np.ndarray] = {}
    best_id: dict[int, np.ndarray] = {}
    skip = None if include_occluded else occluded_ids(store)

    for ids, persons, vecs in face_batches(store, chunk, skip=skip):
        dist = tag_distances(vecs, tags)
        hit = _within(dist, tags)
        masked = np.where(hit, dist, np.inf)
        keys, row = np.unique(persons, return_inverse=True)
        rows = keys.size
        counts = np.bincount(row, minlength=rows)
        hits = np.stack([np.bincount(row, weights=hit[:, t], minlength=rows) for t in range(n_tags)], 1)
        # best tagged face per person and tag: sort by (person, distance), take each person's first
        b_d = np.full((rows, n_tags), np.inf)
        b_id = np.full((rows, n_tags), -1, np.int64)
        for t in range(n_tags):
            order = np.lexsort((masked[:, t], row))
            first = np.ones(order.size, bool)
            first[1:] = row[order][1:] != row[order][:-1]
            pick = order[first]
            b_d[row[pick], t] = masked[pick, t]
            b_id[row[pick], t] = np.where(np.isfinite(masked[pick, t]), ids[pick], -1)
        for r, key in enumerate(keys.tolist()):
            if key not in totals:
                totals[key] = 0
                tagged[key] = np.zeros(n_tags, np.int64)
                best_d[key] = np.full(n_tags, np.inf)
                best_id[key] = np.full(n_tags, -1, np.int64)
            totals[key] += int(counts[r])
            tagged[key] += hits[r].astype(np.int64)
            better = b_d[r] < best_d[key]
            best_d[key][better] = b_d[r][better]
            best_id[key][better] = b_id[r][better]
        total_faces += len(ids)
        if progress is not None:
            progress(total_faces)

    out: list[PersonTagCount] = []
    for t, tag in enumerate(tags):
        ranked = sorted((k for k in totals if tagged[k][t] > 0), key=lambda k: (-tagged[k][t], k))
        for pid in ranked:
            out.append(
                PersonTagCount(
                    tag=tag.name,
                    person_id=int(pid),
                    person_name=names.get(pid) if pid >= 0 else None,
                    faces=totals[pid],
                    tagged=int(tagged[pid][t]),
                    rate=float(tagged[pid][t] / totals[pid]),
                    best_distance=float(best_d[pid][t]),
                    best_face_id=int(best_id[pid][t]),
                )
            )
    return StoreTagReport(
        faces=total_faces,
        tags=[t.name for t in tags],
        tagged={tag.name: int(sum(tagged[k][t] for k in tagged)) for t, tag in enumerate(tags)},
        persons=out,
        occluded_left_out=0 if skip is None else len(skip),
    )
