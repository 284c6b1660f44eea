"""A failed call as the `mien` commands print it: one line, with a hint where one helps."""

from __future__ import annotations


def rpc_error_line(exc, server: str | None = None) -> str:
    """One line for a failed call; a hint when nothing answers at the address."""
    import grpc

    code = exc.code() if callable(getattr(exc, "code", None)) else None
    name = code.name if code else "UNKNOWN"
    details = exc.details() if callable(getattr(exc, "details", None)) else str(exc)
    if code == grpc.StatusCode.UNAVAILABLE and server:
        return (f"no server at {server} ({details}) — start one with `mien serve --store DIR`, "
                "or give its address with --server HOST[:PORT]")
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return f"{name}: {details} (give the server's token with --token-file FILE or env MIEN_TOKEN)"
    return f"{name}: {details}"
