"""The JSON API: every gRPC method of Mien and Analytics over HTTP, one implementation.

In the spirit of grpc-gateway, but table-driven instead of generated: each
route names a proto method; the request body (and path/query parameters) is
parsed into the method's request message with google.protobuf.json_format,
the servicer method object that gRPC calls runs through mien.server.call_bridge
(as under the native front), and its reply goes back through json_format. Errors
the servicers raise through `context.abort(code, message)` become HTTP
statuses (the mapping grpc-gateway uses) with a google.rpc.Status-shaped body.

Routes:
  POST /v1/{Service}/{Method}       every unary and server-streaming method,
                                    body = the request message as JSON
  GET  resource-style aliases       see RESOURCE_ROUTES
Server-streaming methods (IndexPaths) answer with newline-delimited JSON, one
message per line; a failure mid-stream is a last line {"error": {...}}.
Client-streaming UploadImage is not mapped: inline images (FaceQuery.image,
base64 in JSON) take the same size limit as one gRPC message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import grpc
from google.protobuf import json_format

from mien.server.analytics_servicer import AnalyticsServicer
from mien.server.call_bridge import OK, CallContext, run_stream, run_unary
from mien.server.context import ServerContext
from mien.server.servicer import MienServicer
from mien.v1 import analytics_pb2, search_pb2

# grpc-gateway's mapping of gRPC codes to HTTP statuses
HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}

_STATUS_CODES = {code.value[0]: code for code in grpc.StatusCode}
# a call over HTTP: no gRPC metadata (the web app checked its own auth), no deadline
_HTTP_CALL = {"metadata": (), "peer": "http", "deadline": None}

# GET aliases: (path pattern, "Service/Method"); {a.b} fills request field a.b,
# query parameters fill the rest (?page_size=10&include_thumbnails=true).
RESOURCE_ROUTES = (
    ("/v1/stats", "Mien/Stats"),
    ("/v1/persons", "Mien/ListPersons"),
    ("/v1/persons/{person.person_id}", "Mien/GetPerson"),
    ("/v1/persons/{person.person_id}/faces", "Mien/ListPersonFaces"),
    ("/v1/faces/{face_id}", "Mien/GetFace"),
    ("/v1/sources", "Mien/ListSources"),
    ("/v1/tags", "Analytics/ListTags"),
)


class RpcError(Exception):
    """A call that ended with a non-OK status."""

    def __init__(self, code: grpc.StatusCode, message: str, details: bytes = b""):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details   # a serialized google.rpc.Status (ErrorInfo, BadRequest, ...), or empty

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code, 500)

    def body(self) -> dict:
        # the JSON shape of google.rpc.Status, as grpc-gateway answers: code, message and its
        # details (ErrorInfo's stable reason and facts, for a program to act on without parsing English)
        out = {"code": self.code.value[0], "status": self.code.name, "message": self.message}
        if self.details:
            from google.rpc import error_details_pb2, status_pb2  # noqa: F401 - registers the detail types

            status = status_pb2.Status.FromString(self.details)
            out["details"] = json_format.MessageToDict(status, preserving_proto_field_name=True).get("details", [])
        return out


@dataclass(frozen=True)
class Method:
    service: str          # "Mien" or "Analytics"
    name: str             # "SearchExpression"
    request_type: type
    streaming: bool       # server-streaming reply
    call: object          # the bound servicer method gRPC calls


class Gateway:
    """Routes HTTP/JSON calls to the servicers of one ServerContext."""

    def __init__(self, ctx: ServerContext):
        self.ctx = ctx
        servicers = {"Mien": (MienServicer(ctx), search_pb2), "Analytics": (AnalyticsServicer(ctx), analytics_pb2)}
        self.methods: dict[str, Method] = {}
        for service, (servicer, module) in servicers.items():
            desc = module.DESCRIPTOR.services_by_name[service]
            for m in desc.methods:
                if m.client_streaming:
                    continue  # UploadImage: see the module docstring
                request_type = getattr(module, m.input_type.name, None)
                if request_type is None:  # a request message from common.proto
                    from mien.v1 import common_pb2
                    request_type = getattr(common_pb2, m.input_type.name)
                self.methods[f"{service}/{m.name}"] = Method(service, m.name, request_type,
                                                             m.server_streaming, getattr(servicer, m.name))
        self._resources = [(_compile(pattern), key) for pattern, key in RESOURCE_ROUTES]

    # -- routing ----------------------------------------------------------------
    def route(self, verb: str, path: str) -> tuple[Method, dict] | None:
        """(method, path fields) for a request line, or None when nothing is mapped there."""
        if verb == "POST":
            m = re.fullmatch(r"/v1/(Mien|Analytics)/([A-Za-z]+)", path)
            if m and f"{m[1]}/{m[2]}" in self.methods:
                return self.methods[f"{m[1]}/{m[2]}"], {}
            return None
        if verb == "GET":
            for regex, key in self._resources:
                m = regex.fullmatch(path)
                if m:
                    return self.methods[key], {_field(k): v for k, v in m.groupdict().items()}
        return None

    def build_request(self, method: Method, body: bytes, path_fields: dict, query: dict):
        """The request message from a JSON body, path fields and query parameters."""
        request = method.request_type()
        try:
            if body.strip():
                json_format.Parse(body, request)
            fields = {**{k: v[-1] for k, v in query.items()}, **path_fields}
            if fields:
                json_format.ParseDict(_nest(fields, request.DESCRIPTOR), request, ignore_unknown_fields=False)
        except (json_format.ParseError, UnicodeDecodeError, ValueError) as exc:
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"the request is not a valid {request.DESCRIPTOR.name} in JSON: {exc}") from None
        return request

    # -- calls ------------------------------------------------------------------
    def call(self, method: Method, request) -> dict:
        """Run a unary method; its reply as JSON-ready dict, or RpcError."""
        return to_json(self.call_raw(method, request))

    @staticmethod
    def call_raw(method: Method, request):
        """Run a unary method; its reply message, or RpcError."""
        code, details, reply, status_details = run_unary(method.call, request, CallContext(_HTTP_CALL),
                                                         method.name)
        if code != OK:
            raise RpcError(_STATUS_CODES[code], details, status_details)
        return reply

    def stream(self, method: Method, request):
        """Run a server-streaming method: yields JSON-ready dicts; RpcError on failure."""
        context = CallContext(_HTTP_CALL)
        replies = run_stream(method.call, request, context, method.name)
        try:
            for reply in replies:
                yield to_json(reply)
        except GeneratorExit:  # the client went away: the call stops at its next safe point
            context.end()
            replies.close()
            raise
        code, details = context.status()
        if code != OK:
            raise RpcError(_STATUS_CODES[code], details, context.status_details())


def to_json(message) -> dict:
    # proto field names (snake_case) as in the .proto files; zero values kept so
    # the app never has to guess a default
    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


def _compile(pattern: str) -> re.Pattern:
    return re.compile(re.sub(r"\{([a-z_.]+)\}", lambda m: f"(?P<{m[1].replace('.', '__')}>[^/]+)", pattern))


def _field(group: str) -> str:
    return group.replace("__", ".")


def _nest(flat: dict, descriptor) -> dict:
    """{"person.person_id": "3", "include_thumbnails": "true"} -> nested dict json_format takes."""
    out: dict = {}
    for key, value in flat.items():
        parts = key.split(".")
        node, desc = out, descriptor
        for part in parts[:-1]:
            f = desc.fields_by_name.get(part)
            if f is None or f.message_type is None:
                raise ValueError(f"unknown field {key!r}")
            node = node.setdefault(part, {})
            desc = f.message_type
        f = desc.fields_by_name.get(parts[-1])
        if f is None:
            raise ValueError(f"unknown field {key!r}")
        if f.type == f.TYPE_BOOL:
            if value not in ("true", "false"):
                raise ValueError(f"{key} must be true or false")
            value = value == "true"
        node[parts[-1]] = value
    return out
