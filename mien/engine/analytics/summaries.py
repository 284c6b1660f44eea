"""Expression summaries: the dominant expressions of one person, and of the corpus.

Per person: k-means (K = 8) or agglomerative Ward (N = 10, Euclidean) over the
person's expression vectors; per cluster its size and the face closest to its
centre. Corpus-wide: k-means (K = 100) over all faces or a seeded sample.
Everything is deterministic for a fixed seed.
"""

from __future__ import annotations

import warnings

import numpy as np

from mien.engine.analytics.scan import all_face_ids, occluded_ids, resolve_person, vectors_in_chunks, without
from mien.errors import BadInputError
from mien.results.analytics import Cluster, PersonSummary, StoreClusters

METHODS = ("kmeans", "ward")
DEFAULT_K = {"kmeans": 8, "ward": 10}
WARD_MAX = 4000        # Ward is O(n^2) in memory: fit on a seeded sample beyond this
KMEANS_FIT_MAX = 20000  # k-means fits on a seeded sample beyond this, then assigns all
MAX_K = 1000


def _check_k(method: str, k: int | None) -> tuple[str, int]:
    method = (method or "kmeans").lower()
    if method in ("agglomerative", "agglo"):
        method = "ward"
    if method not in METHODS:
        raise BadInputError(f"unknown summary method {method!r}; use one of {', '.join(METHODS)}")
    k = DEFAULT_K[method] if not k else int(k)
    if k < 1 or k > MAX_K:
        raise BadInputError(f"k must be in 1..{MAX_K}, got {k}")
    return method, k


def _distinct_count(x: np.ndarray, cap: int) -> int:
    """Distinct rows, counted only up to `cap` (all we need to bound k)."""
    if len(x) == 0:
        return 0
    head = np.unique(np.round(x[: max(cap * 50, 1000)], 6), axis=0).shape[0]
    if head >= cap or len(x) <= max(cap * 50, 1000):
        return int(head)
    return int(np.unique(np.round(x, 6), axis=0).shape[0])


def _kmeans_labels(x: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(labels, centres). Fits on a seeded sample when large, then assigns every row."""
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(seed)
    fit = x if len(x) <= KMEANS_FIT_MAX else x[np.sort(rng.choice(len(x), KMEANS_FIT_MAX, replace=False))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # near-duplicate vectors make sklearn warn, harmlessly
        model = KMeans(n_clusters=k, n_init=3, random_state=seed, max_iter=100).fit(fit)
    return _assign(x, model.cluster_centers_.astype(np.float32))


def _ward_labels(x: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.cluster import AgglomerativeClustering

    rng = np.random.default_rng(seed)
    fit = x if len(x) <= WARD_MAX else x[np.sort(rng.choice(len(x), WARD_MAX, replace=False))]
    labels = AgglomerativeClustering(n_clusters=k, linkage="ward", metric="euclidean").fit_predict(fit)
    centres = np.stack([fit[labels == c].mean(axis=0) for c in range(k)]).astype(np.float32)
    if fit is x:
        return labels, centres
    return _assign(x, centres)  # beyond the sample: each face joins its nearest Ward centre


def _assign(x: np.ndarray, centres: np.ndarray, chunk: int = 65536):
    labels = np.empty(len(x), dtype=np.int64)
    cc = np.einsum("ij,ij->i", centres, centres)
    for s in range(0, len(x), chunk):
        part = x[s : s + chunk]
        labels[s : s + chunk] = np.argmin(cc[None, :] - 2.0 * part @ centres.T, axis=1)
    return labels, centres


def _clusters(x: np.ndarray, ids: np.ndarray, labels: np.ndarray, closest: int) -> list[Cluster]:
    """Clusters sorted by size (ties: smallest representative id), each with its closest faces."""
    out = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        centre = x[members].mean(axis=0)
        d = ((x[members] - centre) ** 2).sum(axis=1)
        order = np.lexsort((ids[members], d))[: max(closest, 1)]
        out.append(
            Cluster(
                index=0,
                size=int(members.size),
                share=float(members.size / len(x)),
                centre=centre.astype(np.float32),
                representative_face_id=int(ids[members][order[0]]),
                representative_distance=float(d[order[0]]),
                closest_face_ids=[int(i) for i in ids[members][order]],
            )
        )
    out.sort(key=lambda c: (-c.size, c.representative_face_id))
    for i, cluster in enumerate(out):
        cluster.index = i
    return out


def cluster_vectors(x, ids, *, method: str = "kmeans", k: int | None = None, seed: int = 0,
                    closest: int = 1) -> tuple[str, int, list[Cluster]]:
    """Cluster raw vectors; returns (method, k used, clusters). k is capped at the distinct rows."""
    method, k_req = _check_k(method, k)
    x = np.asarray(x, dtype=np.float32)
    ids = np.asarray(ids, dtype=np.int64)
    if len(x) == 0:
        return method, 0, []
    k = min(k_req, _distinct_count(x, k_req))  # more clusters than distinct faces is meaningless
    if k <= 1:
        labels = np.zeros(len(x), dtype=np.int64)
    elif method == "kmeans":
        labels, _ = _kmeans_labels(x, k, seed)
    else:
        labels, _ = _ward_labels(x, k, seed)
    clusters = _clusters(x, ids, labels, closest)
    return method, len(clusters), clusters


def summarize_person(store, person, *, method: str = "kmeans", k: int | None = None,
                     seed: int = 0, kind: str = "expression", closest: int = 1,
                     include_occluded: bool = False) -> PersonSummary:
    """Dominant expressions of one person (id or name). k defaults to 8 (kmeans) / 10 (ward).

    A person with fewer distinct faces than k gets one cluster per distinct face;
    a person without faces gets an empty summary. Faces FaceQA flagged as occluded
    are left out unless include_occluded.
    """
    method, k_req = _check_k(method, k)
    found = resolve_person(store, person)
    ids = np.asarray(store.person_face_ids(found.person_id), dtype=np.int64)
    n_all = int(ids.size)
    if not include_occluded:
        ids = without(ids, occluded_ids(store))
    x = np.concatenate([v for _, v in vectors_in_chunks(store, ids, kind)]) if ids.size else np.zeros((0, 16), np.float32)
    method, k_used, clusters = cluster_vectors(x, ids, method=method, k=k_req, seed=seed, closest=closest)
    return PersonSummary(
        person_id=found.person_id,
        person_name=found.name,
        method=method,
        k_requested=k_req,
        k=k_used,
        faces=int(ids.size),
        seed=seed,
        clusters=clusters,
        occluded_left_out=n_all - int(ids.size),
    )


def cluster_store(store, k: int = 100, *, sample: int = 200_000, seed: int = 0,
                  closest: int = 5, kind: str = "expression", include_occluded: bool = False) -> StoreClusters:
    """Corpus-wide k-means: K clusters over all faces, or a seeded sample of `sample` faces.

    Sizes and shares are over the clustered faces; each cluster lists its `closest`
    faces to the centre for browsing. Occluded faces are left out unless include_occluded.
    """
    if sample < 1:
        raise BadInputError(f"sample must be positive, got {sample}")
    if closest < 1 or closest > 100:
        raise BadInputError(f"closest must be in 1..100, got {closest}")
    _, k_req = _check_k("kmeans", k)
    ids = all_face_ids(store)
    n_all = int(ids.size)
    if not include_occluded:
        ids = without(ids, occluded_ids(store))
    total = int(ids.size)
    if total > sample:
        rng = np.random.default_rng(seed)
        ids = np.sort(rng.choice(ids, sample, replace=False))
    x = np.concatenate([v for _, v in vectors_in_chunks(store, ids, kind)]) if ids.size else np.zeros((0, 16), np.float32)
    _, k_used, clusters = cluster_vectors(x, ids, method="kmeans", k=k_req, seed=seed, closest=closest)
    return StoreClusters(faces=total, sampled=int(ids.size), k_requested=k_req, k=k_used,
                         seed=seed, clusters=clusters, occluded_left_out=n_all - total)
