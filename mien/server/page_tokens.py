"""Page tokens for list RPCs: opaque to clients, the last key of the previous page inside."""

from __future__ import annotations

import base64
import json

from mien.errors import BadInputError


def encode_token(after) -> str:
    """A token that resumes after `after` (an int or str key)."""
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode().rstrip("=")


def decode_token(token: str, kind: type):
    """The key inside a token ('' -> None); BadInputError for anything a server didn't make."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        after = json.loads(raw)["after"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BadInputError("page_token is not one this server returned") from exc
    if not isinstance(after, kind) or isinstance(after, bool):
        raise BadInputError("page_token is not one this server returned")
    return after


def page_size(requested: int, default: int, limit: int) -> int:
    if requested < 0:
        raise BadInputError(f"page_size must be positive, got {requested}")
    return min(requested or default, limit)
