"""State shared by the gRPC servicers: the store reader, the analyzer, limits.

One ServerContext per server. Servicers stay thin: they turn messages into
calls on this context and the store, and build replies.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mien.errors import BadInputError, EncoderMismatchError, NotFoundError, ServerStoppingError, TooLargeError
from mien.server.analysis_thread import AnalysisThread
from mien.server.validate import clip

EXPRESSION_DIM = 16


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the server; beyond it -> INVALID_ARGUMENT (the limit in ErrorInfo)."""

    max_message_bytes: int = 16 * 1024 * 1024   # one gRPC message, either way
    max_image_pixels: int = 50_000_000           # decoded query image
    max_top_k: int = 1000
    max_upload_bytes: int = 128 * 1024 * 1024    # one UploadImage stream
    max_uploads_total_bytes: int = 512 * 1024 * 1024  # everything held at once
    upload_ttl_s: float = 600.0
    # An image query's face counts as a known person (for exclude_own_person)
    # when its identity vector is this close (squared L2) to a stored face's.
    # None: the store's identity model's tolerance (mien.indexer.persons.QUERY_TOLERANCE,
    # squared: 0.36 for dlib, whose usual tolerance is 0.6 Euclidean).
    same_person_distance: float | None = None


@dataclass
class QuerySource:
    """Where a resolved query vector came from (None for raw vectors)."""

    face_id: int = -1                       # face_id queries
    person_id: int = -1                     # known person, -1 otherwise
    bbox: tuple[float, float, float, float] | None = None
    faces: list = field(default_factory=list)   # image queries: engine Faces, left to right
    face_index: int = -1                    # image queries: which of faces
    record: object | None = None            # face_id queries: the store's FaceRecord
    identity: np.ndarray | None = None      # image queries when identity was computed
    verdict: object | None = None           # FaceQA on the query face (engine query_qa.QueryVerdict)


class UploadCache:
    """Images uploaded in chunks, kept in memory for a while, bounded in bytes."""

    def __init__(self, limits: Limits):
        self._limits = limits
        self._items: dict[str, tuple[float, bytes]] = {}
        self._lock = threading.Lock()

    def put(self, data: bytes) -> str:
        with self._lock:
            self._expire(time.monotonic())
            total = sum(len(d) for _, d in self._items.values())
            if total + len(data) > self._limits.max_uploads_total_bytes:
                raise TooLargeError(
                    f"the server holds {total} uploaded bytes already; the limit is "
                    f"{self._limits.max_uploads_total_bytes}; retry later"
                )
            upload_id = secrets.token_hex(12)
            self._items[upload_id] = (time.monotonic() + self._limits.upload_ttl_s, data)
            return upload_id

    def get(self, upload_id: str) -> bytes:
        with self._lock:
            self._expire(time.monotonic())
            item = self._items.get(upload_id)
        if item is None:
            raise NotFoundError(f"upload {clip(upload_id)} is unknown or expired", reason="UPLOAD_NOT_FOUND",
                                resource=("mien.v1.Upload", clip(upload_id)))
        return item[1]

    def _expire(self, now: float) -> None:
        for key in [k for k, (deadline, _) in self._items.items() if deadline < now]:
            del self._items[key]


class CallTracker:
    """The calls in flight, so a shutdown can wait for them; refuses new ones once draining.

    A call that arrived before the drain began is in flight even while it waits for a
    worker thread: it is served when its turn comes, and the drain waits for it
    (mien.server.arrivals says how each front tells when a call arrived)."""

    POLL_S = 0.02   # how often wait_idle looks at the native front's count (kept in C++)

    def __init__(self):
        self._count = 0
        self._queued = 0                    # grpcio: arrived, not yet claimed by track() or released
        self._idle = threading.Condition()
        self.draining = threading.Event()
        self._drain_started: float | None = None
        self.unanswered = lambda: 0         # the native front's unary calls received and not answered

    def start_draining(self) -> None:
        """Refuse calls that arrive from now on; the ones that arrived before are served."""
        with self._idle:
            self._drain_started = time.monotonic()
            self.draining.set()

    def arrived(self) -> float:
        """grpcio's thread pool: a call arrived and waits for a thread; its arrival time."""
        with self._idle:
            self._queued += 1
        return time.monotonic()

    def left(self) -> None:
        """An arrived call that track() will not claim (refused before its handler, or untracked)."""
        with self._idle:
            self._queued -= 1
            self._idle.notify_all()

    def enter(self, received: float | None = None) -> None:
        """Count a call in; leave() counts it out. received: when it arrived (time.monotonic), from
        the front; grpcio's arrival is claimed from this thread (arrivals.py). Once draining, a call
        that arrived after the drain began, or whose arrival is unknown, is refused."""
        from mien.server import calls

        claimed = calls.take_arrival()
        with self._idle:
            if claimed is not None:
                self._queued -= 1
                received = claimed
                self._idle.notify_all()
            if self.draining.is_set() and (received is None or self._drain_started is None
                                           or received >= self._drain_started):
                raise ServerStoppingError("the server is shutting down; retry later or on another server")
            self._count += 1

    def leave(self) -> None:
        with self._idle:
            self._count -= 1
            if self._count == 0:
                self._idle.notify_all()

    @property
    def count(self) -> int:
        return self._count

    def backlog(self) -> int:
        """Calls received and not done, as the front counts them: grpcio's counted plus the ones
        waiting for a thread; the native front's unary calls not answered, if more."""
        return max(self._count + self._queued, self.unanswered())

    def _idle_now(self) -> bool:
        return self._count == 0 and self._queued == 0 and self.unanswered() == 0

    def wait_idle(self, timeout: float) -> bool:
        """True once no call is in flight or waiting for a thread, False when timeout seconds
        passed first."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._idle:
            while not self._idle_now():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(min(left, self.POLL_S))
            return True


def unit_query(vec) -> np.ndarray:
    """A raw query vector scaled to unit length (stored vectors are unit vectors), in float64 so a
    finite float32 vector of any scale normalises (1e38 per component overflows float32's norm);
    an all-zero vector has no direction: BadInputError."""
    # math.hypot: float64 without overflow in one call (1.7 against 2.8 us a 16-d query; the
    # same float32 vector as the sum of squares gave on 100,000 random vectors of any scale)
    norm = math.hypot(*vec)
    if not norm > 0.0:
        raise BadInputError("the query vector is all zeros: it has no direction to search along",
                            reason="VECTOR_ZERO", field="query.vector")
    wide = np.array(vec, dtype=np.float64)
    wide /= norm
    return wide.astype(np.float32)


def _warm_up_jpeg() -> bytes:
    """A JPEG photo with one face for warm_up: scikit-image's astronaut, or a grey frame without it."""
    import cv2

    try:
        import skimage.data

        image = np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1])
    except Exception:  # noqa: BLE001 - the data file may be left out of a slim install: warm what loads
        image = np.full((480, 640, 3), 127, dtype=np.uint8)
    return cv2.imencode(".jpg", image)[1].tobytes()


def _query_threads() -> int:
    """Compute threads of the analyzer's detection models: image queries run one at a time
    (analyze_lock), so one may use two of the server's CPUs (17 -> 14 ms for a 640x480 photo on
    an idle 2-core machine; MIEN_LITERT_THREADS sets another number)."""
    env = os.environ.get("MIEN_LITERT_THREADS")
    if env:
        from mien.engine.faces.litert import default_threads

        return default_threads()
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(2, cpus))


def _left_to_right(faces: list) -> list:
    return sorted(faces, key=lambda f: ((f.bbox[0] + f.bbox[2]) / 2, (f.bbox[1] + f.bbox[3]) / 2))


class ServerContext:
    """The store reader, a lazily built FaceAnalyzer, limits and allowed roots."""

    def __init__(self, store_dir, *, limits: Limits | None = None, allowed_roots=(),
                 engine_config=None, store=None, ratings=None):
        from mien.engine.store import Store

        self.store_dir = Path(store_dir)
        # where RateTriplet appends answers (FEC's format): mien train head --store learns from it
        self.ratings_path = Path(ratings) if ratings else self.store_dir / "ratings.csv"
        self._sampler = None
        self.limits = limits or Limits()
        self.allowed_roots = tuple(Path(os.path.realpath(r)) for r in allowed_roots)
        self.engine_config = engine_config
        self.store = store if store is not None else Store(self.store_dir, mode="r")
        self.uploads = UploadCache(self.limits)
        self._analyzer = None
        self._analyzer_lock = threading.Lock()   # creation
        self.analyze_lock = threading.Lock()     # dlib is not safe to share across threads
        self.analysis = AnalysisThread()         # where the analyzer runs: one warm thread (analysis_thread.py)
        self._names: dict[int, str] = {}
        self._names_at = 0.0
        self._names_lock = threading.Lock()
        self.calls = CallTracker()
        # set when the grace is over: running handlers stop at their next safe point
        self.cancelled = threading.Event()
        self.indexers: set[threading.Thread] = set()   # server-side IndexPaths runs
        self._indexers_lock = threading.Lock()
        # the worker processes IndexPaths jobs borrow in turn (mien.indexer.warm_pool)
        from mien.indexer.warm_pool import WarmPool

        self.index_pool = WarmPool()

    # -- shutdown -------------------------------------------------------------
    @property
    def draining(self) -> bool:
        return self.calls.draining.is_set()

    def checkpoint(self) -> None:
        """A safe point in a long handler: raise ServerStoppingError once the grace is over."""
        if self.cancelled.is_set():
            raise ServerStoppingError("the server is shutting down; the call was stopped")
        from mien.server import calls

        calls.check()  # the caller cancelled or its deadline passed: stop here, nobody waits

    def start_indexer(self, target) -> threading.Thread:
        """Run a server-side indexing job in a thread the shutdown can wait for."""
        def run():
            try:
                target()
            finally:
                with self._indexers_lock:
                    self.indexers.discard(thread)

        thread = threading.Thread(target=run, name="mien-index", daemon=True)
        with self._indexers_lock:
            self.indexers.add(thread)
        thread.start()
        return thread

    def wait_indexers(self, timeout: float) -> bool:
        """True once no server-side indexing runs, False when timeout seconds passed first."""
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            with self._indexers_lock:
                running = list(self.indexers)
            if not running:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            running[0].join(left)

    def private_strings(self) -> tuple[str, ...]:
        """Server paths no client message may show (replaced by '<store>')."""
        return (os.path.realpath(self.store_dir), str(self.store_dir))

    # -- engine ---------------------------------------------------------------
    def analyzer(self):
        """The FaceAnalyzer, built on first use; refuses encoders unlike the store's. Built again
        when the store's expression space changed since (`mien reembed` while the server runs)."""
        stored_expression = self.store.stored_encoders().get("expression")

        def stale() -> bool:
            return self._analyzer is None or bool(
                stored_expression and self._analyzer.encoders.get("expression") != stored_expression)

        if stale():
            with self._analyzer_lock:
                if stale():
                    from mien.engine.faces import EngineConfig, FaceAnalyzer
                    from mien.engine.faces.engine_record import matching_store

                    stored = self.store.stored_encoders()
                    config = matching_store(self.engine_config or EngineConfig(), stored)
                    analyzer = FaceAnalyzer(config, threads=_query_threads())
                    for key in ("expression", "identity"):
                        if stored.get(key) and stored[key] != analyzer.encoders.get(key):
                            raise EncoderMismatchError(
                                f"the store was built with {key} encoder {stored[key]!r} but the "
                                f"server runs {analyzer.encoders.get(key)!r}; start the server "
                                f"with the store's engine configuration"
                            )
                    self._analyzer = analyzer
        return self._analyzer

    def warm_up(self, passes: int = 2) -> float:
        """Load the models this server runs and pass a face through every stage; the seconds it took.

        What a first image query paid otherwise (1.4 s building the analyzer,
        the networks' first runs, the index's first search: 1.8 s against 40 ms
        for the next ones). The face is scikit-image's astronaut photo (a
        dependency of mien) as a JPEG, and it goes the way an image query goes:
        decode, detect, FaceQA, expression and identity, the nearest person, a
        search with thumbnails and explanations. Twice: runtimes settle their
        buffers on the first run of a shape and still pay a little on the second.
        """
        from mien.engine.faces.explain import components

        start = time.perf_counter()
        data = _warm_up_jpeg()
        self.analyzer()
        encoder = str((self.store.encoders or {}).get("expression", ""))
        for _ in range(passes):
            try:
                vec, _source = self._resolve_image(data, 0, "expression", need_identity=self.identity_dim() > 0)
            except BadInputError:  # no face found (a slim install without the photo): the models are loaded
                break
            hits = self.store.search(vec, 24, records=True, thumbnails=True)
            if hits:
                self.store.vectors([h.face_id for h in hits], kind="expression")
            components(vec, encoder)
        return time.perf_counter() - start

    def sampler(self):
        """The triplet sampler of the Rate page and RateTriplet (mien.training.rating), built on first use."""
        if self._sampler is None:
            with self._analyzer_lock:
                if self._sampler is None:
                    from mien.training.rating import TripletSampler

                    self._sampler = TripletSampler(self.store, self.ratings_path)
        return self._sampler

    @contextlib.contextmanager
    def open_writer(self):
        """A short-lived writer for write RPCs; StoreLockedError -> UNAVAILABLE."""
        from mien.engine.store import Store

        store = Store(self.store_dir, mode="w")
        try:
            yield store
        finally:
            store.close()

    # -- paths ----------------------------------------------------------------
    def check_allowed(self, path: str) -> Path:
        """The real path of `path` if it lies under an allowed root, else PermissionError."""
        if not self.allowed_roots:
            raise PermissionError(
                "this server allows no server-side indexing (its operator starts it with --allow-root DIR)"
            )
        from mien.indexer.beneath import real_path, root_of

        try:
            real = Path(real_path(path))
        except OSError:  # a link in it kept changing while it was resolved
            raise PermissionError(f"{clip(path)} could not be resolved (a link in it keeps changing)") from None
        if root_of(str(real), self.allowed_roots) is not None:
            return real
        # the roots themselves are the operator's business: they go to the log only
        raise PermissionError(f"{clip(path)} is outside the server's allowed roots")

    # -- persons --------------------------------------------------------------
    def person(self, ref):
        """A store Person from a PersonRef message (NotFoundError if unknown)."""
        which = ref.WhichOneof("ref")
        if which == "name":
            person = self.store.find_person(ref.name)
            if person is None:
                raise NotFoundError(f"no person named {clip(ref.name)}")
            return person
        if which == "person_id":
            return self.store.get_person(ref.person_id)
        raise BadInputError("a person reference needs person_id or name")

    def person_ids(self, refs) -> list[int]:
        return [self.person(r).person_id for r in refs]

    def person_name(self, person_id: int) -> str:
        """The person's name ('' if none); cached for a second so hits stay cheap."""
        if person_id < 0:
            return ""
        now = time.monotonic()
        if now - self._names_at > 1.0 or person_id not in self._names:
            with self._names_lock:
                if now - self._names_at > 1.0 or person_id not in self._names:
                    self._names = {p.person_id: (p.name or "") for p in self.store.list_persons()}
                    self._names_at = now
        return self._names.get(person_id, "")

    # -- queries --------------------------------------------------------------
    def check_top_k(self, top_k: int) -> int:
        if top_k < 0:
            raise BadInputError(f"top_k must be positive, got {top_k}", field="top_k")
        if top_k > self.limits.max_top_k:
            raise TooLargeError(f"top_k {top_k} exceeds the server's limit of {self.limits.max_top_k}",
                                reason="TOP_K_TOO_LARGE", metadata={"limit": self.limits.max_top_k},
                                field="top_k")
        return top_k or 10

    def identity_dim(self) -> int:
        enc = self.store.encoders or {}
        return int(enc.get("identity_dim") or 0)

    def resolve_query(self, query, *, kind: str = "expression",
                      picture: bool = False) -> tuple[np.ndarray, QuerySource | None]:
        """The vector a FaceQuery stands for, and where it came from.

        kind is "expression" (16-d) or "identity" (the store's identity dim). picture: an image
        query's face also gets its thumbnail (the aligned crop a tag keeps as its reference picture;
        searches show none, so the query path skips it otherwise).
        Raises BadInputError (no face, several faces, wrong dimension, bad image),
        NotFoundError (unknown face id / upload), TooLargeError (image pixels).
        """
        which = query.WhichOneof("source")
        if which == "vector":
            # a proto float is a float32: the list's Python floats hold float32 values exactly
            # (a list converts faster than the repeated field itself)
            values = list(query.vector.values)
            want = EXPRESSION_DIM if kind == "expression" else self.identity_dim()
            if len(values) != want:
                raise BadInputError(
                    f"the query vector has {len(values)} dimensions; {kind} search needs {want}",
                    reason="VECTOR_DIMENSION", metadata={"given": len(values), "expected": want},
                    field="query.vector")
            return unit_query(values), None
        if which == "face_id":
            record = self.store.get_face(query.face_id)
            if kind == "expression":
                vec = np.asarray(record.expression, dtype=np.float32)
            else:
                vec = self.store.vectors([record.face_id], kind="identity")[0]
            from mien.engine.faces.query_qa import record_verdict

            return vec, QuerySource(face_id=record.face_id, person_id=record.person_id,
                                    bbox=tuple(record.bbox), record=record, verdict=record_verdict(record))
        if which in ("image", "upload_id"):
            data = query.image.data if which == "image" else self.uploads.get(query.upload_id)
            index = query.face_index if query.HasField("face_index") else None
            need_identity = kind == "identity" or query.exclude_own_person
            return self._resolve_image(data, index, kind, need_identity, picture)
        raise BadInputError("the query needs one of image, face_id, vector or upload_id")

    def _resolve_image(self, data: bytes, index, kind: str, need_identity: bool, picture: bool = False):
        if not data:
            raise BadInputError("the query image is empty", reason="EMPTY_IMAGE", field="query.image")
        analyzer = self.analyzer()
        index, faces, verdict = self.analysis.run(self._analyze_query, analyzer, data, index, kind,
                                                  need_identity, picture)
        face = faces[index]
        vec = face.expression if kind == "expression" else face.identity
        if vec is None:
            raise BadInputError(f"could not compute the {kind} vector of face {index}")
        source = QuerySource(bbox=tuple(float(v) for v in face.bbox), faces=faces,
                             face_index=index, identity=face.identity, verdict=verdict)
        if need_identity and face.identity is not None and kind == "expression":
            source.person_id = self._nearest_person(face.identity)
        return np.asarray(vec, dtype=np.float32), source

    def _analyze_query(self, analyzer, data: bytes, index, kind: str, need_identity: bool, picture: bool):
        """_resolve_image's work on the picture, run on the analysis thread: (the face's index, the
        faces left to right, its verdict). The decoding too: the models then read pixels that this
        thread wrote, not ones in another core's cache (19.9 against 17.1 ms a query)."""
        from mien.engine.faces import load_image

        image = load_image(data, max_pixels=self.limits.max_image_pixels)
        with self.analyze_lock:
            self.checkpoint()  # a safe point: the queue for the analyzer can be long
            faces = _left_to_right(analyzer.detect_query(image))
            if not faces:
                raise BadInputError("no face found in the query image", reason="NO_FACE", field="query")
            if index is None and len(faces) > 1:
                raise BadInputError(
                    f"the query image holds {len(faces)} faces; choose one with face_index 0..{len(faces) - 1}",
                    reason="MULTIPLE_FACES", metadata={"faces": len(faces)}, field="query.face_index")
            index = 0 if index is None else index
            if not 0 <= index < len(faces):
                raise BadInputError(
                    f"face_index {index} is out of range: the query image holds {len(faces)} face(s)",
                    reason="FACE_INDEX_OUT_OF_RANGE", metadata={"faces": len(faces)}, field="query.face_index")
            self.checkpoint()
            face = faces[index]
            # under the lock: FaceQA and the vector run the analyzer's interpreters
            verdict = analyzer.query_face(image, faces, face, expression=kind == "expression")
            if need_identity:
                analyzer.embed_identity(image, [face])
            if picture and not face.thumbnail:
                analyzer.align(image, [face])
        return index, faces, verdict

    def _nearest_person(self, identity: np.ndarray) -> int:
        hits = self.store.search_identity(np.asarray(identity, dtype=np.float32), k=1)
        limit = self.limits.same_person_distance
        if limit is None:
            from mien.indexer.persons import query_tolerance

            limit = query_tolerance(self.store.encoders or {}) ** 2
        if not hits or hits[0].distance > limit:
            return -1
        return self.store.get_face(hits[0].face_id).person_id

    def close(self) -> None:
        self.analysis.close()
        self.index_pool.close()
        self.store.close()
