"""Errors shared by every layer. The server maps them to gRPC status codes."""


class MienError(Exception):
    """Base class of every error mien raises on purpose.

    Optional, for programs (the server sends them as google.rpc.Status details):
    reason: a stable UPPER_SNAKE_CASE cause ("MULTIPLE_FACES"); metadata: its
    facts as strings ({"faces": "6"}); field: the request field at fault
    ("query.face_index"); resource: (type, name) of what was not found or exists.
    """

    def __init__(self, *args, reason: str = "", metadata: dict | None = None, field: str = "",
                 resource: tuple[str, str] | None = None):
        super().__init__(*args)
        self.reason = reason
        self.metadata = {str(k): str(v) for k, v in (metadata or {}).items()}
        self.field = field
        self.resource = resource


class BadInputError(MienError):
    """The caller gave something unusable: corrupt media, no face, wrong dimension."""


class TooLargeError(BadInputError):
    """The input exceeds a configured limit (pixels, bytes, top_k)."""


class AlreadyExistsError(BadInputError):
    """Something with that name exists already (a tag, a person's name)."""


class NotFoundError(MienError, KeyError):
    """A face, person, source or tag that does not exist."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""


class ModelNotFoundError(MienError, FileNotFoundError):
    """A configured model file is missing; the message says how to obtain it."""


class StoreLockedError(MienError):
    """Another process holds the store's single writer lock."""


class EncoderMismatchError(MienError):
    """The store was built by other encoders than the ones asked for."""


class VanishedError(BadInputError):
    """A file found earlier is gone when it is opened (removed or renamed during the run)."""


class ServerStoppingError(MienError):
    """The server is shutting down: it takes no new calls and stops long ones at safe points."""
