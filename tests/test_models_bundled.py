"""The bundled model files (`mien models fetch`): pinned by hash, found, or a clear error."""

import shutil

import pytest

from mien.engine.faces import bundled
from mien.errors import ModelNotFoundError


def test_every_bundled_file_was_fetched_and_matches_its_pinned_hash():
    assert bundled.verify() == {name: "ok" for name in [*bundled.FILES, *bundled.CONVERTED]}


def test_a_changed_file_is_a_hash_mismatch_and_a_missing_one_names_the_fetch_command(tmp_path, monkeypatch):
    for name in bundled.FILES:
        shutil.copy(bundled.bundled_path(name), tmp_path / name)
    monkeypatch.setenv("MIEN_MODEL_DIR", str(tmp_path))
    with open(tmp_path / "face_landmark.tflite", "r+b") as fh:   # one flipped byte
        first = fh.read(1)
        fh.seek(0)
        fh.write(bytes([first[0] ^ 0xFF]))
    (tmp_path / "emotion_model.hdf5").unlink()
    status = bundled.verify()
    assert status["face_landmark.tflite"] == "hash mismatch"
    assert status["emotion_model.hdf5"] == "missing"
    assert status["face_detection_full_range_sparse.tflite"] == "ok"
    with pytest.raises(ModelNotFoundError, match="mien models fetch"):
        bundled.bundled_path("emotion_model.hdf5")
