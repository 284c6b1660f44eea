"""Issue 14: what a hostile or careless client, or operator, can do to a server.

Containment of server-side indexing (symlinks inside an allowed root that lead
out), open binds, bounded shutdown, validation before the store is touched,
what error messages reveal, auth before routing, and the one-line errors of
`mien serve`. Real servers on 127.0.0.1 on both fronts, real photos, real stores.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server_support import FRONTS, TOKEN, build_photo_store, free_port, start_server, stop_server, wait_until

from mien.clients.client import Client
from mien.engine.store import Store
from mien.indexer.crawl import OUTSIDE_ROOTS, crawl
from mien.server.shutdown import shutdown
from mien.v1 import analytics_pb2, analytics_pb2_grpc, common_pb2, search_pb2, search_pb2_grpc

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def photo_store(tmp_path_factory):
    return build_photo_store(tmp_path_factory.mktemp("server_security"))


def own_store(photo_store, tmp_path) -> Path:
    """A private copy of the photo store, for tests that write or close it."""
    store_dir = tmp_path / "store"
    shutil.copytree(photo_store.store_dir, store_dir)
    return store_dir


def escape_tree(photo_store, base: Path) -> dict[str, Path]:
    """The issue's repro: x/root/sub holds a link to the folder x/outside (and one to a file there)."""
    root, sub, outside = base / "x" / "root", base / "x" / "root" / "sub", base / "x" / "outside"
    sub.mkdir(parents=True)
    outside.mkdir()
    shutil.copy(photo_store.archive["obama.jpg"], outside / "secret.jpg")
    shutil.copy(photo_store.archive["biden.jpg"], outside / "secret2.jpg")
    (sub / "out").symlink_to(outside, target_is_directory=True)
    (sub / "alias.jpg").symlink_to(outside / "secret2.jpg")
    shutil.copy(photo_store.archive["obama2.jpg"], sub / "inside.jpg")    # a real file inside
    return {"root": root, "sub": sub, "outside": outside}


# -- 1. containment --------------------------------------------------------------------------------
def test_crawl_skips_links_leading_out_of_the_allowed_roots(photo_store, tmp_path):
    tree = escape_tree(photo_store, tmp_path)
    found = crawl([str(tree["sub"])], [str(tree["root"])])
    outside = str(tree["outside"])
    assert [f.path for f in found if f.candidate] == [str(tree["sub"] / "inside.jpg")]
    skipped = [f for f in found if f.skip == OUTSIDE_ROOTS]
    assert len(skipped) == 2 and not any(f.path.startswith(outside) for f in found)
    # without roots (the CLI indexing the operator's own files) links are followed as before
    assert len([f for f in crawl([str(tree["sub"])]) if f.candidate]) == 3


@pytest.mark.parametrize("front", FRONTS)
def test_symlink_inside_an_allowed_root_cannot_lead_out(photo_store, tmp_path, front):
    """The issue's repro, refused: nothing under x/outside is read, stored or named."""
    tree = escape_tree(photo_store, tmp_path)
    store_dir = own_store(photo_store, tmp_path)
    server, target = start_server(store_dir, front=front, token=TOKEN, allowed_roots=[tree["root"]])
    try:
        with Client(target, token=TOKEN) as c:
            progress = list(c.index_paths([str(tree["sub"])]))
            final = progress[-1]
            assert final.done and not final.failures
            assert final.frames == 1 and final.faces >= 1              # inside.jpg, only
            assert all("outside" not in p.current and "secret" not in p.current for p in progress)
            with Store(store_dir) as s:
                uris = [src.uri for src in s.list_sources()]
                new_faces = [f for src in s.list_sources() for f in s.faces_of_source(src.uri)]
            assert str(tree["sub"] / "inside.jpg") in uris
            assert not any("secret" in u or u.startswith(str(tree["outside"])) for u in uris)
            for face in new_faces:                                       # GetFace names no outside file
                assert "secret" not in c.get_face(face.face_id).source_uri
            # a path argument that is itself a link leading out is refused as before
            with pytest.raises(grpc.RpcError) as e:
                list(c.index_paths([str(tree["sub"] / "out")]))
            assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert str(tree["outside"]) not in e.value.details()         # nor where the link leads
    finally:
        stop_server(server)


# -- 2. open binds ---------------------------------------------------------------------------------
def serve_cmd(store_dir, *args):
    return [sys.executable, "-m", "mien", "serve", "--store", str(store_dir), *args]


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "MIEN_TOKEN"}
    env.update(extra)
    return env


def test_non_loopback_bind_without_a_token_refuses_to_start(photo_store):
    run = subprocess.run(serve_cmd(photo_store.store_dir, "--host", "0.0.0.0", "--port", str(free_port())),
                         cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    lines = [line for line in run.stderr.splitlines() if "error" in line]
    assert len(lines) == 1 and "--insecure" in lines[0] and "MIEN_TOKEN" in lines[0], run.stderr


def serve_until_up(cmd, env, port):
    """Start `mien serve`, wait until health answers, SIGTERM it; returns (returncode, output)."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = health_pb2_grpc.HealthStub(channel)

        def up():
            try:
                return stub.Check(health_pb2.HealthCheckRequest(), timeout=2).status == 1
            except grpc.RpcError:
                return proc.poll() is not None
        assert wait_until(up, timeout=120) and proc.poll() is None
        channel.close()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out


@pytest.mark.parametrize("how", ["insecure", "token"])
def test_non_loopback_bind_with_insecure_or_a_token_starts_with_a_warning(photo_store, how):
    port = free_port()
    cmd = serve_cmd(photo_store.store_dir, "--host", "0.0.0.0", "--port", str(port), "--grace", "1")
    env = clean_env()
    if how == "insecure":
        cmd.append("--insecure")
    else:
        env["MIEN_TOKEN"] = TOKEN
    code, out = serve_until_up(cmd, env, port)
    assert code == 0, out
    warning = "no token (--insecure)" if how == "insecure" else "without TLS"
    assert warning in out and "WARNING" in out


# -- 8. one-line errors of `mien serve` -------------------------------------------------------------
def test_serve_errors_are_one_line_without_traceback(photo_store, tmp_path):
    empty = tmp_path / "empty-token"
    empty.write_text("\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = str(taken.getsockname()[1])
        cases = {
            "missing token file": (["--token-file", str(tmp_path / "nope")], "cannot read the token file"),
            "empty token file": (["--token-file", str(empty)], "is empty"),
            "port in use": (["--port", busy], "cannot listen on"),
        }
        for name, (args, expected) in cases.items():
            run = subprocess.run(serve_cmd(photo_store.store_dir, *args), cwd=ROOT, env=clean_env(),
                                 capture_output=True, text=True, timeout=120)
            assert run.returncode == 1, (name, run.stderr)
            assert "Traceback" not in run.stderr, (name, run.stderr)
            errors = [line for line in run.stderr.splitlines() if "error" in line.lower()]
            assert len(errors) == 1 and expected in errors[0], (name, run.stderr)


# -- 4. validation and what messages reveal ------------------------------------------------------
@pytest.fixture(params=FRONTS)
def served(photo_store, request, tmp_path):
    allowed = tmp_path / "incoming"
    allowed.mkdir()
    store_dir = own_store(photo_store, tmp_path)
    server, target = start_server(store_dir, front=request.param, allowed_roots=[allowed])
    channel = grpc.insecure_channel(target)
    yield {"server": server, "store_dir": store_dir, "allowed": allowed,
           "mien": search_pb2_grpc.MienStub(channel), "analytics": analytics_pb2_grpc.AnalyticsStub(channel)}
    channel.close()
    stop_server(server)


LONG = "N" * 17_000

BAD_REQUESTS = {
    "empty source key": ("analytics", "TagSource", analytics_pb2.TagSourceRequest(source_uri="")),
    "empty source filter": ("mien", "SearchExpression", search_pb2.SearchExpressionRequest(
        query=common_pb2.FaceQuery(face_id=1), filters=common_pb2.Filters(sources=[""]))),
    "empty tag key": ("analytics", "DeleteTag", analytics_pb2.DeleteTagRequest(name="")),
    "empty tag in a list": ("analytics", "TagStore", analytics_pb2.TagStoreRequest(tags=[""])),
    "empty person name": ("mien", "GetPerson", search_pb2.GetPersonRequest(person=common_pb2.PersonRef(name=""))),
    "negative seed (summary)": ("analytics", "Summarize", analytics_pb2.SummarizeRequest(
        person=common_pb2.PersonRef(name="Obama"), seed=-1)),
    "negative seed (clusters)": ("analytics", "ClusterStore", analytics_pb2.ClusterStoreRequest(seed=-5)),
    "seed beyond 32 bits": ("analytics", "ClusterStore", analytics_pb2.ClusterStoreRequest(seed=2**40)),
    "NUL in a path": ("mien", "IndexPaths", search_pb2.IndexPathsRequest(paths=["/tmp/a\x00b"])),
    "NUL in a name": ("mien", "GetPerson", search_pb2.GetPersonRequest(person=common_pb2.PersonRef(name="a\x00"))),
    "17 KB name": ("mien", "GetPerson", search_pb2.GetPersonRequest(person=common_pb2.PersonRef(name=LONG))),
    "17 KB tag": ("analytics", "CreateTag", analytics_pb2.CreateTagRequest(
        name=LONG, references=[common_pb2.FaceQuery(face_id=1)])),
    "NaN in a vector": ("mien", "SearchExpression", search_pb2.SearchExpressionRequest(
        query=common_pb2.FaceQuery(vector=common_pb2.Vector(values=[float("nan")] * 16)))),
    "infinite threshold": ("analytics", "CreateTag", analytics_pb2.CreateTagRequest(
        name="t", references=[common_pb2.FaceQuery(face_id=1)], threshold=float("inf"))),
}


def call(served, service, method, request):
    rpc = getattr(served[service], method)
    result = rpc(request, timeout=30)
    return list(result) if method == "IndexPaths" else result


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_client_mistakes_are_invalid_argument_before_the_store(served, case):
    service, method, request = BAD_REQUESTS[case]
    with pytest.raises(grpc.RpcError) as e:
        call(served, service, method, request)
    details = e.value.details()
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (case, e.value.code(), details)
    assert len(details) < 600 and LONG not in details, details       # the client's string, clipped
    assert str(served["store_dir"]) not in details
    with Store(served["store_dir"]) as s:                              # nothing was written
        assert s.list_tags() == []


def test_messages_do_not_reveal_store_path_pid_or_roots(served):
    with Store(served["store_dir"], mode="w"):          # another writer holds the store
        with pytest.raises(grpc.RpcError) as e:
            served["analytics"].DeleteTag(analytics_pb2.DeleteTagRequest(name="smirk"), timeout=30)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    details = e.value.details()
    assert str(served["store_dir"]) not in details and str(os.getpid()) not in details, details
    assert "another process" in details
    with pytest.raises(grpc.RpcError) as e:
        list(served["mien"].IndexPaths(search_pb2.IndexPathsRequest(paths=["/etc"]), timeout=30))
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert str(served["allowed"]) not in e.value.details()
    with pytest.raises(grpc.RpcError) as e:             # a 17 KB name that exists nowhere: NOT_FOUND
        served["analytics"].DeleteTag(analytics_pb2.DeleteTagRequest(name="x" * 400), timeout=30)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND and len(e.value.details()) < 600


# -- 5. auth before routing --------------------------------------------------------------------------
@pytest.mark.parametrize("front", FRONTS)
def test_unknown_methods_need_the_token_too(photo_store, front):
    server, target = start_server(photo_store.store_dir, front=front, token=TOKEN)
    try:
        with grpc.insecure_channel(target) as channel:
            probe = channel.unary_unary("/mien.v1.Mien/NoSuchMethod")
            with pytest.raises(grpc.RpcError) as e:
                probe(b"", timeout=10)
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
            with pytest.raises(grpc.RpcError) as e:
                probe(b"", timeout=10, metadata=[("authorization", f"Bearer {TOKEN}")])
            assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        stop_server(server)


# -- 3. bounded shutdown -----------------------------------------------------------------------------
class BlockedUpload:
    """An UploadImage stream whose client sends one chunk and then waits: a call in flight."""

    def __init__(self, target):
        self.release = threading.Event()
        self.channel = grpc.insecure_channel(target)
        self.outcome: dict = {}
        stub = search_pb2_grpc.MienStub(self.channel)

        def chunks():
            yield search_pb2.ImageChunk(data=b"\xff\xd8" + b"\0" * 100)
            self.release.wait(120)

        def run():
            try:
                self.outcome["reply"] = stub.UploadImage(chunks(), timeout=120)
            except grpc.RpcError as exc:
                self.outcome["code"] = exc.code()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()


@pytest.mark.parametrize("front", FRONTS)
def test_drain_says_not_serving_refuses_new_calls_and_ends_when_calls_end(photo_store, tmp_path, front):
    server, target = start_server(own_store(photo_store, tmp_path), front=front, workers=2)
    ctx = server.mien_context
    upload = BlockedUpload(target)
    assert wait_until(lambda: ctx.calls.count == 1)
    result = {}
    stopper = threading.Thread(target=lambda: result.setdefault("clean", shutdown(server, 600.0)), daemon=True)
    stopper.start()
    try:
        assert wait_until(lambda: ctx.draining)
        with grpc.insecure_channel(target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            status = health.Check(health_pb2.HealthCheckRequest(), timeout=30).status
            assert status == health_pb2.HealthCheckResponse.NOT_SERVING
            with pytest.raises(grpc.RpcError) as e:
                search_pb2_grpc.MienStub(channel).Stats(search_pb2.StatsRequest(), timeout=30)
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE and "shutting down" in e.value.details()
        assert stopper.is_alive()                  # still draining: the upload runs
    finally:
        upload.release.set()                       # the call in flight ends: the drain ends with it
    stopper.join(120)
    upload.thread.join(60)
    assert not stopper.is_alive() and result["clean"] is True
    assert "reply" in upload.outcome and upload.outcome["reply"].size_bytes == 102


@pytest.mark.parametrize("front", FRONTS)
def test_after_the_grace_calls_in_flight_are_cancelled(photo_store, tmp_path, front):
    server, target = start_server(own_store(photo_store, tmp_path), front=front, workers=2)
    upload = BlockedUpload(target)
    try:
        assert wait_until(lambda: server.mien_context.calls.count == 1)
        assert shutdown(server, 0.5) is True        # the stop cancelled the upload; its handler returned
        upload.thread.join(60)
        assert upload.outcome.get("code") in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)
    finally:
        upload.release.set()


@pytest.mark.parametrize("front", FRONTS)
def test_calls_queued_when_the_drain_begins_get_the_grace_and_later_ones_are_refused(photo_store, tmp_path,
                                                                                      front):
    """Issue 22: image queries waiting for a worker thread when SIGTERM came were refused
    UNAVAILABLE at once although the grace had seconds left (both fronts). A call that
    arrived before the drain began is now served when its turn comes, and the drain waits
    for it; one that arrives after is refused."""
    server, target = start_server(own_store(photo_store, tmp_path), front=front, workers=1)
    ctx = server.mien_context
    image = photo_store.archive["obama.jpg"].read_bytes()
    with Client(target, transport="python") as c:
        c.search(image, k=1)                          # the analyzer is built: no model load below
    outcomes: dict = {}

    def query(i):
        with Client(target, transport="python") as c:
            try:
                outcomes[i] = c.search(image, k=1, timeout=120).hits[0].face_id
            except grpc.RpcError as e:
                outcomes[i] = e.code()

    result = {}
    ctx.analyze_lock.acquire()                        # the first query holds the one worker thread
    try:
        threads = [threading.Thread(target=query, args=(i,), daemon=True) for i in range(4)]
        for t in threads:
            t.start()
        assert wait_until(lambda: ctx.calls.count == 1 and ctx.calls.backlog() == 4, timeout=60)
        stopper = threading.Thread(target=lambda: result.setdefault("clean", shutdown(server, 60.0)), daemon=True)
        stopper.start()
        assert wait_until(lambda: ctx.draining)
        channel = grpc.insecure_channel(target)        # a call after the drain began (it may queue too)
        late = search_pb2_grpc.MienStub(channel).Stats.future(search_pb2.StatsRequest(), timeout=60)
        assert wait_until(lambda: ctx.calls.backlog() == 5 or late.done(), timeout=60)
        assert stopper.is_alive() and not outcomes    # the drain waits for all four
    finally:
        ctx.analyze_lock.release()
    for t in threads:
        t.join(120)
    stopper.join(120)
    assert late.exception() is not None and late.code() == grpc.StatusCode.UNAVAILABLE, late.exception()
    assert "shutting down" in late.details()
    channel.close()
    obama = photo_store.face_ids["obama.jpg"][0]
    assert outcomes == {i: obama for i in range(4)}, outcomes
    assert result["clean"] is True


def copies(photo_store, folder: Path, n: int) -> list[Path]:
    """n distinct image files (the package photos under several names; each is its own source)."""
    folder.mkdir(parents=True, exist_ok=True)
    names = sorted(photo_store.archive)
    out = []
    for i in range(n):
        src = photo_store.archive[names[i % len(names)]]
        out.append(Path(shutil.copy(src, folder / f"{i:03d}-{src.name}")))
    return out


def consistent_sources(store_dir: Path) -> list[str]:
    """Every source is whole (status done, its face count = its faces); returns their uris."""
    with Store(store_dir) as s:
        sources = s.list_sources()
        for src in sources:
            assert src.status == "done" and src.face_count == len(s.faces_of_source(src.uri)), src
        return [src.uri for src in sources]


@pytest.mark.parametrize("front", FRONTS)
def test_shutdown_stops_server_side_indexing_at_a_source_boundary(photo_store, tmp_path, front):
    allowed = tmp_path / "incoming"
    files = copies(photo_store, allowed / "batch", 24)
    store_dir = own_store(photo_store, tmp_path)
    before = set(consistent_sources(store_dir))
    server, target = start_server(store_dir, front=front, workers=2, allowed_roots=[allowed])
    seen, outcome = [], {}

    def run():
        with Client(target, timeout=600) as c:
            try:
                for p in c.index_paths([str(allowed / "batch")]):
                    seen.append(p)
            except grpc.RpcError as exc:
                outcome["code"], outcome["details"] = exc.code(), exc.details()

    client = threading.Thread(target=run, daemon=True)
    client.start()
    assert wait_until(lambda: any(p.files_done >= 1 for p in seen), timeout=300)
    clean = shutdown(server, 60.0)
    client.join(120)
    assert clean is True and not server.mien_context.indexers
    assert outcome.get("code") == grpc.StatusCode.UNAVAILABLE, (outcome, seen[-1])
    assert "run IndexPaths again" in outcome["details"]
    indexed = set(consistent_sources(store_dir)) - before
    assert 1 <= len(indexed) < len(files)          # stopped early, every source it kept is whole
    # a new server picks up where the old one stopped
    server, target = start_server(store_dir, front=front, workers=2, allowed_roots=[allowed])
    try:
        with Client(target, timeout=600) as c:
            final = list(c.index_paths([str(allowed / "batch")]))[-1]
        assert final.done and not final.failures
    finally:
        stop_server(server)
    assert set(consistent_sources(store_dir)) - before == {str(f) for f in files}


# -- 8. cosmetic: tiny images and remembered failures ---------------------------------------------
def test_a_1x1_png_is_a_valid_image_without_faces_and_failures_keep_their_detail(tmp_path):
    import cv2
    import numpy as np

    from mien.indexer import IndexOptions, index_paths

    archive = tmp_path / "archive"
    archive.mkdir()
    assert cv2.imwrite(str(archive / "dot.png"), np.zeros((1, 1, 3), np.uint8))
    (archive / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF" + b"\x13" * 64)
    options = IndexOptions(workers=1, show_progress=False)
    first = index_paths([archive], tmp_path / "store", options=options)
    assert first.images == 1 and first.faces_passed == 0            # dot.png: indexed, no face
    assert [p for p, _ in first.failures] == [str(archive / "broken.jpg")]
    detail = first.failures[0][1]
    again = index_paths([archive], tmp_path / "store", options=options)
    assert again.unchanged == 1 and len(again.failures) == 1
    reason = again.failures[0][1]
    assert reason.startswith(detail) and reason.endswith("(unchanged since last run)"), (detail, reason)


@pytest.mark.parametrize("front", FRONTS)
def test_a_handler_stuck_past_the_grace_is_left_behind_and_stops_at_its_safe_point(photo_store, tmp_path, front,
                                                                                  caplog):
    """An image query waiting for the analyzer (held here, as a long detection would hold it):
    shutdown gives up on it a second after the grace (mien serve then exits the process), and
    when it gets the analyzer it stops at its safe point instead of running on."""
    caplog.set_level("INFO", logger="mien.server.rpc")
    server, target = start_server(own_store(photo_store, tmp_path), front=front, workers=2)
    ctx = server.mien_context
    ctx.analyzer()                                  # built up front: the query waits only for the lock
    image = photo_store.archive["obama.jpg"].read_bytes()
    outcome = {}

    def query():
        with Client(target, timeout=120) as c:
            try:
                c.search(image)
            except grpc.RpcError as exc:
                outcome["code"], outcome["details"] = exc.code(), exc.details()

    with ctx.analyze_lock:
        thread = threading.Thread(target=query, daemon=True)
        thread.start()
        assert wait_until(lambda: ctx.calls.count == 1)
        assert shutdown(server, 0.2) is False       # still running a second after the grace
        assert ctx.calls.count == 1
    thread.join(60)
    assert wait_until(lambda: ctx.calls.count == 0)  # it stopped at the safe point after the lock
    assert outcome.get("code") in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED), outcome
    assert wait_until(lambda: "the call was stopped" in caplog.text), caplog.text
    ctx.close()


@pytest.mark.parametrize("front", FRONTS)
def test_a_method_the_servicer_lacks_is_unimplemented_not_unknown(front):
    """The generated base class sets UNIMPLEMENTED and raises; both fronts answer that status."""
    from concurrent import futures

    from mien.server import native_front

    if front == "native":
        table = native_front.HandlerTable()
        search_pb2_grpc.add_MienServicer_to_server(search_pb2_grpc.MienServicer(), table)
        server = native_front.NativeServer(table, "127.0.0.1:0", workers=1, max_message_bytes=1 << 20)
        port = server.port
    else:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
        search_pb2_grpc.add_MienServicer_to_server(search_pb2_grpc.MienServicer(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel, pytest.raises(grpc.RpcError) as e:
            search_pb2_grpc.MienStub(channel).Stats(search_pb2.StatsRequest(), timeout=30)
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        server.stop(None)  # a bare server built here: no mien context to close
