"""CLI: `mien tag ...`, `mien summary`, `mien clusters`.

Each command talks to a server over gRPC (--server, default $MIEN_SERVER or
127.0.0.1:50051) or, with --store DIR, works on a store in this process. Both
paths return the engine's result dataclasses, so output is identical.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys

from mien.filenames import escape, shown

# EngineConfig fields a store's engine record may need pointed at a moved file
MODEL_FLAGS = ("detector_model", "identity_model", "expression_model", "expression_head")

# ------------------------------------------------------------------ backends


def _grpc_errors(method):
    """Turn a failed RPC into the matching MienError, so `mien` prints it and exits 1."""
    import functools

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        import grpc

        from mien.errors import BadInputError, MienError, NotFoundError

        from mien.clients.cli import rpc_error_line

        try:
            return method(*args, **kwargs)
        except grpc.RpcError as exc:
            code, details = exc.code(), exc.details()
            kind = {grpc.StatusCode.NOT_FOUND: NotFoundError,
                    grpc.StatusCode.INVALID_ARGUMENT: BadInputError}.get(code, MienError)
            server = getattr(args[0], "server", None) if args else None
            if code == grpc.StatusCode.UNAVAILABLE and server:
                raise kind(rpc_error_line(exc, server)) from None
            raise kind(f"{details} ({code.name})") from None

    return wrapper


class _Remote:
    def __init__(self, args):
        from mien.clients.analytics_client import AnalyticsClient

        from mien.clients.connection import client_from_args

        self.server = args.server
        self.connection = client_from_args(args)
        self.client = AnalyticsClient(self.connection)

    @_grpc_errors
    def create_tag(self, args):
        return self.client.create_tag(args.name, images=args.image or (), face_ids=args.face_id or (),
                                      threshold=args.threshold, replace=args.replace,
                                      face_index=args.face_index)

    @_grpc_errors
    def list_tags(self):
        return self.client.list_tags()

    @_grpc_errors
    def delete_tag(self, name):
        self.client.delete_tag(name)

    def _occluded(self, method, include_occluded: bool) -> dict:
        """include_occluded for the client call; an older client without it can only leave them out."""
        import inspect

        if "include_occluded" in inspect.signature(method).parameters:
            return {"include_occluded": include_occluded}
        if include_occluded:
            from mien.errors import BadInputError

            raise BadInputError("this client cannot ask the server to include occluded faces; "
                                "use --store DIR to run on the store directly")
        return {}

    @_grpc_errors
    def tag_source(self, uri, tags, max_gap_ms, include_occluded=False):
        c = self.client
        return c.tag_source(uri, tags, max_gap_ms=max_gap_ms, **self._occluded(c.tag_source, include_occluded))

    @_grpc_errors
    def tag_store(self, tags, include_occluded=False):
        return self.client.tag_store(tags, **self._occluded(self.client.tag_store, include_occluded))

    @_grpc_errors
    def summarize(self, person, method, k, seed, thumbnails, include_occluded=False):
        return self.client.summarize(person, method=method, k=k, seed=seed, thumbnails=thumbnails,
                                     **self._occluded(self.client.summarize, include_occluded))

    @_grpc_errors
    def cluster_store(self, k, sample, seed, thumbnails, include_occluded=False):
        return self.client.cluster_store(k, sample=sample, seed=seed, thumbnails=thumbnails,
                                         **self._occluded(self.client.cluster_store, include_occluded))

    def close(self):
        self.client.close()
        self.connection.close()


class _Local:
    """Runs the engine's analytics directly on a store directory."""

    def __init__(self, args):
        import os

        from mien.errors import NotFoundError

        if not os.path.exists(os.path.join(args.store, "data.mdb")):
            raise NotFoundError(f"no mien store at {args.store} (index something into it first)")
        self.dir = args.store

    def _reader(self):
        from mien.engine.store import Store

        return Store(self.dir, mode="r")

    def create_tag(self, args):
        from mien.engine.analytics import create_tag
        from mien.engine.store import Store

        images = [(path, args.face_index) for path in (args.image or ())]
        with Store(self.dir, mode="w") as store:
            analyzer = None
            if args.image:
                from mien.engine.faces import EngineConfig, FaceAnalyzer
                from mien.engine.faces.engine_record import matching_store

                # the store's recorded engine; --*-model point at model files that moved
                moved = {key: getattr(args, key, None) for key in MODEL_FLAGS}
                analyzer = FaceAnalyzer(matching_store(EngineConfig(**{k: v for k, v in moved.items() if v}),
                                                       store.encoders))
            return create_tag(store, args.name, images=images, face_ids=args.face_id or (),
                              threshold=0.5 if args.threshold is None else args.threshold,
                              analyzer=analyzer, replace=args.replace)

    def list_tags(self):
        from mien.engine.analytics import list_tags

        with self._reader() as store:
            return list_tags(store)

    def delete_tag(self, name):
        from mien.engine.analytics import delete_tag
        from mien.engine.store import Store

        with Store(self.dir, mode="w") as store:
            delete_tag(store, name)

    def tag_source(self, uri, tags, max_gap_ms, include_occluded=False):
        from mien.engine.analytics import tag_source

        gap = -1 if max_gap_ms is None else (None if max_gap_ms < 0 else max_gap_ms)
        with self._reader() as store:
            return tag_source(store, uri, tags, max_gap_ms=gap, include_occluded=include_occluded)

    def tag_store(self, tags, include_occluded=False):
        from mien.engine.analytics import tag_store

        with self._reader() as store:
            return tag_store(store, tags, include_occluded=include_occluded)

    def _thumbs(self, store, clusters):
        ids = {c.representative_face_id for c in clusters}
        return {i: store.get_thumbnail(i) for i in ids}

    def summarize(self, person, method, k, seed, thumbnails, include_occluded=False):
        from mien.engine.analytics import summarize_person

        with self._reader() as store:
            summary = summarize_person(store, person, method=method, k=k, seed=seed,
                                       include_occluded=include_occluded)
            return summary, (self._thumbs(store, summary.clusters) if thumbnails else {})

    def cluster_store(self, k, sample, seed, thumbnails, include_occluded=False):
        from mien.engine.analytics import cluster_store

        with self._reader() as store:
            result = cluster_store(store, k, sample=sample or 200_000, seed=seed,
                                   include_occluded=include_occluded)
            return result, (self._thumbs(store, result.clusters) if thumbnails else {})

    def close(self):
        pass


def _backend(args):
    return _Local(args) if args.store else _Remote(args)


# ------------------------------------------------------------------ output


def _plain(obj):
    """JSON-ready copy of result dataclasses (numpy arrays -> lists, inf -> null)."""
    import math

    import numpy as np

    if dataclasses.is_dataclass(obj):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_plain(v) for v in obj.tolist()]
    if isinstance(obj, (np.floating, float)):
        return None if not math.isfinite(float(obj)) else round(float(obj), 6)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, bytes):
        return None
    return obj


def _tag_dict(tag) -> dict:
    import numpy as np

    return {"name": tag.name, "threshold": round(float(tag.threshold), 6),
            "references": len(tag.vectors), "reference_face_ids": [int(i) for i in tag.reference_face_ids],
            "created_ms": int(tag.created_ms),
            "vectors": [[round(float(x), 6) for x in np.asarray(v.values if hasattr(v, "values") else v)]
                        for v in tag.vectors]}


def _print_json(obj) -> None:
    json.dump(obj, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _person_label(pid: int, name, track_id: int = -1) -> str:
    if pid >= 0:
        return name or f"person {pid}"
    return f"unknown (track {track_id})" if track_id >= 0 else "unknown"


# ------------------------------------------------------------------ commands


def cmd_tag_create(args) -> int:
    if not args.image and not args.face_id:
        raise SystemExit("mien tag create: give at least one --image or --face-id")
    with contextlib.closing(_backend(args)) as backend:
        tag = backend.create_tag(args)
    print(f"tag {tag.name!r}: {len(tag.vectors)} reference(s), threshold {tag.threshold:.3g}")
    return 0


def cmd_tag_list(args) -> int:
    with contextlib.closing(_backend(args)) as backend:
        tags = backend.list_tags()
    if args.json:
        _print_json([_tag_dict(t) for t in tags])
        return 0
    if not tags:
        print("no tags")
    for t in tags:
        ids = ",".join(str(i) for i in t.reference_face_ids)
        print(f"{t.name:<24} threshold {t.threshold:<6.3g} references {len(t.vectors):<3}"
              + (f" faces {ids}" if ids else ""))
    return 0


def cmd_tag_delete(args) -> int:
    with contextlib.closing(_backend(args)) as backend:
        backend.delete_tag(args.name)
    print(f"deleted tag {args.name!r}")
    return 0


def cmd_tag_run(args) -> int:
    with contextlib.closing(_backend(args)) as backend:
        from mien.clients.cli_query import source_uri

        report = backend.tag_source(source_uri(args.source), args.tags or None, args.max_gap_ms,
                                    include_occluded=args.include_occluded)
    report = dataclasses.replace(report, uri=escape(report.uri))  # a name that is not UTF-8, as text
    if args.timeline:
        from mien.clients.analytics_pictures import timeline_png

        timeline_png(report, args.timeline)
    if args.json:
        _print_json(_plain(report))
    else:
        print(f"{shown(report.uri)}: {report.faces} faces, {report.duration_ms / 1000:.1f} s, "
              f"sample every {report.sample_period_ms} ms{_left_out(report)}")
        print(f"{'person':<24} {'tag':<16} {'faces':>6} {'tagged':>6} {'rate':>6}  segments (s)")
        for r in report.results:
            segs = " ".join(f"{s.start_ms / 1000:.1f}-{s.end_ms / 1000:.1f}" for s in r.segments) or "-"
            print(f"{_person_label(r.person_id, r.person_name, r.track_id):<24} {r.tag:<16} "
                  f"{r.faces:>6} {r.tagged:>6} {100 * r.rate:>5.1f}%  {segs}")
    if args.timeline:
        print(f"timeline written to {args.timeline}", file=sys.stderr)
    return 0


def cmd_tag_store(args) -> int:
    with contextlib.closing(_backend(args)) as backend:
        report = backend.tag_store(args.tags or None, include_occluded=args.include_occluded)
    if args.json:
        _print_json(_plain(report))
        return 0
    print(f"{report.faces} faces in the store{_left_out(report)}")
    for tag in report.tags:
        print(f"\n{tag}: {report.tagged[tag]} faces")
        for p in (p for p in report.persons if p.tag == tag):
            print(f"  {_person_label(p.person_id, p.person_name):<24} {p.tagged:>7}/{p.faces:<7} "
                  f"{100 * p.rate:5.1f}%  best face {p.best_face_id} ({p.best_distance:.3f})")
    return 0


def _left_out(report) -> str:
    n = int(getattr(report, "occluded_left_out", 0) or 0)
    return f"; {n} occluded face{'s' if n != 1 else ''} left out (--include-occluded counts them)" if n else ""


def _print_clusters(clusters) -> None:
    print(f"{'#':>3} {'size':>7} {'share':>7}  representative face (distance to centre)")
    for c in clusters:
        print(f"{c.index:>3} {c.size:>7} {100 * c.share:>6.1f}%  {c.representative_face_id} "
              f"({c.representative_distance:.3f})")


def cmd_summary(args) -> int:
    with contextlib.closing(_backend(args)) as backend:
        summary, thumbs = backend.summarize(args.person, args.method, args.k, args.seed, bool(args.sheet),
                                            include_occluded=args.include_occluded)
    if args.sheet:
        from mien.clients.analytics_pictures import summary_sheet_png

        summary_sheet_png(summary, thumbs, args.sheet)
    if args.json:
        _print_json(_plain(summary))
    else:
        who = _person_label(summary.person_id, summary.person_name)
        print(f"{who}: {summary.faces} faces, {summary.method} k={summary.k} "
              f"(asked {summary.k_requested}), seed {summary.seed}{_left_out(summary)}")
        _print_clusters(summary.clusters)
    if args.sheet:
        print(f"sheet written to {args.sheet}", file=sys.stderr)
    return 0


def cmd_clusters(args) -> int:
    with contextlib.closing(_backend(args)) as backend:
        result, thumbs = backend.cluster_store(args.k, args.sample, args.seed, bool(args.sheet),
                                               include_occluded=args.include_occluded)
    if args.sheet:
        from mien.clients.analytics_pictures import summary_sheet_png

        summary_sheet_png(result, thumbs, args.sheet, columns=10, cell=120)
    if args.json:
        _print_json(_plain(result))
    else:
        print(f"{result.sampled} of {result.faces} faces in {result.k} clusters "
              f"(asked {result.k_requested}){_left_out(result)}")
        _print_clusters(result.clusters)
    if args.sheet:
        print(f"sheet written to {args.sheet}", file=sys.stderr)
    return 0


# ------------------------------------------------------------------ parsers


def _connection(parser: argparse.ArgumentParser) -> None:
    from mien.clients.connection import add_connection_args

    add_connection_args(parser)
    parser.add_argument("--store", default=None, metavar="DIR",
                        help="work on this store directory in-process instead of a server")


def register(subparsers) -> None:
    tag = subparsers.add_parser("tag", help="custom expression tags: create, list, delete, run on a video")
    tag_sub = tag.add_subparsers(dest="tag_command", metavar="ACTION")
    tag.set_defaults(func=lambda args: (tag.print_help(), 2)[1])

    p = tag_sub.add_parser("create", help="create a tag from reference faces (nothing is retrained)")
    p.add_argument("name")
    p.add_argument("--image", action="append", metavar="PATH", help="reference photo (repeatable)")
    p.add_argument("--face-index", type=int, default=None,
                   help="which face of a multi-face --image, left to right from 0")
    p.add_argument("--face-id", action="append", type=int, metavar="N",
                   help="an indexed face as reference (repeatable)")
    p.add_argument("--threshold", type=float, default=None,
                   help="squared-L2 distance threshold (default 0.5)")
    p.add_argument("--replace", action="store_true", help="overwrite a tag of the same name")
    _connection(p)
    g = p.add_argument_group("models (with --store: where the store's model files are now, checked by hash)")
    for key in MODEL_FLAGS:
        g.add_argument("--" + key.replace("_", "-"), metavar="PATH", default=None)
    p.set_defaults(func=cmd_tag_create)

    p = tag_sub.add_parser("list", help="list tags")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _connection(p)
    p.set_defaults(func=cmd_tag_list)

    p = tag_sub.add_parser("delete", help="delete a tag")
    p.add_argument("name")
    _connection(p)
    p.set_defaults(func=cmd_tag_delete)

    p = tag_sub.add_parser("run", help="tag one indexed video: segments and appearance rates per person")
    p.add_argument("--source", required=True, metavar="URI", help="the source as indexed (file path)")
    p.add_argument("--tags", nargs="+", default=None, metavar="NAME", help="tags to apply (default all)")
    p.add_argument("--max-gap-ms", type=int, default=None,
                   help="split segments at gaps longer than this (default 2 sample periods; <0 never)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--timeline", default=None, metavar="OUT.png", help="write a timeline picture")
    p.add_argument("--include-occluded", action="store_true",
                   help="also use faces FaceQA flagged as occluded (a hand or mask over the mouth; left out by default)")
    _connection(p)
    p.set_defaults(func=cmd_tag_run)

    p = tag_sub.add_parser("store", help="apply tags to the whole store: which persons show them, how often")
    p.add_argument("--tags", nargs="+", default=None, metavar="NAME", help="tags to apply (default all)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--include-occluded", action="store_true",
                   help="also use faces FaceQA flagged as occluded (a hand or mask over the mouth; left out by default)")
    _connection(p)
    p.set_defaults(func=cmd_tag_store)

    p = subparsers.add_parser("summary", help="dominant expressions of one person (k-means or Ward)")
    p.add_argument("--person", required=True, help="person name or id")
    p.add_argument("--method", choices=["kmeans", "ward"], default="kmeans",
                   help="k-means (K clusters) or agglomerative Ward clustering")
    p.add_argument("-k", type=int, default=None, help="clusters (default 8 for kmeans, 10 for ward)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the clustering (same seed, same answer)")
    p.add_argument("--sheet", default=None, metavar="OUT.png", help="write a contact sheet")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--include-occluded", action="store_true",
                   help="also use faces FaceQA flagged as occluded (a hand or mask over the mouth; left out by default)")
    _connection(p)
    p.set_defaults(func=cmd_summary)

    p = subparsers.add_parser("clusters", help="corpus-wide expression clusters")
    p.add_argument("-k", type=int, default=100, help="clusters (default %(default)s)")
    p.add_argument("--sample", type=int, default=0, help="cluster at most this many faces (default 200000)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the clustering (same seed, same answer)")
    p.add_argument("--sheet", default=None, metavar="OUT.png", help="write a contact sheet")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--include-occluded", action="store_true",
                   help="also use faces FaceQA flagged as occluded (a hand or mask over the mouth; left out by default)")
    _connection(p)
    p.set_defaults(func=cmd_clusters)
