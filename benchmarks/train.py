"""FEENet training and inference throughput on this machine.

    .venv/bin/python benchmarks/train.py [--steps 3] [--threads N] [--out FILE]

Measures, in one run:
- training: triplets/s at batch 32 and 224x224 input (forward of 3x32 images,
  symmetric triplet loss, backward, AdamW step), synthetic tensors so only the
  model counts;
- data pipeline: triplets/s of the loader's work per triplet (read 3 cached JPEG
  crops, augment, normalise) in one process, on real engine-aligned crops of the
  package photos — tells how many loader workers a GPU would need;
- inference: faces/s of FEENetEncoder.encode at batch 1, 8 and 32 (eval, inference mode);
- baseline: faces/s of the default landmark expression encoder on the same faces
  (from their 68 landmarks), the engine's cheap default.
Prints a table; --out writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def real_crops():
    """Engine-aligned 224 crops and 68 landmarks of the package photos' faces."""
    from mien.demo import photos
    from mien.engine.faces import EngineConfig, FaceAnalyzer

    analyzer = FaceAnalyzer(EngineConfig())
    crops, lms = [], []
    for image in (photos.t1(), photos.astronaut(), photos.grace_hopper()):
        for face in analyzer.analyze(image, identity=False, keep_rejected=True):
            crops.append(face.crop)
            lms.append(face.landmarks68)
    return crops, lms


def bench_train(steps: int, batch: int, size: int) -> dict:
    import torch

    from mien.engine.faces.feenet import build_feenet
    from mien.training.train import triplet_loss

    torch.manual_seed(0)
    model = build_feenet(input_size=size).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    a, p, n = (torch.randn(batch, 3, size, size) for _ in range(3))
    times = []
    for i in range(steps + 1):  # the first step warms up allocators and kernels
        t0 = time.perf_counter()
        z = model(torch.cat([a, p, n]))
        loss, _ = triplet_loss(*z.split(batch), 0.2)
        opt.zero_grad(set_to_none=True)
        loss.mean().backward()
        opt.step()
        if i:
            times.append(time.perf_counter() - t0)
    step_s = float(np.median(times))
    return {"batch": batch, "input": size, "steps": steps, "s_per_step": step_s,
            "triplets_per_s": batch / step_s, "images_per_s": 3 * batch / step_s}


def bench_data(crops: list[np.ndarray], n: int = 96) -> dict:
    import cv2

    from mien.engine.faces.feenet import DEFAULT_CONFIG, preprocess
    from mien.training.dataset import augment

    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, crop in enumerate(crops):
            path = Path(tmp) / f"{i}.jpg"
            cv2.imwrite(str(path), crop, [cv2.IMWRITE_JPEG_QUALITY, 95])
            paths.append(path)
        rng = np.random.default_rng(0)
        t0 = time.perf_counter()
        for i in range(n):
            three = [cv2.imread(str(paths[(i + k) % len(paths)])) for k in range(3)]
            preprocess([augment(c, rng) for c in three], DEFAULT_CONFIG)
        dt = time.perf_counter() - t0
    return {"triplets": n, "triplets_per_s": n / dt, "ms_per_triplet": 1000 * dt / n}


def bench_infer(crops: list[np.ndarray], batch: int, repeats: int) -> dict:
    from mien.engine.faces.feenet import FEENetEncoder, build_feenet, save_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        path = save_checkpoint(build_feenet().eval(), Path(tmp) / "feenet.pt")
        enc = FEENetEncoder(path, batch_size=batch)
    faces = (crops * (batch // len(crops) + 1))[:batch]
    enc.encode(faces)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        enc.encode(faces)
        times.append(time.perf_counter() - t0)
    dt = float(np.median(times))
    return {"batch": batch, "ms_per_batch": 1000 * dt, "faces_per_s": batch / dt}


def bench_landmarks(lms: list[np.ndarray], n: int = 2000) -> dict:
    from mien.engine.faces import expression_landmarks

    t0 = time.perf_counter()
    for i in range(n):
        expression_landmarks.encode(lms[i % len(lms)])
    dt = time.perf_counter() - t0
    return {"faces_per_s": n / dt, "ms_per_face": 1000 * dt / n}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3, help="timed training steps (after 1 warm-up)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--out", default=None, help="write results as JSON")
    args = ap.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    crops, lms = real_crops()
    res = {
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "load_avg_1m": os.getloadavg()[0], "torch": torch.__version__},
        "train": bench_train(args.steps, args.batch, args.size),
        "data": bench_data(crops),
        "infer_b1": bench_infer(crops, 1, repeats=10),
        "infer_b8": bench_infer(crops, 8, repeats=5),
        "infer_b32": bench_infer(crops, 32, repeats=3),
        "landmarks": bench_landmarks(lms),
    }
    res["ratios"] = {
        "infer_b32_over_b1": res["infer_b32"]["faces_per_s"] / res["infer_b1"]["faces_per_s"],
        "landmarks_over_feenet_b32": res["landmarks"]["faces_per_s"] / res["infer_b32"]["faces_per_s"],
        "data_over_train": res["data"]["triplets_per_s"] / res["train"]["triplets_per_s"],
    }
    t, m = res["train"], res["machine"]
    rows = [
        ("FEENet train, batch %d @%d" % (t["batch"], t["input"]),
         f"{t['triplets_per_s']:.2f} triplets/s", f"{t['s_per_step']:.2f} s/step"),
        ("loader work (1 process)", f"{res['data']['triplets_per_s']:.1f} triplets/s",
         f"{res['data']['ms_per_triplet']:.1f} ms/triplet"),
        ("FEENet inference, batch 1", f"{res['infer_b1']['faces_per_s']:.1f} faces/s",
         f"{res['infer_b1']['ms_per_batch']:.1f} ms/batch"),
        ("FEENet inference, batch 8", f"{res['infer_b8']['faces_per_s']:.1f} faces/s",
         f"{res['infer_b8']['ms_per_batch']:.0f} ms/batch"),
        ("FEENet inference, batch 32", f"{res['infer_b32']['faces_per_s']:.1f} faces/s",
         f"{res['infer_b32']['ms_per_batch']:.0f} ms/batch"),
        ("landmark encoder (baseline)", f"{res['landmarks']['faces_per_s']:.0f} faces/s",
         f"{res['landmarks']['ms_per_face']:.3f} ms/face"),
    ]
    w = [max(len(r[i]) for r in rows) for i in range(3)]
    print(f"{m['cpus']} CPUs, torch {m['torch']} with {m['torch_threads']} threads, "
          f"load average {m['load_avg_1m']:.1f}")
    for r in rows:
        print("  ".join(c.ljust(x) for c, x in zip(r, w)))
    print("ratios: " + ", ".join(f"{k} {v:.2f}" for k, v in res["ratios"].items()))
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
