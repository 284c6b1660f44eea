"""mien.server.call_bridge: how a servicer method run outside grpcio ends, the same for the
native front and the HTTP gateway (and as grpcio answers): its reply, an abort with its
google.rpc.Status details, a status set without raising, an unexpected exception."""

from __future__ import annotations

import grpc

from mien.server.call_bridge import OK, CallContext, run_stream, run_unary
from mien.server.rpc_errors import rpc
from mien.errors import NotFoundError

INFO = {"metadata": (("authorization", "Bearer x"),), "peer": "test", "deadline": None}


class Servicer:
    ctx = None

    @rpc
    def Found(self, request, context):
        return f"reply to {request}"

    @rpc
    def Missing(self, request, context):
        raise NotFoundError("face 7 does not exist", reason="FACE_NOT_FOUND")

    def Unimplemented(self, request, context):  # as the generated base class answers
        context.set_code(grpc.StatusCode.UNIMPLEMENTED)
        context.set_details("Method not implemented!")
        raise NotImplementedError("Method not implemented!")

    def Broken(self, request, context):
        raise RuntimeError("boom")

    def SetCode(self, request, context):
        context.set_code(grpc.StatusCode.FAILED_PRECONDITION)
        context.set_details("not now")
        return "ignored"

    @rpc
    def Stream(self, request, context):
        yield 1
        yield 2
        raise NotFoundError("gone mid-stream")


def test_a_reply_comes_back_ok():
    assert run_unary(Servicer().Found, "q", CallContext(INFO), "Found") == (OK, "", "reply to q", b"")


def test_an_abort_gives_its_code_message_and_status_details():
    code, details, reply, status_details = run_unary(Servicer().Missing, "q", CallContext(INFO), "Missing")
    assert (code, details, reply) == (grpc.StatusCode.NOT_FOUND.value[0], "face 7 does not exist", None)
    from google.rpc import status_pb2

    status = status_pb2.Status.FromString(status_details)
    assert status.code == grpc.StatusCode.NOT_FOUND.value[0] and status.message == details


def test_a_status_set_before_raising_wins_over_unknown():
    code, details, reply, _ = run_unary(Servicer().Unimplemented, "q", CallContext(INFO), "Unimplemented")
    assert (code, details, reply) == (grpc.StatusCode.UNIMPLEMENTED.value[0], "Method not implemented!", None)


def test_an_unexpected_exception_is_unknown_as_grpcio_says():
    code, details, reply, _ = run_unary(Servicer().Broken, "q", CallContext(INFO), "Broken")
    assert (code, details, reply) == (grpc.StatusCode.UNKNOWN.value[0], "Exception calling application: boom", None)


def test_a_status_set_without_raising_ends_the_call():
    code, details, reply, _ = run_unary(Servicer().SetCode, "q", CallContext(INFO), "SetCode")
    assert (code, details, reply) == (grpc.StatusCode.FAILED_PRECONDITION.value[0], "not now", None)


def test_a_stream_yields_its_replies_then_ends_with_its_status():
    context = CallContext(INFO)
    assert list(run_stream(Servicer().Stream, "q", context, "Stream")) == [1, 2]
    assert context.status() == (grpc.StatusCode.NOT_FOUND.value[0], "gone mid-stream")
    assert context.status_details()


def test_the_context_answers_what_servicers_ask():
    context = CallContext(INFO)
    assert context.invocation_metadata() == INFO["metadata"]
    assert context.peer() == "test" and context.time_remaining() is None and context.received() is None
    ran = []
    assert context.add_callback(lambda: ran.append(1))
    assert context.is_active()
    context.end()  # the caller went away: callbacks run, is_active says so
    assert ran == [1] and not context.is_active()
