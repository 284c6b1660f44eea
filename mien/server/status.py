"""google.rpc.Status for a failed call: the code and message clients read, plus details a
program can act on without parsing English (through grpcio-status on the wire).

Every mapped error carries an ErrorInfo (domain "mien.v1", a stable reason,
facts in metadata); INVALID_ARGUMENT with a known request field carries a
BadRequest field violation; NOT_FOUND and ALREADY_EXISTS carry a ResourceInfo.
Both server fronts send the same bytes (trailer grpc-status-details-bin).
"""

from __future__ import annotations

import grpc

from mien.errors import (
    AlreadyExistsError,
    BadInputError,
    EncoderMismatchError,
    ModelNotFoundError,
    NotFoundError,
    ServerStoppingError,
    StoreLockedError,
    TooLargeError,
)

DOMAIN = "mien.v1"

# the reason when the raising code named none; most specific class first
_DEFAULT_REASONS = (
    (TooLargeError, "LIMIT_EXCEEDED"),
    (AlreadyExistsError, "ALREADY_EXISTS"),
    (BadInputError, "INVALID_INPUT"),
    (NotFoundError, "NOT_FOUND"),
    (StoreLockedError, "STORE_BUSY"),
    (ServerStoppingError, "SERVER_STOPPING"),
    (ModelNotFoundError, "MODEL_NOT_FOUND"),
    (EncoderMismatchError, "ENCODER_MISMATCH"),
    (PermissionError, "OUTSIDE_ALLOWED_ROOTS"),
)


def reason_of(exc: BaseException) -> str:
    reason = getattr(exc, "reason", "")
    if reason:
        return reason
    for kind, name in _DEFAULT_REASONS:
        if isinstance(exc, kind):
            return name
    return "INTERNAL"


def status_proto(code: grpc.StatusCode, message: str, exc: BaseException | None):
    """The google.rpc.Status message for a failure (details from the exception's attributes)."""
    from google.protobuf import any_pb2
    from google.rpc import error_details_pb2, status_pb2

    status = status_pb2.Status(code=code.value[0], message=message)
    if exc is None:
        return status

    def add(message_) -> None:
        packed = any_pb2.Any()
        packed.Pack(message_)
        status.details.append(packed)

    add(error_details_pb2.ErrorInfo(reason=reason_of(exc), domain=DOMAIN,
                                    metadata=getattr(exc, "metadata", None) or {}))
    field = getattr(exc, "field", "")
    if field and code == grpc.StatusCode.INVALID_ARGUMENT:
        add(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=field, description=message)]))
    resource = getattr(exc, "resource", None)
    if resource and code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ALREADY_EXISTS):
        add(error_details_pb2.ResourceInfo(resource_type=str(resource[0]), resource_name=str(resource[1]),
                                           description=message))
    return status


def status_details_bytes(code: grpc.StatusCode, message: str, exc: BaseException | None) -> bytes:
    """The serialized google.rpc.Status (the grpc-status-details-bin trailer)."""
    return status_proto(code, message, exc).SerializeToString()
