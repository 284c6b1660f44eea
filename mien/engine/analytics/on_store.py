"""The analytics commands' calls run in this process on a store directory (`mien tag ...
--store DIR`): the same calls, answering with the same classes, as the client the
commands use against a server (mien.clients.commands.analytics)."""

from __future__ import annotations

import os

from mien.engine.analytics.summaries import cluster_store, summarize_person
from mien.engine.analytics.tags import DEFAULT_THRESHOLD, create_tag, delete_tag, list_tags, tag_source, tag_store
from mien.errors import NotFoundError


class StoreAnalytics:
    """Runs the engine's analytics directly on the store at `store_dir`."""

    def __init__(self, store_dir: str):
        if not os.path.exists(os.path.join(store_dir, "data.mdb")):
            raise NotFoundError(f"no mien store at {store_dir} (index something into it first)")
        self.dir = store_dir

    def _open(self, mode: str = "r"):
        from mien.engine.store import Store

        return Store(self.dir, mode=mode)

    def create_tag(self, name, *, images, face_ids, threshold, replace, face_index, model_files):
        """model_files: EngineConfig's model-file fields that point at files moved since the
        store was built (None: where the store's engine record says)."""
        with self._open("w") as store:
            analyzer = None
            if images:
                from mien.engine.faces import EngineConfig, FaceAnalyzer
                from mien.engine.faces.engine_record import matching_store

                # the store's recorded engine; model_files point at model files that moved
                analyzer = FaceAnalyzer(matching_store(EngineConfig(**{k: v for k, v in model_files.items() if v}),
                                                       store.encoders))
            return create_tag(store, name, images=[(path, face_index) for path in images], face_ids=face_ids,
                              threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
                              analyzer=analyzer, replace=replace)

    def list_tags(self):
        with self._open() as store:
            return list_tags(store)

    def delete_tag(self, name):
        with self._open("w") as store:
            delete_tag(store, name)

    def tag_source(self, uri, tags, max_gap_ms, include_occluded=False):
        gap = -1 if max_gap_ms is None else (None if max_gap_ms < 0 else max_gap_ms)
        with self._open() as store:
            return tag_source(store, uri, tags, max_gap_ms=gap, include_occluded=include_occluded)

    def tag_store(self, tags, include_occluded=False):
        with self._open() as store:
            return tag_store(store, tags, include_occluded=include_occluded)

    @staticmethod
    def _thumbs(store, clusters):
        ids = {c.representative_face_id for c in clusters}
        return {i: store.get_thumbnail(i) for i in ids}

    def summarize(self, person, method, k, seed, thumbnails, include_occluded=False):
        with self._open() as store:
            summary = summarize_person(store, person, method=method, k=k, seed=seed,
                                       include_occluded=include_occluded)
            return summary, (self._thumbs(store, summary.clusters) if thumbnails else {})

    def cluster_store(self, k, sample, seed, thumbnails, include_occluded=False):
        with self._open() as store:
            result = cluster_store(store, k, sample=sample or 200_000, seed=seed,
                                   include_occluded=include_occluded)
            return result, (self._thumbs(store, result.clusters) if thumbnails else {})

    def close(self):
        pass
