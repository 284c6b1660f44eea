"""Issue 22: any file name a POSIX file system holds is indexed, stored exactly and shown
escaped; one odd name never stops a run.

The corpus: a Latin-1 name (not UTF-8: the issue's `b_\\xe9t\\xe9.jpg`), the bytes of a
lone surrogate, a newline, a backslash beside a bad byte, a 255-byte name (NAME_MAX), NFC
and NFD spellings of one word (two files), and a path longer than an LMDB key (511 bytes).
Through `mien index` (its table and --json), server-side IndexPaths on both gRPC fronts,
ListSources, search hits and filters, TagSource, the CLI's --json and --source, and the
web app's JSON and media. Real photos, real stores, real servers on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from indexer_support import env_for_subprocess
from server_support import FRONTS, TOKEN, build_photo_store, start_server, stop_server
from web_support import bearer, http

from mien.clients.analytics_client import AnalyticsClient
from mien.clients.client import Client
from mien.engine.store import Store
from mien.filenames import candidates, escape, shown, unescape

NAMES = [
    b"b_\xe9t\xe9.jpg",                 # Latin-1: not UTF-8
    b"lone_\xed\xa0\x80.jpg",           # U+D800 encoded: a lone surrogate's bytes
    b"new\nline.jpg",
    b"back\\slash_\xff.jpg",            # a backslash beside a byte that is not UTF-8
    b"n" * 251 + b".jpg",               # 255 bytes, NAME_MAX
    "caf\u00e9.jpg".encode(),           # NFC
    "cafe\u0301.jpg".encode(),          # NFD: another file
    b"plain.jpg",
]
DEEP = [b"d" * 250, b"e" * 250]          # a folder chain: the last file's path exceeds 511 bytes


def write_corpus(photo: Path, root: Path) -> list[bytes]:
    """The corpus under root (bytes paths: names that are not UTF-8 are made as bytes)."""
    base = os.fsencode(root)
    os.makedirs(base, exist_ok=True)
    paths = [os.path.join(base, name) for name in NAMES]
    deep = os.path.join(base, *DEEP)
    os.makedirs(deep)
    paths.append(os.path.join(deep, b"\xe9" * 8 + b".jpg"))
    for p in paths:
        shutil.copyfile(photo, p)
    assert len(paths[-1]) > 511
    return paths


@pytest.fixture(scope="module")
def photo_store(tmp_path_factory):
    return build_photo_store(tmp_path_factory.mktemp("file_names"))


def run_mien(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mien.cli", *args], capture_output=True,
                          env=env_for_subprocess(), timeout=600)


def as_text(paths: list[bytes]) -> set[str]:
    """What clients are shown of these paths (valid Unicode)."""
    return {escape(os.fsdecode(p)) for p in paths}


def strict_json(raw: bytes):
    """JSON that any language reads: UTF-8, no lone surrogate escaped in it."""
    text = raw.decode("utf-8")
    assert "\\ud8" not in text.lower() and "\\udc" not in text.lower(), text[:300]
    return json.loads(text)


# ------------------------------------------------------------ the escape itself

@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=40).filter(lambda b: b"\0" not in b and b"/" not in b))
def test_any_name_escapes_to_unicode_and_back(name):
    text = escape(os.fsdecode(name))
    text.encode("utf-8")                                   # travels in protobuf and JSON
    assert os.fsencode(candidates(text)[-1]) == name       # and reads back to the same bytes
    assert "\n" not in shown(os.fsdecode(name))            # one line in a terminal
    try:
        plain = name.decode("utf-8")
    except UnicodeDecodeError:
        return
    assert text == plain                                   # a UTF-8 name is itself


def test_the_escape_is_the_one_the_issue_shows():
    assert escape(os.fsdecode(b"/d/b_\xe9t\xe9.jpg")) == "/d/b_\\xe9t\\xe9.jpg"
    assert escape(os.fsdecode(b"/d/a\\b\xff")) == "/d/a\\\\b\\xff"
    assert unescape("/d/plain\\name.jpg") is None          # a backslash no escape explains
    assert shown("a\nb") == "a\\nb" and escape("a\nb") == "a\nb"


# ------------------------------------------------------------ mien index (the CLI)

def test_mien_index_takes_every_name_and_keeps_utf8_keys_as_they_were(photo_store, tmp_path):
    archive = tmp_path / "archive"
    paths = write_corpus(photo_store.archive["obama.jpg"], archive)
    store = tmp_path / "store"
    out = tmp_path / "summary.json"
    proc = run_mien("index", str(archive), "--store", str(store), "--quiet", "--json", str(out))
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr, proc.stderr[-3000:]
    summary = strict_json(out.read_bytes())
    assert summary["indexed"] == len(paths) and summary["failures"] == [] and summary["faces_passed"] == len(paths)
    with Store(store) as s:
        sources = {os.fsencode(src.uri): src for src in s.list_sources()}
        assert set(sources) == set(paths)                          # every name, byte for byte
        assert all(src.status == "done" and src.face_count == 1 for src in sources.values())
        assert all(len(s.faces_of_source(os.fsdecode(p))) == 1 for p in paths)
    # a UTF-8 name's key is its UTF-8 bytes, as every store before this one wrote it: no migration
    import lmdb

    env = lmdb.open(str(store), readonly=True, lock=False, max_dbs=32, subdir=True)
    with env.begin() as txn:
        keys = {bytes(k) for k, _ in txn.cursor(db=env.open_db(b"sources", txn=txn))}
    env.close()
    nfc = os.path.join(os.fsencode(archive), "caf\u00e9.jpg".encode())
    assert nfc in keys and os.path.join(os.fsencode(archive), b"b_\xe9t\xe9.jpg") in keys
    # again: every source found unchanged under the same key
    proc = run_mien("index", str(archive), "--store", str(store), "--quiet", "--json", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = strict_json(out.read_bytes())
    assert summary["unchanged"] == len(paths) and summary["indexed"] == 0


def test_one_unreadable_odd_name_is_reported_escaped_and_the_rest_indexed(photo_store, tmp_path):
    archive = tmp_path / "archive"
    archive.mkdir()
    shutil.copyfile(photo_store.archive["obama.jpg"], archive / "a.jpg")
    bad = os.path.join(os.fsencode(archive), b"bad_\xe9\n.jpg")
    with open(bad, "wb") as fh:
        fh.write(b"\xff\xd8\xff\xe0 truncated")
    out = tmp_path / "summary.json"
    proc = run_mien("index", str(archive), "--store", str(tmp_path / "store"), "--quiet", "--json", str(out))
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr, proc.stderr[-3000:]
    summary = strict_json(out.read_bytes())
    assert summary["indexed"] == 1 and [p for p, _ in summary["failures"]] == [escape(os.fsdecode(bad))]
    failed = [line for line in proc.stderr.decode().splitlines() if "failed:" in line]
    assert failed == [f"  failed: {shown(os.fsdecode(bad))}: " + shown(summary["failures"][0][1])]


# ------------------------------------------------------------ the server

@pytest.mark.parametrize("front", FRONTS)
def test_index_paths_list_sources_search_and_tags_with_any_name(photo_store, tmp_path, front):
    archive = tmp_path / "archive"
    paths = write_corpus(photo_store.archive["obama.jpg"], archive)
    store_dir = tmp_path / "store"
    shutil.copytree(photo_store.store_dir, store_dir)
    server, target = start_server(store_dir, front=front, token=TOKEN, allowed_roots=[archive])
    try:
        with Client(target, token=TOKEN) as c, AnalyticsClient(target, token=TOKEN) as a:
            progress = list(c.index_paths([str(archive)]))
            final = progress[-1]
            assert final.done and final.failures == [] and final.files_total == len(paths)
            assert {p.current for p in progress if p.current} <= as_text(paths)
            listed = []
            page = c.sources(page_size=4)
            while True:
                listed += page.items
                if not page.next_page_token:
                    break
                page = c.sources(page_size=4, page_token=page.next_page_token)
            mine = {s.uri for s in listed if s.uri.startswith(str(archive))}
            assert mine == as_text(paths)
            query_face = photo_store.face_ids["obama.jpg"][0]
            a.create_tag("same", face_ids=[query_face])
            hits = c.search(query_face, k=40).hits
            assert as_text(paths) <= {h.source_uri for h in hits}
            for text in sorted(as_text(paths)):
                # the escaped name, given back as a filter, finds that source and only it
                only = c.search(query_face, k=5, sources=[text]).hits
                assert [h.source_uri for h in only] == [text]
                assert c.get_face(only[0].face_id).source_uri == text
                report = a.tag_source(text)
                assert report.uri == text and report.faces == 1 and report.results[0].tagged == 1
            # a local name as Python holds it (os.fsdecode) is escaped by the client on the way out
            raw = os.fsdecode(paths[0])
            assert [h.source_uri for h in c.search(query_face, k=5, sources=[raw]).hits] == [escape(raw)]
            # IndexPaths given a folder whose name is not UTF-8, escaped
            odd = os.path.join(os.fsencode(archive), b"sub_\xe9")
            os.mkdir(odd)
            shutil.copyfile(photo_store.archive["obama2.jpg"], os.path.join(odd, b"x.jpg"))
            final = list(c.index_paths([escape(os.fsdecode(odd))]))[-1]
            assert final.done and final.files_total == 1 and final.faces >= 1
    finally:
        stop_server(server)


def test_the_cli_and_the_web_app_show_any_name(photo_store, tmp_path):
    from mien.web import start_web, stop_web

    archive = tmp_path / "archive"
    paths = write_corpus(photo_store.archive["obama.jpg"], archive)
    store_dir = tmp_path / "store"
    shutil.copytree(photo_store.store_dir, store_dir)
    server, target = start_server(store_dir, front="python", token=TOKEN, allowed_roots=[archive])
    web = start_web(server.mien_context, port=0, host="127.0.0.1", token=TOKEN)
    base = f"http://127.0.0.1:{web.server_address[1]}"
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    try:
        status, _, body = http("POST", f"{base}/v1/Mien/IndexPaths", {"paths": [str(archive)]}, bearer(TOKEN))
        assert status == 200 and json.loads(body.splitlines()[-1])["done"] is True
        status, _, body = http("POST", f"{base}/v1/Mien/ListSources", {}, bearer(TOKEN))
        assert status == 200
        listed = {s["uri"] for s in strict_json(body)["sources"]}
        assert as_text(paths) <= listed
        query_face = photo_store.face_ids["obama.jpg"][0]
        status, _, body = http("POST", f"{base}/v1/Mien/SearchExpression",
                               {"query": {"face_id": query_face}, "top_k": 40}, bearer(TOKEN))
        assert status == 200 and as_text(paths) <= {h["source_uri"] for h in strict_json(body)["hits"]}
        photo = Path(photo_store.archive["obama.jpg"]).read_bytes()
        for text in sorted(as_text(paths)):   # the media route takes the name as the JSON showed it
            status, _, got = http("GET", f"{base}/media/file?uri={urllib.parse.quote(text)}", headers=bearer(TOKEN))
            assert status == 200 and got == photo, (text, status)
        # the CLI: --json hits and the table, --source given the raw bytes of a name
        for raw in paths[:4]:
            proc = run_mien("search", "--face-id", str(query_face), "--source", raw, "--server", target,
                            "--token-file", str(token_file), "--json")
            assert proc.returncode == 0, proc.stderr[-2000:]
            hits = strict_json(proc.stdout)["hits"]
            assert [h["source"] for h in hits] == [escape(os.fsdecode(raw))]
        proc = run_mien("search", "--face-id", str(query_face), "-k", "40", "--server", target,
                        "--token-file", str(token_file))
        assert proc.returncode == 0 and b"Traceback" not in proc.stderr, proc.stderr[-2000:]
        table = proc.stdout.decode("utf-8")
        assert "b_\\xe9t\\xe9.jpg" in table and "new\\nline.jpg" in table and "new\nline" not in table
    finally:
        stop_web(web)
        stop_server(server)
