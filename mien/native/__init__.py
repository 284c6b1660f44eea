"""gRPC C++ for mien's server front and client channel (the `_grpcpp` extension); beside it,
the store's compiled exact search finish (`_rank`, rank.h: mien/engine/store/expression_index.py
loads it itself).

Built by setup.py where gRPC C++ is installed (pkg-config grpc++; Debian's
libgrpc++-dev). Without it mien runs on grpcio alone: `available()` says
which, and `UNAVAILABLE_REASON` why not.
"""

from __future__ import annotations

try:
    from mien.native import _grpcpp
except ImportError as exc:
    _grpcpp = None
    UNAVAILABLE_REASON = (f"mien's gRPC C++ extension is not built ({exc}); install libgrpc++-dev "
                          "(Debian/Ubuntu) and reinstall mien")
else:
    UNAVAILABLE_REASON = ""


def available() -> bool:
    """Whether the gRPC C++ extension was built into this install."""
    return _grpcpp is not None
