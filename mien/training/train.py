"""`mien train feenet`: FEENet on FEC triplets with the symmetric triplet loss.

    L = max(0, d(a,p) - d(a,n) + m) + max(0, d(a,p) - d(p,n) + m)

d = squared L2 between unit vectors (so 0..4), m = 0.2 (optionally a smaller
margin for one-class triplets, whose faces differ only subtly).

Optimiser: AdamW (lr 1e-3, weight decay 1e-4), linear warm-up over the first
5 % of steps (at most 500), then cosine decay to 1 % of the peak. From-scratch
EfficientNet-B0 trains stably with Adam-family optimisers at this lr; with a
pretrained backbone (--backbone) a lower lr (3e-4) is the better choice.
A batch of B triplets runs as one forward pass of 3B images, so BatchNorm sees
all three faces together. On CUDA the forward runs in float16 autocast.

The checkpoint at --out is rewritten atomically after every epoch (and when
--steps stops early) with the optimiser and scheduler state, so --resume
continues from the last finished epoch.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path

import numpy as np

from mien.errors import BadInputError

log = logging.getLogger(__name__)


def triplet_loss(a, p, n, margin):
    """Symmetric triplet loss per triplet, and whether each triplet is already right.

    `margin` is a float or a per-triplet tensor.
    """
    import torch

    d_ap = (a - p).pow(2).sum(1)
    d_an = (a - n).pow(2).sum(1)
    d_pn = (p - n).pow(2).sum(1)
    loss = torch.relu(d_ap - d_an + margin) + torch.relu(d_ap - d_pn + margin)
    correct = (d_ap < d_an) & (d_ap < d_pn)
    return loss, correct


def embed_batches(model, crops_iter, device, autocast: bool = False):
    """Run `model` in eval mode over batches of preprocessed (N,3,S,S) arrays."""
    import torch

    was_training = model.training
    model.eval()
    out = []
    with torch.inference_mode():
        for x in crops_iter:
            x = torch.as_tensor(x).to(device)
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=autocast):
                out.append(model(x).float().cpu().numpy())
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, model.config["embed_dim"]), np.float32)


def heldout_accuracy(model, data_dir: Path, triplets, device, batch: int = 64,
                     autocast: bool = False) -> float:
    """Share of triplets whose odd one out the model predicts (eval mode, no augmentation)."""
    from mien.engine.faces.feenet import preprocess
    from mien.training.dataset import read_crop
    from mien.training.evaluate import triplet_accuracy

    if not triplets:
        return float("nan")
    keys = sorted({f.key for t in triplets for f in t.faces})

    def batches():
        for i in range(0, len(keys), batch):
            yield preprocess([read_crop(data_dir, k) for k in keys[i:i + batch]], model.config)

    vectors = embed_batches(model, batches(), device, autocast)
    result = triplet_accuracy(triplets, dict(zip(keys, vectors)))
    return result["overall"]["accuracy"]


def recalibrate_batchnorm(model, loader, device, batches: int) -> int:
    """Re-estimate BatchNorm running statistics as exact averages over `batches` batches.

    During training BN keeps an exponential average (momentum 0.1) of batch
    statistics that lags behind the weights; eval mode then normalises with
    stale numbers, which costs accuracy when training is short or the lr high.
    A few forward passes ("precise BN") fix that before each checkpoint.
    Returns the number of batches used.
    """
    import torch

    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns or batches <= 0:
        return 0
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average = exact mean over the batches seen
    was_training = model.training
    model.train()
    used = 0
    with torch.no_grad():
        for a, p, n, _ in loader:
            model(torch.cat([a, p, n]).to(device))
            used += 1
            if used >= batches:
                break
    for m, momentum in zip(bns, momenta):
        m.momentum = momentum
    model.train(was_training)
    return used


def lr_lambda(total_steps: int, warmup: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
    return f


def train(data_dir: str | os.PathLike, out: str | os.PathLike, *, epochs: int = 10,
          batch: int = 32, lr: float = 1e-3, weight_decay: float = 1e-4,
          margin: float = 0.2, one_class_margin: float | None = None,
          device: str = "cpu", resume: str | os.PathLike | None = None,
          backbone: str | os.PathLike | None = None, input_size: int = 224,
          val_fraction: float = 0.05, val_max: int = 2000, steps: int | None = None,
          workers: int = 0, flip: bool = True, seed: int = 0, threads: int | None = None,
          bn_batches: int = 20, progress: bool = True) -> dict:
    """Train FEENet; returns {"history": [...], "losses": [per step], "checkpoint": path}."""
    import torch
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from mien.engine.faces.feenet import (
        build_feenet, read_checkpoint, resolve_device, save_checkpoint, _feenet_class,
    )
    from mien.training.dataset import TYPE_INDEX, TripletDataset, split
    from mien.training.fetch import load_triplets

    data_dir = Path(data_dir)
    dev = resolve_device(device)
    if threads:
        # On a CPU shared with other work, torch's spinning OpenMP threads can run
        # 10x slower than one thread; let the user pin the count.
        torch.set_num_threads(int(threads))
    torch.manual_seed(seed)
    triplets = load_triplets(data_dir)
    if not triplets:
        raise BadInputError(f"{data_dir} holds no usable triplets; did `mien fec fetch` find any faces?")
    train_set, val_set = split(triplets, val_fraction, seed)
    val_set = val_set[:val_max]

    state = None
    if resume is not None:
        payload = read_checkpoint(resume)
        model = _feenet_class()(payload["config"])
        model.load_state_dict(payload["state_dict"])
        state = payload.get("train_state") or {}
        history = list(payload.get("meta", {}).get("history", []))
    else:
        model = build_feenet(backbone, input_size=int(input_size))
        history = []
    model.to(dev).train()
    config = model.config

    ds = TripletDataset(data_dir, train_set, config=config, train=True, flip=flip, seed=seed)
    loader_args = dict(batch_size=batch, shuffle=True, drop_last=len(ds) >= batch,
                       num_workers=workers, pin_memory=dev.type == "cuda",
                       persistent_workers=workers > 0,
                       generator=torch.Generator().manual_seed(seed))
    loader = DataLoader(ds, **loader_args)
    steps_per_epoch = max(1, len(loader))
    total_steps = steps if steps is not None else epochs * steps_per_epoch
    warmup = max(1, min(500, int(0.05 * total_steps)))

    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(total_steps, warmup))
    use_amp = dev.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    start_epoch, step = 0, 0
    if state:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, step = int(state["epoch"]), int(state["step"])
        if state.get("scaler") and use_amp:
            scaler.load_state_dict(state["scaler"])

    one_class = TYPE_INDEX["ONE_CLASS_TRIPLET"]
    one_margin = margin if one_class_margin is None else one_class_margin
    losses: list[float] = []
    args_meta = dict(data=str(data_dir), batch=batch, lr=lr, weight_decay=weight_decay,
                     margin=margin, one_class_margin=one_margin, flip=flip, seed=seed,
                     train_triplets=len(train_set), val_triplets=len(val_set))

    def checkpoint(epoch_done: int, val_acc: float) -> None:
        train_state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                       "epoch": epoch_done, "step": step,
                       "scaler": scaler.state_dict() if use_amp else None}
        save_checkpoint(model, out, train_state=train_state, epochs_done=epoch_done,
                        steps=step, val_accuracy=val_acc, history=history, args=args_meta,
                        saved=time.strftime("%Y-%m-%dT%H:%M:%S"))

    epoch = start_epoch
    stop = step >= total_steps
    while not stop and (steps is not None or epoch < epochs):  # --steps overrides --epochs
        ds.set_epoch(epoch)
        bar = tqdm(loader, desc=f"epoch {epoch + 1}", unit="batch", disable=not progress,
                   leave=False)
        ema, run_correct, run_n = None, 0, 0
        for a, p, n, kind in bar:
            a, p, n = (t.to(dev, non_blocking=True) for t in (a, p, n))
            m = torch.where(kind.to(dev) == one_class, one_margin, margin).float()
            with torch.autocast(device_type=dev.type, dtype=torch.float16, enabled=use_amp):
                z = model(torch.cat([a, p, n]))
            za, zp, zn = z.float().split(a.shape[0])
            loss_each, correct = triplet_loss(za, zp, zn, m)
            loss = loss_each.mean()
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            step += 1
            value = float(loss.detach())
            if not math.isfinite(value):
                raise RuntimeError(f"loss became {value} at step {step}; lower --lr")
            losses.append(value)
            ema = value if ema is None else 0.95 * ema + 0.05 * value
            run_correct += int(correct.sum())
            run_n += int(correct.numel())
            bar.set_postfix(loss=f"{ema:.4f}", acc=f"{run_correct / run_n:.3f}",
                            lr=f"{scheduler.get_last_lr()[0]:.2e}")
            if step >= total_steps:
                stop = True
                break
        bar.close()
        recalibrate_batchnorm(model, loader, dev, bn_batches)
        val_acc = heldout_accuracy(model, data_dir, val_set, dev, autocast=use_amp)
        model.train()
        epoch += 1
        record = {"epoch": epoch, "step": step, "train_loss": ema,
                  "train_accuracy": run_correct / max(1, run_n), "val_accuracy": val_acc}
        history.append(record)
        log.info("epoch %d step %d loss %.4f train acc %.3f held-out acc %.3f (%d triplets)",
                 epoch, step, ema or float("nan"), record["train_accuracy"], val_acc, len(val_set))
        if progress:
            print(json.dumps(record), flush=True)
        checkpoint(epoch, val_acc)
    return {"history": history, "losses": losses, "checkpoint": str(out), "steps": step,
            "config": config}
