"""`mien search | cross | identity | stats | persons`: query a running server."""

from __future__ import annotations

import argparse
import json
import sys

from mien.clients.commands.connection import add_connection_args, client_from_args
from mien.filenames import shown
from mien.results.tables import print_persons, print_table


def _connection_args(p: argparse.ArgumentParser) -> None:
    add_connection_args(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _query_args(p: argparse.ArgumentParser, *, sheet: bool = True) -> None:
    q = p.add_mutually_exclusive_group(required=True)
    q.add_argument("--image", help="query image file")
    q.add_argument("--face-id", type=int, help="an indexed face as the query")
    q.add_argument("--vector", help="a raw vector as comma-separated floats")
    p.add_argument("--face-index", type=int, default=None,
                   help="which face of a multi-face image (0-based, left to right)")
    p.add_argument("-k", "--top-k", type=positive_int, default=10, help="number of hits (default %(default)s)")
    if sheet:
        p.add_argument("--sheet", metavar="OUT.png", help="also write a contact sheet of query + hits")
    p.add_argument("--max-distance", type=float, default=None, metavar="D",
                   help="no hit farther than D (squared L2); says so when nothing is that close")
    p.add_argument("--distinct", choices=("none", "track", "source"), default="none",
                   help="at most one hit per track (a person followed through a video) or per source file")


def _scope_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", action="append", default=[], metavar="PATH|URI",
                   help="only faces from this source (repeatable); a local path is made absolute with "
                        "links resolved, the way the indexer stores it")
    p.add_argument("--start", type=seconds, default=None, metavar="SECONDS",
                   help="only faces at or after this time in their video (stills are at 0)")
    p.add_argument("--end", type=seconds, default=None, metavar="SECONDS",
                   help="only faces before this time in their video")
    p.add_argument("--exclude-occluded", action="store_true",
                   help="leave out faces FaceQA flagged as occluded (a hand or a mask over the mouth)")


def register(subparsers) -> None:
    p = subparsers.add_parser("search", help="faces making the query face's expression")
    _query_args(p)
    p.add_argument("--person", action="append", default=[], metavar="NAME|ID",
                   help="only faces of this person (repeatable)")
    p.add_argument("--exclude-person", action="append", default=[], metavar="NAME|ID",
                   help="never faces of this person (repeatable)")
    _scope_args(p)
    p.add_argument("--exclude-own", action="store_true", help="leave out the query's own person")
    _connection_args(p)
    p.set_defaults(func=run_search)

    p = subparsers.add_parser("cross", help="faces of PERSON making the query face's expression")
    _query_args(p)
    p.add_argument("--person", required=True, metavar="NAME|ID", help="the person to search among")
    _scope_args(p)
    _connection_args(p)
    p.set_defaults(func=run_cross)

    p = subparsers.add_parser("identity", help="faces of the same person as the query face")
    _query_args(p)
    _scope_args(p)
    _connection_args(p)
    p.set_defaults(func=run_identity)

    p = subparsers.add_parser("stats", help="what a server's store holds")
    _connection_args(p)
    p.set_defaults(func=run_stats)

    p = subparsers.add_parser("persons", help="list the persons a server knows")
    _connection_args(p)
    p.set_defaults(func=run_persons)


# -- plumbing ------------------------------------------------------------------------
def _client(args):
    return client_from_args(args)


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1 (-k 0 would ask for nothing)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def seconds(text: str) -> float:
    """argparse type: seconds as 12.5 or M:SS(.fff) (as the tables print times)."""
    try:
        parts = [float(p) for p in text.split(":")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time (seconds, or M:SS)") from None
    value = 0.0
    for part in parts:
        value = value * 60 + part
    if value < 0 or len(parts) > 3:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time (seconds, or M:SS)")
    return value


def source_uri(value: str) -> str:
    """A --source as the indexer stores it: a local path absolute with links resolved; a URI
    (scheme://...) as given."""
    import os

    if "://" in value:
        return value
    return os.path.realpath(os.path.expanduser(value))


def _time_range(args):
    if args.start is None and args.end is None:
        return None
    if args.end is not None and args.start is not None and args.end <= args.start:
        from mien.errors import BadInputError

        raise BadInputError(f"--end {args.end:g} is not after --start {args.start:g}")
    # end 0 means "open" in the contract (TimeRange.end_ms)
    return (int(round((args.start or 0) * 1000)), None if args.end is None else int(round(args.end * 1000)))


def _person(value: str):
    return int(value) if value.lstrip("-").isdigit() else value


def _query(args):
    if args.image:
        return args.image
    if args.face_id is not None:
        return args.face_id
    import numpy as np

    return np.array([float(v) for v in args.vector.split(",")], dtype=np.float32)


def _grpc_errors(func):
    """Print a server error as one line (status: message, a hint when no server answers)
    instead of a traceback; a refused query image is named."""
    def wrapper(args):
        import grpc

        from mien.clients.commands.error_lines import rpc_error_line

        try:
            return func(args)
        except grpc.RpcError as exc:
            line = rpc_error_line(exc, getattr(args, "server", None))
            if getattr(args, "image", None) and exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                line += f" (query image {args.image})"
            print(f"mien: {line}", file=sys.stderr)
            return 1
    return wrapper


def _time(ms: int) -> str:
    s = ms / 1000.0
    return f"{int(s // 60)}:{s % 60:06.3f}"


def _quality_json(q) -> dict:
    if q is None:
        return {}
    return {"quality": {"passed": q.passed, "reason": q.reason, "explanation": q.explanation,
                        "sharpness": round(q.sharpness, 3), "yaw": round(q.yaw, 1), "pitch": round(q.pitch, 1),
                        "roll": round(q.roll, 1), "occluded": q.occluded, "occlusion": round(q.occlusion, 2)}}


def _emit_result(args, result, title: str) -> int:
    q = result.query.quality
    if q is not None and q.explanation:  # the query face would have been rejected, or is covered
        print(f"note: query face: {q.explanation}", file=sys.stderr)
    if args.json:
        print(json.dumps({
            "query": {"face_id": result.query.face_id, "person_id": result.query.person_id,
                      "face_index": result.query.face_index,
                      "faces_in_image": len(result.query.faces),
                      "bbox": result.query.bbox, "vector": result.query.vector.round(5).tolist(),
                      **_quality_json(q)},
            "elapsed_ms": round(result.elapsed_ms, 3),
            "beyond_max_distance": result.beyond_max_distance,
            "nearest_beyond_distance": (None if result.nearest_beyond_distance is None
                                        else round(result.nearest_beyond_distance, 5)),
            "hits": [{"rank": i, "face_id": h.face_id, "distance": round(h.distance, 5),
                      "person_id": h.person_id, "person": h.person_name,
                      "source": h.source_uri, "timestamp_ms": h.timestamp_ms,
                      "frame_index": h.frame_index, "bbox": [round(v, 1) for v in h.bbox],
                      "occluded": h.occluded, "occlusion": round(h.occlusion, 2),
                      **_why_json(h)}
                     for i, h in enumerate(result.hits, 1)],
        }, indent=2))
    else:
        why = any(h.agreeing or h.differing for h in result.hits)
        print_table(
            ["#", "distance", "face", "person", "time", "source"]
            + (["why: shared (query/hit); differs (query vs hit)"] if why else []),
            [[i, f"{h.distance:.4f}", h.face_id,
              h.person_name or (h.person_id if h.person_id >= 0 else "-"), _time(h.timestamp_ms),
              shown(h.source_uri)] + ([_why(h)] if why else []) for i, h in enumerate(result.hits, 1)],
        )
        if result.beyond_max_distance:
            what = "no face" if not result.hits else "no further face"
            print(f"({what} within distance {args.max_distance:g}; the nearest beyond is at "
                  f"{result.nearest_beyond_distance:.4f})")
        elif not result.hits:
            print("(no hits)")
    if getattr(args, "sheet", None):
        _write_sheet(args, result, title)
    return 0


def _why(hit, top: int = 2) -> str:
    """The top reasons a hit matched: components both faces show, and those that differ most."""
    shared = ", ".join(f"{m.name} {m.query_value:.2f}/{m.hit_value:.2f}" for m in hit.agreeing[:top])
    differs = ", ".join(f"{m.name} {m.query_value:.2f} vs {m.hit_value:.2f}" for m in hit.differing[:top])
    return f"{shared or '-'}; differs: {differs or '-'}"


def _why_json(hit) -> dict:
    if not (hit.components or hit.agreeing or hit.differing):
        return {}

    def rows(matches):
        return [{"name": m.name, "kind": m.kind, "query": round(m.query_value, 4), "hit": round(m.hit_value, 4),
                 "share": round(m.share, 4)} for m in matches]

    return {"components": {k: round(v, 4) for k, v in hit.components.items()},
            "agreeing": rows(hit.agreeing), "differing": rows(hit.differing)}


def _write_sheet(args, result, title: str) -> None:
    from mien.clients.contact_sheet import crop_face, make_sheet

    face = None
    if args.image and result.query.bbox is not None:
        import cv2
        import numpy as np

        image = cv2.imdecode(np.fromfile(args.image, np.uint8), cv2.IMREAD_COLOR)
        if image is not None:
            face = crop_face(image, result.query.bbox)
    elif args.face_id is not None:
        import cv2
        import numpy as np

        with _client(args) as c:
            thumb = c.get_face(args.face_id).thumbnail
        face = cv2.imdecode(np.frombuffer(thumb, np.uint8), cv2.IMREAD_COLOR) if thumb else None
    path = make_sheet(face, result.hits, args.sheet, title=title)
    print(f"contact sheet: {path}", file=sys.stderr)


# -- commands ---------------------------------------------------------------------------
@_grpc_errors
def run_search(args) -> int:
    with _client(args) as c:
        result = c.search(_query(args), k=args.top_k, face_index=args.face_index,
                          persons=[_person(p) for p in args.person],
                          exclude_persons=[_person(p) for p in args.exclude_person],
                          sources=[source_uri(s) for s in args.source], time_range=_time_range(args),
                          exclude_own_person=args.exclude_own, max_distance=args.max_distance,
                          distinct=args.distinct, thumbnails=bool(args.sheet), explain=True,
                          exclude_occluded=args.exclude_occluded)
    return _emit_result(args, result, "expression search")


@_grpc_errors
def run_cross(args) -> int:
    with _client(args) as c:
        result = c.cross(_query(args), _person(args.person), k=args.top_k, face_index=args.face_index,
                         sources=[source_uri(s) for s in args.source], time_range=_time_range(args),
                         max_distance=args.max_distance, distinct=args.distinct,
                         thumbnails=bool(args.sheet), explain=True, exclude_occluded=args.exclude_occluded)
    return _emit_result(args, result, f"{args.person} making the query's expression")


@_grpc_errors
def run_identity(args) -> int:
    with _client(args) as c:
        result = c.identity(_query(args), k=args.top_k, face_index=args.face_index,
                            sources=[source_uri(s) for s in args.source], time_range=_time_range(args),
                            max_distance=args.max_distance, distinct=args.distinct,
                            thumbnails=bool(args.sheet), exclude_occluded=args.exclude_occluded)
    return _emit_result(args, result, "same person")


@_grpc_errors
def run_stats(args) -> int:
    with _client(args) as c:
        s = c.stats()
    if args.json:
        print(json.dumps(s.__dict__, indent=2))
        return 0
    rows = [[k, getattr(s, k)] for k in ("faces", "sources", "persons", "tags", "shards", "bytes")]
    rows += [[f"encoder.{k}", v] for k, v in sorted(s.encoders.items())]
    print_table(["stat", "value"], rows)
    return 0


@_grpc_errors
def run_persons(args) -> int:
    with _client(args) as c:
        persons = c.persons()
    print_persons([(p.person_id, p.name, p.face_count) for p in persons], args.json)
    return 0
