"""proto/ passes `buf lint` with the rules of proto/buf.yaml, and changes nothing that breaks
generated clients since the previous commit (`buf breaking`, FILE rules).

buf comes from npm's @bufbuild/buf: `make test` installs it into .buf/ (node_modules); a
buf on PATH or $MIEN_BUF works too. Without one these tests skip and say how to get it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _buf() -> str | None:
    for candidate in (os.environ.get("MIEN_BUF"), str(ROOT / ".buf" / "node_modules" / ".bin" / "buf"),
                      shutil.which("buf")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


BUF = _buf()
needs_buf = pytest.mark.skipif(BUF is None, reason="buf not installed (make buf, or npm install @bufbuild/buf)")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([BUF, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


@needs_buf
def test_buf_lint():
    out = run("lint", "proto")
    assert out.returncode == 0, out.stdout + out.stderr


def _previous_commit() -> str | None:
    """The commit before HEAD, if this clone has it (a shallow CI clone may not)."""
    got = subprocess.run(["git", "rev-parse", "--verify", "--quiet", "HEAD~1^{commit}"], cwd=ROOT,
                         capture_output=True, text=True)
    return got.stdout.strip() or None


@needs_buf
def test_buf_breaking_against_previous_commit():
    previous = _previous_commit()
    if previous is None:
        pytest.skip("no previous commit in this clone (shallow?): nothing to compare against")
    out = run("breaking", "proto", "--against", f".git#ref={previous},subdir=proto")
    assert out.returncode == 0, (f"proto/ breaks generated clients relative to {previous[:12]}:\n"
                                 + out.stdout + out.stderr)


@needs_buf
def test_buf_breaking_catches_a_removed_field(tmp_path):
    """The check is live: dropping a field of the published contract is reported."""
    copy = tmp_path / "proto"
    shutil.copytree(ROOT / "proto", copy)
    common = copy / "mien" / "v1" / "common.proto"
    text = common.read_text()
    lines = [line for line in text.splitlines() if "track_id" not in line or "=" not in line]
    assert len(lines) < len(text.splitlines())
    common.write_text("\n".join(lines) + "\n")
    out = subprocess.run([BUF, "breaking", str(copy), "--against", str(ROOT / "proto")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and "track_id" in out.stdout + out.stderr
