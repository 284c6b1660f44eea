"""The data engine: triplets of a store's faces proposed for rating, answers kept crash-safe."""

from __future__ import annotations

import signal
from pathlib import Path
import subprocess
import sys
import time

import numpy as np
import pytest

from indexer_support import copy_photo, env_for_subprocess, small_photo


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    from mien.demo.videos import write_clip
    from mien.indexer import IndexOptions, index_paths

    root = tmp_path_factory.mktemp("rate")
    archive = root / "archive"
    for name in ("obama", "obama2", "biden", "grace_hopper", "astronaut"):
        small_photo(name, archive / f"{name}.jpg")
    copy_photo("t1", archive / "t1.jpg")
    write_clip(archive / "moods.mp4", ["obama2"], fps=10, seconds=4.0, size=(640, 360))
    index_paths([str(archive)], str(root / "store"), IndexOptions(workers=1))
    return root / "store"


def test_proposals_follow_their_mode(store_dir, tmp_path):
    from mien.engine.faces import expression_features as xf
    from mien.engine.store import Store
    from mien.training.fec import TRIPLET_TYPES
    from mien.training.rating import TripletSampler

    with Store(store_dir, mode="r") as store:
        sampler = TripletSampler(store, tmp_path / "r.csv", seed=1)
        persons = dict(zip(store.face_table()["face_id"], store.face_table()["person_id"]))
        for mode in ("random", "one-class", "active"):
            for _ in range(5):
                p = sampler.propose(mode)
                assert len(set(p.face_ids)) == 3 and p.type in TRIPLET_TYPES and p.mode == mode
                who = [persons[i] for i in p.face_ids]
                # one person's three faces, or three people's: never two and one
                assert len(set(who)) in (1, 3) or -1 in who
                if mode == "one-class":
                    feats, _ = store.features(list(p.face_ids))
                    assert len(set(np.argmax(xf.part(feats, "log_probs"), axis=1))) == 1
                    assert p.type == "ONE_CLASS_TRIPLET"


def test_mien_rate_records_answers_the_store_can_train_on(store_dir, tmp_path):
    import cv2

    from mien.engine.store import Store
    from mien.training.rated import read_rated, table_from_store

    ratings, picture = tmp_path / "r.csv", tmp_path / "t.png"
    cmd = [sys.executable, "-m", "mien", "rate", "--store", str(store_dir), "--rater", "ann", "--ratings",
           str(ratings), "--picture", str(picture), "--count", "4", "--seed", "3"]
    done = subprocess.run(cmd, input="1\n0\nhello\n2\n3\n", capture_output=True, text=True, timeout=120,
                          env=env_for_subprocess())
    assert done.returncode == 0, done.stderr
    assert "answer 1, 2 or 3" in done.stdout and "3 answers written" in done.stdout
    assert "most unlike the other two" in done.stdout
    image = cv2.imread(str(picture))
    assert image is not None and image.shape[1] > 2.5 * image.shape[0] * 0.8
    triplets, stats = read_rated([ratings])
    assert stats.malformed == 0 and len(triplets) == 3
    assert [t.answers[0] for t in triplets] == [("ann", 1), ("ann", 2), ("ann", 3)]
    with Store(store_dir, mode="r") as store:
        table, missing = table_from_store(store, triplets)
    assert missing == 0 and len(table.keys) == len({f.key for t in triplets for f in t.faces})
    # what ann answered is not asked of her again
    from mien.training.rating import TripletSampler

    with Store(store_dir, mode="r") as store:
        sampler = TripletSampler(store, ratings)
        answered = sampler.answered_by("ann")
        assert len(answered) == 3 and sampler.answered_by("bob") == set()
        for _ in range(10):
            assert frozenset(sampler.propose("random", "ann").face_ids) not in answered


def test_a_killed_rating_session_keeps_its_answers(store_dir, tmp_path):
    from mien.training.rated import read_rated

    ratings = tmp_path / "r.csv"
    cmd = [sys.executable, "-m", "mien", "rate", "--store", str(store_dir), "--rater", "kim", "--ratings",
           str(ratings), "--picture", str(tmp_path / "t.png"), "--count", "10", "--seed", "5"]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env=env_for_subprocess())
    for answer in ("2", "1"):
        proc.stdin.write(answer + "\n")
        proc.stdin.flush()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if ratings.exists() and ratings.read_text().count("\n") == 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    triplets, stats = read_rated([ratings])
    assert stats.malformed == 0 and [t.answers for t in triplets] == [[("kim", 2)], [("kim", 1)]]


def test_a_face_from_a_file_whose_name_is_not_utf8_is_rated_and_found_again(tmp_path):
    import os

    from mien.engine.store import Store
    from mien.indexer import IndexOptions, index_paths
    from mien.training.rated import read_rated, table_from_store
    from mien.training.rating import TripletSampler

    archive = tmp_path / "a"
    small_photo("obama", archive / "obama.jpg")
    copy_photo("t1", archive / "t1.jpg")
    latin1 = os.path.join(os.fsencode(archive), b"b\xe9t\xe9.jpg")
    small_photo("biden", Path(os.fsdecode(latin1)))
    index_paths([str(archive)], str(tmp_path / "s"), IndexOptions(workers=1))
    with Store(tmp_path / "s", mode="r") as store:
        faces = [(f.source_uri, f.face_id) for s in store.list_sources() for f in store.faces_of_source(s.uri)]
        odd = next(i for u, i in faces if u == os.fsdecode(latin1))
        others = [i for u, i in faces if u.endswith("t1.jpg")][:2]
        sampler = TripletSampler(store, tmp_path / "r.csv")
        assert sampler.answer((odd, *others), "TWO_CLASS_TRIPLET", "ann", 1)
        triplets, stats = read_rated([tmp_path / "r.csv"])
        assert stats.malformed == 0 and "b\\xe9t\\xe9.jpg" in triplets[0].faces[0].url
        table, missing = table_from_store(store, triplets)
    assert missing == 0 and len(table.keys) == 3
