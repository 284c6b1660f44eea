"""The server under load and while the store changes underneath it.

- 16 client threads x 200 queries, no errors;
- the indexer (another writer) adds a generated video and a photo while the
  server answers; the new faces become visible without a restart;
- IndexPaths streams progress for paths under the allowed root; a held
  writer lock gives UNAVAILABLE.
"""

from __future__ import annotations

import threading

import cv2
import grpc
import numpy as np
import pytest

from server_support import FRONTS, build_photo_store, start_server, stop_server

from mien.clients.client import Client


@pytest.fixture(scope="module", params=FRONTS)
def env(tmp_path_factory, request):
    # a store per front: the tests below add faces to it
    root = tmp_path_factory.mktemp(f"server_live_{request.param}")
    ps = build_photo_store(root)
    allowed = root / "incoming"
    allowed.mkdir()
    server, target = start_server(ps.store_dir, allowed_roots=[allowed], front=request.param)
    yield ps, target, allowed
    stop_server(server)


def test_16_threads_x_200_queries(env):
    ps, target, _ = env
    face_ids = [i for ids in ps.face_ids.values() for i in ids]
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((200, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    errors: list[BaseException] = []
    counts = [0] * 16

    def worker(t: int):
        try:
            with Client(target) as c:   # one channel per thread, like separate clients
                for i in range(200):
                    kind = (t + i) % 4
                    if kind == 0:
                        r = c.search(vectors[i], k=10)
                        assert len(r) == 10 and r.hits[0].distance <= r.hits[-1].distance
                    elif kind == 1:
                        r = c.search(face_ids[i % len(face_ids)], k=5)
                        assert len(r) == 5
                    elif kind == 2:
                        r = c.cross(vectors[i], "Biden", k=3)
                        assert r.hits and all(h.person_name == "Biden" for h in r)
                    else:
                        assert c.stats().faces >= len(face_ids)
                    counts[t] += 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors[:3]
    assert counts == [200] * 16


def test_indexer_writes_while_server_answers(env, tmp_path):
    from mien.demo.videos import write_clip
    from mien.indexer import IndexOptions, index_paths

    ps, target, _ = env
    folder = tmp_path / "new"
    clip = write_clip(folder / "biden_pan.avi", people=("biden",), motion="pan", seconds=2.0, fps=10.0)
    photo = folder / "grace_flip.jpg"
    cv2.imwrite(str(photo), cv2.flip(cv2.imread(str(ps.archive["grace_hopper.jpg"])), 1))

    with Client(target) as c:
        before = c.stats()
        with pytest.raises(grpc.RpcError) as unknown:   # not indexed yet: NOT_FOUND, not a silent nothing
            c.search(ps.face_ids["t1.jpg"][0], k=5, sources=[str(clip.path)])
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
        outcome: dict = {}

        def index():
            try:
                outcome["summary"] = index_paths([folder], ps.store_dir,
                                                 options=IndexOptions(show_progress=False, workers=1))
            except BaseException as exc:  # noqa: BLE001
                outcome["error"] = exc

        writer = threading.Thread(target=index)
        writer.start()
        answered = 0
        while writer.is_alive() or answered == 0:   # the server keeps answering meanwhile
            r = c.search(ps.face_ids["astronaut.png"][0], k=10)
            assert len(r) == 10
            answered += 1
        writer.join()
        assert "error" not in outcome, outcome.get("error")
        summary = outcome["summary"]
        assert summary.faces_passed > 0

        after = c.stats()                            # same server, no restart
        assert after.faces == before.faces + summary.faces_passed
        assert after.sources == before.sources + 2
        new_video = c.search(ps.face_ids["t1.jpg"][0], k=50, sources=[str(clip.path)])
        assert new_video.hits and {h.source_uri for h in new_video} == {str(clip.path)}
        assert max(h.timestamp_ms for h in new_video) > 0   # frames along the timeline
        new_photo = c.search(str(photo), k=1)
        assert new_photo.hits[0].source_uri == str(photo) and new_photo.hits[0].distance < 1e-4


def test_index_paths_rpc_streams_progress(env):
    ps, target, allowed = env
    from mien.demo.videos import write_clip

    inbox = allowed / "batch1"
    write_clip(inbox / "obama_zoom.avi", people=("obama",), motion="zoom", seconds=1.5, fps=10.0)
    cv2.imwrite(str(inbox / "astro_flip.png"), cv2.flip(cv2.imread(str(ps.archive["astronaut.png"])), 1))
    with Client(target) as c:
        before = c.stats().faces
        events = list(c.index_paths([inbox], fps=4.0))
        assert events and events[-1].done and not any(e.done for e in events[:-1])
        last = events[-1]
        assert last.files_total == 2 and last.files_done == 2 and last.faces > 0
        assert last.failures == []
        assert c.stats().faces == before + last.faces
        hits = c.search(ps.face_ids["t1.jpg"][0], k=50, sources=[str(inbox / "obama_zoom.avi")])
        assert hits.hits


def test_index_paths_while_another_writer_holds_the_lock(env):
    from mien.engine.store import Store

    ps, target, allowed = env
    (allowed / "batch2").mkdir()
    cv2.imwrite(str(allowed / "batch2" / "gh.jpg"), cv2.imread(str(ps.archive["grace_hopper.jpg"])))
    with Store(ps.store_dir, mode="w"), Client(target) as c:
        with pytest.raises(grpc.RpcError) as e:
            list(c.index_paths([allowed / "batch2"]))
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    with Client(target) as c:
        with pytest.raises(grpc.RpcError) as e:
            list(c.index_paths([allowed / "does-not-exist"]))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
