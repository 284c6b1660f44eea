"""FEENet model, checkpoints, FEC parsing, loss and augmentation (no network, small inputs)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mien.engine.faces import feenet as fn  # noqa: E402
from mien.errors import BadInputError, ModelNotFoundError  # noqa: E402
from mien.training import fec  # noqa: E402


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    net = fn.build_feenet(input_size=64)
    # A fresh net in eval mode uses BatchNorm's initial running stats (0, 1), which
    # squash every input to nearly the same vector; set them from one batch of real
    # crops, as training would, so the outputs depend on the input.
    from mien.demo import photos
    import cv2

    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average: one batch sets the stats exactly
    crops = [cv2.resize(img, (64, 64)) for img in (photos.astronaut(), photos.grace_hopper(), photos.t1())]
    with torch.no_grad():
        net.train()(torch.from_numpy(fn.preprocess(crops, net.config)))
    return net.eval()


def test_parameter_count_is_the_papers_4_7_million(model):
    # efficientnet_b0 pooled trunk 4,007,548 + FC 1280->512 (655,872) + FC 512->16 (8,208)
    assert model.num_parameters() == 4_671_628
    assert sum(p.numel() for p in model.backbone.parameters()) == 4_007_548
    assert model.config["embed_dim"] == 16 and model.config["feature_dim"] == 1280


def test_output_is_n_by_16_unit_vectors(model):
    x = torch.randn(5, 3, 64, 64)
    with torch.inference_mode():
        y = model(x)
    assert y.shape == (5, 16)
    np.testing.assert_allclose(y.norm(dim=1).numpy(), 1.0, atol=1e-5)
    # not a constant map: different inputs, different embeddings
    assert float((y[0] - y[1]).abs().max()) > 1e-4


def test_checkpoint_round_trip_reproduces_outputs_exactly(model, tmp_path):
    path = fn.save_checkpoint(model, tmp_path / "sub" / "f.pt", note="unit", epochs_done=0)
    assert not list(path.parent.glob("*.tmp")), "atomic write leaves no temp file"
    loaded = fn.load_checkpoint(path)
    assert loaded.config == model.config and not loaded.training
    x = torch.randn(3, 3, 64, 64)
    with torch.inference_mode():
        assert torch.equal(model(x), loaded(x))
    assert fn.read_checkpoint(path)["meta"] == {"note": "unit", "epochs_done": 0}

    # the encoder: BGR uint8 crops of any size -> resized to the model input, RGB, normalised
    rng = np.random.default_rng(1)
    crops = [rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for _ in range(5)]
    enc = fn.FEENetEncoder(path, batch_size=2)  # 3 batches: 2 + 2 + 1
    vecs = enc.encode(crops)
    assert vecs.shape == (5, 16) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    with torch.inference_mode():
        direct = model(torch.from_numpy(fn.preprocess(crops, model.config))).numpy()
    np.testing.assert_allclose(vecs, direct, atol=1e-5)  # batch size changes float sums
    # BGR->RGB matters: swapping channels changes the embedding
    swapped = enc.encode([np.ascontiguousarray(c[:, :, ::-1]) for c in crops[:1]])
    assert float(np.abs(swapped[0] - vecs[0]).max()) > 1e-5
    assert enc.name == "feenet:" + hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    assert enc.encode([]).shape == (0, 16)
    with pytest.raises(BadInputError):
        enc.encode([np.zeros((224, 224), np.uint8)])


def test_missing_checkpoint_names_the_path_and_how_to_get_one(tmp_path):
    missing = tmp_path / "nowhere" / "feenet.pt"
    for call in (lambda: fn.load_checkpoint(missing), lambda: fn.FEENetEncoder(missing)):
        with pytest.raises(ModelNotFoundError) as info:
            call()
        assert str(missing) in str(info.value)
        assert "mien train feenet" in str(info.value)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(BadInputError):
        fn.load_checkpoint(junk)


def test_backbone_file_initialises_the_trunk(tmp_path):
    import timm

    torch.manual_seed(3)
    imagenet_like = timm.create_model("efficientnet_b0", pretrained=False)  # with classifier
    path = tmp_path / "b0.pth"
    torch.save({"state_dict": imagenet_like.state_dict()}, path)
    model = fn.build_feenet(path)
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, imagenet_like.state_dict()[key]), key
    assert model.config["backbone_init"] == str(path)
    with pytest.raises(ModelNotFoundError, match="nope.pth"):
        fn.build_feenet(tmp_path / "nope.pth")
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(BadInputError, match="does not match"):
        fn.build_feenet(tmp_path / "wrong.pth")


def _line(odd_votes: list[int], kind: str = "TWO_CLASS_TRIPLET") -> str:
    faces = ",".join(f"http://h/{i}.jpg,0.1,0.5,0.2,0.6" for i in range(3))
    votes = ",".join(f"r{i},{v}" for i, v in enumerate(odd_votes))
    return f"{faces},{kind},{votes}"


def test_fec_rows_become_majority_labelled_triplets():
    text = "\n".join([
        _line([3, 3, 3, 1, 3, 2]),                      # face 3 odd, 4/6
        _line([1, 1, 1, 1, 1, 1], "ONE_CLASS_TRIPLET"),  # face 1 odd, unanimous
        _line([1, 1, 1, 2, 2, 2]),                      # tie: no label
        _line([2, 2, 2], "THREE_CLASS_TRIPLET"),        # fewer raters still parse
        "http://h/x.jpg,0.1,0.5,0.2,0.6,only,one,face",  # malformed
        _line([1, 2, 4, 1, 1, 1]),                      # annotation 4: malformed
        "",
    ])
    triplets, stats = fec.parse_text(text)
    assert (stats.rows, stats.triplets, stats.no_majority, stats.malformed) == (6, 3, 1, 2)
    first, second, third = triplets
    assert first.odd == 2 and first.votes == (1, 1, 4) and first.agreement == pytest.approx(4 / 6)
    a, p, n = first.anchor_positive_negative
    assert n is first.faces[2] and {a.url, p.url} == {"http://h/0.jpg", "http://h/1.jpg"}
    assert second.odd == 0 and second.agreement == 1.0 and second.type == "ONE_CLASS_TRIPLET"
    assert third.type == "THREE_CLASS_TRIPLET" and third.odd == 1
    assert fec.Triplet.from_json(first.to_json()) == first
    assert first.faces[0].key != first.faces[1].key
    assert first.faces[0].pixel_box(200, 100) == (20, 20, 100, 60)


def test_predict_odd_is_the_face_outside_the_closest_pair():
    assert fec.predict_odd(0.1, 1.0, 1.2) == 2   # 0 and 1 alike
    assert fec.predict_odd(1.0, 0.1, 1.2) == 1   # 0 and 2 alike
    assert fec.predict_odd(1.0, 1.2, 0.1) == 0   # 1 and 2 alike


def test_symmetric_triplet_loss_matches_the_formula():
    from mien.training.train import triplet_loss

    a = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    p = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    n = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    # row 0: d(a,p)=2, d(a,n)=2, d(p,n)=0 -> (2-2+.2) + (2-0+.2) = 2.4 ; row 1: all satisfied -> 0
    loss, correct = triplet_loss(a, p, n, 0.2)
    np.testing.assert_allclose(loss.numpy(), [2.4, 0.0], atol=1e-6)
    assert correct.tolist() == [False, True]
    loss, _ = triplet_loss(a, p, n, torch.tensor([0.1, 0.2]))
    np.testing.assert_allclose(loss.numpy(), [2.2, 0.0], atol=1e-6)


def test_augmentation_is_mild_and_reproducible():
    from mien.demo import photos
    from mien.training.dataset import augment

    import cv2

    crop = cv2.resize(photos.astronaut()[40:220, 130:310], (224, 224))
    one = augment(crop, np.random.default_rng(7))
    again = augment(crop, np.random.default_rng(7))
    other = augment(crop, np.random.default_rng(8), flip=False)
    assert one.shape == crop.shape and one.dtype == np.uint8
    assert np.array_equal(one, again)
    assert not np.array_equal(one, other)
    # mild: still far closer to the original (or its mirror) than to an unrelated crop
    def diff(x, y):
        return float(np.abs(x.astype(np.float32) - y.astype(np.float32)).mean())
    near = min(diff(other, crop), diff(other, crop[:, ::-1]))
    assert near < 0.5 * diff(crop, np.ascontiguousarray(np.roll(crop, 112, axis=0)))
