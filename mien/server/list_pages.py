"""Pages of lists computed whole on every call (TagStore rows, ClusterStore clusters): the
token holds the offset and a fingerprint of what was asked (and of the store), so a token
cannot be replayed against another request or a changed store."""

from __future__ import annotations

import hashlib

from mien.errors import BadInputError
from mien.server.page_tokens import decode_token, encode_token

MAX_PAGE = 1000


def fingerprint(*parts) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def offset_page(items: list, page_size: int, page_token: str, print_: str) -> tuple[list, str]:
    """(this page's items, next token); page_size 0 and no token: everything, no token."""
    if page_size < 0:
        raise BadInputError(f"page_size must not be negative, got {page_size}", field="page_size")
    start = 0
    if page_token:
        after = decode_token(page_token, list)
        if len(after) != 2 or after[1] != print_ or not isinstance(after[0], int) or after[0] < 0:
            raise BadInputError("page_token does not belong to this request (or the store changed since): "
                                "start again from the first page", field="page_token", reason="STALE_PAGE_TOKEN")
        start = after[0]
    if not page_size and not page_token:
        return list(items), ""
    size = min(page_size or MAX_PAGE, MAX_PAGE)
    end = start + size
    return list(items[start:end]), (encode_token([end, print_]) if end < len(items) else "")


def key_page(items: list, key, page_size: int, page_token: str, kind: type) -> tuple[list, str]:
    """Pages of a list sorted by key(item): the token names the last key given."""
    if page_size < 0:
        raise BadInputError(f"page_size must not be negative, got {page_size}", field="page_size")
    after = decode_token(page_token, kind)
    if after is not None:
        items = [i for i in items if key(i) > after]
    if not page_size and not page_token:
        return list(items), ""
    size = min(page_size or MAX_PAGE, MAX_PAGE)
    page = list(items[:size])
    return page, (encode_token(key(page[-1])) if len(items) > size and page else "")
