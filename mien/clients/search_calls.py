"""The Client's searches: by expression, cross-identity, by identity; queries and uploads."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from mien.clients import from_proto
from mien.clients.request_fields import filters, person_ref, refine
from mien.results.search import SearchResult, Upload
from mien.v1 import common_pb2, search_pb2

INLINE_IMAGE_BYTES = 3 * 1024 * 1024   # larger images go through UploadImage
CHUNK_BYTES = 1024 * 1024


class SearchCalls:
    """Mixed into Client, which provides _call, _t, _stub, _unary, _metadata and timeout."""

    def _face_query(self, query, *, face_index: int | None = None, exclude_own_person: bool = False,
                    timeout: float | None = None) -> common_pb2.FaceQuery:
        """The FaceQuery message for a path, image bytes, face id or vector."""
        msg = common_pb2.FaceQuery(exclude_own_person=exclude_own_person)
        if face_index is not None:
            msg.face_index = face_index
        if isinstance(query, (bool, np.bool_)):
            raise TypeError("a query is a path, image bytes, a face id or a vector")
        if isinstance(query, str) and query.strip().isdigit():
            query = int(query)  # "4" is face 4 (a file named 4 is Path("4"))
        if isinstance(query, Upload):
            msg.upload_id = query.upload_id
        elif isinstance(query, (int, np.integer)):
            msg.face_id = int(query)
        elif isinstance(query, (bytes, bytearray, memoryview)):
            data = bytes(query)
            if len(data) > INLINE_IMAGE_BYTES:
                msg.upload_id = self.upload_image(data, timeout=timeout).upload_id
            else:
                msg.image.data = data
        elif isinstance(query, (str, os.PathLike)):
            return self._face_query(Path(query).read_bytes(), face_index=face_index,
                                    exclude_own_person=exclude_own_person, timeout=timeout)
        else:
            msg.vector.values.extend(np.asarray(query, dtype=np.float32).ravel().tolist())
        return msg

    def upload_image(self, data: bytes, *, chunk_bytes: int = CHUNK_BYTES,
                     timeout: float | None = None) -> Upload:
        """Send a large image in chunks; the result works as a query (FaceQuery.upload_id)."""
        chunks = (search_pb2.ImageChunk(data=data[i:i + chunk_bytes])
                  for i in range(0, len(data), chunk_bytes))
        resp = self._stub.UploadImage(chunks, timeout=self._t(timeout), metadata=self._metadata)
        return Upload(resp.upload_id)

    def search(self, query, *, k: int = 10, face_index: int | None = None,
               persons: Sequence[int | str] = (), exclude_persons: Sequence[int | str] = (),
               sources: Sequence[str] = (), time_range: tuple[int, int] | None = None,
               exclude_own_person: bool = False, thumbnails: bool = False,
               explain: bool = False, max_distance: float | None = None, distinct: str | None = None,
               exclude_occluded: bool = False, timeout: float | None = None) -> SearchResult:
        """Faces with the expression closest to the query's (squared-L2 distance).

        exclude_occluded: leave out faces FaceQA flagged as occluded (a hand or mask over
        the mouth). The reply's query.quality says whether FaceQA would have kept the
        query face, and why not.

        sources: URIs as stored (ListSources); an unknown one is NOT_FOUND. time_range:
        (start_ms, end_ms) in the source's time (stills are at 0); end None or 0 = open.
        max_distance: no hit farther (SearchResult.beyond_max_distance and
        nearest_beyond_distance say what lay beyond); distinct: "track" or "source" for
        one hit each. explain: each hit carries its named components and the ones that
        agree and differ most with the query's (FaceHit.agreeing / differing)."""
        req = search_pb2.SearchExpressionRequest(
            query=self._face_query(query, face_index=face_index, exclude_own_person=exclude_own_person,
                                   timeout=timeout),
            top_k=k, filters=filters(persons, exclude_persons, sources, time_range, exclude_occluded),
            include_thumbnails=thumbnails, explain=explain,
        )
        refine(req, max_distance, distinct)
        return from_proto.search_result(self._call("SearchExpression", req, timeout))

    def _search_raw(self, request: search_pb2.SearchExpressionRequest):
        """The raw SearchExpression reply for a prebuilt request (benchmarks; not the API)."""
        return self._unary.SearchExpression(request, timeout=self.timeout, metadata=self._metadata)

    def cross(self, query, person: int | str, *, k: int = 10, face_index: int | None = None,
              sources: Sequence[str] = (), time_range: tuple[int, int] | None = None,
              thumbnails: bool = False, explain: bool = False, max_distance: float | None = None,
              distinct: str | None = None, exclude_occluded: bool = False,
              timeout: float | None = None) -> SearchResult:
        """Faces of `person` (id or name) making the query face's expression; the other
        arguments as search."""
        req = search_pb2.CrossIdentityRequest(
            query=self._face_query(query, face_index=face_index, timeout=timeout), target=person_ref(person),
            top_k=k, include_thumbnails=thumbnails, explain=explain,
            filters=filters(sources=sources, time_range=time_range, exclude_occluded=exclude_occluded),
        )
        refine(req, max_distance, distinct)
        return from_proto.search_result(self._call("CrossIdentitySearch", req, timeout))

    def identity(self, query, *, k: int = 10, face_index: int | None = None,
                 persons: Sequence[int | str] = (), exclude_persons: Sequence[int | str] = (),
                 sources: Sequence[str] = (), time_range: tuple[int, int] | None = None,
                 thumbnails: bool = False, max_distance: float | None = None, distinct: str | None = None,
                 exclude_occluded: bool = False, timeout: float | None = None) -> SearchResult:
        """Faces of the same person as the query face (identity distance); filters as search."""
        req = search_pb2.SearchIdentityRequest(
            query=self._face_query(query, face_index=face_index, timeout=timeout), top_k=k,
            include_thumbnails=thumbnails,
            filters=filters(persons, exclude_persons, sources, time_range, exclude_occluded),
        )
        refine(req, max_distance, distinct)
        return from_proto.search_result(self._call("SearchIdentity", req, timeout))
