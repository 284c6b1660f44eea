"""The training `mien` subcommands: `mien fec fetch`, `mien train feenet | head`, `mien rate`, `mien eval fec`.

Heavy imports (torch, timm, cv2, dlib) stay inside the command functions.
"""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    fec_sub = _group(subparsers, "fec", "Google's FEC dataset: download and crop faces", "SUBCOMMAND")
    fetch = fec_sub.add_parser("fetch", description=_cmd_fetch.__doc__,
                               help="download, crop and align the faces of an FEC CSV (resumable)")
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

    train_sub = _group(subparsers, "train", "train models", "MODEL")
    feenet = train_sub.add_parser("feenet", help="train FEENet on fetched FEC triplets",
                                  description=_cmd_train.__doc__)
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
    head = train_sub.add_parser("head", description=_cmd_train_head.__doc__,
                                help="train a 16-d expression head on rated triplets (CPU, minutes)")
    head.add_argument("--ratings", nargs="+", required=True, metavar="CSV", help="rated-triplet files")
    src = head.add_mutually_exclusive_group(required=True)
    src.add_argument("--store", help="take the faces' features from this store (faces matched by "
                                     "source, time and box)")
    src.add_argument("--features", metavar="NPZ", help="a feature table (benchmarks/rated_features.py)")
    src.add_argument("--fec-data", metavar="DIR", help="FEC's faces as `mien fec fetch` cached them "
                                                       "(for FEC's CSV and its images)")
    head.add_argument("--out", help="head file to write (.npz); omit to only cross-validate")
    head.add_argument("--name", default="fer-au-head", help="the head's name (its vector space is NAME@SHA)")
    head.add_argument("--kind", default="residual", choices=("linear", "mlp", "residual", "residual_mlp"))
    head.add_argument("--inputs", nargs="+", default=None, metavar="PART",
                      choices=("log_probs", "pooled", "aus", "mesh"),
                      help="feature parts the head reads (default: log_probs aus)")
    head.add_argument("--epochs", type=int, default=None, help="default 20")
    head.add_argument("--lr", type=float, default=None, help="default 0.0003")
    head.add_argument("--weight-decay", type=float, default=None, help="default 0.01")
    head.add_argument("--folds", type=int, default=5, help="cross-validation folds (0 = none)")
    head.add_argument("--seed", type=int, default=0)
    head.add_argument("--report", metavar="JSON", help="also write the cross-validation report here")
    head.set_defaults(func=_cmd_train_head)

    rate = subparsers.add_parser("rate", description=_cmd_rate.__doc__,
                                 help="rate triplets of a store's faces (FEC's question), to train a head on")
    rate.add_argument("--store", required=True)
    rate.add_argument("--rater", required=True, help="your rater id (a name without commas)")
    rate.add_argument("--ratings", default=None, help="ratings file (default: STORE/ratings.csv)")
    rate.add_argument("--mode", default="random", choices=("random", "one-class", "active"),
                      help="random faces; three faces of one emotion; or where the metric is least sure")
    rate.add_argument("--count", type=int, default=20, help="triplets to ask (default 20)")
    rate.add_argument("--picture", default=None, help="where to draw each triplet (default: a temp PNG)")
    rate.add_argument("--seed", type=int, default=None)
    rate.set_defaults(func=_cmd_rate)
    ev_sub = _group(subparsers, "eval", "evaluate models", "BENCHMARK")
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


def _group(subparsers, name: str, help: str, metavar: str):
    """A command made of subcommands (`mien fec fetch`); alone it prints its help and exits 2.
    Returns its subparsers."""
    parser = subparsers.add_parser(name, help=help)
    sub = parser.add_subparsers(dest=f"{name}_command", metavar=metavar)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])
    return sub


# a command's docstring is its --help description

def _cmd_fetch(args: argparse.Namespace) -> int:
    """Download the images an FEC CSV lists, crop each face by its box, align it with the engine
    and cache 224x224 crops in DIR. Re-running resumes."""
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
    """Symmetric triplet loss (squared L2, margin 0.2), AdamW + warm-up/cosine. The checkpoint is
    rewritten after every epoch; --resume continues."""
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


def _cmd_train_head(args) -> int:
    """Learn the expression metric from people's judgements: rated triplets in FEC's format (the
    Rate page, mien rate, FEC's CSV, the project's rated set) and the expression features of their
    faces (a store's, or a feature table). Prints the head's face-disjoint cross-validated accuracy
    by triplet type beside fer-au-v2 and its parts, then writes the head trained on every triplet.
    The same data and seed give the same file."""
    from mien.errors import BadInputError
    from mien.training.head import HeadConfig, cross_validated_report, fit_head
    from mien.training.rated import FeatureTable, read_rated, table_from_store, usable

    triplets, stats = read_rated(args.ratings)
    if args.store:
        from mien.engine.store import Store

        with Store(args.store, mode="r") as store:
            table, not_found = table_from_store(store, triplets)
    elif args.fec_data:
        from mien.training.rated import table_from_fec_data

        table, not_found = table_from_fec_data(args.fec_data, triplets)
    else:
        table, not_found = FeatureTable.load(args.features), 0
    triplets, dropped = usable(triplets, table)
    print(f"{stats.rows} rows, {stats.malformed} malformed; {len(triplets)} triplets with a majority and "
          f"features for their faces ({dropped} left out; {not_found} rated faces not found)")
    if not triplets:
        raise BadInputError("no rated triplet to train on")
    given = {"kind": args.kind, "seed": args.seed, "inputs": tuple(args.inputs) if args.inputs else None,
             "epochs": args.epochs, "lr": args.lr, "weight_decay": args.weight_decay}
    config = HeadConfig(**{k: v for k, v in given.items() if v is not None})
    if args.folds:
        report = cross_validated_report(table, triplets, config, args.folds)
        print_head_report(report)
        if args.report:
            with open(args.report, "w") as fh:
                json.dump(report, fh, indent=1)
    if args.out:
        import hashlib
        from pathlib import Path

        # what it was trained on, by content (paths differ between machines; bytes don't)
        provenance = {"ratings": [{"file": Path(p).name, "sha256": hashlib.sha256(Path(p).read_bytes()).hexdigest()}
                                  for p in args.ratings],
                      "features": (f"store {Path(args.store).name}" if args.store else
                                   f"FEC crops {Path(args.fec_data).name}" if args.fec_data else
                                   {"file": Path(args.features).name,
                                    "sha256": hashlib.sha256(Path(args.features).read_bytes()).hexdigest()})}
        head = fit_head(table, triplets, config, name=args.name, provenance=provenance)
        sha = head.save(args.out)
        print(f"wrote {args.out}: {head.name}@{sha[:12]} ({len(triplets)} triplets, {head.meta['faces']} faces)")
    return 0


def print_head_report(report: dict) -> None:
    from mien.training.fec import TRIPLET_TYPES

    kinds = (*TRIPLET_TYPES, "all")
    print(f"face-disjoint {report['folds']}-fold cross-validation: {report['tested']} triplets tested "
          f"(accuracy against the majority / on unanimous triplets; chance 0.333)")
    print(f"{'':18s}" + "".join(f"{k.split('_')[0].lower():>16s}" for k in kinds))
    for name, acc in report["accuracy"].items():
        cells = "".join(f"{acc[k + '/majority']['accuracy']:7.3f} / {acc[k + '/unanimous']['accuracy']:5.3f}"
                        for k in kinds)
        print(f"{name:18s}{cells}")


def triplet_picture(store, face_ids, side: int = 200):
    """The three faces' thumbnails side by side, numbered 1 2 3 (BGR)."""
    import cv2
    import numpy as np

    tiles = []
    for k, fid in enumerate(face_ids):
        data = store.get_thumbnail(int(fid))
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
        tile = np.full((side + 40, side + 20, 3), 255, np.uint8)
        if image is not None:
            tile[10:10 + side, 10:10 + side] = cv2.resize(image, (side, side), interpolation=cv2.INTER_CUBIC)
        cv2.putText(tile, str(k + 1), (side // 2, side + 34), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 0), 2,
                    cv2.LINE_AA)
        tiles.append(tile)
    return np.hstack(tiles)


def _cmd_rate(args) -> int:
    """Shows three of the store's faces at a time (a picture at --picture: open it in any viewer)
    and asks FEC's question; each answer is appended to the ratings file in FEC's format
    (crash-safe), which `mien train head --store` learns from. Answer 1, 2 or 3; 0 = can't tell
    (not recorded); q = stop."""
    import sys
    import tempfile
    from pathlib import Path

    import cv2

    from mien.engine.store import Store
    from mien.training.rating import QUESTION, TripletSampler

    ratings = Path(args.ratings) if args.ratings else Path(args.store) / "ratings.csv"
    picture = Path(args.picture) if args.picture else Path(tempfile.gettempdir()) / "mien-rate.png"
    written = 0
    with Store(args.store, mode="r") as store:
        sampler = TripletSampler(store, ratings, seed=args.seed)
        for n in range(1, args.count + 1):
            proposal = sampler.propose(args.mode, args.rater)
            cv2.imwrite(str(picture), triplet_picture(store, proposal.face_ids))
            while True:
                print(f"[{n}/{args.count}] {picture}: {QUESTION} 1/2/3, 0 = can't tell, q = stop: ",
                      end="", flush=True)
                line = sys.stdin.readline()
                reply = line.strip().lower()
                if not line or reply == "q":
                    print(f"\n{written} answers written to {ratings}")
                    return 0
                if reply in ("0", "1", "2", "3"):
                    break
                print("  answer 1, 2 or 3 (0 = can't tell, q = stop)")
            written += sampler.answer(proposal.face_ids, proposal.type, args.rater, reply)
    print(f"{written} answers written to {ratings}")
    return 0
