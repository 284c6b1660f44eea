"""Identity embeddings (dlib default, ArcFace ONNX path), model errors, FEENet wiring."""

import subprocess
import sys

import cv2
import numpy as np
import pytest

from faces_support import T1_CENTRES, analyzer, find, sqdist, t1
from mien.demo import photos
from mien.engine.faces import EngineConfig, FaceAnalyzer
from mien.errors import ModelNotFoundError


@pytest.fixture(scope="module")
def an():
    return analyzer()


def test_same_face_under_changes_is_closer_than_any_two_people(an):
    image = t1()
    faces = an.analyze(image, keep_rejected=True)
    ids = np.array([f.identity for f in faces])
    assert ids.shape == (6, 128)
    assert np.allclose(np.linalg.norm(ids, axis=1), 1, atol=1e-5)
    d = ((ids[:, None] - ids[None]) ** 2).sum(-1)
    different_people = d[~np.eye(6, dtype=bool)].min()

    w = image.shape[1]
    variants = {
        "mirror": (np.ascontiguousarray(image[:, ::-1]), lambda x, y: (w - x, y)),
        "scale": (cv2.resize(image, None, fx=0.7, fy=0.7, interpolation=cv2.INTER_AREA),
                  lambda x, y: (0.7 * x, 0.7 * y)),
        "brightness": (cv2.convertScaleAbs(image, alpha=1.3, beta=25), lambda x, y: (x, y)),
    }
    worst = 0.0
    for kind, (img, where) in variants.items():
        changed = an.analyze(img, keep_rejected=True)
        for name, xy in T1_CENTRES.items():
            same = sqdist(find(changed, where(*xy)).identity, find(faces, xy).identity)
            worst = max(worst, same)
    assert worst < different_people


def export_tiny_arcface(path):
    """A small ArcFace-shaped network (1x3x112x112 -> 512) exported to ONNX."""
    import torch

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 16, 8, stride=8)
            self.fc = torch.nn.Linear(16 * 14 * 14, 512)

        def forward(self, x):
            return self.fc(torch.relu(self.conv(x)).flatten(1))

    torch.manual_seed(0)
    model = Tiny().eval()
    torch.onnx.export(model, torch.zeros(1, 3, 112, 112), str(path), input_names=["data"],
                      output_names=["fc1"], dynamic_axes={"data": {0: "N"}, "fc1": {0: "N"}},
                      dynamo=False)
    return model


def test_arcface_onnx_runs_through_the_identity_path(tmp_path):
    import torch

    path = tmp_path / "tiny_arcface.onnx"
    model = export_tiny_arcface(path)
    arc = FaceAnalyzer(EngineConfig(identity="arcface", identity_model=str(path)))
    assert arc.encoders["identity"] == "arcface:tiny_arcface.onnx"
    assert arc.encoders["identity_dim"] == 512
    image = photos.grace_hopper()
    faces = arc.analyze(image)
    assert faces[0].identity.shape == (512,)
    assert abs(np.linalg.norm(faces[0].identity) - 1) < 1e-5
    # the ONNX path computes what the torch model computes on the 112 template crop
    from mien.engine.faces.align import arcface_crop

    crop = arcface_crop(image, faces[0].landmarks5)
    x = torch.from_numpy(((crop[:, :, ::-1].astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1).copy())
    with torch.no_grad():
        ref = model(x[None])[0].numpy()
    ref /= np.linalg.norm(ref)
    assert np.allclose(faces[0].identity, ref, atol=1e-3)


@pytest.mark.parametrize("overrides,kind", [
    ({"identity": "arcface", "identity_model": "/nonexistent/w600k_r50.onnx"}, "arcface"),
    ({"detector": "insightface", "detector_model": "/nonexistent/buffalo_l"}, "insightface"),
    ({"expression": "feenet", "expression_model": "/nonexistent/feenet.pt"}, "feenet"),
    ({"identity": "arcface"}, "arcface"),
])
def test_missing_model_file_is_a_clear_error(overrides, kind):
    with pytest.raises(ModelNotFoundError) as err:
        FaceAnalyzer(EngineConfig(**overrides))
    msg = str(err.value)
    path = next((v for k, v in overrides.items() if k.endswith("_model")), None)
    assert (path in msg) if path else ("no path configured" in msg)
    assert ("insightface" in msg) if kind != "feenet" else ("mien train" in msg)


def test_default_pipeline_never_imports_torch():
    code = ("import sys; from mien.engine.faces import FaceAnalyzer, EngineConfig; "
            "from mien.demo import photos; FaceAnalyzer(EngineConfig()).analyze(photos.grace_hopper()); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_feenet_checkpoint_runs_through_the_analyzer(tmp_path):
    feenet = pytest.importorskip("mien.engine.faces.feenet")
    from mien.engine.faces.modelfiles import file_sha256

    path = tmp_path / "feenet.pt"
    feenet.save_checkpoint(feenet.build_feenet(), path)
    an = FaceAnalyzer(EngineConfig(expression="feenet", expression_model=str(path)))
    assert an.encoders["expression"] == "feenet:" + file_sha256(str(path))[:12]
    assert an.encoders["expression_dim"] == 16
    batch = an.analyze_batch([photos.grace_hopper(), photos.astronaut()], identity=False)
    vecs = [f.expression for faces in batch for f in faces]
    assert len(vecs) == 2 and all(v.shape == (16,) and abs(np.linalg.norm(v) - 1) < 1e-4 for v in vecs)
    # batched and single encodes agree
    single = an.analyze(photos.astronaut(), identity=False)[0].expression
    assert np.allclose(single, vecs[1], atol=1e-4)
