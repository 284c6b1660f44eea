"""FEC CSV -> fetch (real HTTP on 127.0.0.1) -> train -> eval -> the engine loads the checkpoint.

The CSV is FEC-format; its images are the package photos served by a local
http.server, plus 404s and one response that stalls past the timeout. The
triplets are smiling vs neutral faces, so a from-scratch FEENet at a tiny input
size can learn them in a few dozen steps on one CPU thread.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mien.cli import main  # noqa: E402
from mien.training.fetch import fetch, load_triplets  # noqa: E402
from training_support import PhotoServer, photo_bytes, write_fec_csv  # noqa: E402

TIMEOUT = 0.5  # the slow URL stalls 3 s: always a timeout
STEPS = 60
SIZE = 32      # network input side for the mechanics test (the model takes any size)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    # 2 shared cores: one torch thread is faster and keeps the suite predictable.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("fec")
    files = photo_bytes()
    with PhotoServer(files, slow_seconds=3.0) as server:
        spec = write_fec_csv(root / "fec-train.csv", server, files)
        first = fetch(spec.csv, root / "data", workers=8, timeout=TIMEOUT, retries=1,
                      progress=False)
        asked_before = len(server.requests)
        second = fetch(spec.csv, root / "data", workers=8, timeout=TIMEOUT, retries=1,
                       progress=False)
        second_requests = server.requests[asked_before:]
        asked_before = len(server.requests)
        # the CLI, asking the dead URLs again
        assert main(["fec", "fetch", str(spec.csv), "--out", str(root / "data"), "--workers", "8",
                     "--timeout", str(TIMEOUT), "--retries", "0", "--retry-dead"]) == 0
        third = json.loads((root / "data" / "fetch_report.json").read_text())
        third_requests = server.requests[asked_before:]
    return dict(root=root, spec=spec, first=first, second=second, third=third,
                second_requests=second_requests, third_requests=third_requests)


def test_fetch_counts_dead_urls_and_keeps_surviving_triplets(world):
    spec, r = world["spec"], world["first"]
    assert r.rows == spec.rows and r.malformed == 1 and r.no_majority == 1
    assert r.dead == spec.dead_urls            # 404s
    assert r.failed == spec.slow_urls          # timed out after retries
    assert r.downloaded == spec.live_urls and r.cached == 0
    assert r.triplets_surviving == spec.live_rows
    assert r.fallback_box == 1                 # the face-less coffee photo
    assert r.aligned == 12                     # every real face found its landmarks
    triplets = load_triplets(world["root"] / "data")
    assert len(triplets) == spec.live_rows
    assert r.per_type_surviving == {
        t: sum(1 for x in triplets if x.type == t) for t in {x.type for x in triplets}}
    import cv2

    for key in {f.key for t in triplets for f in t.faces}:
        crop = cv2.imread(str(world["root"] / "data" / "crops" / f"{key}.jpg"))
        assert crop.shape == (224, 224, 3)


def test_fetch_resumes_without_downloading_again(world):
    r = world["second"]
    assert r.downloaded == 0 and r.crops_new == 0
    assert r.cached == world["spec"].live_urls
    assert r.dead == world["spec"].dead_urls   # remembered, not asked again
    assert r.triplets_surviving == world["spec"].live_rows
    # only the transient failure (the slow URL) is retried; 404s and cached images are not
    assert world["second_requests"] and all(p.startswith("/slow/") for p in world["second_requests"])
    # --retry-dead asks the dead URLs again
    third = world["third_requests"]
    assert sum(1 for p in third if not p.startswith("/slow/")) == world["spec"].dead_urls
    assert world["third"]["downloaded"] == 0 and world["third"]["dead"] == world["spec"].dead_urls


@pytest.fixture(scope="module")
def trained(world, tmp_path_factory):
    data = world["root"] / "data"
    out = tmp_path_factory.mktemp("ckpt")
    common = ["--data", str(data), "--batch", "8", "--lr", "3e-3", "--input-size", str(SIZE),
              "--workers", "0", "--val-fraction", "0.1", "--seed", "0"]
    assert main(["train", "feenet", "--out", str(out / "step1.pt"), "--steps", "1", *common]) == 0
    from mien.training.train import train

    result = train(data, out / "feenet.pt", steps=STEPS, batch=8, lr=3e-3, input_size=SIZE,
                   val_fraction=0.1, seed=0, progress=False)
    return dict(out=out, data=data, result=result)


def _eval(ckpt, data, tmp_path, *extra):
    report_path = tmp_path / f"{ckpt.stem}.json"
    assert main(["eval", "fec", "--ckpt", str(ckpt), "--data", str(data),
                 "--out", str(report_path), *extra]) == 0
    return json.loads(report_path.read_text())


def test_training_lowers_the_loss_and_raises_triplet_accuracy(trained, tmp_path):
    losses = trained["result"]["losses"]
    assert len(losses) == STEPS and all(np.isfinite(losses))
    k = STEPS // 5
    assert np.mean(losses[-k:]) < 0.7 * np.mean(losses[:k])
    history = trained["result"]["history"]
    assert history and history[-1]["step"] == STEPS and 0.0 <= history[-1]["val_accuracy"] <= 1.0

    before = _eval(trained["out"] / "step1.pt", trained["data"], tmp_path, "--no-baseline")
    after = _eval(trained["out"] / "feenet.pt", trained["data"], tmp_path)
    n = len(load_triplets(trained["data"]))
    assert after["feenet"]["overall"]["n"] == n and after["triplets"] == n
    acc_before = before["feenet"]["overall"]["accuracy"]
    acc_after = after["feenet"]["overall"]["accuracy"]
    # chance is 1/3; 72 triplets make 0.5 about four standard deviations above it.
    # (seeds 0-3 of this set reach 0.57-1.0 after 60 steps; it runs deterministically)
    assert acc_after >= 0.5 and acc_after >= acc_before + 0.15, (acc_before, acc_after)
    assert set(after["feenet"]["per_type"]) == {"ONE_CLASS_TRIPLET", "TWO_CLASS_TRIPLET",
                                                 "THREE_CLASS_TRIPLET"}
    assert sum(c["n"] for c in after["feenet"]["per_type"].values()) == n

    # the landmark baseline ran on the same crops; the face-less crop is left out
    lm = after["landmarks"]
    assert lm["encoder"] == "landmarks-v1" or lm["encoder"].startswith("landmarks")
    # (fetch kept the 68 landmarks of every aligned face; the coffee crop has none)
    assert lm["faces_without_landmarks"] == 1 and lm["triplets_without_landmarks"] == 2
    assert lm["overall"]["n"] == n - 2
    assert after["feenet_on_landmark_triplets"]["overall"]["n"] == n - 2
    # smiling vs neutral is what lip-corner geometry measures: well above chance
    assert lm["overall"]["accuracy"] > 0.5


def test_resume_continues_from_the_checkpoint(trained, tmp_path):
    from mien.engine.faces.feenet import read_checkpoint
    from mien.training.train import train

    first = read_checkpoint(trained["out"] / "feenet.pt")
    assert first["train_state"]["step"] == STEPS and first["meta"]["steps"] == STEPS
    result = train(trained["data"], tmp_path / "resumed.pt", resume=trained["out"] / "feenet.pt",
                   steps=STEPS + 2, batch=8, val_fraction=0.1, progress=False)
    assert len(result["losses"]) == 2 and result["steps"] == STEPS + 2
    resumed = read_checkpoint(tmp_path / "resumed.pt")
    assert resumed["config"]["input_size"] == SIZE          # from the checkpoint
    assert len(resumed["meta"]["history"]) == len(first["meta"]["history"]) + 1


def test_engine_loads_the_checkpoint_and_records_it(trained):
    from mien.demo import photos
    from mien.engine.faces import EngineConfig, FaceAnalyzer
    from mien.engine.faces.feenet import FEENetEncoder

    ckpt = trained["out"] / "feenet.pt"
    analyzer = FaceAnalyzer(EngineConfig(expression="feenet", expression_model=str(ckpt)))
    digest = hashlib.sha256(ckpt.read_bytes()).hexdigest()[:12]
    assert analyzer.encoders["expression"] == f"feenet:{digest}"
    assert analyzer.encoders["expression_dim"] == 16
    faces = analyzer.analyze(photos.t1(), identity=False, keep_rejected=True)
    assert len(faces) == 6
    vectors = np.stack([f.expression for f in faces])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    direct = FEENetEncoder(ckpt).encode([f.crop for f in faces])
    np.testing.assert_allclose(vectors, direct, atol=1e-5)

    # the store records which expression encoder built it and refuses to mix
    from mien.engine.store import Store
    from mien.errors import EncoderMismatchError

    store_dir = trained["out"] / "store"
    with Store(store_dir, mode="w", encoders=analyzer.encoders):
        pass
    with Store(store_dir, mode="r") as reader:
        assert reader.encoders["expression"] == f"feenet:{digest}"
    with pytest.raises(EncoderMismatchError):
        Store(store_dir, mode="w", encoders=FaceAnalyzer(EngineConfig()).encoders)


def test_a_head_trains_from_fecs_csv_and_its_fetched_images(world, capsys):
    """`mien train head` reads FEC's own CSV with the faces `mien fec fetch` cached: the report and a
    head that loads as an encoder's head."""
    from mien.engine.faces.expression_head import load_head

    out = world["root"] / "head.npz"
    assert main(["train", "head", "--ratings", str(world["spec"].csv), "--fec-data", str(world["root"] / "data"),
                 "--folds", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    # FEC's faces get the default encoder's features, so the head applies to the stores it builds
    assert "cross-validation" in printed and "fer-au-478" in printed
    head = load_head(out)
    assert head.features_version == "fer-au-478-features-1"
    assert head.meta["triplets"] >= 10 and head.meta["trained_on"]["features"].startswith("FEC crops")
