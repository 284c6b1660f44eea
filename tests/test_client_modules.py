"""The Python client's module layout: what `mien.clients.client` still offers after the
split into search_calls / catalog_calls / index_job_calls / from_proto / channels, that
every module of mien.clients stays light (no engine, server or model code), and that the
reply types are one set of classes shared with the engine (mien.results). Calls over a
real server are in test_server_*.py and test_scale_replicas.py."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from mien import native


def test_every_public_name_still_comes_from_mien_clients_client():
    import mien.clients
    import mien.clients.client as module

    names = ["Client", "MienError", "Upload", "FaceHit", "SearchResult", "QueryFace", "DetectedFace",
             "ComponentMatch", "Person", "Face", "Stats", "IndexProgress", "IndexJob", "Source", "Page",
             "DeletedPerson", "QueryQuality"]
    for name in names:
        assert getattr(module, name) is not None, name
    assert set(module.__all__) <= set(names)
    assert mien.clients.Client is module.Client and mien.clients.MienError is module.MienError
    # the helpers other modules imported from here
    assert callable(module.open_channel) and callable(module.auth_metadata)
    assert module.TRANSPORTS == ("auto", "native", "python") and module.DEFAULT_TARGET == "127.0.0.1:50051"
    assert module.INLINE_IMAGE_BYTES > module.CHUNK_BYTES > 0
    for method in ("search", "cross", "identity", "upload_image", "get_face", "persons", "persons_page",
                   "person", "rename_person", "merge_persons", "split_person", "delete_person",
                   "person_faces", "sources", "stats", "index_paths", "start_index_job", "index_job",
                   "watch_index_job", "cancel_index_job", "health", "close", "channel", "metadata"):
        assert hasattr(module.Client, method), method


# what a client must never load: the store's and the models' libraries, and mien's own
# engine, indexer, server, web app and training
HEAVY = ("lmdb", "faiss", "cv2", "torch", "onnxruntime", "dlib", "ai_edge_litert", "mediapipe")
SERVER_SIDE = ("mien.engine", "mien.indexer", "mien.server", "mien.web", "mien.training")


def test_every_client_module_imports_without_engine_or_model_code():
    """`import mien.clients` and each module in it, in a fresh interpreter: none of HEAVY or
    SERVER_SIDE is loaded (so the client installs and runs without lmdb, faiss or the models)."""
    code = ("import importlib, pkgutil, sys, mien.clients\n"
            "names = [m.name for m in pkgutil.walk_packages(mien.clients.__path__, 'mien.clients.')]\n"
            "for name in names: importlib.import_module(name)\n"
            "print(len(names))\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} "
            f"or any(m == p or m.startswith(p + '.') for p in {SERVER_SIDE!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    count, loaded = out.stdout.strip().splitlines()
    assert int(count) >= 15, out.stdout  # the walk did see the package's modules
    assert loaded == "[]", loaded


def test_the_reply_types_are_the_engines_own():
    """One class per reply, shared by the engine and the clients (mien.results): the engine's
    verdict on a query face is the client's QueryQuality, its stored face and GetFace's Face
    share FaceFields, its tags and analytics results are the AnalyticsClient's."""
    import mien.clients.analytics_client as analytics_client
    import mien.engine.analytics as analytics
    from mien.clients.client import Face, QueryQuality
    from mien.engine.faces.query_qa import record_verdict
    from mien.engine.store.records import FaceRecord, Tag
    from mien.results.catalog import FaceFields

    class Stored:  # a stored face as record_verdict reads it
        sharpness, yaw, pitch, roll, occluded, occlusion = 9.0, 1.0, 2.0, 3.0, True, 5.0

    verdict = record_verdict(Stored())
    assert type(verdict) is QueryQuality and verdict.occluded and verdict.explanation
    assert issubclass(Face, FaceFields) and issubclass(FaceRecord, FaceFields)
    assert [f.name for f in dataclasses.fields(FaceRecord)][:13] == [
        "source_uri", "frame_index", "timestamp_ms", "bbox", "landmarks5", "det_score", "sharpness",
        "yaw", "pitch", "roll", "expression", "pooled", "identity"]  # built by position in places
    assert analytics_client.Tag is Tag
    for name in ("Cluster", "PersonSummary", "StoreClusters", "Segment", "PersonTagResult",
                 "SourceTagReport", "PersonTagCount", "StoreTagReport"):
        assert getattr(analytics_client, name) is getattr(analytics, name), name


def test_transport_choice_for_one_server_and_for_replicas():
    from mien.clients import Client

    built = "native" if native.available() else "python"
    for target in ("127.0.0.1:1", "127.0.0.1:1,127.0.0.1:2", ["127.0.0.1:1", "127.0.0.1:2"], "dns:localhost:1"):
        with Client(target) as c:                 # nothing connects before the first call
            assert c.transport == built, target
        with Client(target, transport="python") as c:
            assert c.transport == "python"
    with pytest.raises(ValueError, match="transport must be one of"):
        Client("127.0.0.1:1", transport="carrier-pigeon")
