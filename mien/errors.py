"""Errors shared by every layer. The server maps them to gRPC status codes."""


class MienError(Exception):
    """Base class of every error mien raises on purpose."""


class BadInputError(MienError):
    """The caller gave something unusable: corrupt media, no face, wrong dimension."""


class TooLargeError(BadInputError):
    """The input exceeds a configured limit (pixels, bytes, top_k)."""


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


class ServerStoppingError(MienError):
    """The server is shutting down: it takes no new calls and stops long ones at safe points."""
