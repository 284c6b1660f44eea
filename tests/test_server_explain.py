"""Named expression components and "why it matched" through a real gRPC server on 127.0.0.1.

Stores are built from the package photos (tests/server_support.py): one with
the default encoder (fer-au-478), one with landmarks-v1 (an 0.1-era store),
which must keep working with its own encoder.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from server_support import FRONTS, _build_photo_store, build_photo_store, start_server, stop_server

from mien.clients.client import Client
from mien.engine.faces import explain
from mien.engine.faces.expression_fer_au import COMPONENT_NAMES


@pytest.fixture(scope="module")
def photo_store(tmp_path_factory):
    return build_photo_store(tmp_path_factory.mktemp("server_explain"))


@pytest.fixture(scope="module", params=FRONTS)
def client(photo_store, request):
    server, target = start_server(photo_store.store_dir, front=request.param)
    c = Client(target)
    yield c
    c.close()
    stop_server(server)


def test_store_is_built_with_the_default_encoder(photo_store, client):
    assert photo_store.encoders["expression"] == "fer-au-478"
    assert client.stats().encoders["expression"] == "fer-au-478"


def test_get_face_carries_its_named_components(photo_store, client):
    face = client.get_face(photo_store.face_ids["obama.jpg"][0])
    assert list(face.components) == list(COMPONENT_NAMES)
    emotions = {k: face.components[k] for k in COMPONENT_NAMES[:7]}
    assert max(emotions, key=emotions.get) == "happy"
    assert abs(sum(emotions.values()) - 1) < 1e-4
    # exactly what the engine reads back from the stored vector
    for c in explain.components(face.expression, "fer-au-v2"):
        assert abs(face.components[c.name] - c.value) < 1e-5


def test_search_explains_each_hit(photo_store, client):
    query_id = photo_store.face_ids["obama.jpg"][0]
    result = client.search(query_id, k=5, explain=True)
    query_vec = client.get_face(query_id).expression
    assert list(result.query.components) == list(COMPONENT_NAMES)
    assert len(result.hits) == 5
    for hit in result.hits:
        hit_vec = client.get_face(hit.face_id).expression
        assert list(hit.components) == list(COMPONENT_NAMES)
        want = explain.explain(query_vec, hit_vec, "fer-au-v2")
        assert [m.name for m in hit.agreeing] == [m.name for m in want.agreeing]
        assert [m.name for m in hit.differing] == [m.name for m in want.differing]
        assert 1 <= len(hit.differing) <= 3 and len(hit.agreeing) <= 3
        for m in hit.differing:     # each term is part of the hit's distance
            assert 0 < m.contribution <= hit.distance + 1e-5
            assert abs(m.share - m.contribution / hit.distance) < 1e-4
            assert abs(m.query_value - result.query.components[m.name]) < 1e-5
            assert abs(m.hit_value - hit.components[m.name]) < 1e-5
    # a smile's nearest smiles agree on happiness
    assert result.hits[0].agreeing[0].name == "happy"


def test_explanations_are_only_sent_when_asked(photo_store, client):
    result = client.search(photo_store.face_ids["obama.jpg"][0], k=3)
    assert all(not h.components and not h.agreeing and not h.differing for h in result.hits)
    assert not result.query.components


def test_cross_identity_search_explains_too(photo_store, client):
    result = client.cross(photo_store.face_ids["obama.jpg"][0], "Biden", k=2, explain=True)
    assert result.hits and all(h.person_name == "Biden" for h in result.hits)
    assert all(h.differing and h.components for h in result.hits)
    # Obama's broad smile against Biden's closed mouth: happiness differs, it is not "shared"
    assert "happy" in [m.name for m in result.hits[0].differing]
    assert "happy" not in [m.name for m in result.hits[0].agreeing]


def test_cli_search_prints_the_reasons(photo_store, client, capsys):
    from mien.cli import main

    target = client.target
    assert main(["search", "--face-id", str(photo_store.face_ids["obama.jpg"][0]), "-k", "3",
                 "--server", target]) == 0
    out = capsys.readouterr().out
    assert "why" in out and "differs:" in out
    assert main(["search", "--face-id", str(photo_store.face_ids["obama.jpg"][0]), "-k", "3",
                 "--server", target, "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert all(h["agreeing"] and h["differing"] and "happy" in h["components"] for h in hits)


@pytest.fixture(scope="module")
def landmarks_store(tmp_path_factory):
    from mien.engine.faces import EngineConfig, FaceAnalyzer

    root = tmp_path_factory.mktemp("landmarks_store")
    return _build_photo_store(root, FaceAnalyzer(EngineConfig(expression="landmarks")))


def test_a_landmarks_v1_store_keeps_its_encoder(landmarks_store):
    """An 0.1-era store: the server (default config) answers image queries with landmarks-v1."""
    ps = landmarks_store
    assert ps.encoders["expression"] == "landmarks-v1"
    server, target = start_server(ps.store_dir, front="python")
    try:
        with Client(target) as c:
            assert c.stats().encoders["expression"] == "landmarks-v1"
            result = c.search(ps.archive["grace_hopper.jpg"], k=3, explain=True)
            top = result.hits[0]
            assert top.face_id == ps.face_ids["grace_hopper.jpg"][0] and top.distance < 1e-4
            assert "mouth_width" in top.components and "happy" not in top.components
            face = c.get_face(top.face_id)
            assert np.allclose(face.expression, result.query.vector, atol=1e-4)
    finally:
        stop_server(server)
