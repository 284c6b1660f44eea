"""The committed generated code in mien/v1 matches proto/mien/v1/*.proto.

We commit the generated Python so that installing mien needs no grpcio-tools
and the .proto files stay the one contract for every language. This test
regenerates everything into a temporary directory with the same command and
fails if any committed file differs or is missing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROTO_DIR = ROOT / "proto"

pytest.importorskip("grpc_tools", reason="grpcio-tools (dev extra) regenerates the code")


def test_generated_code_is_fresh(tmp_path):
    protos = sorted(str(p.relative_to(PROTO_DIR)) for p in (PROTO_DIR / "mien" / "v1").glob("*.proto"))
    assert protos, "no .proto files found"
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_DIR}", f"--python_out={tmp_path}",
         f"--pyi_out={tmp_path}", f"--grpc_python_out={tmp_path}", *protos],
        check=True, cwd=ROOT,
    )
    generated = sorted((tmp_path / "mien" / "v1").iterdir())
    assert len(generated) == 3 * len(protos)
    stale = []
    for path in generated:
        committed = ROOT / "mien" / "v1" / path.name
        if not committed.exists() or committed.read_bytes() != path.read_bytes():
            stale.append(path.name)
    assert not stale, (
        f"stale generated code {stale}; regenerate with: .venv/bin/python -m grpc_tools.protoc "
        "-Iproto --python_out=. --pyi_out=. --grpc_python_out=. proto/mien/v1/*.proto"
    )


def test_every_message_field_is_documented():
    """Each message, field, service and rpc of the search contract has a comment above it."""
    missing = []
    for proto in (PROTO_DIR / "mien" / "v1" / "common.proto", PROTO_DIR / "mien" / "v1" / "search.proto"):
        lines = proto.read_text().splitlines()
        for i, line in enumerate(lines):
            s = line.strip()
            is_decl = (s.startswith(("message ", "service ", "rpc ", "enum "))
                       or (s.endswith(";") and "=" in s and not s.startswith(("option", "syntax", "//"))))
            if not is_decl:
                continue
            prev = lines[i - 1].strip() if i else ""
            # first field of a oneof / enum value 0 may follow the opening line's comment
            if not prev.startswith("//") and not prev.endswith("{") and not s.endswith("{}"):
                missing.append(f"{proto.name}:{i + 1}: {s}")
    assert not missing, "undocumented:\n" + "\n".join(missing)
