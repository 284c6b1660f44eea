"""The person RPCs behind the People pages, over gRPC on both fronts and over JSON.

A real store of package photos (Obama and Biden named, Biden with four
photos; the rest of the faces unassigned) and two persons made of two faces
of one group photo (t1.jpg). Checks: ListPersons finds by name or #id, orders
by faces or name, keeps the single-face persons, pages with any order, gives
cover faces; ListPersonFaces lists the faces of nobody; MoveFaces moves faces
between persons and refuses two faces of one frame (reason SAME_FRAME, with
where) unless told; SuggestMerges finds a person split in two and RejectMerge
is kept in the store as cannot-link (a later merge clears it); a refused merge
carries its ErrorInfo in the JSON error body.
"""

from __future__ import annotations

import json

import grpc
import pytest
from grpc_status import rpc_status

from server_support import FRONTS, serving, start_server, stop_server, copied_store, photo_store_fixture
from mien.v1 import common_pb2, search_pb2, search_pb2_grpc

ref = common_pb2.PersonRef


base = photo_store_fixture("persons-store")


@pytest.fixture
def world(base, tmp_path):
    from mien.engine.store import Store

    store_dir = copied_store(base.store_dir, tmp_path)
    t1 = base.face_ids["t1.jpg"]
    with Store(store_dir, mode="w") as store:   # two people of one group photo, as two persons
        ident = store.vectors(t1[:2], kind="identity")
        a, b = store.add_person(None, ident[0]), store.add_person(None, ident[1])
        store.set_faces_person([t1[0]], a)
        store.set_faces_person([t1[1]], b)
    return {"store": store_dir, "base": base, "a": a, "b": b, "t1": t1}


def _reason(err) -> tuple[str, dict]:
    status = rpc_status.from_call(err)
    from google.rpc import error_details_pb2

    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info.reason, dict(info.metadata)
    return "", {}


@pytest.mark.parametrize("front", FRONTS)
def test_list_find_order_page_and_covers(world, front):
    with serving(world["store"], front=front) as target:
        stub = search_pb2_grpc.MienStub(grpc.insecure_channel(target))
        obama, biden = world["base"].persons["Obama"], world["base"].persons["Biden"]
        everyone = stub.ListPersons(search_pb2.ListPersonsRequest()).persons
        assert [p.person_id for p in everyone] == sorted(p.person_id for p in everyone)  # by id, as before
        assert all(p.cover_face_id == 0 for p in everyone)                                # only when asked
        found = stub.ListPersons(search_pb2.ListPersonsRequest(query="bid", include_covers=True))
        assert [p.name for p in found.persons] == ["Biden"] and found.total_size == 1
        assert found.persons[0].cover_face_id in world["base"].face_ids["biden.jpg"] + \
            sum((world["base"].face_ids[n] for n in ("biden_flip.jpg", "biden_small.jpg", "biden_bright.jpg")), [])
        assert [p.person_id for p in stub.ListPersons(search_pb2.ListPersonsRequest(query=f"#{obama}")).persons] == [obama]
        by_faces = stub.ListPersons(search_pb2.ListPersonsRequest(order=search_pb2.PERSON_ORDER_FACES)).persons
        assert [p.face_count for p in by_faces] == sorted((p.face_count for p in by_faces), reverse=True)
        assert by_faces[0].person_id == biden
        by_name = stub.ListPersons(search_pb2.ListPersonsRequest(order=search_pb2.PERSON_ORDER_NAME)).persons
        assert [p.name for p in by_name[:2]] == ["Biden", "Obama"] and not by_name[-1].name
        singles = stub.ListPersons(search_pb2.ListPersonsRequest(max_faces=1)).persons
        assert {p.person_id for p in singles} == {world["a"], world["b"]}
        # pages in any order walk the whole list once
        seen, token = [], ""
        while True:
            page = stub.ListPersons(search_pb2.ListPersonsRequest(order=search_pb2.PERSON_ORDER_FACES, page_size=1,
                                                                  page_token=token))
            seen += [p.person_id for p in page.persons]
            token = page.next_page_token
            if not token:
                break
        assert seen == [p.person_id for p in by_faces]
        with pytest.raises(grpc.RpcError) as err:
            stub.ListPersons(search_pb2.ListPersonsRequest(order=search_pb2.PERSON_ORDER_NAME, page_size=1,
                                                           page_token=page_token_of(stub)))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # the faces of nobody, a page at a time
        nobody = stub.ListPersonFaces(search_pb2.ListPersonFacesRequest(unassigned=True, page_size=2))
        assert len(nobody.faces) == 2 and nobody.next_page_token and all(f.person_id == -1 for f in nobody.faces)
        rest = stub.ListPersonFaces(search_pb2.ListPersonFacesRequest(unassigned=True, page_size=100,
                                                                      page_token=nobody.next_page_token))
        assert len(nobody.faces) + len(rest.faces) == nobody.total_size


def page_token_of(stub) -> str:
    """A token of another request (faces order): refused by a name-ordered list."""
    return stub.ListPersons(search_pb2.ListPersonsRequest(order=search_pb2.PERSON_ORDER_FACES,
                                                          page_size=1)).next_page_token


@pytest.mark.parametrize("front", FRONTS)
def test_move_faces_suggest_reject(world, front):
    from mien.engine.store import Store

    with serving(world["store"], front=front) as target:
        stub = search_pb2_grpc.MienStub(grpc.insecure_channel(target))
        biden = world["base"].persons["Biden"]
        a, b, t1 = world["a"], world["b"], world["t1"]
        # a face of nobody moves to a person
        nobody = stub.ListPersonFaces(search_pb2.ListPersonFacesRequest(unassigned=True, page_size=100)).faces
        third = next(f.face_id for f in nobody if f.face_id not in t1)
        moved = stub.MoveFaces(search_pb2.MoveFacesRequest(face_ids=[third], target=ref(person_id=a)))
        assert moved.face_count == 2
        # two faces of one photo in one person: refused, with where; allowed when told
        with pytest.raises(grpc.RpcError) as err:
            stub.MoveFaces(search_pb2.MoveFacesRequest(face_ids=[t1[1]], target=ref(person_id=a)))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        reason, facts = _reason(err.value)
        assert reason == "SAME_FRAME" and facts["source_uri"].endswith("t1.jpg") and facts["timestamp_ms"] == "0"
        with pytest.raises(grpc.RpcError) as err:
            stub.MergePersons(search_pb2.MergePersonsRequest(source=ref(person_id=b), target=ref(person_id=a)))
        assert _reason(err.value)[0] == "SAME_FRAME"
        # Biden split in two: the identity index says they may be one
        biden_faces = world["base"].face_ids["biden_flip.jpg"]
        half = stub.SplitPerson(search_pb2.SplitPersonRequest(face_ids=biden_faces)).person_id
        suggestions = stub.SuggestMerges(search_pb2.SuggestMergesRequest()).suggestions
        pairs = [(s.person_a.person_id, s.person_b.person_id) for s in suggestions]
        key = (min(biden, half), max(biden, half))
        assert key in pairs, pairs
        assert all(s.person_a.cover_face_id and s.person_b.cover_face_id for s in suggestions)
        assert (min(a, b), max(a, b)) not in pairs, "two people of one photo are never suggested"
        only = stub.SuggestMerges(search_pb2.SuggestMergesRequest(person=ref(person_id=half))).suggestions
        assert all(half in (s.person_a.person_id, s.person_b.person_id) for s in only) and only
        # rejected: kept in the store, not suggested again
        stub.RejectMerge(search_pb2.RejectMergeRequest(person_a=ref(person_id=half), person_b=ref(name="Biden")))
        pairs = [(s.person_a.person_id, s.person_b.person_id)
                 for s in stub.SuggestMerges(search_pb2.SuggestMergesRequest()).suggestions]
        assert key not in pairs
        with Store(world["store"], mode="r") as store:
            assert key in store.cannot_links()
        # a merge is the user's word over it: the pair is forgotten
        stub.MergePersons(search_pb2.MergePersonsRequest(source=ref(person_id=half), target=ref(person_id=biden)))
        with Store(world["store"], mode="r") as store:
            assert not any(half in pair for pair in store.cannot_links())


def test_a_refused_merge_carries_its_reason_in_json(world):
    from mien.web import start_web, stop_web
    from web_support import http

    server, _ = start_server(world["store"], front="python")
    web = start_web(server.mien_context, port=0, host="127.0.0.1")
    url = f"http://127.0.0.1:{web.server_address[1]}"
    try:
        status, _, body = http("POST", url + "/v1/Mien/MergePersons",
                               {"source": {"person_id": world["b"]}, "target": {"person_id": world["a"]}})
        error = json.loads(body)["error"]
        assert status == 400 and error["status"] == "INVALID_ARGUMENT"
        info = next(d for d in error["details"] if d["@type"].endswith("ErrorInfo"))
        assert info["reason"] == "SAME_FRAME" and info["metadata"]["source_uri"].endswith("t1.jpg")
        status, _, body = http("POST", url + "/v1/Mien/MergePersons",
                               {"source": {"person_id": world["b"]}, "target": {"person_id": world["a"]},
                                "allow_same_frame": True})
        assert status == 200 and json.loads(body)["face_count"] == "2"
    finally:
        stop_web(web)
        stop_server(server)
