"""The Python client's module layout: what `mien.clients.client` still offers after the
split into searches / catalog / index_jobs / results / replies / channels, that the
client stays light (no engine or model code), and that its QueryQuality keeps the
engine's QueryVerdict's fields. Calls over a real server are in test_server_*.py
and test_scale_replicas.py."""

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


def test_the_client_imports_no_engine_or_model_code():
    code = ("import sys; import mien.clients.client, mien.clients.targets, mien.clients.native; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'cv2', 'dlib', 'onnxruntime', 'mediapipe', 'faiss', 'lmdb') "
            "or m.startswith('mien.engine')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_query_quality_is_the_twin_of_the_engines_query_verdict():
    """The server fills the wire QueryQuality from the engine's QueryVerdict; the client reads
    it into its own QueryQuality (it may not import the engine): same fields, same order."""
    from mien.clients.results import QueryQuality
    from mien.engine.faces.query_qa import QueryVerdict

    def shape(cls):
        return [(f.name, str(f.type)) for f in dataclasses.fields(cls)]

    assert shape(QueryQuality) == shape(QueryVerdict)


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
