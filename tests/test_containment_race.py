"""Issue 22: a folder under --allow-root swapped for a link to an outside folder while the
server reads it (renameat2 RENAME_EXCHANGE in a tight loop, as an attacker with write
access to the root would) never makes the server read the outside folder.

The crawl checked real paths but the workers, the media route and the fingerprint opened
files by name later; now every read opens the file beneath its root's descriptor without
following links (mien/indexer/beneath.py). Real servers on 127.0.0.1 (the native gRPC
front and the HTTP JSON API), real photos: the folder holds copies of grace_hopper.jpg,
the outside folder obama.jpg under the same names, so any face of Obama stored (and so
any thumbnail GetFace would serve) came from outside.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import grpc
import numpy as np
import pytest

from server_support import FRONTS, TOKEN, build_photo_store, start_server, stop_server
from web_support import bearer, http

from mien.clients.client import Client
from mien.engine.store import Store
from mien.indexer import beneath

FILES = 16           # photos in the swapped folder (and as many outside, same names)
MIN_INDEXED = 8      # the runs must have read at least this many for the test to say anything
BUDGET_S = 60.0      # rounds of IndexPaths stop here (each round indexes what earlier ones missed)


def _renameat2():
    libc = ctypes.CDLL(None, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return fn


SWAPPER = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
fn = libc.renameat2
fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
a, b, stop = (os.fsencode(x) for x in sys.argv[1:4])
swaps = 0
while True:
    if fn(-100, a, -100, b, 2) != 0:
        sys.exit(f"renameat2: {os.strerror(ctypes.get_errno())}")
    swaps += 1
    if swaps % 1024 == 0 and os.path.exists(stop):
        break
if swaps % 2:
    fn(-100, a, -100, b, 2)  # leave the tree as it was
    swaps += 1
print(swaps)
"""


class Swapper:
    """A process that keeps exchanging a folder and a link to the outside folder (renameat2
    RENAME_EXCHANGE), as fast as it can: its own process, so the server's threads never
    pause it and every read meets either state."""

    def __init__(self, a: Path, b: Path):
        self.args = [str(a), str(b), str(a.parent.parent / "stop-swapping")]
        self.swaps = 0

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", SWAPPER, *self.args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        return self

    def __exit__(self, *exc):
        Path(self.args[2]).touch()
        try:
            out, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        os.unlink(self.args[2])
        assert self.proc.returncode == 0, err
        self.swaps = int(out)


@pytest.fixture(scope="module")
def photo_store(tmp_path_factory):
    return build_photo_store(tmp_path_factory.mktemp("containment_race"))


def swap_tree(photo_store, base: Path) -> dict:
    root, outside = base / "root", base / "outside"
    (root / "d").mkdir(parents=True)
    outside.mkdir()
    for i in range(FILES):
        shutil.copy(photo_store.archive["grace_hopper.jpg"], root / "d" / f"p{i}.jpg")
        shutil.copy(photo_store.archive["obama.jpg"], outside / f"p{i}.jpg")
    (root / "e").symlink_to(outside, target_is_directory=True)
    if _renameat2() is None:
        pytest.skip("this libc has no renameat2")
    return {"root": root, "outside": outside, "d": root / "d", "e": root / "e",
            "secret": (outside / "p0.jpg").read_bytes()}


def reference_identities(photo_store) -> dict[str, np.ndarray]:
    with Store(photo_store.store_dir) as s:
        return {name: s.vectors(photo_store.face_ids[name], kind="identity")[0]
                for name in ("grace_hopper.jpg", "obama.jpg")}


def faces_under(store_dir: Path, root: Path) -> list:
    with Store(store_dir) as s:
        return [f for src in s.list_sources() if src.uri.startswith(str(root) + os.sep)
                for f in s.faces_of_source(src.uri)]


def own_store(photo_store, tmp_path) -> Path:
    store_dir = tmp_path / "store"
    shutil.copytree(photo_store.store_dir, store_dir)
    return store_dir


def assert_only_inside_faces(faces, refs) -> None:
    """Every stored face is Grace Hopper's (inside), none Obama's (outside)."""
    for face in faces:
        d_inside = float(np.sum((face.identity - refs["grace_hopper.jpg"]) ** 2))
        d_outside = float(np.sum((face.identity - refs["obama.jpg"]) ** 2))
        assert d_inside < d_outside, f"{face.source_uri}: a face read from the outside folder was stored"


def index_rounds(run_once, store_dir: Path, root: Path) -> int:
    """Run IndexPaths over the root again and again (each run indexes what the swaps made
    earlier ones skip) until MIN_INDEXED sources under it are stored or the budget is spent."""
    deadline = time.monotonic() + BUDGET_S
    stored = 0
    while time.monotonic() < deadline:
        run_once()
        with Store(store_dir) as s:
            stored = sum(1 for src in s.list_sources() if src.uri.startswith(str(root) + os.sep)
                         and src.status == "done")
        if stored >= MIN_INDEXED:
            break
    return stored


@pytest.mark.parametrize("front", FRONTS)
def test_swapping_a_folder_for_a_link_never_indexes_outside_files_over_grpc(photo_store, tmp_path, front):
    tree = swap_tree(photo_store, tmp_path)
    refs = reference_identities(photo_store)
    store_dir = own_store(photo_store, tmp_path)
    server, target = start_server(store_dir, front=front, token=TOKEN, allowed_roots=[tree["root"]])
    try:
        with Client(target, token=TOKEN) as c, Swapper(tree["d"], tree["e"]) as swapper:
            def run_once():
                final = list(c.index_paths([str(tree["root"])]))[-1]
                assert final.done
                assert not any(str(tree["outside"]) in f for f in final.failures)  # never named either

            stored = index_rounds(run_once, store_dir, tree["root"])
            faces = faces_under(store_dir, tree["root"])
            for face in faces:   # what GetFace serves: the stored record and its thumbnail
                got = c.get_face(face.face_id)
                assert str(tree["outside"]) not in got.source_uri
        assert swapper.swaps > 1000 and stored >= MIN_INDEXED, (swapper.swaps, stored)
        assert faces
        assert_only_inside_faces(faces, refs)
    finally:
        stop_server(server)


def test_swapping_a_folder_for_a_link_never_indexes_or_serves_outside_files_over_http(photo_store, tmp_path):
    from mien.web import start_web, stop_web

    tree = swap_tree(photo_store, tmp_path)
    refs = reference_identities(photo_store)
    store_dir = own_store(photo_store, tmp_path)
    server, _ = start_server(store_dir, token=TOKEN, allowed_roots=[tree["root"]], front="python")
    web = start_web(server.mien_context, port=0, host="127.0.0.1", token=TOKEN)
    base = f"http://127.0.0.1:{web.server_address[1]}"
    try:
        with Swapper(tree["d"], tree["e"]) as swapper:
            def run_once():
                status, _, body = http("POST", f"{base}/v1/Mien/IndexPaths", {"paths": [str(tree["root"])]},
                                       bearer(TOKEN))
                assert status == 200, body[:500]
                last = json.loads(body.splitlines()[-1])
                assert last.get("done") is True, last
                assert str(tree["outside"]).encode() not in body

            stored = index_rounds(run_once, store_dir, tree["root"])
            faces = faces_under(store_dir, tree["root"])
            # the media route: a stored source, asked for again and again while the folder swaps
            served = refused = 0
            uris = sorted({f.source_uri for f in faces})
            for i in range(300):
                status, _, body = http("GET", f"{base}/media/file?uri={uris[i % len(uris)]}", headers=bearer(TOKEN))
                assert body != tree["secret"], "the media route served the outside file"
                served += status == 200
                refused += status in (403, 404)
                assert status in (200, 403, 404), status
            for face in faces:
                status, _, body = http("POST", f"{base}/v1/Mien/GetFace", {"face_id": face.face_id}, bearer(TOKEN))
                assert status == 200 and str(tree["outside"]).encode() not in body
        assert swapper.swaps > 1000 and stored >= MIN_INDEXED, (swapper.swaps, stored)
        assert served > 0 and served + refused == 300
        assert_only_inside_faces(faces, refs)
    finally:
        stop_web(web)
        stop_server(server)


@pytest.mark.parametrize("openat2", [True, False], ids=["openat2", "nofollow-walk"])
def test_open_beneath_never_reads_through_a_swapped_link(photo_store, tmp_path, openat2):
    """The safe open itself, both ways (openat2 where the kernel has it, the O_NOFOLLOW walk
    elsewhere), in a tight loop against the swap: the inside bytes or a refusal, never the
    outside bytes."""
    tree = swap_tree(photo_store, tmp_path)
    inside = (tree["d"] / "p0.jpg").read_bytes()
    roots = [str(tree["root"])]
    beneath.use_openat2(openat2)
    got = {"inside": 0, "refused": 0, "gone": 0}
    try:
        with Swapper(tree["d"], tree["e"]):
            for i in range(3000):
                name = tree["d" if i % 2 else "e"] / "p0.jpg"
                try:
                    data = beneath.read_file(str(name), roots)
                except beneath.OutsideRootsError:
                    got["refused"] += 1
                    continue
                except FileNotFoundError:   # the walk met the name between two swaps' states
                    got["gone"] += 1
                    continue
                assert data != tree["secret"] and data == inside
                got["inside"] += 1
    finally:
        beneath.use_openat2(True)
    assert got["inside"] > 0 and got["refused"] > 0, got


def test_a_link_anywhere_in_the_path_is_refused_both_ways(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "a").mkdir(parents=True)
    outside.mkdir()
    (root / "a" / "f.jpg").write_bytes(b"inside")
    (outside / "f.jpg").write_bytes(b"outside")
    (root / "out").symlink_to(outside)
    (root / "a" / "inlink.jpg").symlink_to(root / "a" / "f.jpg")   # a link that stays inside: refused too
    roots = [str(root)]
    for openat2 in (True, False):
        beneath.use_openat2(openat2)
        try:
            assert beneath.read_file(str(root / "a" / "f.jpg"), roots) == b"inside"
            for path in (root / "out" / "f.jpg", root / "out", root / "a" / "inlink.jpg"):
                with pytest.raises(beneath.OutsideRootsError):
                    beneath.read_file(str(path), roots)
            with pytest.raises(beneath.OutsideRootsError):
                beneath.read_file(str(outside / "f.jpg"), roots)
            with pytest.raises(beneath.OutsideRootsError):
                beneath.read_file(f"{root}/a/../../outside/f.jpg", roots)
            with pytest.raises(FileNotFoundError):
                beneath.read_file(str(root / "a" / "nope.jpg"), roots)
            with pytest.raises(IsADirectoryError):
                beneath.read_file(str(root / "a"), roots)
        finally:
            beneath.use_openat2(True)
