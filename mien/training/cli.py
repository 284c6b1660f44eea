"""CLI: `mien fec fetch`, `mien train feenet`, `mien eval fec`.

Heavy imports (torch, timm, cv2, dlib) stay inside the command functions.
"""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    fec = subparsers.add_parser("fec", help="Google's FEC dataset: download and crop faces")
    fec_sub = fec.add_subparsers(dest="fec_command", metavar="SUBCOMMAND")
    fetch = fec_sub.add_parser(
        "fetch", help="download, crop and align the faces of an FEC CSV (resumable)",
        description="Download the images an FEC CSV lists, crop each face by its box, align "
                    "it with the engine and cache 224x224 crops in DIR. Re-running resumes.")
    fetch.add_argument("csv", help="faceexp-comparison-data-{train,test}-public.csv")
    fetch.add_argument("--out", required=True, help="data directory (cache)")
    fetch.add_argument("--workers", type=int, default=16, help="parallel downloads (16)")
    fetch.add_argument("--timeout", type=float, default=10.0, help="seconds per request (10)")
    fetch.add_argument("--retries", type=int, default=2, help="retries of timeouts/5xx (2)")
    fetch.add_argument("--limit", type=int, default=None, help="only the first N CSV rows")
    fetch.add_argument("--no-align", action="store_true",
                       help="skip landmark alignment; use the resized box crop for every face")
    fetch.add_argument("--retry-dead", action="store_true",
                       help="ask again for URLs a previous run found dead (4xx)")
    fetch.set_defaults(func=_cmd_fetch)
    fec.set_defaults(func=lambda args: (fec.print_help(), 2)[1])

    train = subparsers.add_parser("train", help="train models")
    train_sub = train.add_subparsers(dest="train_command", metavar="MODEL")
    feenet = train_sub.add_parser(
        "feenet", help="train FEENet on fetched FEC triplets",
        description="Symmetric triplet loss (squared L2, margin 0.2), AdamW + warm-up/cosine. "
                    "The checkpoint is rewritten after every epoch; --resume continues.")
    feenet.add_argument("--data", required=True, help="directory made by `mien fec fetch`")
    feenet.add_argument("--out", required=True, help="checkpoint file to write (.pt)")
    feenet.add_argument("--epochs", type=int, default=10)
    feenet.add_argument("--steps", type=int, default=None, help="stop after N steps (overrides --epochs)")
    feenet.add_argument("--batch", type=int, default=32, help="triplets per step (32)")
    feenet.add_argument("--lr", type=float, default=1e-3)
    feenet.add_argument("--weight-decay", type=float, default=1e-4)
    feenet.add_argument("--margin", type=float, default=0.2)
    feenet.add_argument("--one-class-margin", type=float, default=None,
                        help="margin for ONE_CLASS triplets (default: --margin; FEC used 0.1)")
    feenet.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    feenet.add_argument("--resume", default=None, help="checkpoint to continue from")
    feenet.add_argument("--backbone", default=None,
                        help="efficientnet_b0 state-dict file to start from (never downloaded)")
    feenet.add_argument("--input-size", type=int, default=224, help="network input side (224)")
    feenet.add_argument("--val-fraction", type=float, default=0.05, help="held-out triplets (0.05)")
    feenet.add_argument("--val-max", type=int, default=2000, help="cap on held-out triplets")
    feenet.add_argument("--workers", type=int, default=2, help="data loader processes (2)")
    feenet.add_argument("--no-flip", action="store_true", help="no horizontal-flip augmentation")
    feenet.add_argument("--seed", type=int, default=0)
    feenet.add_argument("--bn-batches", type=int, default=20,
                        help="batches used to re-estimate BatchNorm statistics before each "
                             "checkpoint (precise BN; 0 = off)")
    feenet.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: all cores; use 1 on a busy machine)")
    feenet.set_defaults(func=_cmd_train)
    train.set_defaults(func=lambda args: (train.print_help(), 2)[1])

    ev = subparsers.add_parser("eval", help="evaluate models")
    ev_sub = ev.add_subparsers(dest="eval_command", metavar="BENCHMARK")
    evfec = ev_sub.add_parser(
        "fec", help="FEC triplet accuracy of a FEENet checkpoint and the landmark baseline")
    evfec.add_argument("--ckpt", default=None, help="FEENet checkpoint (omit: baseline only)")
    evfec.add_argument("--data", required=True, help="directory made by `mien fec fetch`")
    evfec.add_argument("--device", default="cpu")
    evfec.add_argument("--batch", type=int, default=32)
    evfec.add_argument("--limit", type=int, default=None, help="only the first N triplets")
    evfec.add_argument("--no-baseline", action="store_true", help="skip the landmark encoder")
    evfec.add_argument("--out", default=None, help="write the report as JSON")
    evfec.set_defaults(func=_cmd_eval)
    ev.set_defaults(func=lambda args: (ev.print_help(), 2)[1])


def _cmd_fetch(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from mien.training.fetch import fetch

    report = fetch(args.csv, args.out, workers=args.workers, timeout=args.timeout,
                   retries=args.retries, limit=args.limit, align=not args.no_align,
                   retry_dead=args.retry_dead)
    r = asdict(report)
    print(f"rows {r['rows']}: {r['triplets_labelled']} labelled triplets "
          f"({r['no_majority']} without a majority, {r['malformed']} malformed)")
    print(f"images {r['urls']}: {r['downloaded']} downloaded, {r['cached']} cached, "
          f"{r['dead']} dead, {r['failed']} failed (retried next run)")
    print(f"faces {r['faces']}: {r['crops_new']} cropped now, {r['crops_cached']} cached; "
          f"{r['aligned']} aligned, {r['fallback_box']} box crops (no landmarks)")
    print(f"triplets surviving: {r['triplets_surviving']} {json.dumps(r['per_type_surviving'])}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from mien.training.train import train

    result = train(args.data, args.out, epochs=args.epochs, batch=args.batch, lr=args.lr,
                   weight_decay=args.weight_decay, margin=args.margin,
                   one_class_margin=args.one_class_margin, device=args.device,
                   resume=args.resume, backbone=args.backbone, input_size=args.input_size,
                   val_fraction=args.val_fraction, val_max=args.val_max, steps=args.steps,
                   workers=args.workers, flip=not args.no_flip, seed=args.seed,
                   threads=args.threads, bn_batches=args.bn_batches)
    last = result["history"][-1] if result["history"] else {}
    print(f"wrote {result['checkpoint']} after {result['steps']} steps; "
          f"held-out triplet accuracy {last.get('val_accuracy', float('nan')):.3f}")
    print(f"use it: mien index PATHS --expression feenet --expression-model {result['checkpoint']}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from mien.training.evaluate import evaluate, format_report, write_json

    report = evaluate(args.ckpt, args.data, device=args.device, batch=args.batch,
                      baseline=not args.no_baseline, limit=args.limit)
    print(format_report(report))
    if args.out:
        write_json(report, args.out)
    return 0
