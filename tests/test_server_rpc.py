"""Every Mien RPC and every error status, against a real server on 127.0.0.1.

The store holds the package photos (t1 with 6 faces, astronaut, grace_hopper,
obama x3, biden x4 variants) with persons Obama and Biden.
"""

from __future__ import annotations

import json

import cv2
import grpc
import numpy as np
import pytest

from server_support import TRANSPORTS, served_photo_store_fixtures

from mien.clients.client import Client, Upload
from mien.server.context import Limits
from mien.v1 import common_pb2, search_pb2, search_pb2_grpc

LIMITS = Limits(max_message_bytes=4 * 1024 * 1024, max_image_pixels=3_000_000, max_top_k=100,
                max_upload_bytes=6 * 1024 * 1024)


photo_store, served = served_photo_store_fixtures("server_rpc", LIMITS)


@pytest.fixture(scope="module", params=TRANSPORTS)
def env(photo_store, served, request):
    """Each front, called through each client transport."""
    ps, allowed = photo_store
    target = served
    client = Client(target, transport=request.param)
    assert client.transport == request.param
    yield ps, client, target, allowed
    client.close()


def code_of(excinfo) -> grpc.StatusCode:
    return excinfo.value.code()


def jpeg(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return buf.tobytes()


def sq_l2(a, b) -> float:
    d = np.asarray(a, np.float32) - np.asarray(b, np.float32)
    return float(d @ d)


# -- health, reflection, stats, persons, faces -------------------------------------------
def test_health_and_reflection(env):
    _, client, target, _ = env
    assert client.health() == "SERVING"
    assert client.health("mien.v1.Mien") == "SERVING"
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    db = ProtoReflectionDescriptorDatabase(client.channel)
    services = set(db.get_services())
    assert {"mien.v1.Mien", "grpc.health.v1.Health"} <= services
    desc = db.FindFileContainingSymbol("mien.v1.Mien")
    assert any(s.name == "Mien" for s in desc.service)


def test_stats(env):
    ps, client, _, _ = env
    s = client.stats()
    assert s.faces == sum(len(v) for v in ps.face_ids.values())
    assert s.sources == len(ps.archive)
    assert s.persons == 2
    assert s.encoders["expression"] == ps.encoders["expression"]
    assert len(ps.face_ids["t1.jpg"]) == 6


def test_list_and_get_persons(env):
    ps, client, _, _ = env
    persons = {p.name: p for p in client.persons()}
    assert set(persons) == {"Obama", "Biden"}
    assert persons["Biden"].face_count == sum(len(ps.face_ids[n]) for n in ps.archive if n.startswith("biden"))
    assert client.person("Obama").person_id == ps.persons["Obama"]
    assert client.person(ps.persons["Biden"]).name == "Biden"
    with pytest.raises(grpc.RpcError) as e:
        client.person("Nobody")
    assert code_of(e) == grpc.StatusCode.NOT_FOUND and "Nobody" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        client.person(987654)
    assert code_of(e) == grpc.StatusCode.NOT_FOUND


def test_get_face(env):
    ps, client, _, _ = env
    fid = ps.face_ids["obama.jpg"][0]
    face = client.get_face(fid)
    assert face.face_id == fid
    assert face.source_uri == str(ps.archive["obama.jpg"])
    assert face.person_name == "Obama" and face.person_id == ps.persons["Obama"]
    assert face.thumbnail[:2] == b"\xff\xd8"                      # a JPEG
    assert face.expression.shape == (16,) and abs(np.linalg.norm(face.expression) - 1) < 1e-4
    assert face.landmarks5.shape == (5, 2)
    x1, y1, x2, y2 = face.bbox
    assert x2 > x1 and y2 > y1
    with pytest.raises(grpc.RpcError) as e:
        client.get_face(10**9)
    assert code_of(e) == grpc.StatusCode.NOT_FOUND


# -- expression search ----------------------------------------------------------------
def test_search_by_face_id_excludes_itself_and_sorts(env):
    ps, client, _, _ = env
    fid = ps.face_ids["astronaut.png"][0]
    query = client.get_face(fid).expression
    result = client.search(fid, k=5)
    assert len(result) == 5
    assert fid not in [h.face_id for h in result]
    dists = [h.distance for h in result]
    assert dists == sorted(dists)
    for h in result:  # the distance is the squared L2 of the stored vectors
        assert abs(h.distance - sq_l2(query, client.get_face(h.face_id).expression)) < 1e-4
    assert result.query.face_id == fid


def test_search_by_vector_finds_the_face(env):
    ps, client, _, _ = env
    fid = ps.face_ids["t1.jpg"][3]
    vec = client.get_face(fid).expression
    result = client.search(vec, k=3)
    assert result.hits[0].face_id == fid and result.hits[0].distance < 1e-5
    assert np.allclose(result.query.vector, vec)


def test_search_by_image_single_face(env):
    ps, client, _, _ = env
    result = client.search(ps.archive["grace_hopper.jpg"], k=3, thumbnails=True)
    top = result.hits[0]
    assert top.face_id == ps.face_ids["grace_hopper.jpg"][0]
    assert top.distance < 1e-4                 # same pixels, same vector
    assert top.thumbnail[:2] == b"\xff\xd8"
    assert len(result.query.faces) == 1 and result.query.face_index == 0


def test_search_multi_face_needs_index(env):
    ps, client, _, _ = env
    with pytest.raises(grpc.RpcError) as e:
        client.search(ps.archive["t1.jpg"])
    assert code_of(e) == grpc.StatusCode.INVALID_ARGUMENT
    assert "6 faces" in e.value.details() and "face_index" in e.value.details()
    result = client.search(ps.archive["t1.jpg"], face_index=2, k=1)
    assert result.hits[0].face_id == ps.face_ids["t1.jpg"][2]   # both ordered left to right
    assert len(result.query.faces) == 6
    with pytest.raises(grpc.RpcError) as e:
        client.search(ps.archive["t1.jpg"], face_index=6)
    assert code_of(e) == grpc.StatusCode.INVALID_ARGUMENT and "6 face" in e.value.details()


def test_search_no_face_and_bad_image(env):
    _, client, _, _ = env
    rng = np.random.default_rng(0)
    wall = cv2.GaussianBlur(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8), (31, 31), 0)
    with pytest.raises(grpc.RpcError) as e:
        client.search(jpeg(wall))
    assert code_of(e) == grpc.StatusCode.INVALID_ARGUMENT and "no face" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        client.search(b"this is not an image at all")
    assert code_of(e) == grpc.StatusCode.INVALID_ARGUMENT


def test_wrong_vector_dimension(env):
    _, client, _, _ = env
    with pytest.raises(grpc.RpcError) as e:
        client.search(np.ones(15, np.float32))
    assert code_of(e) == grpc.StatusCode.INVALID_ARGUMENT
    assert "15" in e.value.details() and "16" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        client.identity(np.ones(16, np.float32))
    assert code_of(e) == grpc.StatusCode.INVALID_ARGUMENT and "128" in e.value.details()


def test_a_vector_of_any_scale_is_normalised_and_a_zero_one_refused(env):
    """Issue 22: a finite but huge vector (1e38 in each component) answered OK with no hit
    (its float32 norm overflows). The server normalises a raw query vector (in float64, so any
    finite scale works) and refuses the one vector that has no direction."""
    ps, client, _, _ = env
    fid = ps.face_ids["t1.jpg"][3]
    unit = client.search(client.get_face(fid).expression, k=5)
    for scale in (1e38, 3.0, 1e-30):
        scaled = client.search(client.get_face(fid).expression * np.float32(scale), k=5)
        assert [h.face_id for h in scaled] == [h.face_id for h in unit], scale
        assert np.allclose([h.distance for h in scaled], [h.distance for h in unit], atol=1e-5), scale
        assert np.isclose(np.linalg.norm(scaled.query.vector.astype(np.float64)), 1.0, atol=1e-5)
    huge = client.search(np.full(16, 1e38, np.float32), k=3)
    assert len(huge.hits) == 3                                   # the diagonal direction, searched
    identity = client.identity(np.full(128, 1e38, np.float32), k=2)
    assert len(identity.hits) == 2
    for call, dim in ((client.search, 16), (client.identity, 128)):
        with pytest.raises(grpc.RpcError) as e:
            call(np.zeros(dim, np.float32))
        assert code_of(e) == grpc.StatusCode.INVALID_ARGUMENT and "all zeros" in e.value.details()


def test_filters(env):
    ps, client, _, _ = env
    q = ps.face_ids["t1.jpg"][0]
    only = client.search(q, k=50, persons=["Obama"])
    assert only.hits and {h.person_name for h in only} == {"Obama"}
    without = client.search(q, k=50, exclude_persons=["Obama", ps.persons["Biden"]])
    assert without.hits and not {h.person_name for h in without} & {"Obama", "Biden"}
    src = str(ps.archive["astronaut.png"])
    assert {h.source_uri for h in client.search(q, k=50, sources=[src])} == {src}
    assert len(client.search(q, k=50, time_range=(1, 1000))) == 0      # stills sit at 0 ms
    assert len(client.search(q, k=50, time_range=(0, 1000))) == len(client.search(q, k=50))
    with pytest.raises(grpc.RpcError) as e:
        client.search(q, persons=["Nobody"])
    assert code_of(e) == grpc.StatusCode.NOT_FOUND


def test_exclude_own_person(env):
    ps, client, _, _ = env
    fid = ps.face_ids["obama.jpg"][0]
    assert any(h.person_name == "Obama" for h in client.search(fid, k=50))
    assert all(h.person_name != "Obama" for h in client.search(fid, k=50, exclude_own_person=True))
    # by image: the server recognises Obama from the identity vector
    result = client.search(ps.archive["obama2.jpg"], k=50, exclude_own_person=True)
    assert result.query.person_id == ps.persons["Obama"]
    assert result.hits and all(h.person_name != "Obama" for h in result)


def test_top_k_limits(env):
    ps, client, _, _ = env
    fid = ps.face_ids["t1.jpg"][0]
    assert len(client.search(fid, k=2)) == 2
    with pytest.raises(grpc.RpcError) as e:
        client.search(fid, k=LIMITS.max_top_k + 1)
    # a limit is the caller's to fix, not a quota: INVALID_ARGUMENT (issue 15), the limit in the message
    assert code_of(e) == grpc.StatusCode.INVALID_ARGUMENT and str(LIMITS.max_top_k) in e.value.details()


# -- cross-identity and identity ----------------------------------------------------------
def test_cross_identity_biden_making_obamas_faces(env):
    ps, client, _, _ = env
    biden_ids = {i for n in ps.archive if n.startswith("biden") for i in ps.face_ids[n]}
    result = client.cross(ps.archive["obama.jpg"], "Biden", k=10)
    assert {h.face_id for h in result} == biden_ids            # only (and all of) Biden's faces
    assert all(h.person_name == "Biden" for h in result)
    # the ranking is by the distance to Obama's expression among Biden's faces
    q = result.query.vector
    expected = sorted(biden_ids, key=lambda i: sq_l2(q, client.get_face(i).expression))
    assert [h.face_id for h in result] == expected
    by_id = client.cross(ps.face_ids["obama.jpg"][0], ps.persons["Biden"], k=2)
    assert len(by_id) == 2 and all(h.person_name == "Biden" for h in by_id)


def test_cross_identity_errors(env):
    ps, client, target, _ = env
    with pytest.raises(grpc.RpcError) as e:
        client.cross(ps.archive["obama.jpg"], "Trump")
    assert code_of(e) == grpc.StatusCode.NOT_FOUND and "Trump" in e.value.details()
    stub = search_pb2_grpc.MienStub(client.channel)
    with pytest.raises(grpc.RpcError) as e:
        stub.CrossIdentitySearch(search_pb2.CrossIdentityRequest(
            query=common_pb2.FaceQuery(face_id=ps.face_ids["obama.jpg"][0])))
    assert code_of(e) == grpc.StatusCode.INVALID_ARGUMENT and "target" in e.value.details()


def test_search_identity(env):
    ps, client, _, _ = env
    fid = ps.face_ids["obama.jpg"][0]
    result = client.identity(fid, k=3)
    assert fid not in [h.face_id for h in result]
    assert result.hits[0].person_name == "Obama"
    by_image = client.identity(ps.archive["biden.jpg"], k=4)
    assert by_image.hits[0].face_id == ps.face_ids["biden.jpg"][0]
    assert by_image.query.vector.shape == (128,)


# -- uploads and sizes ------------------------------------------------------------------
def test_upload_in_chunks(env):
    ps, client, _, _ = env
    data = ps.archive["grace_hopper.jpg"].read_bytes()
    up = client.upload_image(data, chunk_bytes=4096)            # many chunks
    result = client.search(up, k=1)
    assert result.hits[0].face_id == ps.face_ids["grace_hopper.jpg"][0]
    with pytest.raises(grpc.RpcError) as e:
        client.search(Upload("no-such-upload"))
    assert code_of(e) == grpc.StatusCode.NOT_FOUND


def test_oversized_inputs(env):
    ps, client, _, _ = env
    stub = search_pb2_grpc.MienStub(client.channel)
    big = bytes(5 * 1024 * 1024)                               # over the 4 MiB message limit
    with pytest.raises(grpc.RpcError) as e:
        stub.SearchExpression(search_pb2.SearchExpressionRequest(
            query=common_pb2.FaceQuery(image=common_pb2.ImageInput(data=big))))
    assert code_of(e) == grpc.StatusCode.RESOURCE_EXHAUSTED
    with pytest.raises(grpc.RpcError) as e:                    # over the 6 MiB upload limit
        client.upload_image(bytes(7 * 1024 * 1024))
    assert code_of(e) == grpc.StatusCode.INVALID_ARGUMENT     # the server's limit, not gRPC's
    huge = cv2.resize(cv2.imread(str(ps.archive["grace_hopper.jpg"])), (2400, 1600))  # 3.84 MP
    with pytest.raises(grpc.RpcError) as e:
        client.search(jpeg(huge))
    assert code_of(e) == grpc.StatusCode.INVALID_ARGUMENT and "pixels" in e.value.details()


def test_index_paths_outside_allowed_roots(env):
    ps, client, _, allowed = env
    with pytest.raises(grpc.RpcError) as e:
        list(client.index_paths([ps.archive["obama.jpg"]]))
    assert code_of(e) == grpc.StatusCode.PERMISSION_DENIED and "allowed roots" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:                    # escaping with .. is caught too
        list(client.index_paths([allowed / ".." / "archive"]))
    assert code_of(e) == grpc.StatusCode.PERMISSION_DENIED


# -- CLI on top of the client ----------------------------------------------------------------
def test_cli_json_table_and_sheet(env, tmp_path, capsys):
    ps, _, target, _ = env
    from mien.cli import main

    assert main(["cross", "--image", str(ps.archive["obama.jpg"]), "--person", "Biden",
                 "--server", target, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["hits"] and all(h["person"] == "Biden" for h in out["hits"])
    sheet = tmp_path / "sheet.png"
    assert main(["search", "--image", str(ps.archive["t1.jpg"]), "--face-index", "1", "-k", "5",
                 "--server", target, "--sheet", str(sheet)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["#", "distance", "face"] and len(table) == 2 + 5
    img = cv2.imread(str(sheet))
    assert img is not None and img.shape[1] > 6 * 128        # query + 5 hits in one row
    assert main(["stats", "--server", target]) == 0
    assert "faces" in capsys.readouterr().out
    assert main(["persons", "--server", target, "--json"]) == 0
    assert {p["name"] for p in json.loads(capsys.readouterr().out)} == {"Obama", "Biden"}
    assert main(["search", "--face-id", "999999999", "--server", target]) == 1
    assert "NOT_FOUND" in capsys.readouterr().err
