"""A typed Python client for the mien gRPC server.

    from mien.clients import Client
    with Client("127.0.0.1:50051") as c:
        result = c.search("smile.jpg", k=10, exclude_persons=["Biden"])
        for hit in result.hits:
            print(hit.distance, hit.source_uri, hit.timestamp_ms, hit.person_name)
        c.cross("obama.jpg", person="Biden")           # Biden making Obama's face
        c.identity(result.hits[0].face_id)             # faces of the same person

A query is any of: a path (str / Path) or encoded bytes of an image, a face
id (an int, or a string of digits such as "4": a file named "4" is Path("4")),
an `Upload` (from upload_image), or a numpy vector (16-d for expression, the
store's identity dim for identity). Images larger than INLINE_IMAGE_BYTES are
uploaded in chunks automatically.

Every method takes `timeout=` (seconds; default the Client's) and returns
dataclasses of this module; every failed call raises mien.clients.MienError
(.code, .reason, .details; a grpc.RpcError too), on both transports, for
unary calls and streams alike.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import grpc
import numpy as np

from mien.clients.errors import MienError, TranslatingStub
from mien.v1 import common_pb2, search_pb2, search_pb2_grpc

__all__ = ["Client", "MienError", "Upload", "FaceHit", "SearchResult", "QueryFace", "DetectedFace",
           "ComponentMatch", "Person", "Face", "Stats", "IndexProgress", "IndexJob", "Source", "Page",
           "DeletedPerson"]

DEFAULT_TARGET = "127.0.0.1:50051"
INLINE_IMAGE_BYTES = 3 * 1024 * 1024   # larger images go through UploadImage
CHUNK_BYTES = 1024 * 1024
_MAX_MESSAGE = 64 * 1024 * 1024
TRANSPORTS = ("auto", "native", "python")


@dataclass(frozen=True)
class Upload:
    """An image uploaded with Client.upload_image, usable as a query."""

    upload_id: str


@dataclass
class ComponentMatch:
    """How query and hit compare on one named expression component (see FaceHit.agreeing)."""

    name: str
    kind: str              # "emotion" | "action_unit" | "geometry"
    query_value: float
    hit_value: float
    contribution: float    # agreeing: q_i*h_i; differing: (q_i - h_i)^2, in vector units
    share: float           # of the dot product (agreeing) or of the distance (differing)


@dataclass
class FaceHit:
    face_id: int
    source_uri: str
    timestamp_ms: int
    frame_index: int
    bbox: tuple[float, float, float, float]
    person_id: int
    person_name: str
    distance: float
    track_id: int = -1
    thumbnail: bytes = b""
    # with explain=True: named components (e.g. "happy": 0.93, "lip_corner_pull": 1.2) and
    # why the hit matched: the components shared most and those that differ most
    components: dict[str, float] = field(default_factory=dict)
    agreeing: list[ComponentMatch] = field(default_factory=list)
    differing: list[ComponentMatch] = field(default_factory=list)
    occluded: bool = False     # FaceQA flagged the mouth as covered (and the score behind it)
    occlusion: float = 0.0


@dataclass
class QueryQuality:
    """FaceQA's verdict on the query face: would the indexer have kept it, and why not."""

    passed: bool
    reason: str          # "" or comma-separated: blurry, yaw, pitch, occluded
    explanation: str     # one sentence for people; "" for a clean pass
    sharpness: float
    yaw: float
    pitch: float
    roll: float
    occluded: bool
    occlusion: float


@dataclass
class DetectedFace:
    index: int
    bbox: tuple[float, float, float, float]
    det_score: float
    quality_passed: bool
    quality_reason: str


@dataclass
class QueryFace:
    vector: np.ndarray
    face_id: int = -1
    person_id: int = -1
    faces: list[DetectedFace] = field(default_factory=list)
    face_index: int = -1
    bbox: tuple[float, float, float, float] | None = None
    components: dict[str, float] = field(default_factory=dict)  # with explain=True
    quality: QueryQuality | None = None  # image and face_id queries


@dataclass
class SearchResult:
    hits: list[FaceHit]
    query: QueryFace
    elapsed_ms: float = 0.0
    # with max_distance: a face beyond it would have been next (no hits at all: "nothing
    # within max_distance"), and how far that nearest face beyond the limit is
    beyond_max_distance: bool = False
    nearest_beyond_distance: float | None = None

    def __iter__(self):
        return iter(self.hits)

    def __len__(self) -> int:
        return len(self.hits)


@dataclass
class Person:
    person_id: int
    name: str
    face_count: int


@dataclass
class Face:
    face_id: int
    source_uri: str
    frame_index: int
    timestamp_ms: int
    bbox: tuple[float, float, float, float]
    landmarks5: np.ndarray
    det_score: float
    sharpness: float
    yaw: float
    pitch: float
    roll: float
    expression: np.ndarray
    pooled: np.ndarray
    track_id: int
    person_id: int
    person_name: str
    thumbnail: bytes
    has_identity: bool
    components: dict[str, float] = field(default_factory=dict)  # named expression components
    occluded: bool = False
    occlusion: float = 0.0


@dataclass
class Stats:
    faces: int
    sources: int
    persons: int
    tags: int
    shards: int
    bytes: int
    encoders: dict[str, str]


@dataclass
class Source:
    """One indexed file (ListSources)."""

    uri: str
    kind: str          # "image" | "video" | "unspecified"
    status: str        # "done" | "failed" | "unspecified"
    error: str
    face_count: int
    duration_ms: int
    frames: int


@dataclass
class Page:
    """One page of a list: `items`, the token of the next page ("" on the last) and the total."""

    items: list
    next_page_token: str
    total_size: int

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


@dataclass
class DeletedPerson:
    person_id: int
    released_faces: int


@dataclass
class IndexJob:
    """A server-side indexing run (StartIndexJob, IndexPaths); state running | succeeded |
    failed | cancelled."""

    job_id: str
    state: str
    paths: list[str]
    progress: "IndexProgress"
    error_code: str
    error: str
    create_time_ms: int
    end_time_ms: int
    cancel_requested: bool

    @property
    def done(self) -> bool:
        return self.state != "running"


@dataclass
class IndexProgress:
    files_done: int
    files_total: int
    frames: int
    faces: int
    current: str
    done: bool
    failures: list[str]
    job_id: str = ""


def _bbox(b) -> tuple[float, float, float, float]:
    return (b.x1, b.y1, b.x2, b.y2)


def _person_ref(person: int | str) -> common_pb2.PersonRef:
    """An id (an int, or a string of digits such as "7") or a name."""
    if isinstance(person, (int, np.integer)) or (isinstance(person, str) and person.strip().isdigit()):
        return common_pb2.PersonRef(person_id=int(person))
    return common_pb2.PersonRef(name=str(person))


def _components(repeated) -> dict[str, float]:
    return {c.name: c.value for c in repeated}


def _matches(repeated) -> list[ComponentMatch]:
    return [ComponentMatch(m.name, m.kind, m.query_value, m.hit_value, m.contribution, m.share) for m in repeated]


def _hit(h) -> FaceHit:
    return FaceHit(h.face_id, h.source_uri, h.timestamp_ms, h.frame_index, _bbox(h.bbox),
                   h.person_id, h.person_name, h.distance, h.track_id, h.thumbnail,
                   _components(h.components), _matches(h.agreeing), _matches(h.differing),
                   h.occluded, h.occlusion)


def _result(resp) -> SearchResult:
    q = resp.query
    query = QueryFace(
        vector=np.asarray(q.vector.values, dtype=np.float32), face_id=q.face_id,
        person_id=q.person_id, face_index=q.face_index,
        faces=[DetectedFace(f.index, _bbox(f.bbox), f.det_score, f.quality_passed, f.quality_reason)
               for f in q.faces],
        bbox=_bbox(q.bbox) if q.HasField("bbox") else None,
        components=_components(q.components),
        quality=(QueryQuality(q.quality.passed, q.quality.reason, q.quality.explanation, q.quality.sharpness,
                              q.quality.yaw, q.quality.pitch, q.quality.roll, q.quality.occluded,
                              q.quality.occlusion) if q.HasField("quality") else None),
    )
    return SearchResult([_hit(h) for h in resp.hits], query, resp.elapsed_ms, resp.beyond_max_distance,
                        resp.nearest_beyond_distance if resp.HasField("nearest_beyond_distance") else None)


_DISTINCT = {"none": 1, "track": 2, "source": 3}


def _filters(persons=(), exclude_persons=(), sources=(), time_range=None,
             exclude_occluded: bool = False) -> common_pb2.Filters:
    filters = common_pb2.Filters(
        persons=[_person_ref(p) for p in persons],
        exclude_persons=[_person_ref(p) for p in exclude_persons],
        sources=[str(s) for s in sources], exclude_occluded=exclude_occluded,
    )
    if time_range is not None:
        filters.time_range.start_ms = int(time_range[0] or 0)
        filters.time_range.end_ms = int(time_range[1] or 0)
    return filters


def _refine(req, max_distance, distinct) -> None:
    """max_distance (squared L2) and distinct ("none" | "track" | "source") on a search request."""
    if max_distance is not None:
        req.max_distance = float(max_distance)
    if distinct is not None:
        if distinct not in _DISTINCT:
            raise ValueError(f"distinct must be one of {', '.join(_DISTINCT)}, not {distinct!r}")
        req.distinct = _DISTINCT[distinct]


def _tls_roots(tls) -> bytes | None:
    """The CA certificates a tls argument names (a PEM path or bytes), None for the system roots."""
    if isinstance(tls, (str, os.PathLike)):
        return Path(tls).read_bytes()
    if isinstance(tls, bytes):
        return tls
    return None


def open_channel(target, tls: bool | str | bytes | os.PathLike | None = None) -> grpc.Channel:
    """A channel to "host:port", or balanced over replicas ("h1:p,h2:p", a list, "dns:name:port";
    see mien.clients.targets); tls: True (system roots), a CA PEM path or bytes, or None."""
    from mien.clients.targets import Target, parse_target

    t = target if isinstance(target, Target) else parse_target(target)
    options = [("grpc.max_send_message_length", _MAX_MESSAGE),
               ("grpc.max_receive_message_length", _MAX_MESSAGE)] + t.channel_options()
    if not tls:
        return grpc.insecure_channel(t.uri, options=options)
    return grpc.secure_channel(t.uri, grpc.ssl_channel_credentials(root_certificates=_tls_roots(tls)),
                               options=options)


def auth_metadata(token: str | None):
    """Call metadata carrying the bearer token (default env MIEN_TOKEN), or None."""
    token = token if token is not None else os.environ.get("MIEN_TOKEN")
    return (("authorization", f"Bearer {token}"),) if token else None


class Client:
    """Connection to a mien server. Thread-safe; use as a context manager or call close()."""

    def __init__(self, target=DEFAULT_TARGET, token: str | None = None,
                 tls: bool | str | bytes | None = None, timeout: float | None = 60.0,
                 transport: str = "auto"):
        """target "host:port", or several read replicas: a list of "host:port", one string
        "h1:p1,h2:p2", or "dns:name:port" (every address the name resolves to); calls are
        balanced by gRPC's round_robin and a replica that is down is skipped
        (mien.clients.targets). token: bearer token (default env MIEN_TOKEN);
        tls: True (system roots), a CA certificate PEM path or bytes, or None (plaintext);
        transport: how unary calls travel: "native" (gRPC C++, mien.native), "python"
        (grpcio), "auto" native when built. Streams (UploadImage, IndexPaths) and
        `channel` are grpcio either way; both channels balance replicas the same way."""
        from mien import native
        from mien.clients.targets import parse_target

        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, not {transport!r}")
        from mien.clients.native import balances

        parsed = parse_target(target)
        if transport == "native" and not native.available():
            raise RuntimeError(native.UNAVAILABLE_REASON)
        # an extension built from an older channel.cc cannot balance: "auto" falls back to grpcio
        native_ok = native.available() and (not parsed.balanced or balances() or transport == "native")
        from grpc_health.v1 import health_pb2_grpc

        self._channel = open_channel(parsed, tls)   # connects on first use
        # grpcio stubs are made now: making one on a closed channel crashes grpcio 1.85
        self._stub = search_pb2_grpc.MienStub(self._channel)
        self._grpc_health = health_pb2_grpc.HealthStub(self._channel)
        # every call raises MienError (google.rpc.Status details decoded), whatever the transport
        self._stub = TranslatingStub(self._stub)
        self._grpc_health = TranslatingStub(self._grpc_health)
        if transport == "python" or not native_ok:
            self.transport = "python"
            self._unary, self._health = self._stub, self._grpc_health
        else:
            from grpc_health.v1 import health_pb2

            from mien.clients.native import UnaryStub, open_native_channel

            self.transport = "native"
            native_channel = open_native_channel(parsed, root_pem=_tls_roots(tls), tls=bool(tls),
                                                 max_message_bytes=_MAX_MESSAGE)
            self._unary = TranslatingStub(UnaryStub(native_channel, search_pb2.DESCRIPTOR.services_by_name["Mien"]))
            self._health = TranslatingStub(UnaryStub(native_channel,
                                                     health_pb2.DESCRIPTOR.services_by_name["Health"]))
        self._metadata = auth_metadata(token)
        self.timeout = timeout
        self.target = target

    # -- lifecycle ------------------------------------------------------------------
    def close(self) -> None:
        self._channel.close()
        # drop the native channel (its connection closes with it); later calls
        # fail as grpcio's do on a closed channel
        self._unary, self._health = self._stub, self._grpc_health

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def channel(self) -> grpc.Channel:
        """The underlying channel (e.g. for the Analytics stub)."""
        return self._channel

    @property
    def metadata(self):
        return self._metadata

    def _t(self, timeout: float | None) -> float | None:
        return self.timeout if timeout is None else timeout

    def _call(self, method: str, request, timeout: float | None):
        return getattr(self._unary, method)(request, timeout=self._t(timeout), metadata=self._metadata)

    def health(self, service: str = "", *, timeout: float | None = None) -> str:
        """The standard health status ("SERVING", ...); needs no token."""
        from grpc_health.v1 import health_pb2

        resp = self._health.Check(health_pb2.HealthCheckRequest(service=service), timeout=self._t(timeout))
        return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)

    # -- queries --------------------------------------------------------------------
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
            top_k=k, filters=_filters(persons, exclude_persons, sources, time_range, exclude_occluded),
            include_thumbnails=thumbnails, explain=explain,
        )
        _refine(req, max_distance, distinct)
        return _result(self._call("SearchExpression", req, timeout))

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
            query=self._face_query(query, face_index=face_index, timeout=timeout), target=_person_ref(person),
            top_k=k, include_thumbnails=thumbnails, explain=explain,
            filters=_filters(sources=sources, time_range=time_range, exclude_occluded=exclude_occluded),
        )
        _refine(req, max_distance, distinct)
        return _result(self._call("CrossIdentitySearch", req, timeout))

    def identity(self, query, *, k: int = 10, face_index: int | None = None,
                 persons: Sequence[int | str] = (), exclude_persons: Sequence[int | str] = (),
                 sources: Sequence[str] = (), time_range: tuple[int, int] | None = None,
                 thumbnails: bool = False, max_distance: float | None = None, distinct: str | None = None,
                 exclude_occluded: bool = False, timeout: float | None = None) -> SearchResult:
        """Faces of the same person as the query face (identity distance); filters as search."""
        req = search_pb2.SearchIdentityRequest(
            query=self._face_query(query, face_index=face_index, timeout=timeout), top_k=k,
            include_thumbnails=thumbnails,
            filters=_filters(persons, exclude_persons, sources, time_range, exclude_occluded),
        )
        _refine(req, max_distance, distinct)
        return _result(self._call("SearchIdentity", req, timeout))

    # -- records --------------------------------------------------------------------
    def get_face(self, face_id: int | str, *, timeout: float | None = None) -> Face:
        r = self._call("GetFace", search_pb2.GetFaceRequest(face_id=int(face_id)), timeout)
        return Face(
            r.face_id, r.source_uri, r.frame_index, r.timestamp_ms, _bbox(r.bbox),
            np.asarray(r.landmarks5, dtype=np.float32).reshape(-1, 2), r.det_score, r.sharpness,
            r.yaw, r.pitch, r.roll, np.asarray(r.expression.values, dtype=np.float32),
            np.asarray(r.pooled.values, dtype=np.float32), r.track_id, r.person_id,
            r.person_name, r.thumbnail, r.has_identity, _components(r.components), r.occluded, r.occlusion,
        )

    def persons(self, *, timeout: float | None = None) -> list[Person]:
        """Every person (page after page)."""
        out, token = [], ""
        while True:
            page = self.persons_page(page_size=1000, page_token=token, timeout=timeout)
            out += page.items
            token = page.next_page_token
            if not token:
                return out

    def persons_page(self, *, page_size: int = 100, page_token: str = "",
                     timeout: float | None = None) -> Page:
        """One page of persons by ascending id (Person items)."""
        resp = self._call("ListPersons", search_pb2.ListPersonsRequest(page_size=page_size, page_token=page_token),
                          timeout)
        return Page([_person(p) for p in resp.persons], resp.next_page_token, resp.total_size)

    def person(self, person: int | str, *, timeout: float | None = None) -> Person:
        return _person(self._call("GetPerson", search_pb2.GetPersonRequest(person=_person_ref(person)),
                                  timeout))

    def rename_person(self, person: int | str, name: str, *, timeout: float | None = None) -> Person:
        """Name (or rename) a person, by id or current name."""
        req = search_pb2.RenamePersonRequest(person=_person_ref(person), name=name)
        return _person(self._call("RenamePerson", req, timeout))

    def merge_persons(self, source: int | str, target: int | str, *, allow_same_frame: bool = False,
                      timeout: float | None = None) -> Person:
        """Move every face of `source` to `target` and remove `source`; returns the target."""
        req = search_pb2.MergePersonsRequest(source=_person_ref(source), target=_person_ref(target),
                                             allow_same_frame=allow_same_frame)
        return _person(self._call("MergePersons", req, timeout))

    def split_person(self, face_ids: Sequence[int | str], *, timeout: float | None = None) -> Person:
        """Move these faces (all of one person) to a new anonymous person; returns it."""
        req = search_pb2.SplitPersonRequest(face_ids=[int(f) for f in face_ids])
        return _person(self._call("SplitPerson", req, timeout))

    def delete_person(self, person: int | str, *, release_faces: bool = False,
                      timeout: float | None = None) -> DeletedPerson:
        req = search_pb2.DeletePersonRequest(person=_person_ref(person), release_faces=release_faces)
        r = self._call("DeletePerson", req, timeout)
        return DeletedPerson(r.person_id, r.released_faces)

    def person_faces(self, person: int | str, *, page_size: int = 0, page_token: str = "",
                     thumbnails: bool = False, timeout: float | None = None) -> Page:
        """One page of a person's faces (FaceHit, distance 0); Page.next_page_token for the next."""
        req = search_pb2.ListPersonFacesRequest(person=_person_ref(person), page_size=page_size,
                                                page_token=page_token, include_thumbnails=thumbnails)
        r = self._call("ListPersonFaces", req, timeout)
        return Page([_hit(h) for h in r.faces], r.next_page_token, r.total_size)

    def sources(self, *, page_size: int = 0, page_token: str = "", timeout: float | None = None) -> Page:
        """One page of the indexed sources (Source); Page.next_page_token for the next."""
        r = self._call("ListSources", search_pb2.ListSourcesRequest(page_size=page_size, page_token=page_token),
                       timeout)
        return Page([_source(x) for x in r.sources], r.next_page_token, r.total_size)

    def stats(self, *, timeout: float | None = None) -> Stats:
        s = self._call("Stats", search_pb2.StatsRequest(), timeout)
        return Stats(s.faces, s.sources, s.persons, s.tags, s.shards, s.bytes, dict(s.encoders))

    def index_paths(self, paths: Sequence[str | os.PathLike], *, fps: float = 0.0,
                    timeout: float | None = None) -> Iterator[IndexProgress]:
        """Index paths on the server's disk (under its allowed roots); yields progress.
        timeout: for this stream (default none). The run is a job (IndexProgress.job_id): it
        goes on if the stream ends early; watch_index_job re-attaches, cancel_index_job stops it."""
        req = search_pb2.IndexPathsRequest(paths=[str(p) for p in paths], fps=fps)
        for m in self._stub.IndexPaths(req, timeout=timeout, metadata=self._metadata):
            yield _progress(m)

    def start_index_job(self, paths: Sequence[str | os.PathLike], *, fps: float = 0.0,
                        timeout: float | None = None) -> IndexJob:
        """Start indexing paths on the server's disk and return the running job at once."""
        req = search_pb2.StartIndexJobRequest(paths=[str(p) for p in paths], fps=fps)
        return _job(self._call("StartIndexJob", req, timeout))

    def index_job(self, job_id: str, *, timeout: float | None = None) -> IndexJob:
        return _job(self._call("GetIndexJob", search_pb2.GetIndexJobRequest(job_id=job_id), timeout))

    def watch_index_job(self, job_id: str, *, timeout: float | None = None) -> Iterator[IndexJob]:
        """The job now and after every change until it ends (the job outlives this stream)."""
        req = search_pb2.WatchIndexJobRequest(job_id=job_id)
        for m in self._stub.WatchIndexJob(req, timeout=timeout, metadata=self._metadata):
            yield _job(m)

    def cancel_index_job(self, job_id: str, *, timeout: float | None = None) -> IndexJob:
        """Stop a job after the source in hand (each source is committed whole)."""
        return _job(self._call("CancelIndexJob", search_pb2.CancelIndexJobRequest(job_id=job_id), timeout))


def _progress(m) -> IndexProgress:
    return IndexProgress(m.files_done, m.files_total, m.frames, m.faces, m.current, m.done,
                         list(m.failures), m.job_id)


def _job(m) -> IndexJob:
    return IndexJob(m.job_id, _enum_word(m.state, search_pb2.IndexJobState, "INDEX_JOB_STATE_"),
                    list(m.paths), _progress(m.progress), m.error_code, m.error, m.create_time_ms,
                    m.end_time_ms, m.cancel_requested)


def _person(p) -> Person:
    return Person(p.person_id, p.name, p.face_count)


def _enum_word(value: int, enum, prefix: str) -> str:
    return enum.Name(value)[len(prefix):].lower()


def _source(x) -> Source:
    return Source(x.uri, _enum_word(x.kind, search_pb2.SourceKind, "SOURCE_KIND_"),
                  _enum_word(x.status, search_pb2.SourceStatus, "SOURCE_STATUS_"), x.error,
                  x.face_count, x.duration_ms, x.frames)
