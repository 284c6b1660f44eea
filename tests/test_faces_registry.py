"""A new model is one module plus one registry row: nothing else in mien changes.

MouthShape below stands for that module: a real (if crude) expression encoder, built from
the 5 points every detector gives. The test adds its row to registry.MODELS, selects it by
name through EngineConfig, and runs FaceAnalyzer on a real photo; the store's engine record
and the legacy-name lookups take it as they take the built-in models.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from faces_support import T1_CENTRES, find, t1
from mien.engine.faces import EngineConfig, FaceAnalyzer, registry
from mien.engine.faces.engine_record import encoded, matching_store


class MouthShape:
    """Mouth width and eye-to-mouth height, in eye distances, plus a bias: 3 values, unit norm."""

    name = "mouth-shape-v1"
    dim = 3
    batches_faces = True    # it reads the faces' points only: every face of a batch at once
    reads_crop = False

    def encode_faces(self, faces) -> None:
        for face in faces:
            left_eye, right_eye, _, left_mouth, right_mouth = np.asarray(face.landmarks5, np.float64)
            iod = np.linalg.norm(right_eye - left_eye)
            width = np.linalg.norm(right_mouth - left_mouth) / iod
            height = np.linalg.norm((left_mouth + right_mouth) / 2 - (left_eye + right_eye) / 2) / iod
            v = np.array([width, height, 1.0])
            face.expression = (v / np.linalg.norm(v)).astype(np.float32)
            face.expression_components = {"mouth_width": float(width), "eye_mouth_height": float(height)}


ROW = registry.Model("expression", "mouth-shape", lambda cfg, threads: MouthShape(),
                     stored_names=(MouthShape.name,), summary="mouth width and height from the 5 points")


@pytest.fixture
def mouth_shape(monkeypatch):
    monkeypatch.setitem(registry.MODELS, ROW.key, ROW)
    return ROW


def test_a_model_added_as_one_row_runs_through_the_analyzer(mouth_shape):
    assert "mouth-shape" in registry.names("expression")
    an = FaceAnalyzer(EngineConfig(expression="mouth-shape"))
    assert an.encoders["expression"] == "mouth-shape-v1" and an.encoders["expression_dim"] == 3
    faces = an.analyze(t1())
    assert len(faces) >= 5
    for face in faces:
        assert face.expression.shape == (3,) and abs(float(np.linalg.norm(face.expression)) - 1) < 1e-6
        assert face.identity.shape == (128,)   # the other stages are the default ones
    # the laughing man opens his mouth wider than the neutral woman on the left
    laughing, neutral = (find(faces, T1_CENTRES[k]) for k in ("laughing_man", "woman_left"))
    assert laughing.expression_components["mouth_width"] > neutral.expression_components["mouth_width"]
    # a store records it like any built-in model, and a store older than records finds it by name
    assert json.loads(encoded(an.config))["expression"] == "mouth-shape"
    legacy = {"detector": an.encoders["detector"], "expression": "mouth-shape-v1"}
    assert matching_store(EngineConfig(expression="landmarks"), legacy).expression == "mouth-shape"


def test_the_mien_command_offers_a_model_added_as_one_row(mouth_shape, capsys):
    from mien.cli import build_parser

    args = build_parser().parse_args(["index", "/archive", "--store", "/s", "--expression", "mouth-shape"])
    assert args.expression == "mouth-shape"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["index", "--help"])
    # whitespace dropped: argparse may wrap the help at any space or hyphen
    assert "mouth-shape(mouthwidthandheightfromthe5points)" in "".join(capsys.readouterr().out.split())


def test_a_model_lacking_a_member_of_its_protocol_is_refused(monkeypatch):
    class NoFlags:
        name, dim = "no-flags", 3

        def encode_faces(self, faces) -> None:
            pass

    row = registry.Model("expression", "no-flags", lambda cfg, threads: NoFlags())
    monkeypatch.setitem(registry.MODELS, row.key, row)
    with pytest.raises(TypeError, match="ExpressionEncoder"):
        FaceAnalyzer(EngineConfig(expression="no-flags"))


def test_every_row_builds_what_its_protocol_declares():
    """The capability flags the analyzer and the index worker read, on the default models."""
    an = FaceAnalyzer(EngineConfig())
    assert an.detector.follows and not an.detector.refinds and an.detector.mesher is not None
    assert not an.expression_encoder.batches_faces and not an.expression_encoder.reads_crop
    dlib = registry.build("detector", EngineConfig(detector="dlib"))
    assert dlib.refinds and not dlib.follows and dlib.mesher is None
    assert registry.names("detector") == ("mediapipe", "dlib", "insightface")
    assert registry.names("identity") == ("dlib5", "dlib", "facenet", "arcface")
    assert registry.names("expression") == ("fer-au-478", "fer-au", "fer-au-head", "landmarks", "feenet")
