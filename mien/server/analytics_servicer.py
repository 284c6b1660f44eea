"""The Analytics gRPC service: tags, per-person summaries, corpus clusters.

Thin glue: the logic lives in mien.engine.analytics; this module turns messages
into calls on it and results back into messages.
"""

from __future__ import annotations

import numpy as np

from mien.engine import analytics
from mien.errors import BadInputError, TooLargeError
from mien.filenames import escape, find
from mien.server.context import ServerContext
from mien.server.rpc_errors import rpc
from mien.server.hit_messages import add_components, add_hits
from mien.v1 import analytics_pb2, analytics_pb2_grpc, common_pb2

_METHOD_TO_PB = {
    "kmeans": analytics_pb2.SUMMARY_METHOD_KMEANS,
    "ward": analytics_pb2.SUMMARY_METHOD_WARD,
}
_PB_TO_METHOD = {
    analytics_pb2.SUMMARY_METHOD_UNSPECIFIED: "kmeans",
    analytics_pb2.SUMMARY_METHOD_KMEANS: "kmeans",
    analytics_pb2.SUMMARY_METHOD_WARD: "ward",
}
MAX_REFERENCES = 256


def tag_info(tag) -> analytics_pb2.TagInfo:
    return analytics_pb2.TagInfo(
        name=tag.name,
        threshold=float(tag.threshold),
        vectors=[common_pb2.Vector(values=np.asarray(v, dtype=np.float32).tolist()) for v in tag.vectors],
        reference_face_ids=[int(i) for i in tag.reference_face_ids],
        created_ms=int(tag.created_ms),
        reference_pictures=[bytes(p) for p in tag.reference_pictures],
    )


class AnalyticsServicer(analytics_pb2_grpc.AnalyticsServicer):
    def __init__(self, ctx: ServerContext):
        self.ctx = ctx

    # -- helpers ----------------------------------------------------------------
    def _clusters(self, clusters, vectors_of, thumbnails: bool) -> list:
        """ExpressionCluster messages; distances of listed faces are to the centre."""
        encoder = str((self.ctx.store.encoders or {}).get("expression", ""))
        out = []
        for c in clusters:
            ids = list(c.closest_face_ids) or [c.representative_face_id]
            vecs = vectors_of(ids)
            dists = ((vecs - c.centre[None, :]) ** 2).sum(axis=1)
            msg = analytics_pb2.ExpressionCluster(index=c.index, size=c.size, share=c.share,
                                                  centre=common_pb2.Vector(values=c.centre.tolist()))
            add_components(msg.components, _centre_components(c.centre, encoder))
            add_hits(msg.closest, self.ctx.store.hit_records(ids, thumbnail=thumbnails), dists,
                     self.ctx.person_name)
            msg.representative.CopyFrom(msg.closest[0])
            out.append(msg)
        return out

    # -- tags -----------------------------------------------------------------
    @rpc
    def CreateTag(self, request, context):
        if not request.references:
            raise BadInputError("a tag needs at least one reference face")
        if len(request.references) > MAX_REFERENCES:
            raise TooLargeError(f"a tag holds at most {MAX_REFERENCES} references")
        face_ids: list[int] = []
        vectors: list[np.ndarray] = []
        pictures: list[bytes] = []
        for ref in request.references:
            if ref.WhichOneof("source") == "face_id":
                self.ctx.store.get_face(ref.face_id)  # NOT_FOUND before taking the lock
                face_ids.append(ref.face_id)
            else:  # image, upload or raw vector: the same rules as a search query
                vec, source = self.ctx.resolve_query(ref, kind="expression", picture=True)
                vectors.append(vec)
                if source is not None and source.faces:  # the face of a photo: keep its picture
                    pictures.append(source.faces[source.face_index].thumbnail or b"")
        threshold = request.threshold if request.HasField("threshold") else analytics.DEFAULT_THRESHOLD
        with self.ctx.open_writer() as writer:
            tag = analytics.create_tag(
                writer, request.name, face_ids=face_ids,
                vectors=np.stack(vectors) if vectors else None,
                threshold=threshold, replace=request.replace, pictures=pictures,
            )
        return tag_info(tag)

    @rpc
    def UpdateTag(self, request, context):
        if not request.name:
            raise BadInputError("UpdateTag needs the tag's name", field="name")
        with self.ctx.open_writer() as writer:
            tag = analytics.set_threshold(writer, request.name, request.threshold)
        return tag_info(tag)

    @rpc
    def ProposeTriplet(self, request, context):
        from mien.training.rating import QUESTION

        proposal = self.ctx.sampler().propose(request.mode or "random", request.rater or None)
        return analytics_pb2.TripletProposal(face_ids=list(proposal.face_ids), type=proposal.type,
                                             mode=proposal.mode, question=QUESTION)

    @rpc
    def RateTriplet(self, request, context):
        sampler = self.ctx.sampler()
        if not request.rater:
            raise BadInputError("RateTriplet needs the rater's id", field="rater")
        if request.answer not in (0, 1, 2, 3):
            raise BadInputError(f"answer is 1, 2 or 3 (0 = can't tell), got {request.answer}", field="answer")
        recorded = sampler.answer(tuple(request.face_ids), request.type, request.rater, request.answer)
        return analytics_pb2.RateTripletResponse(recorded=recorded,
                                                 rater_answers=sampler.answer_count(request.rater))

    @rpc
    def ListTags(self, request, context):
        from mien.server.list_pages import key_page

        tags = analytics.list_tags(self.ctx.store)  # sorted by name
        page, token = key_page(tags, lambda t: t.name, request.page_size, request.page_token, str)
        return analytics_pb2.ListTagsResponse(tags=[tag_info(t) for t in page], next_page_token=token,
                                              total_size=len(tags))

    @rpc
    def DeleteTag(self, request, context):
        with self.ctx.open_writer() as writer:
            analytics.delete_tag(writer, request.name)
        return analytics_pb2.DeleteTagResponse(name=request.name)

    @rpc
    def TagSource(self, request, context):
        max_gap = -1  # engine default: twice the sample period
        if request.HasField("max_gap_ms"):
            max_gap = None if request.max_gap_ms < 0 else int(request.max_gap_ms)
        store = self.ctx.store  # a name that is not UTF-8 comes escaped (mien/filenames.py)
        uri = find(request.source_uri, lambda name: store.get_source(name) is not None) or request.source_uri
        report = analytics.tag_source(store, uri,
                                      list(request.tags) or None, max_gap_ms=max_gap,
                                      include_occluded=request.include_occluded)
        return analytics_pb2.TagSourceResponse(
            source_uri=escape(report.uri), duration_ms=report.duration_ms, face_count=report.faces,
            occluded_left_out=report.occluded_left_out,
            sample_period_ms=report.sample_period_ms, tags=report.tags,
            results=[
                analytics_pb2.PersonTagResult(
                    tag=r.tag, person_id=r.person_id, person_name=r.person_name or "",
                    track_id=r.track_id, face_count=r.faces, tagged_count=r.tagged, rate=r.rate,
                    segments=[
                        analytics_pb2.TagSegment(
                            start_ms=s.start_ms, end_ms=s.end_ms, best_distance=s.best_distance,
                            best_face_id=s.best_face_id, face_count=s.faces,
                        )
                        for s in r.segments
                    ],
                )
                for r in report.results
            ],
        )

    @rpc
    def TagStore(self, request, context):
        from mien.server.list_pages import fingerprint, offset_page

        store = self.ctx.store
        report = analytics.tag_store(store, list(request.tags) or None, include_occluded=request.include_occluded)
        rows, token = offset_page(report.persons, request.page_size, request.page_token,
                                  fingerprint("TagStore", list(request.tags), store.stats().get("faces"),
                                              request.include_occluded))
        return analytics_pb2.TagStoreResponse(
            next_page_token=token, total_size=len(report.persons),
            face_count=report.faces, occluded_left_out=report.occluded_left_out,
            totals=[analytics_pb2.TagTotal(tag=t, tagged_count=report.tagged[t]) for t in report.tags],
            persons=[
                analytics_pb2.PersonTagCount(
                    tag=p.tag, person_id=p.person_id, person_name=p.person_name or "",
                    face_count=p.faces, tagged_count=p.tagged, rate=p.rate,
                    best_face_id=p.best_face_id, best_distance=p.best_distance,
                )
                for p in rows
            ],
        )

    # -- summaries --------------------------------------------------------------
    @rpc
    def Summarize(self, request, context):
        if not request.HasField("person"):
            raise BadInputError("Summarize needs a person (id or name)")
        person = self.ctx.person(request.person)
        method = _PB_TO_METHOD.get(request.method)
        if method is None:
            raise BadInputError(f"unknown summary method {request.method}")
        closest = request.closest or 1
        if not 1 <= closest <= 100:
            raise BadInputError(f"closest must be in 1..100, got {closest}")
        self.ctx.checkpoint()  # a safe point before the clustering: a shutdown may have begun
        summary = analytics.summarize_person(
            self.ctx.store, person.person_id, method=method, k=request.k or None,
            seed=int(request.seed), closest=closest, include_occluded=request.include_occluded,
        )
        store = self.ctx.store
        return analytics_pb2.SummarizeResponse(
            person=common_pb2.Person(person_id=person.person_id, name=person.name or "",
                                     face_count=summary.faces),
            method=_METHOD_TO_PB[summary.method], k_requested=summary.k_requested, k=summary.k,
            face_count=summary.faces, seed=summary.seed, occluded_left_out=summary.occluded_left_out,
            clusters=self._clusters(summary.clusters,
                                    lambda ids: np.asarray(store.vectors(ids, kind="expression")),
                                    request.thumbnails),
        )

    @rpc
    def ClusterStore(self, request, context):
        self.ctx.checkpoint()  # a safe point before the clustering: a shutdown may have begun
        result = analytics.cluster_store(
            self.ctx.store, k=request.k or 100, sample=request.sample or 200_000,
            seed=int(request.seed), closest=request.closest or 5, include_occluded=request.include_occluded,
        )
        store = self.ctx.store
        from mien.server.list_pages import fingerprint, offset_page

        # the same request on the same store makes the same clustering: a later page is its next clusters
        stats = store.stats()
        clusters, token = offset_page(result.clusters, request.page_size, request.page_token, fingerprint(
            "ClusterStore", request.k, request.sample, request.seed, request.closest, request.thumbnails,
            request.include_occluded, stats.get("faces"), stats.get("sealed_faces"), stats.get("tombstones")))
        return analytics_pb2.ClusterStoreResponse(
            face_count=result.faces, sampled_count=result.sampled, k_requested=result.k_requested,
            occluded_left_out=result.occluded_left_out,
            k=result.k, seed=result.seed, next_page_token=token, total_size=len(result.clusters),
            clusters=self._clusters(clusters,
                                    lambda ids: np.asarray(store.vectors(ids, kind="expression")),
                                    request.thumbnails),
        )


def _centre_components(centre, encoder: str):
    """The named components of a cluster centre (normalised first: a mean of unit vectors is shorter)."""
    from mien.engine.faces import explain

    if not explain.has_components(encoder):
        return []
    v = np.asarray(centre, dtype=np.float64)
    n = float(np.linalg.norm(v))
    if n == 0:
        return []
    try:
        return explain.components((v / n).astype(np.float32), encoder)
    except ValueError:
        return []
