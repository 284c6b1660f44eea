"""Server-side indexing takes each path on its own, and says what it passed over.

A real store and a real server (both fronts) with one allowed root holding a
folder of new photos, a text file and a link that leads out of the root.
IndexPaths given that folder plus a path outside the root, a relative one and
a missing one indexes the folder and names the three refusals (with why) in
every progress message; links leading out and non-media files are counted by
reason on the last one. A request of refusals only fails as before. ListFolders
walks the root a level at a time for a folder picker, and nothing outside it.
The JSON API answers the same (one implementation).
"""

from __future__ import annotations

import json
import os

import cv2
import grpc
import pytest

from server_support import FRONTS, serving, start_server, stop_server, copied_store, photo_store_fixture
from mien.demo import photos
from mien.v1 import search_pb2, search_pb2_grpc


base = photo_store_fixture("index-paths-store")


@pytest.fixture
def world(base, tmp_path):
    store = copied_store(base.store_dir, tmp_path)
    root = tmp_path / "root"
    new = root / "new"
    (root / "empty" / "deeper").mkdir(parents=True)
    (root / ".hidden").mkdir()
    new.mkdir(parents=True)
    for name in ("obama.jpg", "biden.jpg"):  # mirrored: new files for the store
        cv2.imwrite(str(new / f"mirrored_{name}"), cv2.flip(photos.face_recognition_photo(name), 1))
    (new / "notes.txt").write_text("not a photo")
    outside = tmp_path / "outside"
    outside.mkdir()
    cv2.imwrite(str(outside / "secret.jpg"), photos.face_recognition_photo("obama2.jpg"))
    os.symlink(outside / "secret.jpg", new / "leads_out.jpg")
    os.symlink(outside, root / "linked_out")
    return {"store": store, "root": root, "new": new, "outside": outside}


@pytest.mark.parametrize("front", FRONTS)
def test_each_path_is_taken_or_refused_on_its_own(world, front):
    with serving(world["store"], allowed_roots=[world["root"]], front=front) as target:
        stub = search_pb2_grpc.MienStub(grpc.insecure_channel(target))
        root = world["root"]
        given = [str(world["new"]), str(world["outside"]), "new/relative", str(root / "missing")]
        messages = list(stub.IndexPaths(search_pb2.IndexPathsRequest(paths=given), timeout=300))
        final = messages[-1]
        assert final.done and final.files_total == 4 and final.faces >= 2, final
        refused = list(final.refused_paths)
        assert len(refused) == 3 and all(m.refused_paths == refused for m in messages)
        assert refused[0].startswith(repr(str(world["outside"]))) and "outside the server's allowed roots" in refused[0]
        assert refused[1].startswith("'new/relative'") and "not an absolute path" in refused[1]
        assert refused[2].startswith(repr(str(root / "missing"))) and "not found" in refused[2]
        # the link that leads out and the text file were passed over, and counted
        assert dict(final.skipped) == {"outside allowed roots": 1, "not media": 1}, dict(final.skipped)
        sources = {s.uri for s in stub.ListSources(search_pb2.ListSourcesRequest()).sources}
        assert str(world["new"] / "mirrored_obama.jpg") in sources
        assert not any(str(world["outside"]) in s for s in sources)
        # refusals only: the call fails, as it always did
        with pytest.raises(grpc.RpcError) as err:
            list(stub.IndexPaths(search_pb2.IndexPathsRequest(paths=["photos/new"]), timeout=60))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "absolute path" in err.value.details()
        with pytest.raises(grpc.RpcError) as err:
            list(stub.IndexPaths(search_pb2.IndexPathsRequest(paths=[str(world["outside"])]), timeout=60))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize("front", FRONTS)
def test_list_folders_walks_the_allowed_roots_only(world, front):
    with serving(world["store"], allowed_roots=[world["root"]], front=front) as target:
        stub = search_pb2_grpc.MienStub(grpc.insecure_channel(target))
        root = world["root"]
        top = stub.ListFolders(search_pb2.ListFoldersRequest())
        assert [f.path for f in top.folders] == [str(root)] and not top.path
        listed = stub.ListFolders(search_pb2.ListFoldersRequest(path=str(root)))
        # hidden folders and the link that leads out are left out
        assert [(f.name, f.folders, f.files) for f in listed.folders] == [("empty", 1, 0), ("new", 0, 4)]
        assert listed.parent == "" and listed.path == str(root)
        inner = stub.ListFolders(search_pb2.ListFoldersRequest(path=str(root / "empty")))
        assert inner.parent == str(root) and [f.name for f in inner.folders] == ["deeper"]
        for path, code in ((str(world["outside"]), grpc.StatusCode.PERMISSION_DENIED),
                           (str(root / "linked_out"), grpc.StatusCode.PERMISSION_DENIED),
                           ("/", grpc.StatusCode.PERMISSION_DENIED),
                           ("new", grpc.StatusCode.INVALID_ARGUMENT),
                           (str(world["new"] / "notes.txt"), grpc.StatusCode.INVALID_ARGUMENT)):
            with pytest.raises(grpc.RpcError) as err:
                stub.ListFolders(search_pb2.ListFoldersRequest(path=path))
            assert err.value.code() == code, (path, err.value.details())
            if path != str(world["outside"]):  # where a link leads is not told (the caller's own path is)
                assert str(world["outside"]) not in err.value.details()


def test_the_json_api_refuses_and_lists_the_same(world):
    from mien.web import start_web, stop_web
    from web_support import http

    server, _ = start_server(world["store"], allowed_roots=[world["root"]], front="python")
    web = start_web(server.mien_context, port=0, host="127.0.0.1")
    url = f"http://127.0.0.1:{web.server_address[1]}"
    try:
        status, _, body = http("POST", url + "/v1/Mien/IndexPaths", {"paths": [str(world["new"]), "relative"]})
        lines = [json.loads(line) for line in body.splitlines()]
        assert status == 200 and lines[-1]["done"] and lines[-1]["refused_paths"] == lines[0]["refused_paths"]
        assert lines[-1]["refused_paths"][0].startswith("'relative': not an absolute path")
        assert lines[-1]["skipped"] == {"outside allowed roots": "1", "not media": "1"}
        status, _, body = http("POST", url + "/v1/Mien/ListFolders", {"path": str(world["root"])})
        assert status == 200 and [f["name"] for f in json.loads(body)["folders"]] == ["empty", "new"]
        status, _, body = http("POST", url + "/v1/Mien/IndexPaths", {"paths": ["relative"]})
        assert status == 400 and "absolute path" in json.loads(body)["error"]["message"]
    finally:
        stop_web(web)
        stop_server(server)


def test_jobs_one_after_another_borrow_one_kept_pool_that_the_stop_ends(world):
    """The second IndexPaths job is analysed by the first one's worker processes (their fork,
    models and first-file work are not paid again: mien.indexer.warm_pool); stopping the server
    ends them."""
    from indexer_support import pool_workers
    from server_support import wait_until

    later = world["root"] / "later"
    later.mkdir()
    cv2.imwrite(str(later / "mirrored_obama2.jpg"), cv2.flip(photos.face_recognition_photo("obama2.jpg"), 1))
    server, target = start_server(world["store"], allowed_roots=[world["root"]], front="native")
    try:
        stub = search_pb2_grpc.MienStub(grpc.insecure_channel(target))
        first = list(stub.IndexPaths(search_pb2.IndexPathsRequest(paths=[str(world["new"])]), timeout=300))[-1]
        kept = {w.pid for w in pool_workers()}
        assert first.done and first.faces >= 2 and len(kept) == 2
        second = list(stub.IndexPaths(search_pb2.IndexPathsRequest(paths=[str(later)]), timeout=300))[-1]
        assert second.done and second.faces >= 1, second
        assert {w.pid for w in pool_workers()} == kept
    finally:
        stop_server(server)
    assert wait_until(lambda: not ({w.pid for w in pool_workers()} & kept), timeout=30)


def test_a_watch_ends_with_the_state_the_job_ended_in_when_it_ends_mid_message():
    """A job that ends while its watcher is sending the message before: the watch yields the
    ended state once more instead of stopping on the state it had sent (the race a kept pool
    exposed: its jobs end microseconds after their last progress)."""
    from mien.server.jobs import RUNNING, SUCCEEDED, JobTable

    table = JobTable()
    job = table.create(["/x"])
    table.update(job, progress={"files_done": 1})
    sent = []
    for state in table.watch(job.job_id, lambda: True, poll=0.01):
        sent.append(state.state)   # the message is built here, from the job as it is now
        if len(sent) == 1:
            table.update(job, state=SUCCEEDED)   # the job ends while that message goes out
    assert sent == [RUNNING, SUCCEEDED]
