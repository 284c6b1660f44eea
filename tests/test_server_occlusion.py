"""FaceQA v2 over a real gRPC server on 127.0.0.1 (both fronts): the query face's verdict,
occlusion flags on hits and records, exclude_occluded on searches, include_occluded on analytics.

The store is indexed by the real indexer from package photos, clear and with a synthetic hand
over the mouth (tests/test_faces_meshpose.py's cover_mouth); queries are real photos, blurred
(FaceQA would reject them) or covered.
"""

from __future__ import annotations

import cv2
import grpc
import pytest

from server_support import FRONTS, start_server, stop_server
from test_faces_meshpose import cover_mouth

from mien.engine.faces.occlusion import THRESHOLD
from mien.v1 import analytics_pb2, analytics_pb2_grpc, common_pb2, search_pb2, search_pb2_grpc


def _detect(image):
    from mien.engine.faces import EngineConfig
    from mien.engine.faces import registry

    return registry.build("detector", EngineConfig()).detect(image)


def _png(image) -> bytes:
    ok, data = cv2.imencode(".png", image)
    assert ok
    return data.tobytes()


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    from mien.demo import photos
    from mien.engine.analytics import create_tag
    from mien.engine.store import Store
    from mien.indexer import IndexOptions, index_paths

    root = tmp_path_factory.mktemp("server_occlusion")
    folder = root / "photos"
    folder.mkdir()
    images = {}
    for name in ("obama", "biden"):
        image = photos.face_recognition_photo(name + ".jpg")
        (face,) = _detect(image)
        images[name], images[name + "_covered"] = image, cover_mouth(image, face)
        cv2.imwrite(str(folder / f"{name}.png"), images[name])
        cv2.imwrite(str(folder / f"{name}_covered.png"), images[name + "_covered"])
    summary = index_paths([str(folder)], str(root / "store"), options=IndexOptions(workers=1, show_progress=False))
    assert summary.faces_passed == 4
    with Store(str(root / "store"), mode="w") as store:
        faces = {f.source_uri.rsplit("/", 1)[-1][:-4]: f for s in store.list_sources()
                 for f in store.faces_of_source(s.uri)}
        create_tag(store, "anything", face_ids=[faces["obama"].face_id], threshold=4.0)
    return {"store": root / "store", "images": images, "faces": faces}


@pytest.fixture(scope="module", params=FRONTS)
def stubs(archive, request):
    server, target = start_server(archive["store"], front=request.param)
    channel = grpc.insecure_channel(target)
    yield search_pb2_grpc.MienStub(channel), analytics_pb2_grpc.AnalyticsStub(channel)
    channel.close()
    stop_server(server)


def _search_image(mien, image, **kw):
    query = common_pb2.FaceQuery(image=common_pb2.ImageInput(data=_png(image)))
    return mien.SearchExpression(search_pb2.SearchExpressionRequest(query=query, top_k=4, **kw))


def test_a_blurred_query_face_says_it_would_have_been_rejected_and_why(archive, stubs):
    mien, _ = stubs
    blurred = cv2.GaussianBlur(archive["images"]["obama"], (0, 0), 4)
    reply = _search_image(mien, blurred)
    q = reply.query.quality
    assert reply.query.HasField("quality")
    assert not q.passed and q.reason == "blurry" and "rejected" in q.explanation
    assert q.sharpness < 3.0 and abs(q.yaw) < 20
    assert len(reply.hits) == 4  # searched anyway: the user chose the face
    assert not reply.query.faces[0].quality_passed and reply.query.faces[0].quality_reason == "blurry"


def test_a_clear_query_face_passes_and_a_covered_one_is_flagged(archive, stubs):
    mien, _ = stubs
    clear = _search_image(mien, archive["images"]["biden"]).query.quality
    assert clear.passed and clear.reason == "" and clear.explanation == "" and not clear.occluded
    assert 0 < clear.occlusion < THRESHOLD and clear.sharpness >= 3.0
    covered = _search_image(mien, archive["images"]["biden_covered"]).query.quality
    assert covered.passed and covered.occluded and covered.occlusion > THRESHOLD
    assert "mouth covered" in covered.explanation


def test_a_stored_face_query_carries_its_indexed_verdict(archive, stubs):
    mien, _ = stubs
    face = archive["faces"]["obama_covered"]
    reply = mien.SearchExpression(search_pb2.SearchExpressionRequest(
        query=common_pb2.FaceQuery(face_id=face.face_id), top_k=4))
    q = reply.query.quality
    assert q.passed and q.occluded and q.occlusion == pytest.approx(face.occlusion, rel=1e-5)
    assert q.yaw == pytest.approx(face.yaw, abs=1e-3) and q.sharpness == pytest.approx(face.sharpness, rel=1e-5)


def test_hits_and_records_show_occlusion_and_searches_can_leave_it_out(archive, stubs):
    mien, _ = stubs
    faces = archive["faces"]
    by_id = {f.face_id: f for f in faces.values()}
    reply = _search_image(mien, archive["images"]["obama_covered"])
    assert {h.face_id for h in reply.hits} == set(by_id)
    for hit in reply.hits:
        assert hit.occluded == by_id[hit.face_id].occluded
        assert hit.occlusion == pytest.approx(by_id[hit.face_id].occlusion, rel=1e-5)
    clear = _search_image(mien, archive["images"]["obama_covered"],
                          filters=common_pb2.Filters(exclude_occluded=True))
    assert {h.face_id for h in clear.hits} == {i for i, f in by_id.items() if not f.occluded}
    record = mien.GetFace(search_pb2.GetFaceRequest(face_id=faces["biden_covered"].face_id))
    assert record.occluded and record.occlusion == pytest.approx(faces["biden_covered"].occlusion, rel=1e-5)


def test_analytics_leave_occluded_faces_out_unless_asked(archive, stubs):
    _, analytics = stubs
    n = len(archive["faces"])
    n_covered = sum(f.occluded for f in archive["faces"].values())
    plain = analytics.TagStore(analytics_pb2.TagStoreRequest(tags=["anything"]))
    assert plain.face_count == n - n_covered and plain.occluded_left_out == n_covered
    both = analytics.TagStore(analytics_pb2.TagStoreRequest(tags=["anything"], include_occluded=True))
    assert both.face_count == n and both.occluded_left_out == 0
    clusters = analytics.ClusterStore(analytics_pb2.ClusterStoreRequest(k=2))
    assert clusters.face_count == n - n_covered and clusters.occluded_left_out == n_covered
    clusters = analytics.ClusterStore(analytics_pb2.ClusterStoreRequest(k=2, include_occluded=True))
    assert clusters.face_count == n
    uri = archive["faces"]["obama_covered"].source_uri
    one = analytics.TagSource(analytics_pb2.TagSourceRequest(source_uri=uri, tags=["anything"]))
    assert one.face_count == 0 and one.occluded_left_out == 1
    one = analytics.TagSource(analytics_pb2.TagSourceRequest(source_uri=uri, tags=["anything"],
                                                             include_occluded=True))
    assert one.face_count == 1 and one.occluded_left_out == 0


@pytest.fixture(scope="module")
def served(archive):
    server, target = start_server(archive["store"], front="python")
    yield target
    stop_server(server)


def test_the_cli_asks_the_server_to_include_occluded_faces(archive, served):
    import json
    import subprocess
    import sys

    def mien(*args):
        done = subprocess.run([sys.executable, "-m", "mien.cli", *args, "--server", served, "--json"],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    n = len(archive["faces"])
    n_covered = sum(f.occluded for f in archive["faces"].values())
    plain = mien("tag", "store", "--tags", "anything")
    assert plain["faces"] == n - n_covered and plain["occluded_left_out"] == n_covered
    assert mien("tag", "store", "--tags", "anything", "--include-occluded")["faces"] == n
    person = archive["faces"]["biden_covered"].person_id
    members = [f for f in archive["faces"].values() if f.person_id == person]
    summary = mien("summary", "--person", str(person), "--include-occluded")
    assert summary["faces"] == len(members) and summary["occluded_left_out"] == 0
    summary = mien("summary", "--person", str(person))
    assert summary["faces"] == sum(not f.occluded for f in members)


@pytest.mark.parametrize("transport", FRONTS)
def test_the_python_client_shows_the_verdict_and_the_flags(archive, served, transport, tmp_path):
    from mien.clients.client import Client

    faces = archive["faces"]
    covered = tmp_path / "covered.png"
    cv2.imwrite(str(covered), archive["images"]["obama_covered"])
    with Client(served, transport=transport) as c:
        result = c.search(covered.read_bytes(), k=4)
        assert result.query.quality.passed and result.query.quality.occluded
        assert {h.face_id: h.occluded for h in result.hits} == {f.face_id: f.occluded for f in faces.values()}
        kept = c.search(covered.read_bytes(), k=4, exclude_occluded=True)
        assert all(not h.occluded for h in kept.hits) and len(kept.hits) == sum(not f.occluded for f in faces.values())
        assert c.get_face(faces["obama_covered"].face_id).occluded
        person = faces["biden_covered"].person_id
        crossed = c.cross(covered.read_bytes(), person, k=4, exclude_occluded=True)
        assert crossed.hits and all(not h.occluded for h in crossed.hits)
        assert all(not h.occluded for h in c.identity(covered.read_bytes(), k=4, exclude_occluded=True).hits)


def test_mien_search_warns_about_a_rejected_query_face(archive, served, tmp_path):
    import json
    import subprocess
    import sys

    blurred = tmp_path / "blurred.png"
    cv2.imwrite(str(blurred), cv2.GaussianBlur(archive["images"]["obama"], (0, 0), 4))
    done = subprocess.run([sys.executable, "-m", "mien.cli", "search", "--image", str(blurred), "-k", "4",
                           "--server", served, "--json", "--exclude-occluded"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "note: query face: the indexer would have rejected this face: blurry" in done.stderr
    out = json.loads(done.stdout)
    assert out["query"]["quality"]["passed"] is False and out["query"]["quality"]["reason"] == "blurry"
    assert out["hits"] and not any(h["occluded"] for h in out["hits"])
