"""Triplet dataset over a fetched FEC directory, with expression-preserving augmentation.

Each item is (anchor, positive, negative) = the two faces the raters found
alike, then the odd one out, as normalised float tensors, plus the triplet
type index (0 one-class, 1 two-class, 2 three-class) so the loss can use a
smaller margin for one-class triplets.

Augmentations keep the expression:
- colour: small brightness / contrast / saturation changes (no hue: skin tone
  shifts are not expression, but large ones are unrealistic too);
- geometry: small scale (±5 %), translation (±4 % of the side) and rotation
  (±5 deg) — the crops are already aligned, so these only teach tolerance to
  alignment noise and never push the mouth or brows out of the frame;
- horizontal flip, each face independently, p = 0.5. We keep it: the FEC
  raters compare expressions, and a mirrored smirk or raised brow is the same
  expression on the other side. A model that must tell left from right
  asymmetry should be trained with --no-flip.
No blur, cut-out or strong crops: they erase the fine cues (eye aperture, lip
corners) that separate the one-class triplets.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mien.engine.faces.feenet import DEFAULT_CONFIG, preprocess
from mien.training.fec import TRIPLET_TYPES, Triplet

TYPE_INDEX = {name: i for i, name in enumerate(TRIPLET_TYPES)}


def read_crop(data_dir: Path, key: str) -> np.ndarray:
    import cv2

    path = data_dir / "crops" / f"{key}.jpg"
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"crop {path} is missing or unreadable; re-run `mien fec fetch`")
    return image


def augment(image: np.ndarray, rng: np.random.Generator, flip: bool = True) -> np.ndarray:
    """One expression-preserving random variant of a BGR uint8 crop."""
    import cv2

    h, w = image.shape[:2]
    angle = rng.uniform(-5.0, 5.0)
    scale = rng.uniform(0.95, 1.05)
    tx, ty = rng.uniform(-0.04, 0.04, size=2) * (w, h)
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, scale)
    m[:, 2] += (tx, ty)
    out = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT_101)
    x = out.astype(np.float32)
    x *= rng.uniform(0.8, 1.2)                                 # brightness
    mean = x.mean()
    x = (x - mean) * rng.uniform(0.8, 1.2) + mean              # contrast
    grey = x.mean(axis=2, keepdims=True)
    x = (x - grey) * rng.uniform(0.8, 1.2) + grey              # saturation
    out = np.clip(x, 0, 255).astype(np.uint8)
    if flip and rng.random() < 0.5:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def split(triplets: list[Triplet], val_fraction: float, seed: int = 0
          ) -> tuple[list[Triplet], list[Triplet]]:
    """Deterministic train / held-out split by triplet (same on every run and resume)."""
    if val_fraction <= 0 or len(triplets) < 2:
        return list(triplets), []
    order = np.random.default_rng(seed).permutation(len(triplets))
    n_val = min(max(1, int(round(len(triplets) * val_fraction))), len(triplets) - 1)
    val_idx = set(order[:n_val].tolist())
    train = [t for i, t in enumerate(triplets) if i not in val_idx]
    val = [t for i, t in enumerate(triplets) if i in val_idx]
    return train, val


class TripletDataset:
    """torch-style Dataset (len / getitem) of (a, p, n, type) tensors."""

    def __init__(self, data_dir: str | os.PathLike, triplets: list[Triplet], *,
                 config: dict | None = None, train: bool = True, flip: bool = True,
                 seed: int = 0):
        self.data_dir = Path(data_dir)
        self.triplets = list(triplets)
        self.config = dict(DEFAULT_CONFIG, **(config or {}))
        self.train = train
        self.flip = flip
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.triplets)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch  # reseeds augmentation so epochs differ, reproducibly

    def __getitem__(self, index: int):
        import torch

        t = self.triplets[index]
        a, p, n = t.anchor_positive_negative
        crops = [read_crop(self.data_dir, f.key) for f in (a, p, n)]
        if self.train:
            rng = np.random.default_rng((self.seed, self.epoch, index))
            crops = [augment(c, rng, flip=self.flip) for c in crops]
        x = torch.from_numpy(preprocess(crops, self.config))
        return x[0], x[1], x[2], TYPE_INDEX[t.type]
