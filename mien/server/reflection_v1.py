"""Server reflection under both names: grpc.reflection.v1 (what current grpcurl and
Postman try first) beside grpc.reflection.v1alpha.

grpcio-reflection ships only v1alpha. v1 is the same protocol under another
package (identical messages and field numbers), so one servicer answers both:
the v1 service routes to it with v1alpha's message classes, and a renamed copy
of v1alpha's file descriptor is added to the default pool so that reflection
can describe the v1 service too.

Reflection is open without a token (the server's token check lets it
through, like health): it tells only the public schema, the .proto files that
ship with mien; every call that reads or changes the store still needs the
token.
"""

from __future__ import annotations

import grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

V1_SERVICE = "grpc.reflection.v1.ServerReflection"
V1ALPHA_SERVICE = reflection.SERVICE_NAME
PREFIXES = (f"/{V1_SERVICE}/", f"/{V1ALPHA_SERVICE}/")


def _register_v1_descriptor() -> None:
    from google.protobuf import descriptor_pb2, descriptor_pool

    pool = descriptor_pool.Default()
    try:
        pool.FindServiceByName(V1_SERVICE)
        return
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    old, new = ".grpc.reflection.v1alpha.", ".grpc.reflection.v1."
    proto.name = "grpc/reflection/v1/reflection.proto"
    proto.package = "grpc.reflection.v1"
    proto.ClearField("options")
    for message in proto.message_type:
        for field in message.field:
            if field.type_name.startswith(old):
                field.type_name = new + field.type_name[len(old):]
    for service in proto.service:
        for method in service.method:
            method.input_type = new + method.input_type[len(old):]
            method.output_type = new + method.output_type[len(old):]
    pool.Add(proto)


def add_reflection(server, service_names) -> None:
    """Serve reflection (v1alpha and v1) for `service_names` (plus both reflection services)
    on a grpc.Server or the native front's HandlerTable."""
    _register_v1_descriptor()
    names = list(dict.fromkeys([*service_names, V1ALPHA_SERVICE, V1_SERVICE]))
    servicer = reflection.ReflectionServicer(names)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString)
    server.add_registered_method_handlers(V1_SERVICE, {"ServerReflectionInfo": handler})
