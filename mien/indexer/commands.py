"""The indexer's `mien` subcommands: index, person, reembed. Heavy imports stay inside the commands."""

from __future__ import annotations

import json
import os
import sys

from mien.filenames import shown
from mien.results.tables import print_persons


def _store_arg(parser) -> None:
    default = os.environ.get("MIEN_STORE")
    parser.add_argument("--store", default=default, required=default is None, metavar="DIR",
                        help="store directory (default: $MIEN_STORE)")


def add_engine_args(parser) -> None:
    """Options mapped onto EngineConfig (shared by index and person add)."""
    from mien.engine.faces import registry  # the models are its rows: a new row is a new choice

    g = parser.add_argument_group("models")
    g.add_argument("--detector", choices=registry.names("detector"), default=None,
                   help=f"face front end: {registry.choices_help('detector')}; a store keeps the one it "
                        "was built with")
    g.add_argument("--detector-model", metavar="PATH",
                   help="insightface model dir or .onnx (for a store built with one: where it is now, "
                        "checked against the recorded content hash)")
    g.add_argument("--identity", choices=registry.names("identity"), default=None,
                   help=f"identity embedding: {registry.choices_help('identity')}; a store keeps its own")
    g.add_argument("--identity-model", metavar="PATH",
                   help="ArcFace .onnx (for a store built with one: where it is now, checked by hash)")
    g.add_argument("--expression", choices=registry.names("expression"), default=None,
                   help=f"expression encoder: {registry.choices_help('expression')}; a store keeps the "
                        "built-in one it was built with")
    g.add_argument("--expression-model", metavar="PATH",
                   help="FEENet checkpoint .pt (for a store built with one: where it is now, checked by hash)")
    g.add_argument("--expression-head", metavar="PATH",
                   help="a head from `mien train head` (default: the one mien ships; for a store built "
                        "with one: where it is now, checked by hash)")
    g.add_argument("--upsample", type=int, default=None, help="HOG upsamplings (small faces)")
    g.add_argument("--max-side", type=int, default=None, help="detect on a copy at most this long")
    g.add_argument("--min-face", type=int, default=None,
                   help="smallest face side in pixels (default 40; a store keeps the one it was "
                        "built with; 64 is ~1.3x faster, smaller faces rarely pass FaceQA)")
    g.add_argument("--sharpness-min", type=float, default=None, help="FaceQA sharpness threshold")
    g.add_argument("--yaw-max", type=float, default=None, help="FaceQA |yaw| limit, degrees")
    g.add_argument("--reject-occluded", action="store_true",
                   help="FaceQA: drop faces whose mouth is covered (default: keep them, flagged)")
    g.add_argument("--device", default=None, help="cpu or cuda (FEENet)")


def engine_config_from(args):
    from mien.engine.faces import EngineConfig

    return EngineConfig(**explicit_engine_args(args))


def explicit_engine_args(args) -> dict:
    """The EngineConfig fields given on the command line (the rest are defaults)."""
    kwargs = {}
    if getattr(args, "reject_occluded", False):
        kwargs["reject_occluded"] = True
    for key in ("detector", "detector_model", "identity", "identity_model", "expression",
                "expression_model", "expression_head", "upsample", "max_side", "min_face", "sharpness_min", "yaw_max",
                "device"):
        value = getattr(args, key, None)
        if value is not None:
            kwargs[key] = value
    return kwargs


def register(subparsers) -> None:
    # a command's docstring is its --help description
    p = subparsers.add_parser("index", help="index folders/files of images and videos into a store",
                              description=cmd_index.__doc__)
    p.add_argument("paths", nargs="+", metavar="PATH")
    _store_arg(p)
    p.add_argument("--fps", type=float, default=2.0, help="video frames sampled per second (default 2)")
    p.add_argument("--every-frame", action="store_true", help="analyse every video frame")
    p.add_argument("--prune", action="store_true", help="remove faces of files that no longer exist")
    p.add_argument("--strict", action="store_true", help="exit 1 if any file failed")
    p.add_argument("--workers", type=int, default=0, help="analysis processes (0 = one per core)")
    p.add_argument("--identity-threshold", type=float, default=None,
                   help="max normalised identity distance for the same person")
    p.add_argument("--json", metavar="FILE", help="also write the summary as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--keyframe-seconds", type=float, default=2.0,
                   help="video: full-frame detection this often, known faces followed in between "
                        "(0 = full detection on every sampled frame; default %(default)s)")
    p.add_argument("--range-seconds", type=float, default=0.0, metavar="S",
                   help="video: cut each video into time ranges of about S seconds (whole keyframe "
                        "intervals) that the workers read and analyse in parallel; tracks and persons are "
                        "joined across ranges, the store is the same for any S (0 = automatic: about 2 "
                        "ranges per worker, 4 to 60 s each)")
    g = p.add_argument_group("Ray (analysis on a cluster; the archive must be at the same path on every node)")
    g.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="analyse on Ray: no ADDRESS = $RAY_ADDRESS or a new local cluster; 'auto' = the "
                        "cluster this node belongs to; 'ray://HEAD:10001' or 'HEAD:6379'. --workers is then "
                        "the number of actors (0 = as many as fit)")
    g.add_argument("--ray-cpus-per-worker", type=float, default=1.0, metavar="N")
    g.add_argument("--ray-gpus-per-worker", type=float, default=0.0, metavar="N",
                   help="e.g. 1 (or 0.5 to share a GPU) to run the models on GPU nodes; with --device cuda")
    add_engine_args(p)
    p.set_defaults(func=cmd_index)

    person = subparsers.add_parser(
        "person", help="enroll, list, rename, merge, split and delete persons",
        description="Two faces of one image or video frame are never one person; persons are linked "
                    "without chaining, and an ambiguous match starts a new anonymous person.")
    sub = person.add_subparsers(dest="person_command", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="enroll a named person from reference images",
                         description=cmd_person_add.__doc__)
    add.add_argument("name")
    add.add_argument("images", nargs="+", metavar="IMAGE")
    add.add_argument("--face-index", type=int, action="append", metavar="N",
                     help="the face to take from a photo with several faces (left to right from 0; "
                          "once per photo, in order); without it such a photo lists its faces")
    _store_arg(add)
    add_engine_args(add)
    add.set_defaults(func=cmd_person_add)
    lst = sub.add_parser("list", help="list persons with their face counts")
    _store_arg(lst)
    lst.add_argument("--json", action="store_true", help="print JSON instead of a table")
    lst.set_defaults(func=cmd_person_list)
    ren = sub.add_parser("rename", help="name (or rename) a person")
    ren.add_argument("person", help="person id or current name")
    ren.add_argument("name")
    _store_arg(ren)
    ren.set_defaults(func=cmd_person_rename)
    mer = sub.add_parser("merge", help="move all faces of SRC to DST and remove SRC")
    mer.add_argument("src", help="person id or name")
    mer.add_argument("dst", help="person id or name")
    mer.add_argument("--allow-same-frame", action="store_true",
                     help="merge even if both have a face in one image or frame (the detector found one "
                          "face twice); otherwise refused: such faces are two people")
    _store_arg(mer)
    mer.set_defaults(func=cmd_person_merge)
    dele = sub.add_parser("delete", help="remove a person; its faces become unknown (they stay searchable)")
    dele.add_argument("person", help="person id or name")
    _store_arg(dele)
    dele.set_defaults(func=cmd_person_delete)
    spl = sub.add_parser("split", help="move chosen faces of a person to a new anonymous person")
    spl.add_argument("person", help="person id or name the faces belong to")
    spl.add_argument("faces", nargs="+", type=int, metavar="FACE_ID")
    _store_arg(spl)
    spl.set_defaults(func=cmd_person_split)

    re = subparsers.add_parser("reembed", description=cmd_reembed.__doc__,
                               help="recompute every expression vector from the features the store keeps")
    _store_arg(re)
    which = re.add_mutually_exclusive_group()
    which.add_argument("--head", metavar="FILE", help="an expression head file (default: the head mien ships)")
    which.add_argument("--fixed", action="store_true",
                       help="back to the fixed vectors of the store's features (fer-au-478's or fer-au-v2's)")
    re.set_defaults(func=cmd_reembed)


def store_engine_config(args):
    """The engine of an existing store (see mien/engine/faces/engine_record.py): every
    setting it was built with, model files found by hash (--*-model point at moved ones).
    An explicit option that would change the store's faces or vectors is refused, whether
    or not the run has new work: a store never mixes engines."""
    from mien.engine.faces.engine_record import refuse_conflicts
    from mien.indexer.pipeline import engine_config_for

    asked = engine_config_from(args)
    if os.path.exists(os.path.join(args.store, "data.mdb")):
        from mien.engine.store import Store

        with Store(args.store, mode="r") as store:
            encoders = store.encoders
        refuse_conflicts(args.store, encoders, asked, set(explicit_engine_args(args)))
    return engine_config_for(args.store, asked)


def cmd_index(args) -> int:
    """Crawl images and videos (decided by content), detect faces, keep FaceQA-passed ones, track
    and cluster persons, commit per source. Re-runs skip unchanged files."""
    from mien.indexer import IndexOptions, index_paths

    options = IndexOptions(fps=args.fps, every_frame=args.every_frame, prune=args.prune,
                           strict=args.strict, workers=args.workers,
                           person_threshold=args.identity_threshold,
                           show_progress=not args.quiet,
                           keyframe_seconds=args.keyframe_seconds, range_seconds=args.range_seconds,
                           ray_address=args.ray,
                           ray_cpus_per_worker=args.ray_cpus_per_worker,
                           ray_gpus_per_worker=args.ray_gpus_per_worker)
    if args.range_seconds < 0:
        print("mien index: error: --range-seconds must be 0 (automatic) or more", file=sys.stderr)
        return 2
    missing = [p for p in args.paths if not os.path.lexists(p)]
    if missing:  # before anything is created: a typo must not leave an empty store behind
        print(f"mien index: error: no such file or folder: {', '.join(map(shown, missing))}", file=sys.stderr)
        return 2
    from mien.indexer import pool_start

    pool_start.start(options.workers, options)  # its imports run beside the engine's and the store's here
    engine_config = store_engine_config(args)
    summary = index_paths(args.paths, args.store, options=options, engine_config=engine_config)
    print(summary.table())
    for path, reason in summary.failures[:20]:
        print(f"  failed: {shown(path)}: {shown(reason)}", file=sys.stderr)
    if len(summary.failures) > 20:
        print(f"  ... and {len(summary.failures) - 20} more failures", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(summary.to_dict(), fh, indent=2)
    return 1 if args.strict and summary.failed_count else 0


def cmd_person_add(args) -> int:
    """Enroll NAME from one face per photo. Anonymous persons that are clearly this person get the
    name (the closest keeps its id); one that shares a frame with the person's faces is never taken."""
    from mien.indexer.enroll import enroll_person

    result = enroll_person(args.store, args.name, args.images, engine_config_from(args),
                           face_index=args.face_index)
    how = ("new" if result["created"] else
           f"was anonymous person {result['renamed']}" if result["renamed"] is not None else "existing")
    n = result["faces"]
    print(f"person {result['person_id']} {result['name']!r} ({how}): {n} face{'' if n == 1 else 's'}")
    for t in result["took"]:
        print(f"  enrolled face {t['face_index']} of {shown(str(t['image']))}, box {tuple(t['bbox'])}")
    if result["merged"]:
        print(f"  took anonymous persons {', '.join(map(str, result['merged']))}")
    for pid, reason in result["skipped"]:
        print(f"  left anonymous person {pid}: {reason}")
    return 0


def cmd_person_list(args) -> int:
    from mien.engine.store import Store

    with Store(args.store, mode="r") as store:
        rows = [(p.person_id, p.name or "", len(store.person_face_ids(p.person_id)))
                for p in store.list_persons()]
    print_persons(rows, args.json)  # the same table and JSON as `mien persons`
    return 0


def _existing_store(path: str) -> str:
    """Writers create stores; rename/merge must not create an empty one by mistake."""
    from mien.errors import NotFoundError

    if not os.path.exists(os.path.join(path, "data.mdb")):
        raise NotFoundError(f"no mien store at {path}")
    return path


def cmd_person_rename(args) -> int:
    from mien.engine.store import Store
    from mien.indexer.enroll import resolve_person

    with Store(_existing_store(args.store), mode="w") as store:
        person = resolve_person(store, args.person)
        store.update_person(person.person_id, name=args.name)
    print(f"person {person.person_id} is now {args.name!r}")
    return 0


def cmd_person_merge(args) -> int:
    from mien.engine.store import Store
    from mien.indexer.enroll import resolve_person

    with Store(_existing_store(args.store), mode="w") as store:
        src, dst = resolve_person(store, args.src), resolve_person(store, args.dst)
        if src.person_id == dst.person_id:
            from mien.errors import BadInputError

            raise BadInputError("cannot merge a person into itself")
        store.merge_persons(src.person_id, dst.person_id, allow_same_frame=args.allow_same_frame)
        faces = len(store.person_face_ids(dst.person_id))
    print(f"merged person {src.person_id} into {dst.person_id} ({faces} faces)")
    return 0


def cmd_person_delete(args) -> int:
    from mien.engine.store import Store
    from mien.indexer.enroll import resolve_person

    with Store(_existing_store(args.store), mode="w") as store:
        person = resolve_person(store, args.person)
        faces = len(store.person_face_ids(person.person_id))
        store.delete_person(person.person_id, release_faces=True)
    label = f" {person.name!r}" if person.name else ""
    print(f"deleted person {person.person_id}{label}; its {faces} faces are now unknown")
    return 0


def cmd_person_split(args) -> int:
    from mien.engine.store import Store
    from mien.errors import BadInputError
    from mien.indexer.enroll import resolve_person

    with Store(_existing_store(args.store), mode="w") as store:
        person = resolve_person(store, args.person)
        held = {int(f) for f in store.person_face_ids(person.person_id)}
        foreign = [f for f in args.faces if f not in held]
        if foreign:
            raise BadInputError(f"faces {foreign} are not faces of person {person.person_id}")
        if len(set(args.faces)) == len(held):
            raise BadInputError(f"those are all of person {person.person_id}'s faces; nothing would be split")
        new = store.split_person(args.faces)
    print(f"moved {len(set(args.faces))} faces of person {person.person_id} to new person {new}")
    return 0


def cmd_reembed(args) -> int:
    """Apply a new expression metric to a store without reading its media: a head trained on rated
    triplets (mien train head), the head mien ships (on fer-au-v2's features), or back to the fixed
    vector of the store's features (fer-au-478's or fer-au-v2's). One
    transaction: a server on the store answers from the old vectors until it commits; a kill at any
    moment leaves the old store or the new one, and a re-run gives the same store."""
    from mien.indexer.reembed import reembed

    store = _existing_store(args.store)
    summary = reembed(store, args.head, fixed=args.fixed)
    print(f"re-embedded {summary.faces} faces: {summary.encoder_before} -> {summary.encoder_after} "
          f"in {summary.seconds:.1f} s")
    return 0
