"""The Mien gRPC service: thin glue between messages and the store/engine."""

from __future__ import annotations

import os
import queue
import time

import numpy as np

from mien.errors import BadInputError, ServerStoppingError, TooLargeError
from mien.server.context import ServerContext
from mien.server.errors import rpc
from mien.server.messages import add_components, add_explanations, add_hits
from mien.server.validate import clip
from mien.v1 import common_pb2, search_pb2, search_pb2_grpc

_SearchResponse = search_pb2.SearchResponse


class MienServicer(search_pb2_grpc.MienServicer):
    def __init__(self, ctx: ServerContext):
        self.ctx = ctx

    # -- helpers ----------------------------------------------------------------
    def _reply(self, hits, vec, source, start: float, explain: bool = False):
        """The SearchResponse for store Hits searched with records=True; explain: why each hit matched."""
        reply = _SearchResponse(query=self._query_face(vec, source))
        add_hits(reply.hits, [h.record for h in hits], [h.distance for h in hits], self.ctx.person_name)
        if explain and hits:
            store = self.ctx.store
            add_explanations(reply, vec, store.vectors([h.face_id for h in hits], kind="expression"),
                             str((store.encoders or {}).get("expression", "")))
        reply.elapsed_ms = (time.perf_counter() - start) * 1000.0
        return reply

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
            kw["sources"] = list(f.sources)
        if f.HasField("time_range"):
            tr = f.time_range
            if tr.end_ms and tr.end_ms <= tr.start_ms:
                raise BadInputError(f"empty time range [{tr.start_ms}, {tr.end_ms})")
            # the proto's range is half-open, the store's inclusive
            kw["time_range"] = (tr.start_ms, tr.end_ms - 1 if tr.end_ms else None)
        if _own_face(source) is not None:
            kw["exclude_face"] = source.face_id
        return kw

    # -- searches -----------------------------------------------------------------
    @rpc
    def SearchExpression(self, request, context):
        start = time.perf_counter()
        ctx = self.ctx
        k = ctx.check_top_k(request.top_k)
        vec, source = ctx.resolve_query(request.query, kind="expression")
        kw = self._filters(request.filters, request.query, source)
        hits = ctx.store.search(vec, k, **kw, records=True, thumbnails=request.include_thumbnails)
        return self._reply(hits, vec, source, start, request.explain)

    @rpc
    def CrossIdentitySearch(self, request, context):
        start = time.perf_counter()
        ctx = self.ctx
        k = ctx.check_top_k(request.top_k)
        if not request.HasField("target"):
            raise BadInputError("cross-identity search needs a target person (id or name)")
        target = ctx.person(request.target)
        vec, source = ctx.resolve_query(request.query, kind="expression")
        hits = ctx.store.search_person(vec, target.person_id, k, exclude_face=_own_face(source), records=True,
                                       thumbnails=request.include_thumbnails)
        return self._reply(hits, vec, source, start, request.explain)

    @rpc
    def SearchIdentity(self, request, context):
        start = time.perf_counter()
        ctx = self.ctx
        k = ctx.check_top_k(request.top_k)
        vec, source = ctx.resolve_query(request.query, kind="identity")
        hits = ctx.store.search_identity(vec, k, exclude_face=_own_face(source), records=True,
                                         thumbnails=request.include_thumbnails)
        return self._reply(hits, vec, source, start)

    # -- records --------------------------------------------------------------------
    @rpc
    def GetFace(self, request, context):
        store = self.ctx.store
        rec = store.get_face(request.face_id)
        x1, y1, x2, y2 = rec.bbox
        has_identity = rec.identity is not None
        reply = search_pb2.FaceRecord(
            face_id=rec.face_id, source_uri=rec.source_uri, frame_index=rec.frame_index,
            timestamp_ms=rec.timestamp_ms, bbox=common_pb2.BBox(x1=x1, y1=y1, x2=x2, y2=y2),
            landmarks5=np.asarray(rec.landmarks5, dtype=np.float32).ravel().tolist(),
            det_score=rec.det_score, sharpness=rec.sharpness, yaw=rec.yaw, pitch=rec.pitch,
            roll=rec.roll,
            expression=common_pb2.Vector(values=np.asarray(rec.expression).tolist()),
            pooled=common_pb2.Vector(values=np.asarray(rec.pooled).tolist()),
            track_id=rec.track_id, person_id=rec.person_id,
            person_name=self.ctx.person_name(rec.person_id),
            thumbnail=rec.thumbnail or store.get_thumbnail(rec.face_id),
            has_identity=has_identity,
        )
        from mien.engine.faces.explain import components

        encoder = str((store.encoders or {}).get("expression", ""))
        add_components(reply.components, components(rec.expression, encoder))
        return reply

    @staticmethod
    def _person(p) -> common_pb2.Person:
        return common_pb2.Person(person_id=p.person_id, name=p.name or "", face_count=p.count)

    @rpc
    def ListPersons(self, request, context):
        persons = sorted(self.ctx.store.list_persons(), key=lambda p: p.person_id)
        return search_pb2.ListPersonsResponse(persons=[self._person(p) for p in persons])

    @rpc
    def GetPerson(self, request, context):
        if not request.HasField("person"):
            raise BadInputError("GetPerson needs a person (id or name)")
        return self._person(self.ctx.person(request.person))

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
    def IndexPaths(self, request, context):
        ctx = self.ctx
        if not request.paths:
            raise BadInputError("IndexPaths needs at least one path")
        paths = [str(ctx.check_allowed(p)) for p in request.paths]
        for given, p in zip(request.paths, paths):
            if not os.path.exists(p):
                raise BadInputError(f"{clip(given)} does not exist on the server")

        from mien.indexer import IndexOptions, index_paths

        with ctx.open_writer():  # fail fast (UNAVAILABLE) before starting indexer workers
            pass

        # No tqdm bar in a server; progress goes to the client instead.
        options = IndexOptions(show_progress=False)
        if request.fps > 0:
            options.fps = request.fps
        events: queue.Queue = queue.Queue()
        outcome: dict = {}

        def work():
            try:
                # every file is resolved and kept under the allowed roots (links too);
                # a draining server ends the run at the next source boundary
                outcome["summary"] = index_paths(paths, ctx.store_dir, options=options,
                                                 engine_config=ctx.engine_config,
                                                 progress=events.put, allowed_roots=ctx.allowed_roots,
                                                 should_stop=lambda: ctx.draining)
            except BaseException as exc:  # handed to the RPC thread below
                outcome["error"] = exc
            finally:
                events.put(None)

        # The indexer runs in its own thread so progress streams while it works;
        # the server's shutdown waits for it (ctx.wait_indexers).
        worker = ctx.start_indexer(work)
        last: dict = {}
        while True:
            event = events.get()
            if event is None:
                break
            last = event
            if context.is_active():
                yield _progress(event)
        worker.join()
        if "error" in outcome:
            raise outcome["error"]
        final = _progress(last)
        summary = outcome.get("summary")
        if summary is not None and summary.stopped:
            raise ServerStoppingError(
                f"the server is shutting down: indexing stopped after {last.get('files_done', 0)} of "
                f"{last.get('files_total', 0)} files (each one committed whole); run IndexPaths again "
                "to index the rest")
        if summary is not None:
            final.files_total = summary.files
            final.frames = summary.frames
            final.faces = max(final.faces, summary.faces_passed)
            final.failures.extend(f"{path}: {reason}" for path, reason in summary.failures)
        final.files_done = max(final.files_done, final.files_total)
        final.done = True
        yield final

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
        from mien.server.paging import decode_token, encode_token, page_size

        person = self._person_ref(request.person, "ListPersonFaces")
        size = page_size(request.page_size, 50, self.ctx.limits.max_top_k)
        after = decode_token(request.page_token, int)
        ids = [int(i) for i in self.ctx.store.person_face_ids(person.person_id)]
        rest = [i for i in ids if after is None or i > after]
        page = rest[:size]
        reply = search_pb2.ListPersonFacesResponse(total_size=len(ids))
        if page:
            records = self.ctx.store.hit_records(page, thumbnail=request.include_thumbnails)
            add_hits(reply.faces, records, [0.0] * len(page), self.ctx.person_name)
        if len(rest) > size:
            reply.next_page_token = encode_token(page[-1])
        return reply

    @rpc
    def ListSources(self, request, context):
        from mien.server.paging import decode_token, encode_token, page_size

        size = page_size(request.page_size, 100, 1000)
        after = decode_token(request.page_token, str)
        sources = sorted(self.ctx.store.list_sources(), key=lambda s: s.uri)
        rest = [s for s in sources if after is None or s.uri > after]
        page = rest[:size]
        reply = search_pb2.ListSourcesResponse(total_size=len(sources), sources=[
            search_pb2.Source(uri=s.uri, kind=_SOURCE_KIND.get(s.kind, 0), status=_SOURCE_STATUS.get(s.status, 0),
                              error=s.error or "", face_count=s.face_count, duration_ms=s.duration_ms,
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


def _own_face(source) -> int | None:
    """The stored face a query came from (a face_id query), which its hits leave out."""
    return source.face_id if source is not None and source.face_id >= 0 else None


def _progress(event: dict) -> search_pb2.IndexProgress:
    return search_pb2.IndexProgress(
        files_done=int(event.get("files_done", 0)), files_total=int(event.get("files_total", 0)),
        frames=int(event.get("frames", 0)), faces=int(event.get("faces", 0)),
        current=str(event.get("current", "") or ""),
    )
