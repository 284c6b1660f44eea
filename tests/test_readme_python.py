"""The Python examples of the README and the docs run as written against a real server over
the demo archive (docs/search-python.md's full example, the README's short one, the tags
page's), and the Python clients' contract: dataclasses only, per-call timeout, string face
ids, one exception family (mien.clients.MienError) for unary, stream and Analytics calls on
both transports."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import grpc
import numpy as np
import pytest
from google.protobuf.message import Message

from server_support import TRANSPORTS, start_server, stop_server

from mien.clients import AnalyticsClient, Client, MienError
from mien.cli import main

ROOT = Path(__file__).resolve().parent.parent


# pages whose Python examples run as written against `make demo`'s server (they say demo-out/)
EXAMPLE_PAGES = ("docs/search-python.md", "README.md", "docs/tags-and-summaries.md")


def python_examples(page: str) -> list[str]:
    """The page's ```python blocks that use the clients against the demo store."""
    text = (ROOT / page).read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    found = [b for b in blocks if "from mien.clients import" in b and "demo-out/" in b]
    assert found, f"{page} has no python example against the demo store"
    return found


def run_example(code: str, work: Path, target: str):
    code = code.replace("127.0.0.1:50051", target)  # the test server's port
    return subprocess.run([sys.executable, "-c", code], cwd=work, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """demo-out/ as `make demo` leaves it (archive, store with Obama and Biden), served with
    the docs' command: mien serve --store demo-out/store --allow-root demo-out/archive."""
    from mien.demo.archive import build_demo_archive

    work = tmp_path_factory.mktemp("readme")
    archive = build_demo_archive(work / "demo-out" / "archive")
    store = work / "demo-out" / "store"
    assert main(["index", str(archive), "--store", str(store), "--quiet", "--workers", "1"]) == 0
    for name in ("Obama", "Biden"):
        assert main(["person", "add", name, str(archive / "photos" / f"{name.lower()}.jpg"),
                     "--store", str(store)]) == 0
    server, target = start_server(store, front="python", allowed_roots=[archive])
    yield work, target
    stop_server(server)


def test_readme_python_example_runs_as_written(demo):
    """The full client example, now in docs/search-python.md."""
    work, target = demo
    (code,) = python_examples("docs/search-python.md")
    out = run_example(code, work, target)
    assert out.returncode == 0, out.stderr
    assert "StatusCode.NOT_FOUND" in out.stdout and "obama.jpg" in out.stdout


@pytest.mark.parametrize("page", EXAMPLE_PAGES[1:])
def test_the_other_python_examples_run_as_written(demo, page):
    work, target = demo
    for code in python_examples(page):
        out = run_example(code, work, target)
        assert out.returncode == 0, f"{page}: {out.stderr}"
        assert out.stdout.strip(), f"{page}: the example printed nothing"


def _no_protobuf(value, path="result"):
    """Walk a client answer: dataclasses, lists, dicts, numbers, strings, arrays; never a Message."""
    assert not isinstance(value, Message), f"{path} is a protobuf {type(value).__name__}"
    if dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            _no_protobuf(getattr(value, f.name), f"{path}.{f.name}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _no_protobuf(item, f"{path}[{i}]")
    elif isinstance(value, dict):
        for k, item in value.items():
            _no_protobuf(item, f"{path}[{k!r}]")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_client_contract(demo, transport):
    work, target = demo
    photo = work / "demo-out" / "archive" / "photos" / "obama.jpg"
    with Client(target, transport=transport) as c, AnalyticsClient(c) as a:
        result = c.search(photo, k=3, explain=True)
        face = result.hits[0].face_id
        answers = [result, c.cross(photo, "Biden", k=2), c.identity(str(face), k=2), c.get_face(str(face)),
                   c.persons(), c.person("Obama"), c.stats(), c.sources(page_size=2),
                   c.person_faces("Obama", page_size=2), a.list_tags(),
                   a.create_tag("contract", face_ids=[face], replace=True), a.tag_store(),
                   a.summarize("Obama", k=2)]
        for i, answer in enumerate(answers):
            _no_protobuf(answer, f"answer {i}")
            assert dataclasses.is_dataclass(answer) or isinstance(answer, (list, tuple))

        # "4" is face 4, not a file named 4
        assert c.search(str(face), k=1).query.face_id == face == c.search(face, k=1).query.face_id

        # one exception family: unary (either transport), stream, Analytics
        for call, code in ((lambda: c.get_face(10 ** 9), grpc.StatusCode.NOT_FOUND),
                           (lambda: c.person("Nobody"), grpc.StatusCode.NOT_FOUND),
                           (lambda: list(c.index_paths(["/"])), grpc.StatusCode.PERMISSION_DENIED),
                           (lambda: a.delete_tag("missing"), grpc.StatusCode.NOT_FOUND),
                           (lambda: c.search(np.ones(3), k=1), grpc.StatusCode.INVALID_ARGUMENT)):
            with pytest.raises(MienError) as err:
                call()
            e = err.value
            assert e.code == code and e.code() == code, (e.code, code)
            assert isinstance(e, grpc.RpcError) and isinstance(e.reason, str)
            assert e.message and e.details() == e.message and isinstance(list(e.details), list)

        # per-call timeout: a call given no time at all fails, the client's default is untouched
        with pytest.raises(MienError) as err:
            c.search(photo, k=1, timeout=1e-6)
        assert err.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert c.stats(timeout=30).faces > 0 and c.timeout == 60.0
