"""The Mien gRPC service: thin glue between messages and the store/engine."""

from __future__ import annotations

import os
import queue
import time

import numpy as np

from mien.errors import BadInputError, ServerStoppingError, TooLargeError
from mien.filenames import escape
from mien.server.context import ServerContext
from mien.server.rpc_errors import rpc
from mien.server.calls import check as call_ended
from mien.server.index_jobs import IndexJobs
from mien.server.refine import (
    Refinement, candidate_cap, check_max_distance, check_sources, distinct_of, refine,
)
from mien.server.hit_messages import add_components, add_explanations, add_hits
from mien.server.validate import clip
from mien.v1 import common_pb2, search_pb2, search_pb2_grpc

_SearchResponse = search_pb2.SearchResponse


class MienServicer(IndexJobs, search_pb2_grpc.MienServicer):
    def __init__(self, ctx: ServerContext):
        self.ctx = ctx

    # -- helpers ----------------------------------------------------------------
    def _reply(self, hits, vec, source, start: float, explain: bool = False, refined=None):
        """The SearchResponse for store Hits searched with records=True; explain: why each hit matched;
        refined: the refine() outcome (what lay beyond max_distance)."""
        reply = _SearchResponse(query=self._query_face(vec, source))
        if refined is not None and refined.beyond_max_distance:
            reply.beyond_max_distance = True
            reply.nearest_beyond_distance = refined.nearest_beyond
        add_hits(reply.hits, [h.record for h in hits], [h.distance for h in hits], self.ctx.person_name)
        if explain and hits:
            add_explanations(reply, *self._explained_vectors(hits, vec, source))
        reply.elapsed_ms = (time.perf_counter() - start) * 1000.0
        return reply

    def _explained_vectors(self, hits, vec, source):
        """(query vector, hit vectors, encoder) whose named components explain the hits: the stored
        vectors themselves, or for a learned head's space the fixed vectors of the faces' features
        (fer-au-v2's or fer-au-478's, one layout; the query's when it has them, a raw vector query
        then has none to show)."""
        from mien.engine.faces import explain

        store = self.ctx.store
        encoder = str((store.encoders or {}).get("expression", ""))
        ids = [h.face_id for h in hits]
        if not explain.is_learned_space(encoder):
            return vec, store.vectors(ids, kind="expression"), encoder
        features, _ = store.features(ids)
        query = None
        if source is not None and source.faces and source.faces[source.face_index].expression_features is not None:
            query = source.faces[source.face_index].expression_features
        elif source is not None and source.face_id >= 0:
            stored, has = store.features([source.face_id])
            query = stored[0] if has[0] else None
        query_vec = explain.component_vectors(query)[0] if query is not None else None
        return query_vec, explain.component_vectors(features), "fer-au-v2"

    @staticmethod
    def _query_face(vec: np.ndarray, source) -> common_pb2.QueryFace:
        qf = common_pb2.QueryFace(vector=common_pb2.Vector(values=vec.tolist()),
                                  face_id=-1, person_id=-1, face_index=-1)
        if source is None:
            return qf
        qf.face_id = source.face_id
        qf.person_id = source.person_id
        qf.face_index = source.face_index
        if source.bbox is not None:
            x1, y1, x2, y2 = source.bbox
            qf.bbox.x1, qf.bbox.y1, qf.bbox.x2, qf.bbox.y2 = x1, y1, x2, y2
        for i, face in enumerate(source.faces):
            x1, y1, x2, y2 = (float(v) for v in face.bbox)
            q = face.quality
            qf.faces.append(common_pb2.DetectedFace(
                index=i, bbox=common_pb2.BBox(x1=x1, y1=y1, x2=x2, y2=y2),
                det_score=float(face.det_score),
                quality_passed=bool(q.passed) if q is not None else True,
                quality_reason=(q.reason if q is not None else ""),
            ))
        v = source.verdict
        if v is not None:
            qf.quality.CopyFrom(common_pb2.QueryQuality(
                passed=v.passed, reason=v.reason, explanation=v.explanation, sharpness=v.sharpness,
                yaw=v.yaw, pitch=v.pitch, roll=v.roll, occluded=v.occluded, occlusion=v.occlusion))
        return qf

    def _filters(self, f, query, source) -> dict:
        ctx = self.ctx
        kw: dict = {}
        if f.persons:
            kw["persons"] = ctx.person_ids(f.persons)
        exclude = ctx.person_ids(f.exclude_persons) if f.exclude_persons else []
        if query.exclude_own_person and source is not None and source.person_id >= 0:
            exclude.append(source.person_id)
        if exclude:
            kw["exclude_persons"] = exclude
        if f.sources:
            kw["sources"] = sorted(check_sources(ctx.store, list(f.sources)))
        if f.HasField("time_range"):
            kw["time_range"] = _time_range(f.time_range)
        if _own_face(source) is not None:
            kw["exclude_face"] = source.face_id
        if f.exclude_occluded:
            kw["exclude_occluded"] = True
        return kw

    # -- searches -----------------------------------------------------------------
    @rpc
    def SearchExpression(self, request, context):
        def ranking(vec, source, _):
            kw = self._filters(request.filters, request.query, source)  # the store applies these itself
            return lambda n: self.ctx.store.search(vec, n, **kw, records=True, thumbnails=request.include_thumbnails)

        return self._search(request, "expression", ranking, explain=request.explain)

    @rpc
    def CrossIdentitySearch(self, request, context):
        f = request.filters

        def target():
            if not request.HasField("target"):
                raise BadInputError("cross-identity search needs a target person (id or name)")
            person = self.ctx.person(request.target)
            if f.persons or f.exclude_persons:
                raise BadInputError("cross-identity search is among the target's faces: person filters do not "
                                    "apply (use sources and time_range)", field="filters.persons")
            return person

        def ranking(vec, source, person):
            return lambda n: self.ctx.store.search_person(vec, person.person_id, n, exclude_face=_own_face(source),
                                                          exclude_occluded=f.exclude_occluded,
                                                          records=True, thumbnails=request.include_thumbnails)

        return self._search(request, "expression", ranking, scoped=True, explain=request.explain, check=target)

    @rpc
    def SearchIdentity(self, request, context):
        def ranking(vec, source, _):
            return lambda n: self.ctx.store.search_identity(vec, n, exclude_face=_own_face(source), records=True,
                                                            exclude_occluded=request.filters.exclude_occluded,
                                                            thumbnails=request.include_thumbnails)

        return self._search(request, "identity", ranking, scoped=True)

    def _search(self, request, kind: str, ranking, *, scoped: bool = False, explain: bool = False, check=None):
        """What every search RPC does around its store search: top_k checked, then check() (the
        RPC's own rules; its result goes to ranking), max_distance and distinct read (and the
        filters when scoped: see _refinement), the query resolved to a `kind` vector, the store's
        ranking(vec, source, checked)(n) refined to top_k hits, and the reply built."""
        start = time.perf_counter()
        ctx = self.ctx
        k = ctx.check_top_k(request.top_k)
        checked = check() if check is not None else None
        r = self._refinement(request, scoped)
        vec, source = ctx.resolve_query(request.query, kind=kind)
        refined = refine(ranking(vec, source, checked), k, r, candidate_cap(k), call_ended)
        return self._reply(refined.hits, vec, source, start, explain, refined)

    def _refinement(self, request, scoped: bool = False) -> Refinement:
        """max_distance and distinct of a search request; scoped: its filters too, applied to
        the ranking here (cross-identity and identity search; the store filters expression
        searches itself)."""
        r = Refinement(distinct=distinct_of(request.distinct),
                       max_distance=check_max_distance(request.max_distance
                                                       if request.HasField("max_distance") else None))
        if scoped and request.HasField("filters"):
            f, ctx = request.filters, self.ctx
            if f.persons:
                r.persons = frozenset(ctx.person_ids(f.persons))
            if f.exclude_persons:
                r.exclude_persons = frozenset(ctx.person_ids(f.exclude_persons))
            r.sources = check_sources(ctx.store, list(f.sources))
            if f.HasField("time_range"):
                r.time_range = _time_range(f.time_range)
        return r

    # -- records --------------------------------------------------------------------
    @rpc
    def GetFace(self, request, context):
        store = self.ctx.store
        rec = store.get_face(request.face_id)
        x1, y1, x2, y2 = rec.bbox
        has_identity = rec.identity is not None
        reply = search_pb2.FaceRecord(
            face_id=rec.face_id, source_uri=escape(rec.source_uri), frame_index=rec.frame_index,
            timestamp_ms=rec.timestamp_ms, bbox=common_pb2.BBox(x1=x1, y1=y1, x2=x2, y2=y2),
            landmarks5=np.asarray(rec.landmarks5, dtype=np.float32).ravel().tolist(),
            det_score=rec.det_score, sharpness=rec.sharpness, yaw=rec.yaw, pitch=rec.pitch,
            roll=rec.roll,
            expression=common_pb2.Vector(values=np.asarray(rec.expression).tolist()),
            pooled=common_pb2.Vector(values=np.asarray(rec.pooled).tolist()),
            track_id=rec.track_id, person_id=rec.person_id,
            person_name=self.ctx.person_name(rec.person_id),
            thumbnail=rec.thumbnail or store.get_thumbnail(rec.face_id),
            has_identity=has_identity, occluded=rec.occluded, occlusion=rec.occlusion,
        )
        from mien.engine.faces.explain import components

        encoder = str((store.encoders or {}).get("expression", ""))
        add_components(reply.components, components(rec.expression, encoder))
        return reply

    def _person(self, p, cover: bool = False) -> common_pb2.Person:
        return common_pb2.Person(person_id=p.person_id, name=p.name or "", face_count=p.count,
                                 cover_face_id=self.ctx.store.cover_face(p.person_id) if cover else 0)

    @rpc
    def ListPersons(self, request, context):
        from mien.server.list_pages import fingerprint, key_page, offset_page

        if request.max_faces < 0:
            raise BadInputError(f"max_faces must not be negative, got {request.max_faces}", field="max_faces")
        persons = _matching(self.ctx.store.list_persons(), request.query, request.max_faces)
        order = request.order
        if order in (search_pb2.PERSON_ORDER_UNSPECIFIED, search_pb2.PERSON_ORDER_ID):
            persons.sort(key=lambda p: p.person_id)
            page, token = key_page(persons, lambda p: p.person_id, request.page_size, request.page_token, int)
        else:
            if order == search_pb2.PERSON_ORDER_FACES:
                persons.sort(key=lambda p: (-p.count, p.person_id))
            elif order == search_pb2.PERSON_ORDER_NAME:
                persons.sort(key=lambda p: (p.name is None, (p.name or "").casefold(), -p.count, p.person_id))
            else:
                raise BadInputError(f"unknown order {order}", field="order")
            # an offset page: the token holds where the next page starts, for this very request
            print_ = fingerprint("persons", request.query, order, request.max_faces, len(persons))
            page, token = offset_page(persons, request.page_size, request.page_token, print_)
        return search_pb2.ListPersonsResponse(persons=[self._person(p, request.include_covers) for p in page],
                                              next_page_token=token, total_size=len(persons))

    @rpc
    def GetPerson(self, request, context):
        if not request.HasField("person"):
            raise BadInputError("GetPerson needs a person (id or name)")
        return self._person(self.ctx.person(request.person), cover=True)

    @rpc
    def Stats(self, request, context):
        s = self.ctx.store.stats()
        return search_pb2.StatsResponse(
            faces=int(s.get("faces", 0)), sources=int(s.get("sources", 0)),
            persons=int(s.get("persons", 0)), tags=int(s.get("tags", 0)),
            shards=int(s.get("shards", 0)), bytes=int(s.get("bytes", 0)),
            encoders={str(k): str(v) for k, v in (s.get("encoders") or {}).items()},
        )

    # -- writes -------------------------------------------------------------------
    @rpc
    def UploadImage(self, request_iterator, context):
        limit = self.ctx.limits.max_upload_bytes
        parts, size = [], 0
        for chunk in request_iterator:
            size += len(chunk.data)
            if size > limit:
                raise TooLargeError(f"the upload exceeds the server's limit of {limit} bytes")
            parts.append(chunk.data)
        if size == 0:
            raise BadInputError("the upload is empty")
        upload_id = self.ctx.uploads.put(b"".join(parts))
        return search_pb2.UploadImageResponse(
            upload_id=upload_id, size_bytes=size,
            expires_in_ms=int(self.ctx.limits.upload_ttl_s * 1000),
        )

    # -- persons and sources (the web app's and remote users' edits) ------------------
    @rpc
    def RenamePerson(self, request, context):
        person = self._person_ref(request.person, "RenamePerson")
        name = _person_name(request.name)
        with self.ctx.open_writer() as writer:
            writer.update_person(person.person_id, name=name)
            _forget_names(self.ctx)
            return self._person(writer.get_person(person.person_id))

    @rpc
    def MergePersons(self, request, context):
        src = self._person_ref(request.source, "MergePersons (source)")
        dst = self._person_ref(request.target, "MergePersons (target)")
        with self.ctx.open_writer() as writer:
            writer.merge_persons(src.person_id, dst.person_id, allow_same_frame=request.allow_same_frame)
            _forget_names(self.ctx)
            return self._person(writer.get_person(dst.person_id))

    @rpc
    def SplitPerson(self, request, context):
        if not request.face_ids:
            raise BadInputError("SplitPerson needs at least one face id")
        with self.ctx.open_writer() as writer:
            pid = writer.split_person(list(request.face_ids))
            return self._person(writer.get_person(pid))

    @rpc
    def DeletePerson(self, request, context):
        person = self._person_ref(request.person, "DeletePerson")
        with self.ctx.open_writer() as writer:
            released = len(writer.person_face_ids(person.person_id))
            writer.delete_person(person.person_id, release_faces=request.release_faces)
            _forget_names(self.ctx)
        return search_pb2.DeletePersonResponse(person_id=person.person_id, released_faces=released)

    @rpc
    def ListPersonFaces(self, request, context):
        from mien.server.page_tokens import decode_token, encode_token, page_size

        size = page_size(request.page_size, 50, self.ctx.limits.max_top_k)
        after = decode_token(request.page_token, int)
        if request.unassigned:
            if request.HasField("person"):
                raise BadInputError("ListPersonFaces lists a person's faces or the unassigned ones, not both",
                                    field="unassigned")
            found, total = self.ctx.store.unassigned_face_ids(after, size + 1)
            page, more = [int(i) for i in found[:size]], len(found) > size
        else:
            person = self._person_ref(request.person, "ListPersonFaces")
            ids = [int(i) for i in self.ctx.store.person_face_ids(person.person_id)]
            rest = [i for i in ids if after is None or i > after]
            page, more, total = rest[:size], len(rest) > size, len(ids)
        reply = search_pb2.ListPersonFacesResponse(total_size=total)
        if page:
            records = self.ctx.store.hit_records(page, thumbnail=request.include_thumbnails)
            add_hits(reply.faces, records, [0.0] * len(page), self.ctx.person_name)
        if more:
            reply.next_page_token = encode_token(page[-1])
        return reply

    @rpc
    def MoveFaces(self, request, context):
        if not request.face_ids:
            raise BadInputError("MoveFaces needs at least one face id", field="face_ids")
        target = self._person_ref(request.target, "MoveFaces (target)")
        with self.ctx.open_writer() as writer:
            writer.move_faces(list(request.face_ids), target.person_id, allow_same_frame=request.allow_same_frame)
            return self._person(writer.get_person(target.person_id))

    @rpc
    def SuggestMerges(self, request, context):
        from mien.server.suggestions import suggest_merges

        size = request.page_size or 20
        if not 0 < size <= 1000:
            raise BadInputError(f"page_size must be in 1..1000, got {request.page_size}", field="page_size")
        only = self._person_ref(request.person, "SuggestMerges").person_id if request.HasField("person") else None
        pairs, max_distance = suggest_merges(self.ctx, size, only, call_ended)
        reply = search_pb2.SuggestMergesResponse(max_distance=max_distance)
        for a, b, distance in pairs:
            reply.suggestions.add(person_a=self._person(a, cover=True), person_b=self._person(b, cover=True),
                                  distance=distance)
        return reply

    @rpc
    def RejectMerge(self, request, context):
        a = self._person_ref(request.person_a, "RejectMerge (person_a)")
        b = self._person_ref(request.person_b, "RejectMerge (person_b)")
        with self.ctx.open_writer() as writer:
            writer.add_cannot_link(a.person_id, b.person_id)
        return search_pb2.RejectMergeResponse(person_a_id=a.person_id, person_b_id=b.person_id)

    @rpc
    def ListSources(self, request, context):
        from mien.server.page_tokens import decode_token, encode_token, page_size

        size = page_size(request.page_size, 100, 1000)
        after = decode_token(request.page_token, str)
        sources = sorted(self.ctx.store.list_sources(), key=lambda s: s.uri)
        rest = [s for s in sources if after is None or s.uri > after]
        page = rest[:size]
        reply = search_pb2.ListSourcesResponse(total_size=len(sources), sources=[
            search_pb2.Source(uri=escape(s.uri), kind=_SOURCE_KIND.get(s.kind, 0),
                              status=_SOURCE_STATUS.get(s.status, 0),
                              error=escape(s.error or ""), face_count=s.face_count, duration_ms=s.duration_ms,
                              frames=s.frames)
            for s in page])
        if len(rest) > size:
            reply.next_page_token = encode_token(page[-1].uri)
        return reply

    def _person_ref(self, ref, call: str):
        if not ref.WhichOneof("ref"):
            raise BadInputError(f"{call} needs a person (id or name)")
        return self.ctx.person(ref)


_SOURCE_KIND = {"image": search_pb2.SOURCE_KIND_IMAGE, "video": search_pb2.SOURCE_KIND_VIDEO}
_SOURCE_STATUS = {"done": search_pb2.SOURCE_STATUS_DONE, "failed": search_pb2.SOURCE_STATUS_FAILED}


def _matching(persons, query: str, max_faces: int) -> list:
    """The persons a ListPersons query and face limit keep."""
    out = [p for p in persons if not max_faces or p.count <= max_faces]
    text = query.strip()
    if not text:
        return out
    if text.startswith("#") and text[1:].isdigit():
        return [p for p in out if p.person_id == int(text[1:])]
    folded = text.casefold()
    return [p for p in out if p.name and folded in p.name.casefold()]


def _forget_names(ctx) -> None:
    # hits show names from a cache refreshed every second; after an edit the
    # very next search must show the new name
    ctx._names_at = 0.0


def _person_name(name: str) -> str:
    """A usable person name, or BadInputError saying what is wrong with it."""
    if not name or name != name.strip():
        raise BadInputError("a person's name must be non-empty, without leading or trailing spaces")
    if len(name) > 128 or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise BadInputError("a person's name holds at most 128 characters and no control characters")
    return name


def _time_range(tr) -> tuple[int, int | None]:
    """A filter's TimeRange as the store takes it: the proto's range is half-open, the store's inclusive."""
    if tr.end_ms and tr.end_ms <= tr.start_ms:
        raise BadInputError(f"empty time range [{tr.start_ms}, {tr.end_ms})", field="filters.time_range")
    return tr.start_ms, tr.end_ms - 1 if tr.end_ms else None


def _own_face(source) -> int | None:
    """The stored face a query came from (a face_id query), which its hits leave out."""
    return source.face_id if source is not None and source.face_id >= 0 else None


def _progress(event: dict) -> search_pb2.IndexProgress:
    return search_pb2.IndexProgress(
        files_done=int(event.get("files_done", 0)), files_total=int(event.get("files_total", 0)),
        frames=int(event.get("frames", 0)), faces=int(event.get("faces", 0)),
        current=str(event.get("current", "") or ""),
    )
