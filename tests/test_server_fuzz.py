"""Fuzzing every RPC of a real server on 127.0.0.1, on both fronts (issue 14).

hypothesis builds each request from its message descriptor: every field of
every message gets random and boundary values (empty, NUL bytes, over-long and
non-ASCII strings; 0, -1 and the extremes of each integer type; NaN, infinities
and huge floats; unknown enum values; empty, garbage and real image bytes; ids
and names that exist in the store). The server may refuse anything, but as the
client's fault (INVALID_ARGUMENT, NOT_FOUND, RESOURCE_EXHAUSTED, ...): never
INTERNAL or UNKNOWN, never a crash, and health stays SERVING after every call.

Bounded for CI: a fixed number of examples per method (derandomized, so a run
is reproducible), no per-example deadline, ~1-2 minutes for both fronts.
"""

from __future__ import annotations

import os
import shutil

import cv2
import grpc
import numpy as np
import pytest
from google.protobuf.descriptor import FieldDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server_support import FRONTS, photo_store_with_root, start_server, stop_server

from mien.v1 import analytics_pb2, analytics_pb2_grpc, search_pb2, search_pb2_grpc

# Codes that mean "the server broke", not "the client asked for something wrong".
SERVER_FAULTS = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
EXAMPLES = {"IndexPaths": 6}     # each real run starts indexer processes: a few suffice
DEFAULT_EXAMPLES = 14
# A longer, random hunt on a workstation: MIEN_FUZZ_EXAMPLES=500 MIEN_FUZZ_RANDOM=1 pytest tests/test_server_fuzz.py
SCALE = int(os.environ.get("MIEN_FUZZ_EXAMPLES", "0"))
RANDOM = os.environ.get("MIEN_FUZZ_RANDOM") == "1"

INT_EDGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The store, an allowed root with one photo, and values worth trying (ids, names, images)."""
    ps, allowed = photo_store_with_root(tmp_path_factory.mktemp("server_fuzz"))
    shutil.copy(ps.archive["obama.jpg"], allowed / "obama.jpg")
    face = cv2.imread(str(ps.archive["obama.jpg"]))
    images = [
        cv2.imencode(".jpg", face)[1].tobytes(),
        cv2.imencode(".png", np.zeros((1, 1, 3), np.uint8))[1].tobytes(),       # valid, no face
        cv2.imencode(".jpg", cv2.imread(str(ps.archive["t1.jpg"])))[1].tobytes(),  # several faces
        b"\x89PNG\r\n\x1a\n" + b"\0" * 40,                                        # a header, no image
    ]
    face_ids = [i for ids in ps.face_ids.values() for i in ids]
    return {
        "store": ps, "allowed": allowed, "images": images,
        "ints": sorted({0, 1, -1, *face_ids[:3], max(face_ids), max(face_ids) + 1, *ps.persons.values()}),
        "strings": ["Obama", "Biden", "smirk", str(allowed), str(allowed / "obama.jpg"),
                    str(ps.archive["obama.jpg"]), "/etc/passwd", str(allowed) + "/../..", "../x"],
    }


def strings(world):
    return st.one_of(
        st.sampled_from(world["strings"] + ["", "\x00", "a\x00b", "é" * 300, "x" * 481, "y" * 5000]),
        st.text(max_size=40),
        st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=500, max_size=700),
    )


def integers(world, kind):
    lo, hi = INT_EDGES.get(kind, (-(2**31), 2**31 - 1))
    edges = [lo, hi, lo + 1, hi - 1] + [v for v in world["ints"] if lo <= v <= hi]
    return st.one_of(st.sampled_from(edges), st.integers(lo, hi), st.integers(-3, 300).filter(lambda v: lo <= v <= hi))


FLOATS = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, float("nan"), float("inf"), float("-inf"), 3.4e38, -3.4e38, 1e-45]),
    st.floats(width=32, allow_nan=True, allow_infinity=True),
)


def scalar(world, field):
    t = field.type
    if t == FieldDescriptor.TYPE_STRING:
        return strings(world)
    if t == FieldDescriptor.TYPE_BYTES:
        return st.one_of(st.sampled_from(world["images"] + [b""]), st.binary(max_size=64))
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return FLOATS
    if t == FieldDescriptor.TYPE_ENUM:
        known = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(known), st.integers(-5, 50))
    return integers(world, t)


def vectors(world):
    """Vector.values: mostly the lengths searches take, sometimes anything."""
    def unit(n):
        return st.lists(st.floats(-1, 1, width=32), min_size=n, max_size=n)
    return st.one_of(unit(16), unit(128), st.lists(FLOATS, max_size=20))


def message(world, desc, depth=0):
    """A strategy for a message of type `desc`: each field set or not, oneofs honoured."""
    @st.composite
    def build(draw):
        msg_class = _CLASSES[desc.full_name]
        values = {}
        oneof_pick = {o.name: draw(st.sampled_from([None, *[f.name for f in o.fields]])) for o in desc.oneofs
                      if not o.name.startswith("_")}  # "_x" oneofs are proto3 `optional` presence
        for field in desc.fields:
            real_oneof = field.containing_oneof is not None and not field.containing_oneof.name.startswith("_")
            if real_oneof and oneof_pick[field.containing_oneof.name] != field.name:
                continue
            if not real_oneof and not draw(st.booleans()):
                continue
            if desc.full_name == "mien.v1.Vector":
                values[field.name] = draw(vectors(world))
                continue
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                if depth >= 3:
                    continue
                item = message(world, field.message_type, depth + 1)
            else:
                item = scalar(world, field)
            if field.is_repeated:
                values[field.name] = draw(st.lists(item, max_size=3))
            else:
                values[field.name] = draw(item)
        return msg_class(**values)
    return build()


def _classes():
    from mien.v1 import common_pb2

    out = {}
    for module in (common_pb2, search_pb2, analytics_pb2):
        for name in dir(module):
            cls = getattr(module, name)
            if hasattr(cls, "DESCRIPTOR") and hasattr(cls.DESCRIPTOR, "full_name") and hasattr(cls, "FromString"):
                out[cls.DESCRIPTOR.full_name] = cls
    return out


_CLASSES = _classes()


def methods():
    """(service stub attribute, method descriptor) for every RPC of Mien and Analytics."""
    out = []
    for module, service in ((search_pb2, "Mien"), (analytics_pb2, "Analytics")):
        for m in module.DESCRIPTOR.services_by_name[service].methods:
            out.append(pytest.param(service, m, id=f"{service}.{m.name}"))
    return out


@pytest.fixture(scope="module", params=FRONTS)
def server(world, request):
    srv, target = start_server(world["store"].store_dir, front=request.param, workers=4,
                               allowed_roots=[world["allowed"]])
    channel = grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", 64 << 20)])
    yield {"channel": channel, "mien": search_pb2_grpc.MienStub(channel),
           "analytics": analytics_pb2_grpc.AnalyticsStub(channel),
           "health": health_pb2_grpc.HealthStub(channel)}
    channel.close()
    stop_server(srv)


def invoke(server, service, method, request):
    stub = server["mien" if service == "Mien" else "analytics"]
    rpc = getattr(stub, method.name)
    if method.client_streaming:
        return rpc(iter(request), timeout=60)
    if method.server_streaming:
        return list(rpc(request, timeout=120))
    return rpc(request, timeout=60)


@pytest.mark.parametrize("service,method", methods())
def test_fuzz_every_rpc(world, server, service, method):
    request_type = method.input_type
    if method.client_streaming:
        strategy = st.lists(message(world, request_type), max_size=4)
    else:
        strategy = message(world, request_type)
    faults = []

    examples = SCALE or EXAMPLES.get(method.name, DEFAULT_EXAMPLES)
    if SCALE and method.name == "IndexPaths":
        examples = max(1, SCALE // 20)

    @settings(max_examples=examples, deadline=None, derandomize=not RANDOM,
              database=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(request):
        try:
            invoke(server, service, method, request)
        except grpc.RpcError as exc:
            if exc.code() in SERVER_FAULTS:
                faults.append((exc.code(), exc.details(), request))
            assert exc.code() not in SERVER_FAULTS, f"{method.name}: {exc.code()} {exc.details()} for {request!r:.500}"
        status = server["health"].Check(health_pb2.HealthCheckRequest(), timeout=30).status
        assert status == health_pb2.HealthCheckResponse.SERVING

    run()
    assert not faults
