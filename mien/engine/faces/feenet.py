"""FEENet: the learned 16-d expression encoder (FEENet / FaceQA paper).

    224x224 aligned face (RGB, ImageNet-normalised)
      -> timm efficientnet_b0, pooled features (1280)
      -> Linear 1280->512 -> ReLU -> Linear 512->16
      -> L2 normalise

The ReLU between the two fully connected layers is our choice: the paper names
only "FC 1280->512 -> FC 512->16"; without a non-linearity the two layers
collapse into one rank-16 linear map, so the 512 hidden units would add
parameters but no capacity. 4,671,628 parameters in total (backbone 4,007,548).

Weights are never downloaded: a model is built from scratch or from a backbone
state-dict file the user gives, and trained with `mien train feenet`.
Checkpoints carry their config (architecture, input size, normalisation) so
inference reproduces training exactly. torch/timm are imported lazily so that
importing mien.engine.faces stays cheap when FEENet is not used.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from mien.errors import BadInputError, ModelNotFoundError

FORMAT = "mien-feenet"
FORMAT_VERSION = 1

DEFAULT_CONFIG: dict[str, Any] = {
    "arch": "feenet-v1",
    "backbone": "efficientnet_b0",
    "feature_dim": 1280,
    "hidden_dim": 512,
    "activation": "relu",
    "embed_dim": 16,
    "input_size": 224,          # the aligned expression crop; any size works (global pooling)
    "color": "RGB",             # crops arrive BGR (OpenCV) and are flipped to RGB
    "mean": [0.485, 0.456, 0.406],   # ImageNet statistics: what pretrained backbones expect
    "std": [0.229, 0.224, 0.225],
}

HOW_TO_GET = (
    "train one with `mien fec fetch faceexp-comparison-data-train-public.csv --out DATA` "
    "then `mien train feenet --data DATA --out CKPT` (see README, 'Training FEENet')"
)


def _torch():
    import torch

    return torch


def _make_feenet_class():
    import timm
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class FEENet(nn.Module):
        """EfficientNet-B0 -> FC 1280->512 -> ReLU -> FC 512->16 -> L2."""

        def __init__(self, config: dict | None = None):
            super().__init__()
            cfg = dict(DEFAULT_CONFIG)
            cfg.update(config or {})
            self.config = cfg
            self.backbone = timm.create_model(cfg["backbone"], pretrained=False, num_classes=0)
            if self.backbone.num_features != cfg["feature_dim"]:
                raise BadInputError(
                    f"backbone {cfg['backbone']} gives {self.backbone.num_features}-d features, "
                    f"config says {cfg['feature_dim']}"
                )
            self.fc1 = nn.Linear(cfg["feature_dim"], cfg["hidden_dim"])
            self.act = nn.ReLU(inplace=True)
            self.fc2 = nn.Linear(cfg["hidden_dim"], cfg["embed_dim"])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            z = self.fc2(self.act(self.fc1(self.backbone(x))))
            return F.normalize(z, p=2.0, dim=1, eps=1e-12)

        def num_parameters(self) -> int:
            return sum(p.numel() for p in self.parameters())

    FEENet.__module__ = __name__
    FEENet.__qualname__ = "FEENet"
    return FEENet


_FEENET_CLASS = None


def __getattr__(name: str):
    # `from mien.engine.faces.feenet import FEENet` builds the nn.Module subclass on
    # first use, so `import mien.engine.faces.feenet` never pays for torch.
    global _FEENET_CLASS
    if name == "FEENet":
        if _FEENET_CLASS is None:
            _FEENET_CLASS = _make_feenet_class()
        return _FEENET_CLASS
    raise AttributeError(name)


def _feenet_class():
    return __getattr__("FEENet")


def build_feenet(backbone_path: str | os.PathLike | None = None, **config):
    """A fresh FEENet. `backbone_path`: an efficientnet_b0 state-dict file (never downloaded).

    Accepts a plain state dict, or a dict holding one under "state_dict"/"model";
    "module."/"backbone." prefixes and the ImageNet classifier are dropped.
    """
    model = _feenet_class()(config)
    if backbone_path is not None:
        path = Path(backbone_path)
        if not path.is_file():
            raise ModelNotFoundError(
                f"backbone file {path} does not exist; give an efficientnet_b0 state dict "
                "(e.g. timm's efficientnet_b0 weights saved with torch.save(model.state_dict()))"
            )
        torch = _torch()
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        for key in ("state_dict", "model"):
            if isinstance(state, dict) and isinstance(state.get(key), dict):
                state = state[key]
        cleaned = {}
        for key, value in state.items():
            for prefix in ("module.", "backbone."):
                if key.startswith(prefix):
                    key = key[len(prefix):]
            if key.startswith("classifier."):
                continue  # ImageNet head; FEENet has its own
            cleaned[key] = value
        missing, unexpected = model.backbone.load_state_dict(cleaned, strict=False)
        if missing or unexpected:
            raise BadInputError(
                f"backbone file {path} does not match {model.config['backbone']}: "
                f"{len(missing)} missing keys (e.g. {missing[:3]}), "
                f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})"
            )
        model.config["backbone_init"] = str(path)
    return model


def save_checkpoint(model, path: str | os.PathLike, *, train_state: dict | None = None,
                    **meta) -> Path:
    """Write state_dict + config + meta atomically (temp file in the same dir, then rename).

    `train_state` (optimiser/scheduler/epoch) is kept apart from `meta` so that
    `mien train feenet --resume` can continue; inference ignores it.
    """
    torch = _torch()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": dict(model.config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": meta,
        "train_state": train_state,
    }
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The raw checkpoint dict (config, state_dict, meta, train_state)."""
    path = Path(path)
    if not path.is_file():
        raise ModelNotFoundError(f"FEENet checkpoint {path} does not exist; {HOW_TO_GET}")
    torch = _torch()
    try:
        payload = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated or foreign file
        raise BadInputError(f"{path} is not a readable FEENet checkpoint: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise BadInputError(f"{path} is not a FEENet checkpoint (no '{FORMAT}' format tag)")
    return payload


def load_checkpoint(path: str | os.PathLike, device: str = "cpu"):
    """A FEENet with the checkpoint's weights, in eval mode, on `device`."""
    payload = read_checkpoint(path)
    model = _feenet_class()(payload["config"])
    model.load_state_dict(payload["state_dict"], strict=True)
    model.eval()
    return model.to(resolve_device(device))


def resolve_device(device: str = "cpu"):
    torch = _torch()
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise BadInputError(f"device {device!r} asked for but torch sees no CUDA GPU")
    return torch.device(device)


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def preprocess(crops_bgr: list[np.ndarray], config: dict) -> np.ndarray:
    """BGR uint8 crops -> (N, 3, S, S) float32, RGB, normalised as in `config`.

    Crops of another size than the model's input are resized (INTER_AREA), so a
    model trained at a small input size still takes the engine's 224 crops.
    """
    import cv2

    size = int(config["input_size"])
    mean = np.asarray(config["mean"], np.float32).reshape(1, 1, 3)
    std = np.asarray(config["std"], np.float32).reshape(1, 1, 3)
    out = np.empty((len(crops_bgr), 3, size, size), np.float32)
    for i, crop in enumerate(crops_bgr):
        if not isinstance(crop, np.ndarray) or crop.ndim != 3 or crop.shape[2] != 3:
            shape = getattr(crop, "shape", None)
            raise BadInputError(f"FEENet expects HxWx3 BGR crops, got shape {shape}")
        if crop.shape[:2] != (size, size):
            crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
        rgb = crop[:, :, ::-1] if config.get("color", "RGB") == "RGB" else crop
        x = (rgb.astype(np.float32) / 255.0 - mean) / std
        out[i] = x.transpose(2, 0, 1)
    return out


class FEENetEncoder:
    """Batched inference: 224x224 aligned BGR crops -> (N, 16) float32, unit norm."""

    def __init__(self, checkpoint_path: str | os.PathLike, device: str = "cpu",
                 batch_size: int = 32):
        self.path = Path(checkpoint_path)
        self.device = resolve_device(device)
        self.model = load_checkpoint(self.path, device=str(self.device))
        self.config = dict(self.model.config)
        self.dim = int(self.config["embed_dim"])
        self.batch_size = max(1, int(batch_size))
        # The store refuses to mix encoders: the name pins these exact weights.
        self.sha256 = file_sha256(self.path)
        self.name = f"feenet:{self.sha256[:12]}"

    def encode(self, crops_bgr_224: list[np.ndarray]) -> np.ndarray:
        torch = _torch()
        crops = list(crops_bgr_224)
        out = np.empty((len(crops), self.dim), np.float32)
        with torch.inference_mode():
            for start in range(0, len(crops), self.batch_size):
                chunk = crops[start:start + self.batch_size]
                x = torch.from_numpy(preprocess(chunk, self.config)).to(self.device)
                out[start:start + len(chunk)] = self.model(x).float().cpu().numpy()
        return out

    def __repr__(self) -> str:
        return f"FEENetEncoder({self.name}, device={self.device}, batch={self.batch_size})"
