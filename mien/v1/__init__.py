"""Generated gRPC code for proto/mien/v1 (committed; tests/test_proto_fresh.py proves it fresh)."""
