"""Python client of the Analytics gRPC service.

Answers come back as the reply types of mien.results.analytics, the classes the
engine's analytics return in-process too (mien.engine.analytics), so the CLI, the
pictures and in-process callers share one shape wherever the work ran. Every
method takes `timeout=` (seconds; default the client's) and a failed call raises
mien.clients.MienError, as the search Client's do.
"""

from __future__ import annotations

import os
from pathlib import Path

import grpc
import numpy as np

from mien.clients.channels import auth_metadata, open_channel
from mien.clients.errors import TranslatingStub
from mien.filenames import escape
from mien.results.analytics import (
    Cluster,
    PersonSummary,
    PersonTagCount,
    PersonTagResult,
    Segment,
    SourceTagReport,
    StoreClusters,
    StoreTagReport,
    Tag,
)
from mien.v1 import analytics_pb2, analytics_pb2_grpc, common_pb2

DEFAULT_TARGET = "127.0.0.1:50051"
PAGE = 500          # list rows per call
CLUSTER_PAGE = 20   # clusters per call when they carry thumbnails (up to 100 JPEGs each)
_METHODS = {"kmeans": analytics_pb2.SUMMARY_METHOD_KMEANS, "ward": analytics_pb2.SUMMARY_METHOD_WARD}


def default_target() -> str:
    return os.environ.get("MIEN_SERVER") or DEFAULT_TARGET


class AnalyticsClient:
    """Calls the Analytics service on `target` ("host:port") or an existing channel.

    token: bearer token sent as "authorization: Bearer <token>" (default $MIEN_TOKEN).
    """

    def __init__(self, target_or_channel=None, *, token: str | None = None, tls=None,
                 timeout: float = 600.0):
        """tls: True (system roots), a CA certificate PEM path or bytes, or None (plaintext).
        target_or_channel may also be a mien.clients.Client, whose channel is shared."""
        metadata = auth_metadata(token)
        if hasattr(target_or_channel, "_channel") and isinstance(target_or_channel._channel, grpc.Channel):
            # a mien.clients.Client: share its channel and, unless told otherwise, its token
            if token is None:
                metadata = target_or_channel.metadata
            target_or_channel = target_or_channel._channel
        if isinstance(target_or_channel, grpc.Channel):
            self._channel, self._own = target_or_channel, False
        else:
            self._channel = open_channel(target_or_channel or default_target(), tls)
            self._own = True
        self._metadata = metadata
        self._timeout = timeout
        self.stub = TranslatingStub(analytics_pb2_grpc.AnalyticsStub(self._channel))

    def close(self) -> None:
        if self._own:
            self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _call(self, method: str, request, timeout: float | None = None):
        return getattr(self.stub, method)(request, timeout=self._timeout if timeout is None else timeout,
                                          metadata=self._metadata)

    # -- tags -----------------------------------------------------------------
    def create_tag(self, name: str, *, images=(), face_ids=(), vectors=(), threshold: float | None = None,
                   replace: bool = False, face_index: int | None = None, timeout: float | None = None) -> Tag:
        """images: paths or bytes (face_index picks a face in multi-face images)."""
        refs = []
        for image in images:
            data = Path(image).read_bytes() if isinstance(image, (str, Path)) else bytes(image)
            ref = common_pb2.FaceQuery(image=common_pb2.ImageInput(data=data))
            if face_index is not None:
                ref.face_index = face_index
            refs.append(ref)
        refs += [common_pb2.FaceQuery(face_id=int(f)) for f in face_ids]
        refs += [common_pb2.FaceQuery(vector=common_pb2.Vector(values=np.asarray(v, np.float32).tolist()))
                 for v in vectors]
        request = analytics_pb2.CreateTagRequest(name=name, references=refs, replace=replace)
        if threshold is not None:
            request.threshold = threshold
        return _tag(self._call("CreateTag", request, timeout))

    def list_tags(self, *, timeout: float | None = None) -> list[Tag]:
        """Every tag by name (page after page)."""
        out, token = [], ""
        while True:
            r = self._call("ListTags", analytics_pb2.ListTagsRequest(page_size=PAGE, page_token=token), timeout)
            out += [_tag(t) for t in r.tags]
            token = r.next_page_token
            if not token:
                return out

    def delete_tag(self, name: str, *, timeout: float | None = None) -> None:
        self._call("DeleteTag", analytics_pb2.DeleteTagRequest(name=name), timeout)

    def tag_source(self, uri: str, tags=None, *, max_gap_ms: int | None = None, include_occluded: bool = False,
                   timeout: float | None = None) -> SourceTagReport:
        """include_occluded: also tag faces FaceQA flagged as occluded (left out by default)."""
        request = analytics_pb2.TagSourceRequest(source_uri=escape(str(uri)), tags=list(tags or ()),
                                                 include_occluded=include_occluded)
        if max_gap_ms is not None:
            request.max_gap_ms = max_gap_ms
        r = self._call("TagSource", request, timeout)
        return SourceTagReport(
            uri=r.source_uri, duration_ms=r.duration_ms, faces=r.face_count,
            sample_period_ms=r.sample_period_ms, tags=list(r.tags), occluded_left_out=r.occluded_left_out,
            results=[
                PersonTagResult(
                    tag=p.tag, person_id=p.person_id, person_name=p.person_name or None,
                    track_id=p.track_id, faces=p.face_count, tagged=p.tagged_count, rate=p.rate,
                    segments=[Segment(s.start_ms, s.end_ms, s.best_distance, s.best_face_id, s.face_count)
                              for s in p.segments],
                )
                for p in r.results
            ],
        )

    def tag_store(self, tags=None, *, include_occluded: bool = False,
                  timeout: float | None = None) -> StoreTagReport:
        """The whole report, fetched a page of person rows at a time (no reply near the
        message-size limit however many persons); include_occluded: as tag_source."""
        rows, token = [], ""
        while True:
            r = self._call("TagStore", analytics_pb2.TagStoreRequest(tags=list(tags or ()), page_size=PAGE,
                                                                     page_token=token,
                                                                     include_occluded=include_occluded), timeout)
            rows += list(r.persons)
            token = r.next_page_token
            if not token:
                break
        return StoreTagReport(
            faces=r.face_count, tags=[t.tag for t in r.totals], occluded_left_out=r.occluded_left_out,
            tagged={t.tag: t.tagged_count for t in r.totals},
            persons=[
                PersonTagCount(tag=p.tag, person_id=p.person_id, person_name=p.person_name or None,
                               faces=p.face_count, tagged=p.tagged_count, rate=p.rate,
                               best_distance=p.best_distance, best_face_id=p.best_face_id)
                for p in rows
            ],
        )

    # -- summaries --------------------------------------------------------------
    @staticmethod
    def _clusters(messages) -> tuple[list[Cluster], dict[int, bytes]]:
        clusters, thumbs = [], {}
        for c in messages:
            clusters.append(Cluster(
                index=c.index, size=c.size, share=c.share,
                centre=np.asarray(c.centre.values, dtype=np.float32),
                representative_face_id=c.representative.face_id,
                representative_distance=c.representative.distance,
                closest_face_ids=[h.face_id for h in c.closest],
            ))
            for hit in list(c.closest) + [c.representative]:
                if hit.thumbnail:
                    thumbs[hit.face_id] = hit.thumbnail
        return clusters, thumbs

    def summarize(self, person, *, method: str = "kmeans", k: int | None = None, seed: int = 0,
                  closest: int = 1, thumbnails: bool = False, include_occluded: bool = False,
                  timeout: float | None = None) -> tuple[PersonSummary, dict[int, bytes]]:
        """(summary, {face_id: JPEG}) for a person id or name; thumbnails only when asked."""
        ref = (common_pb2.PersonRef(person_id=int(person))
               if isinstance(person, int) or str(person).isdigit() else common_pb2.PersonRef(name=str(person)))
        if method not in _METHODS:
            from mien.errors import BadInputError

            raise BadInputError(f"unknown summary method {method!r}; use kmeans or ward")
        r = self._call("Summarize", analytics_pb2.SummarizeRequest(
            person=ref, method=_METHODS[method], k=k or 0, seed=seed, closest=closest,
            thumbnails=thumbnails, include_occluded=include_occluded), timeout)
        clusters, thumbs = self._clusters(r.clusters)
        names = {v: k for k, v in _METHODS.items()}
        return PersonSummary(
            person_id=r.person.person_id, person_name=r.person.name or None, method=names[r.method],
            k_requested=r.k_requested, k=r.k, faces=r.face_count, seed=r.seed, clusters=clusters,
            occluded_left_out=r.occluded_left_out,
        ), thumbs

    def cluster_store(self, k: int = 100, *, sample: int = 0, seed: int = 0, closest: int = 5,
                      thumbnails: bool = False, include_occluded: bool = False,
                      timeout: float | None = None) -> tuple[StoreClusters, dict[int, bytes]]:
        # a page of clusters at a time: 1000 clusters x 100 faces with thumbnails would not
        # fit one message; every page is the same (deterministic) clustering
        messages, token = [], ""
        while True:
            r = self._call("ClusterStore", analytics_pb2.ClusterStoreRequest(
                k=k, sample=sample, seed=seed, closest=closest, thumbnails=thumbnails,
                page_size=CLUSTER_PAGE if thumbnails else PAGE, page_token=token,
                include_occluded=include_occluded), timeout)
            messages += list(r.clusters)
            token = r.next_page_token
            if not token:
                break
        clusters, thumbs = self._clusters(messages)
        return StoreClusters(faces=r.face_count, sampled=r.sampled_count, k_requested=r.k_requested,
                             k=r.k, seed=r.seed, clusters=clusters, occluded_left_out=r.occluded_left_out), thumbs


def _tag(t) -> Tag:
    """The Tag of a TagInfo message (the class in-process results use too)."""
    vectors = np.asarray([list(v.values) for v in t.vectors], dtype=np.float32).reshape(-1, 16)
    return Tag(name=t.name, vectors=vectors, threshold=float(t.threshold),
               reference_face_ids=[int(i) for i in t.reference_face_ids], created_ms=int(t.created_ms))
