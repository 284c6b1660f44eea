"""What the server's front (native gRPC C++ or grpcio's Python server) owns:
calls it has no handler for, requests it cannot parse, streams that the client
cancels, and a stop that lets running calls finish. Real servers on 127.0.0.1.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server_support import FRONTS, TRANSPORTS, build_photo_store, start_server, stop_server

from mien import native
from mien.clients.client import Client
from mien.server import native_front


@pytest.fixture(scope="module")
def photo_store(tmp_path_factory):
    return build_photo_store(tmp_path_factory.mktemp("server_front"))


@pytest.fixture(params=FRONTS)
def served(photo_store, request, tmp_path):
    allowed = tmp_path / "incoming"
    allowed.mkdir()
    server, target = start_server(photo_store.store_dir, front=request.param, workers=2,
                                  allowed_roots=[allowed])
    channel = grpc.insecure_channel(target)
    yield server, target, channel, allowed
    channel.close()
    stop_server(server)


def stop_in_thread(server, grace):
    """server.stop(grace) in a thread; the caller joins it with a timeout, so a hang fails the test."""
    done = threading.Event()

    def run():
        server.stop(grace)
        done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, done


def test_native_front_is_built_where_grpc_cpp_is_installed():
    has_grpcpp = shutil.which("pkg-config") and subprocess.run(
        ["pkg-config", "--exists", "grpc++"]).returncode == 0
    if not has_grpcpp:
        pytest.skip("gRPC C++ is not installed here; the package builds without the native front")
    assert native.available(), native.UNAVAILABLE_REASON


def test_the_default_server_is_native_when_built(photo_store):
    server, _ = start_server(photo_store.store_dir)
    try:
        assert server.mien_front == ("native" if native.available() else "python")
    finally:
        stop_server(server)


def test_asking_for_a_missing_front_is_a_clear_error(photo_store, monkeypatch):
    from mien.server.app import build_server

    with pytest.raises(ValueError, match="front must be one of"):
        build_server(photo_store.store_dir, port=0, front="rust")
    monkeypatch.setattr(native, "_grpcpp", None)
    monkeypatch.setattr(native, "UNAVAILABLE_REASON", "mien's gRPC C++ extension is not built (test)")
    with pytest.raises(RuntimeError, match="not built"):
        build_server(photo_store.store_dir, port=0, front="native")
    with pytest.raises(RuntimeError, match="not built"):
        Client("127.0.0.1:1", transport="native")
    assert Client("127.0.0.1:1").transport == "python"      # auto falls back to grpcio


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_client_timeout_is_deadline_exceeded(served, photo_store, transport):
    # An image query (decode + detect: several ms of server work) against a 1 ms deadline.
    # A vector query with a 1 us deadline raced the client's deadline timer: on a
    # connection grpcio already had open, 183 of 200 answered before the timer fired.
    _, target, _, _ = served
    image = photo_store.archive["obama.jpg"].read_bytes()
    with Client(target, transport=transport, timeout=1e-3) as c, pytest.raises(grpc.RpcError) as e:
        c.search(image, k=5)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_a_closed_client_refuses_calls(served):
    _, target, _, _ = served
    client = Client(target)
    assert client.stats().faces > 0
    client.close()
    with pytest.raises(ValueError):   # grpcio's error for a closed channel, whatever the transport
        client.stats()
    with pytest.raises(ValueError):
        client.health()


def test_unknown_method_is_unimplemented(served):
    _, _, channel, _ = served
    call = channel.unary_unary("/mien.v1.Mien/NoSuchMethod")
    with pytest.raises(grpc.RpcError) as e:
        call(b"", timeout=10)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_unparseable_request_bytes_are_invalid_argument_and_the_server_goes_on(served):
    """Issue 22: bytes that are no request message are the client's mistake, named as such
    (INVALID_ARGUMENT, the message type, a google.rpc.Status), not INTERNAL."""
    from grpc_status import rpc_status

    _, target, channel, _ = served
    call = channel.unary_unary("/mien.v1.Mien/SearchExpression")
    with pytest.raises(grpc.RpcError) as e:
        call(b"\xff\xff\xff\xff", timeout=10)            # not a SearchExpressionRequest
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "do not parse as a mien.v1.SearchExpressionRequest" in e.value.details()
    status = rpc_status.from_call(e.value)
    assert status is not None and status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    with Client(target) as c:
        assert c.stats().faces > 0


def test_garbage_bytes_to_every_method_are_invalid_argument_and_the_server_goes_on(served):
    server, target, channel, _ = served
    methods = all_methods(server.mien_context)
    assert len(methods) >= 20   # Mien, Analytics, health, reflection
    garbage = b"\xff\xff\xff\xff"   # a varint cut short: not any message
    for name, (request_streaming, response_streaming) in sorted(methods.items()):
        if request_streaming and response_streaming:
            call = channel.stream_stream(name)(iter([garbage]), timeout=30)
        elif request_streaming:
            call = channel.stream_unary(name).future(iter([garbage]), timeout=30)
        elif response_streaming:
            call = channel.unary_stream(name)(garbage, timeout=30)
        else:
            call = channel.unary_unary(name).future(garbage, timeout=30)
        with pytest.raises(grpc.RpcError) as e:
            list(call) if response_streaming else call.result()
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (name, e.value.code(), e.value.details())
        assert "do not parse as a " in e.value.details(), (name, e.value.details())
    with Client(target) as c:
        assert c.stats().faces > 0


@pytest.mark.parametrize("front", FRONTS)
def test_unparseable_bytes_without_the_token_are_unauthenticated_first(photo_store, front):
    """Auth is checked before the bytes are parsed: without the token nobody learns more."""
    server, target = start_server(photo_store.store_dir, front=front, token="t0ken")
    channel = grpc.insecure_channel(target)
    try:
        call = channel.unary_unary("/mien.v1.Mien/Stats")
        for metadata, code in ((None, grpc.StatusCode.UNAUTHENTICATED),
                               ((("authorization", "Bearer t0ken"),), grpc.StatusCode.INVALID_ARGUMENT)):
            with pytest.raises(grpc.RpcError) as e:
                call(b"\xff\xff\xff\xff", timeout=10, metadata=metadata)
            assert e.value.code() == code, (metadata, e.value.details())
    finally:
        channel.close()
        stop_server(server)


def all_methods(ctx) -> dict:
    """Every method the server registers: name -> (request streaming, response streaming)."""
    from mien.server.app import _add_services

    table = native_front.HandlerTable()
    _add_services(table, ctx)
    return {name: (h.request_streaming, h.response_streaming) for name, h in table.methods.items()}


def test_cancelled_watches_end_on_the_server(served):
    # A watch blocks in the health servicer until its status changes; a cancel
    # must reach it (termination callbacks), or stop() below would hang.
    server, target, channel, _ = served
    health = health_pb2_grpc.HealthStub(channel)
    for _ in range(3):
        watches = [health.Watch(health_pb2.HealthCheckRequest(), timeout=30) for _ in range(2)]
        for watch in watches:
            assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        for watch in watches:
            watch.cancel()
    with Client(target) as c:
        assert c.stats().faces > 0
    thread, done = stop_in_thread(server, 0)   # no grace: only cancelled watches could hold it
    thread.join(60)
    assert done.is_set(), "stop() hung: a cancelled watch is still running on the server"


def open_watch(health):
    """A health watch past its first reply. A cancelled stream's thread ends a moment
    after its client sees the cancel, so a full server gets a few tries."""
    deadline = time.monotonic() + 30
    while True:
        watch = health.Watch(health_pb2.HealthCheckRequest(), timeout=60)
        try:
            assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
            return watch
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.mark.skipif(not native.available(), reason="the stream limit is the native front's")
def test_open_streams_are_capped_and_cancelling_frees_them(photo_store, monkeypatch):
    monkeypatch.setattr(native_front, "MAX_STREAMS", 2)
    server, target = start_server(photo_store.store_dir, front="native")
    try:
        with grpc.insecure_channel(target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for _ in range(2):  # the second round needs the first round's threads back
                watches = [open_watch(health) for _ in range(2)]
                with pytest.raises(grpc.RpcError) as e:
                    next(health.Watch(health_pb2.HealthCheckRequest(), timeout=30))
                assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert "too many open streams" in e.value.details()
                assert health.Check(health_pb2.HealthCheckRequest(), timeout=30).status == \
                    health_pb2.HealthCheckResponse.SERVING   # unary calls never wait for stream slots
                for watch in watches:
                    watch.cancel()
    finally:
        stop_server(server)


def test_a_watch_sees_the_drain_and_stop_ends_it(served):
    server, _, channel, _ = served
    watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=60)
    assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
    server.mien_health.enter_graceful_shutdown()
    assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
    thread, done = stop_in_thread(server, 0.5)
    thread.join(60)
    assert done.is_set(), "stop() did not return with a watch open"
    with pytest.raises(grpc.RpcError):   # the stream ends with the server (CANCELLED / UNAVAILABLE)
        for _ in watch:
            pass


def test_stop_lets_a_running_stream_finish(served):
    from mien.demo.videos import write_clip

    server, target, _, allowed = served
    write_clip(allowed / "obama_zoom.avi", people=("obama",), motion="zoom", seconds=1.5, fps=10.0)
    with Client(target) as c:
        events = c.index_paths([allowed], fps=4.0)
        first = next(events)
        assert not first.done
        thread, done = stop_in_thread(server, 120)   # grace: the indexing finishes
        rest = list(events)
        thread.join(120)
    assert done.is_set()
    assert rest and rest[-1].done and rest[-1].files_done == 1 and rest[-1].faces > 0
