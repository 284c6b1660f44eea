"""A store records the engine it was built with; every path serves and extends it with that engine.

Models are built by the tests (tests/model_files_support.py): a FEENet
checkpoint, an ArcFace-shaped and an SCRFD-shaped ONNX, random weights with
the real signatures. Index with them, serve the store (no model flags), query
by image over gRPC, tag in-process; move a model and point at it again
(checked by hash); refuse runs that would change the store's vectors, with or
without new work.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import grpc
import pytest

from indexer_support import small_photo
from model_files_support import arcface_onnx, feenet_checkpoint, scrfd_onnx
from server_support import FRONTS, free_port, start_server, stop_server, wait_until

from mien.cli import main
from mien.clients.client import Client
from mien.engine.faces import EngineConfig
from mien.engine.faces.engine_record import stored_record
from mien.engine.store import Store


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {"feenet": feenet_checkpoint(root / "feenet.pt"),
            "feenet_other": feenet_checkpoint(root / "other" / "feenet.pt", seed=1),
            "arcface": arcface_onnx(root / "w600k_r50.onnx"),
            "scrfd": scrfd_onnx(root / "det_10g.onnx")}


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("archive")
    for name in ("obama", "biden", "grace_hopper"):
        small_photo(name, root / f"{name}.jpg")
    return root


def index(archive, store, *flags) -> int:
    return main(["index", str(archive), "--store", str(store), "--workers", "1", "--quiet", *flags])


@pytest.fixture(scope="module")
def feenet_store(tmp_path_factory, models, archive):
    store = tmp_path_factory.mktemp("feenet") / "store"
    assert index(archive, store, "--expression", "feenet", "--expression-model", str(models["feenet"])) == 0
    return store


@pytest.fixture(scope="module")
def arcface_store(tmp_path_factory, models, archive):
    store = tmp_path_factory.mktemp("arcface") / "store"
    assert index(archive, store, "--identity", "arcface", "--identity-model", str(models["arcface"])) == 0
    return store


def _serving(client) -> bool:
    try:
        return client.health(timeout=2) == "SERVING"
    except grpc.RpcError:
        return False


def record(store) -> dict:
    with Store(str(store)) as s:
        return stored_record(s.encoders)


def test_store_records_engine_and_model_hashes(feenet_store, arcface_store, models):
    from mien.engine.faces.modelfiles import file_sha256

    rec = record(feenet_store)
    assert rec["expression"] == "feenet" and rec["identity"] == "dlib5" and rec["min_face"] == 40
    entry = rec["models"]["expression_model"]
    assert entry["sha256"] == file_sha256(str(models["feenet"].resolve()))
    assert entry["path"] == str(models["feenet"].resolve())
    rec = record(arcface_store)
    assert rec["identity"] == "arcface" and rec["expression"] == "fer-au-478"
    assert rec["features"] == "fer-au-478-features-1"   # what reembed and train head --store read
    assert rec["models"]["identity_model"]["sha256"] == file_sha256(str(models["arcface"].resolve()))


@pytest.mark.parametrize("front", FRONTS)
@pytest.mark.parametrize("kind", ["feenet", "arcface"])
def test_served_store_answers_image_queries(kind, front, feenet_store, arcface_store, archive):
    store = feenet_store if kind == "feenet" else arcface_store
    server, target = start_server(store, front=front)  # no model flags: the store says which
    try:
        with Client(target) as client:
            result = client.search(str(archive / "obama.jpg"), k=3)
            assert result.hits and result.hits[0].source_uri.endswith("obama.jpg")
            assert result.hits[0].distance < 1e-4  # the query lands where the indexed face did
            stats = json.loads(client.stats().encoders["engine"])
            assert stats["expression" if kind == "feenet" else "identity"] == kind
            if kind == "arcface":  # identity search by image runs the ArcFace model
                same = client.identity(str(archive / "obama.jpg"), k=1)
                assert same.hits[0].source_uri.endswith("obama.jpg")
    finally:
        stop_server(server)


def test_tag_in_process_uses_the_store_engine(feenet_store, archive, capsys):
    assert main(["tag", "create", "obama-look", "--image", str(archive / "obama.jpg"),
                 "--store", str(feenet_store)]) == 0
    assert main(["tag", "list", "--store", str(feenet_store), "--json"]) == 0
    assert "obama-look" in capsys.readouterr().out


def test_moved_model_is_found_by_flag_and_checked_by_hash(tmp_path, models, archive):
    moved_from = tmp_path / "models" / "feenet.pt"
    shutil.copyfile(models["feenet"], moved_from.parent.mkdir() or moved_from)
    store = tmp_path / "store"
    assert index(archive, store, "--expression", "feenet", "--expression-model", str(moved_from)) == 0
    elsewhere = tmp_path / "elsewhere" / "feenet.pt"
    elsewhere.parent.mkdir()
    shutil.move(moved_from, elsewhere)

    # without a pointer: a clear error naming the flag, not an encoder mismatch
    server, target = start_server(store, front="python")
    try:
        with Client(target, transport="python") as client, pytest.raises(grpc.RpcError) as err:
            client.search(str(archive / "obama.jpg"), k=1)
        assert "--expression-model" in err.value.details()
    finally:
        stop_server(server)

    # pointed at the moved file: served, and server-side indexing uses it too
    more = tmp_path / "more"
    small_photo("obama2", more / "obama2.jpg")
    server, target = start_server(store, front="python", engine_config=EngineConfig(expression_model=str(elsewhere)),
                                  allowed_roots=[more])
    try:
        with Client(target, transport="python") as client:
            assert client.search(str(archive / "obama.jpg"), k=1).hits[0].distance < 1e-4
            final = list(client.index_paths([more]))[-1]
            assert final.done and not final.failures and final.faces >= 1
    finally:
        stop_server(server)

    # `mien serve --expression-model` does the same from the command line
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mien.cli", "serve", "--store", str(store),
                             "--port", str(port), "--front", "python", "--expression-model", str(elsewhere)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        with Client(f"127.0.0.1:{port}", transport="python") as client:
            assert wait_until(lambda: _serving(client), timeout=120), proc.stderr.read1().decode()
            assert client.search(str(archive / "obama.jpg"), k=1).hits[0].distance < 1e-4
    finally:
        proc.terminate()
        proc.wait(timeout=60)

    # in-process tagging takes the same pointer
    assert main(["tag", "create", "moved", "--image", str(archive / "obama.jpg"), "--store", str(store),
                 "--expression-model", str(elsewhere)]) == 0
    assert main(["tag", "create", "unmoved", "--image", str(archive / "obama.jpg"), "--store", str(store)]) != 0

    # another checkpoint under the same name is refused by hash, by index runs too
    assert index(archive, store, "--expression-model", str(models["feenet_other"])) != 0
    assert index(archive, store, "--expression-model", str(elsewhere)) == 0


def test_runs_that_would_change_vectors_are_refused_without_new_work(arcface_store, archive, models, capsys):
    before = record(arcface_store)
    for flags in (["--min-face", "64"], ["--identity", "dlib"], ["--expression", "landmarks"],
                  ["--detector", "dlib"], ["--yaw-max", "30"]):
        capsys.readouterr()
        assert index(archive, arcface_store, *flags) != 0, flags
        err = capsys.readouterr().err
        assert "keeps the engine it was built with" in err and flags[0] in err
    # the store's own settings, given explicitly, are fine (and nothing new to do)
    assert index(archive, arcface_store, "--identity", "arcface", "--min-face", "40") == 0
    assert record(arcface_store) == before


def test_insightface_detector_store_is_served(tmp_path, models, archive):
    store = tmp_path / "store"
    assert index(archive, store, "--detector", "insightface", "--detector-model", str(models["scrfd"])) == 0
    rec = record(store)
    assert rec["detector"] == "insightface" and "detector_model" in rec["models"]
    server, target = start_server(store, front="python")
    try:
        with Client(target, transport="python") as client:
            try:
                result = client.search(str(archive / "obama.jpg"), k=1)
                assert result.hits is not None
            except grpc.RpcError as exc:  # random weights may find no usable face: a clear refusal
                assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, exc.details()
    finally:
        stop_server(server)


def test_person_add_uses_the_store_engine(feenet_store, archive, capsys):
    assert main(["person", "add", "Barack", str(archive / "obama.jpg"), "--store", str(feenet_store)]) == 0
    assert "Barack" in capsys.readouterr().out
