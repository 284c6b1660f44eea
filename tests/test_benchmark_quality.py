"""benchmarks/quality.py: the FEC odd-one-out, majority, rater agreement and scoring, on
small hand-made cases whose answers are worked out by hand, and the committed material."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import quality  # noqa: E402


def test_odd_one_out_is_the_face_outside_the_closest_pair():
    # faces 1 and 2 are 0.1 apart, face 3 is far from both
    assert quality.odd_one_out([[0.0, 0.0], [0.1, 0.0], [1.0, 1.0]]) == 3
    # faces 1 and 3 closest (0.2), face 2 the odd one
    assert quality.odd_one_out([[0.0, 0.0], [0.0, 0.9], [0.2, 0.0]]) == 2
    # faces 2 and 3 closest
    assert quality.odd_one_out([[5.0, 0.0], [0.0, 1.0], [0.0, 1.1]]) == 1


def test_odd_one_out_agrees_with_the_largest_summed_distance():
    rng = np.random.default_rng(0)
    for _ in range(200):
        v = rng.normal(size=(3, 5))
        d = ((v[:, None, :] - v[None, :, :]) ** 2).sum(-1)
        assert quality.odd_one_out(v) == int(np.argmax(d.sum(1))) + 1


def test_majority():
    assert quality.majority([1, 1, 2]) == 1
    assert quality.majority([3, 3, 3]) == 3
    assert quality.majority([1, 2, 3]) is None
    assert quality.majority([2, 3]) is None


RATINGS = {
    # T1: unanimous 1; T2: 2, 2, 3; T3: all differ; T4: 3, 1, 1
    "a": {"T1": 1, "T2": 2, "T3": 1, "T4": 3},
    "b": {"T1": 1, "T2": 2, "T3": 2, "T4": 1},
    "c": {"T1": 1, "T2": 3, "T3": 3, "T4": 1},
}


def test_rater_agreement_is_each_rater_against_the_other_two():
    ids = ["T1", "T2", "T3", "T4"]
    agree = quality.rater_agreement(RATINGS, ids)
    # a: others (b, c) agree on T1 (1) and T4 (1): a says 1, 3 -> 1/2
    assert agree["a"] == {"agreement": 0.5, "n": 2}
    # b: others (a, c) agree on T1 only (1): b says 1 -> 1/1
    assert agree["b"] == {"agreement": 1.0, "n": 1}
    # c: others (a, b) agree on T1 (1) and T2 (2): c says 1, 3 -> 1/2
    assert agree["c"] == {"agreement": 0.5, "n": 2}


def test_score_by_kind_against_majority_and_unanimous():
    triplets = [
        {"id": "T1", "kind": "random", "faces": ["f0", "f1", "f2"]},
        {"id": "T2", "kind": "random", "faces": ["f0", "f1", "f3"]},
        {"id": "T3", "kind": "same_emotion", "faces": ["f1", "f2", "f3"]},
        {"id": "T4", "kind": "same_emotion", "faces": ["f0", "f2", "f3"]},
    ]
    vectors = {"toy": {"f0": np.array([0.0, 0.0]), "f1": np.array([1.0, 0.0]),
                       "f2": np.array([1.1, 0.0]), "f3": np.array([0.0, 0.3])}}
    # toy's answers: T1 -> f0 is odd (1); T2 -> f1 odd (2); T3 -> f3 odd (3); T4 -> f2 odd (2)
    report = quality.score(triplets, RATINGS, vectors)
    toy = report["encoders"]["toy"]
    assert toy["answers"] == {"T1": 1, "T2": 2, "T3": 3, "T4": 2}
    # majority: T1 1 (hit), T2 2 (hit); T3 none; T4 1 (miss)
    assert toy["random"]["majority"]["accuracy"] == 1.0 and toy["random"]["majority"]["n"] == 2
    assert toy["same_emotion"]["majority"]["n"] == 1 and toy["same_emotion"]["majority"]["hits"] == 0
    # unanimous: only T1
    assert toy["all"]["unanimous"]["n"] == 1 and toy["all"]["unanimous"]["hits"] == 1
    assert toy["mean_of_kinds"]["majority"] == 0.5
    kinds = report["material"]["kinds"]
    assert kinds["all"] == {"triplets": 4, "with_majority": 3, "unanimous": 1}


def test_wilson_interval_brackets_the_proportion():
    lo, hi = quality.wilson(40, 50)
    assert lo < 0.8 < hi and 0.66 < lo < 0.70 and 0.88 < hi < 0.90


def test_committed_material_is_consistent():
    faces, triplets = quality.load_triplets()
    assert len(triplets) == 100
    assert {t["kind"] for t in triplets} == {"random", "same_emotion"}
    uses = {}
    for t in triplets:
        assert len(set(t["faces"])) == 3
        assert (quality.DATA / t["sheet"]).is_file()
        for f in t["faces"]:
            uses[f] = uses.get(f, 0) + 1
    assert max(uses.values()) <= 4


def test_faces_load_from_their_packages():
    faces, _ = quality.load_triplets()
    lfw = faces["skimage:lfw_subset#1"]
    assert quality.source_image(lfw["source"]).shape == (25, 25, 3)
    image, box = quality.detection_view(lfw)
    assert image.shape == (400, 400, 3) and box == (100.0, 100.0, 300.0, 300.0)
    hopper = faces["matplotlib:grace_hopper.jpg#0"]
    image, box = quality.detection_view(hopper)
    assert image.shape == (600, 512, 3) and box == tuple(hopper["bbox"])


def test_bad_ratings_are_refused_without_a_traceback(tmp_path):
    ids = ["T001", "T002"]
    bad = tmp_path / "rater1.json"
    bad.write_text(json.dumps({"T001": 4, "T002": 1}))
    with pytest.raises(ValueError, match="1, 2 or 3"):
        quality.load_ratings([bad], ids)
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "quality.py"), "--set", "first",
                          "--ratings", str(bad)],
                         capture_output=True, text=True)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr and "at least 3 rater files" in run.stderr


def test_broad_labels_decide_only_two_against_one():
    faces = {"a": {"label": "smile"}, "b": {"label": "smile"}, "c": {"label": "neutral"},
             "d": {"label": "open_mouth"}}
    triplets = [{"id": "T1", "kind": "random", "faces": ["a", "c", "b"]},
                {"id": "T2", "kind": "random", "faces": ["a", "c", "d"]},
                {"id": "T3", "kind": "same_emotion", "faces": ["a", "b", "b"]}]
    assert quality.label_answers(triplets, faces) == {"T1": 2}


def test_sign_test():
    assert quality.sign_test(0, 0) == 1.0
    assert quality.sign_test(3, 3) == 1.0
    # 6 against 0: 2 * (1/2)^6
    assert quality.sign_test(6, 0) == pytest.approx(2 / 64)
    assert quality.sign_test(0, 6) == pytest.approx(2 / 64)
