"""Helpers for the server tests: a real store built from package photos, a real server.

The store is written with the engine's FaceAnalyzer and the Store writer (the
same path the indexer takes): every package photo becomes a source, and the
face_recognition photos are assigned to two named persons, "Obama" and
"Biden". Biden gets extra faces from flipped / rescaled / re-lit copies of
biden.jpg so that a cross-identity search over him has several candidates.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import shutil
import socket
import tempfile
import time
from functools import lru_cache
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest

from mien.demo import photos
from mien import native

TOKEN = "s3cret-test-token"

# Server tests run against both fronts: the native one (gRPC C++, what `mien
# serve` runs when built) and grpcio's Python server (the fallback).
FRONTS = [
    pytest.param("native", marks=pytest.mark.skipif(not native.available(), reason=native.UNAVAILABLE_REASON)),
    "python",
]
# ... and through both client transports, the same two choices: gRPC C++ (the
# default when built) and grpcio.
TRANSPORTS = FRONTS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"cannot write {path}")
    return path


def biden_variants() -> dict[str, np.ndarray]:
    """biden.jpg and copies that keep the person but change the pixels."""
    b = photos.face_recognition_photo("biden.jpg")
    h, w = b.shape[:2]
    return {
        "biden.jpg": b,
        "biden_flip.jpg": cv2.flip(b, 1),
        "biden_small.jpg": cv2.resize(b, (int(w * 0.8), int(h * 0.8)), interpolation=cv2.INTER_AREA),
        "biden_bright.jpg": cv2.convertScaleAbs(b, alpha=1.15, beta=20),
    }


def write_archive(root: Path) -> dict[str, Path]:
    """Package photos as files under root (never committed). name -> path."""
    images = {
        "t1.jpg": photos.t1(),
        "astronaut.png": photos.astronaut(),
        "grace_hopper.jpg": photos.grace_hopper(),
        "obama.jpg": photos.face_recognition_photo("obama.jpg"),
        "obama2.jpg": photos.face_recognition_photo("obama2.jpg"),
        "obama3.jpg": photos.face_recognition_photo("obama3.jpg"),
        **biden_variants(),
    }
    return {name: _write(root / name, img) for name, img in images.items()}


@dataclass
class PhotoStore:
    store_dir: Path
    archive: dict[str, Path]
    face_ids: dict[str, list[int]] = field(default_factory=dict)   # photo name -> face ids
    persons: dict[str, int] = field(default_factory=dict)          # name -> person id
    encoders: dict = field(default_factory=dict)


def face_record(face, uri: str):
    from mien.engine.store import FaceRecord

    q = face.quality
    return FaceRecord(
        source_uri=uri, frame_index=0, timestamp_ms=0,
        bbox=tuple(float(v) for v in face.bbox), landmarks5=np.asarray(face.landmarks5, np.float32),
        det_score=float(face.det_score), sharpness=float(q.sharpness), yaw=float(q.yaw),
        pitch=float(q.pitch), roll=float(q.roll), expression=face.expression, pooled=face.expression,
        identity=face.identity, thumbnail=face.thumbnail,
    )


def add_photo(store, analyzer, path: Path) -> list[int]:
    """Analyze one photo and commit it as a source; returns the new face ids."""
    from mien.engine.store import SourceRecord

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    # keep FaceQA-rejected faces too, so store order == query-detection order (left to right)
    faces = analyzer.analyze(image, identity=True, keep_rejected=True)
    faces = sorted(faces, key=lambda f: (f.bbox[0] + f.bbox[2]) / 2)
    uri = str(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    source = SourceRecord(uri=uri, fingerprint=digest, kind="image", status="done",
                          face_count=len(faces))
    return list(store.replace_source(source, [face_record(f, uri) for f in faces]))


def build_photo_store(root: Path) -> PhotoStore:
    """A store at root/store with every package photo, persons Obama and Biden.

    The photos are analysed once per test process; each caller gets its own
    copy of the store directory (the archive files are shared, read-only).
    """
    template = _template_store()
    store_dir = Path(root) / "store"
    shutil.copytree(template.store_dir, store_dir)
    return PhotoStore(store_dir=store_dir, archive=template.archive, face_ids=template.face_ids,
                      persons=template.persons, encoders=template.encoders)


@lru_cache(maxsize=1)
def _template_store() -> PhotoStore:
    root = Path(tempfile.mkdtemp(prefix="mien-server-tests-"))
    atexit.register(shutil.rmtree, root, True)
    return _build_photo_store(root)


def _build_photo_store(root: Path, analyzer=None) -> PhotoStore:
    from mien.engine.faces import EngineConfig, FaceAnalyzer
    from mien.engine.store import Store

    analyzer = analyzer or FaceAnalyzer(EngineConfig())
    archive = write_archive(root / "archive")
    ps = PhotoStore(store_dir=root / "store", archive=archive, encoders=dict(analyzer.encoders))
    with Store(ps.store_dir, mode="w", encoders=analyzer.encoders) as store:
        for name, path in archive.items():
            ps.face_ids[name] = add_photo(store, analyzer, path)
        for person, names in (("Obama", ["obama.jpg", "obama2.jpg", "obama3.jpg"]),
                              ("Biden", [n for n in archive if n.startswith("biden")])):
            ids = [i for n in names for i in ps.face_ids[n]]
            centroid = store.vectors(ids, kind="identity").mean(axis=0)
            centroid /= np.linalg.norm(centroid)
            pid = store.add_person(person, centroid)
            store.set_faces_person(ids, pid)
            ps.persons[person] = pid
    return ps


def start_server(store_dir: Path, **kwargs):
    """A started server on 127.0.0.1 at a free port: (server, "127.0.0.1:PORT")."""
    from mien.server.app import build_server

    server, port = build_server(store_dir, port=0, host="127.0.0.1", **kwargs)
    server.start()
    return server, f"127.0.0.1:{port}"


@contextlib.contextmanager
def serving(store_dir: Path, **kwargs):
    """start_server's server for a with-block: yields its "127.0.0.1:PORT", stops it on leaving."""
    server, target = start_server(store_dir, **kwargs)
    try:
        yield target
    finally:
        stop_server(server)


def photo_store_with_root(root: Path) -> tuple[PhotoStore, Path]:
    """build_photo_store in root, and an empty folder beside it for allowed_roots (root/incoming)."""
    allowed = root / "incoming"
    allowed.mkdir()
    return build_photo_store(root), allowed


def photo_store_fixture(name: str):
    """A module-scoped pytest fixture: build_photo_store in a folder called `name`."""

    @pytest.fixture(scope="module")
    def photo_store(tmp_path_factory):
        return build_photo_store(tmp_path_factory.mktemp(name))

    return photo_store


def served_photo_store_fixtures(name: str, limits):
    """Module-scoped pytest fixtures `photo_store` ((PhotoStore, allowed root), see photo_store_with_root)
    and `served` (its "127.0.0.1:PORT" on each front of FRONTS, with these limits and that root allowed).
    In a test module: `photo_store, served = served_photo_store_fixtures("name", LIMITS)`."""

    @pytest.fixture(scope="module")
    def photo_store(tmp_path_factory):
        return photo_store_with_root(tmp_path_factory.mktemp(name))

    @pytest.fixture(scope="module", params=FRONTS)
    def served(photo_store, request):
        ps, allowed = photo_store
        with serving(ps.store_dir, limits=limits, allowed_roots=[allowed], front=request.param) as target:
            yield target

    return photo_store, served


def copied_store(store_dir: Path, tmp_path: Path) -> Path:
    """A copy of a module's store for one test to change (tmp_path/store)."""
    copy = tmp_path / "store"
    shutil.copytree(store_dir, copy)
    return copy


def stop_server(server, timeout: float = 15.0) -> bool:
    """Stop a test server and close its context; True when the front stopped in time.

    grpcio's stop(None) waits until every call's state is released, and after
    undeserializable bytes on a stream it can wait for ever (a grpcio leak seen in
    4 of 10 loaded runs of the garbage-bytes test, never on the native front).
    mien serve bounds its own shutdown (mien/server/shutdown.py); a test teardown
    bounds it here, so a grpcio leak can't hang the suite.
    """
    import threading

    stopped = threading.Event()

    def run():
        server.stop(None)
        stopped.set()

    threading.Thread(target=run, name="test-server-stop", daemon=True).start()
    stopped.wait(timeout)
    server.mien_context.close()
    return stopped.is_set()


def wait_until(predicate, timeout: float = 60.0, interval: float = 0.05) -> bool:
    """Poll predicate until true or timeout (used to wait for background work, not to time it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
