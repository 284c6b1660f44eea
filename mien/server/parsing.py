"""Request bytes that do not parse as the method's request message: INVALID_ARGUMENT, not INTERNAL.

grpcio parses a request before any handler or interceptor behaviour runs and
answers a parse failure INTERNAL ("Exception deserializing request!"): the
client's mistake reported as the server's fault. `ParseGuard` (a server
interceptor, so every service is covered: mien's, health, reflection) swaps
each handler's parser for one that never raises and hands the handler an
`Unparseable` instead, which the wrapped behaviour answers INVALID_ARGUMENT
with a message naming the message type. The native front
(mien/server/native_front.py) parses requests itself and answers the same.
"""

from __future__ import annotations

import grpc

from mien.errors import BadInputError

REASON = "UNPARSEABLE_REQUEST"


def message_name(deserializer) -> str:
    """The full name of the message a handler's request_deserializer (Message.FromString) parses."""
    cls = getattr(deserializer, "__self__", None)
    descriptor = getattr(cls, "DESCRIPTOR", None)
    return descriptor.full_name if descriptor is not None else "the method's request message"


def error(deserializer) -> BadInputError:
    name = message_name(deserializer)
    return BadInputError(f"the request bytes do not parse as a {name}: send a serialized {name}",
                         reason=REASON, metadata={"message": name})


class Unparseable:
    """What a guarded parser returns for bytes that are no message."""

    __slots__ = ("error",)

    def __init__(self, error: BadInputError):
        self.error = error


def _tolerant(deserialize):
    def parse(raw):
        try:
            return deserialize(raw)
        except Exception:  # noqa: BLE001 - any parse failure is the client's bytes
            return Unparseable(error(deserialize))
    return parse


def abort(context, exc: BadInputError):
    """End the call INVALID_ARGUMENT with exc's message and its google.rpc.Status details."""
    from mien.server.rpc_errors import _attach_details
    from mien.server.status import status_details_bytes

    code = grpc.StatusCode.INVALID_ARGUMENT
    _attach_details(context, status_details_bytes(code, str(exc), exc))
    context.abort(code, str(exc))


def _checked(requests, context):
    for request in requests:
        if isinstance(request, Unparseable):
            abort(context, request.error)
        yield request


def _guard_unary(behaviour):
    def call(request, context):
        if isinstance(request, Unparseable):
            abort(context, request.error)
        return behaviour(request, context)
    return call


def _guard_stream(behaviour):
    def call(requests, context):
        return behaviour(_checked(requests, context), context)
    return call


def guarded(handler):
    """`handler` whose parser never raises; unparseable bytes end the call INVALID_ARGUMENT."""
    if handler is None or handler.request_deserializer is None:
        return handler
    changes = {"request_deserializer": _tolerant(handler.request_deserializer)}
    for name in ("unary_unary", "unary_stream"):
        if getattr(handler, name) is not None:
            changes[name] = _guard_unary(getattr(handler, name))
    for name in ("stream_unary", "stream_stream"):
        if getattr(handler, name) is not None:
            changes[name] = _guard_stream(getattr(handler, name))
    return handler._replace(**changes)


class ParseGuard(grpc.ServerInterceptor):
    """grpcio's server: every handler guarded (see the module docstring); one wrap per handler."""

    def __init__(self):
        self._done: dict = {}

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        wrapped = self._done.get(handler)
        if wrapped is None:
            wrapped = self._done.setdefault(handler, guarded(handler))
        return wrapped
