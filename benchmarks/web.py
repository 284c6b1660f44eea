"""Web JSON API vs gRPC: the same calls to one `mien serve --http` server.

    .venv/bin/python benchmarks/web.py --n 1000 --out bench-out/web.json

Builds (or reuses, --store DIR) a small store indexed from the package photos,
starts `mien serve` in a subprocess with gRPC and the web app (--http) on
127.0.0.1, and measures from this process, one call at a time:
- a face-id expression search, top 10: gRPC (mien.clients.Client, the
  baseline) and POST /v1/Mien/SearchExpression (JSON, one keep-alive
  http.client connection);
- Stats: gRPC and GET /v1/stats.
Each HTTP figure is given as a ratio to its gRPC counterpart. The calls are
alternated in rounds so that a slow spell of the machine falls on all alike.

Then, on the same store:
- the first image query (obama.jpg, 640x480-ish, one face, exclude own person,
  explained, with thumbnails: what the web app sends) against the warm ones,
  over gRPC and over HTTP (after one Stats call has opened the connection),
  each on a server of its own: started as `mien serve`
  starts (models loaded before health says SERVING) and, as the baseline,
  with --lazy-models (what every server did before: models load on the
  first image query). The goal: first <= 2x warm.
- JSON calls (GET /v1/stats, POST SearchExpression by face id) p50/p99 with
  200 idle keep-alive connections open against the same calls with none
  (ratio = with / without), and whether the server still held all 200 at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# benchmarks/ holds a grpc.py: drop this directory from sys.path so that
# `import grpc` (in mien's client) finds the real package, not that script.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(ROOT))

from benchmarks.common import (  # noqa: E402
    free_port, percentiles_ms, print_table, start_mien_serve, stop_process, write_json)


def build_photo_store(store_dir: Path, media: Path) -> None:
    """Every package photo written under `media` and indexed by the real indexer."""
    import cv2

    from mien.demo import photos
    from mien.indexer import IndexOptions, index_paths

    media.mkdir(parents=True, exist_ok=True)
    images = {"t1.jpg": photos.t1(), "astronaut.png": photos.astronaut(), "grace_hopper.jpg": photos.grace_hopper()}
    for name in ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"):
        images[name] = photos.face_recognition_photo(name)
    for name, image in images.items():
        if not cv2.imwrite(str(media / name), image):
            raise OSError(f"cannot write {media / name}")
    summary = index_paths([str(media)], str(store_dir), options=IndexOptions(workers=1, show_progress=False))
    if summary.failed_count:
        raise RuntimeError(f"indexing the package photos failed: {summary.failures}")


def start_server(store_dir: Path, grpc_port: int, http_port: int, front: str, log_path: Path,
                 flags=()) -> subprocess.Popen:
    """`mien serve --http` in a subprocess; returns once health says SERVING and HTTP answers."""

    def http_answers() -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=2)
        try:
            conn.request("GET", "/v1/stats")
            return conn.getresponse().status == 200
        finally:
            conn.close()

    return start_mien_serve(["--store", str(store_dir), "--host", "127.0.0.1", "--port", str(grpc_port),
                             "--http", str(http_port), "--front", front, *flags], grpc_port, log_path, ROOT,
                            ready=http_answers)


class JsonApi:
    """One keep-alive HTTP/1.1 connection to the web server's JSON API."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, method: str, path: str, body: bytes | None = None) -> bytes:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        self.conn.request(method, path, body=body, headers=headers)
        r = self.conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError(f"{method} {path}: HTTP {r.status}: {data[:300]!r}")
        return data

    def close(self) -> None:
        self.conn.close()


def measure(calls: dict, n: int, warmup: int = 50, rounds: int = 4) -> dict[str, list[float]]:
    """Seconds per call for each named zero-argument function, alternated in `rounds`."""
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    out: dict[str, list[float]] = {name: [] for name in calls}
    per_round = -(-n // rounds)
    for r in range(rounds):
        m = min(per_round, n - r * per_round)
        for name, fn in calls.items():
            ts = out[name]
            for _ in range(m):
                t = time.perf_counter()
                fn()
                ts.append(time.perf_counter() - t)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="timed calls of each kind (default %(default)s)")
    ap.add_argument("--store", default=None,
                    help="reuse the store here, or build one from the package photos there (default: a temp dir)")
    ap.add_argument("--face-id", type=int, default=None, help="query face (default: the first face of the store)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--front", choices=("auto", "native", "python"), default="auto",
                    help="the server's gRPC front (default %(default)s)")
    ap.add_argument("--transport", choices=("auto", "native", "python"), default="auto",
                    help="the gRPC client's transport (default %(default)s)")
    ap.add_argument("--warm-n", type=int, default=20, help="warm image queries after the first (default %(default)s)")
    ap.add_argument("--out", default=None, help="write JSON results here")
    args = ap.parse_args(argv)
    if args.n < 1:
        ap.error("--n must be at least 1")

    from mien.clients.client import Client
    from mien.v1 import common_pb2, search_pb2

    tmp = tempfile.TemporaryDirectory(prefix="mien-web-bench-")
    store_dir = Path(args.store) if args.store else Path(tmp.name) / "store"
    if not (store_dir.exists() and any(store_dir.iterdir())):
        t = time.perf_counter()
        build_photo_store(store_dir, Path(tmp.name) / "photos")
        print(f"indexed the package photos into {store_dir} in {time.perf_counter() - t:.1f}s", file=sys.stderr)

    grpc_port, http_port = free_port(), free_port()
    log_path = Path(tmp.name) / "server.log"
    proc = start_server(store_dir, grpc_port, http_port, args.front, log_path)
    api = JsonApi(http_port)
    try:
        with Client(f"127.0.0.1:{grpc_port}", transport=args.transport) as client:
            n_faces = client.stats().faces
            face_id = args.face_id
            if face_id is None:
                face_id = first_face_id(client)
                if face_id is None:
                    raise SystemExit(f"benchmarks/web.py: error: the store {store_dir} has no faces 1..1000; "
                                     "pass --face-id")
            request = search_pb2.SearchExpressionRequest(query=common_pb2.FaceQuery(face_id=face_id), top_k=args.k)
            body = json.dumps({"query": {"face_id": face_id}, "top_k": args.k}).encode()
            stats_request = search_pb2.StatsRequest()

            # the same query answers the same faces on both APIs
            try:
                grpc_ids = [h.face_id for h in client._search_raw(request).hits]
            except Exception as exc:  # noqa: BLE001 - a clear message for a bad --face-id
                raise SystemExit(f"benchmarks/web.py: error: face {face_id}: {exc}") from None
            http_ids = [int(h["face_id"]) for h in json.loads(api.call("POST", "/v1/Mien/SearchExpression", body))["hits"]]
            if sorted(grpc_ids) != sorted(http_ids):
                raise RuntimeError(f"gRPC and HTTP disagree: {grpc_ids} vs {http_ids}")

            calls = {
                "search grpc": lambda: client._search_raw(request),
                "search http-json": lambda: api.call("POST", "/v1/Mien/SearchExpression", body),
                "stats grpc": lambda: client._call("Stats", stats_request, None),
                "stats http GET /v1/stats": lambda: api.call("GET", "/v1/stats"),
            }
            times = measure(calls, args.n)
            transport = client.transport
            idle_rows, still_open = with_idle_connections(http_port, face_id, args.k, args.n)
        front = _front_of(log_path)
    finally:
        api.close()
        stop_process(proc)
    rows = []
    for name, ts in times.items():
        kind, via = name.split(" ", 1)
        rows.append({"call": kind, "via": via, **percentiles_ms(ts)})
    base = {r["call"]: r for r in rows if r["via"] == "grpc"}
    for r in rows:
        b = base[r["call"]]
        r["p50_ratio"] = r["p50_ms"] / b["p50_ms"]
        r["p99_ratio"] = r["p99_ms"] / b["p99_ms"]
    from mien.demo import photos
    import cv2

    ok, jpeg = cv2.imencode(".jpg", photos.face_recognition_photo("obama.jpg"))
    first_rows = first_and_warm(store_dir, Path(tmp.name), args.front, args.transport, jpeg.tobytes(), args.k,
                                args.warm_n)
    tmp.cleanup()

    print(f"{n_faces} faces, query face {face_id}, top {args.k}, {args.n} calls each; "
          f"server front {front}, client transport {transport}; ratio = / gRPC")
    print_table(rows, ["call", "via", "p50_ms", "p99_ms", "p50_ratio", "p99_ratio"])
    print(f"\nJSON calls with 200 idle keep-alive connections open (ratio = with / without); "
          f"{still_open} of 200 still open at the end")
    print_table(idle_rows, list(idle_rows[0].keys()))
    print(f"\nfirst image query (obama.jpg, explained, thumbnails, exclude own person) vs the next {args.warm_n}; "
          "each on a server of its own")
    print_table(first_rows, ["server", "via", "first_ms", "warm_p50_ms", "first_over_warm"])
    write_json(args.out, {"faces": n_faces, "face_id": face_id, "k": args.k, "n": args.n,
                          "front": front, "transport": transport, "store_was_temp": not args.store,
                          "rows": rows,
                          "http_over_grpc_search_p50": rows[1]["p50_ratio"],
                          "http_over_grpc_stats_p50": rows[3]["p50_ratio"],
                          "idle_connections": {"rows": idle_rows, "still_open": still_open},
                          "first_image_query": first_rows})
    return 0


def image_request(image: bytes, k: int) -> tuple[object, bytes]:
    """The web app's image query as a gRPC request and as its JSON body."""
    import base64

    from mien.v1 import common_pb2, search_pb2

    request = search_pb2.SearchExpressionRequest(
        query=common_pb2.FaceQuery(image=common_pb2.ImageInput(data=image), face_index=0, exclude_own_person=True),
        top_k=k, include_thumbnails=True, explain=True)
    body = json.dumps({"query": {"image": {"data": base64.b64encode(image).decode()}, "face_index": 0,
                                 "exclude_own_person": True},
                       "top_k": k, "include_thumbnails": True, "explain": True}).encode()
    return request, body


def first_and_warm(store_dir: Path, tmp: Path, front: str, transport: str, image: bytes, k: int,
                   warm_n: int) -> list[dict]:
    """First vs warm image query, over each API, on servers started with and without loading models."""
    from mien.clients.client import Client
    from mien.v1 import search_pb2

    request, body = image_request(image, k)
    rows = []
    for start in ("models at start", "--lazy-models"):
        for via in ("grpc", "http-json"):
            grpc_port, http_port = free_port(), free_port()
            flags = ["--lazy-models"] if start == "--lazy-models" else []
            proc = start_server(store_dir, grpc_port, http_port, front, tmp / f"first-{via}-{grpc_port}.log", flags)
            api = JsonApi(http_port)
            try:
                with Client(f"127.0.0.1:{grpc_port}", transport=transport) as client:
                    # the connection is made by a cheap call first: the first query's time is the server's
                    if via == "grpc":
                        client._call("Stats", search_pb2.StatsRequest(), None)
                        call = lambda: client._search_raw(request)  # noqa: E731
                    else:
                        api.call("GET", "/v1/stats")
                        call = lambda: api.call("POST", "/v1/Mien/SearchExpression", body)  # noqa: E731
                    t = time.perf_counter()
                    call()
                    first = time.perf_counter() - t
                    warm = []
                    for _ in range(warm_n):
                        t = time.perf_counter()
                        call()
                        warm.append(time.perf_counter() - t)
            finally:
                api.close()
                stop_process(proc)
            warm_p50 = percentiles_ms(warm)["p50_ms"]
            rows.append({"server": start, "via": via, "first_ms": first * 1000, "warm_p50_ms": warm_p50,
                         "first_over_warm": first * 1000 / warm_p50})
    return rows


def with_idle_connections(http_port: int, face_id: int, k: int, n: int, idle: int = 200) -> tuple[list[dict], int]:
    """p50/p99 of JSON calls without, then with `idle` keep-alive connections open; and how many stayed open."""
    body = json.dumps({"query": {"face_id": face_id}, "top_k": k}).encode()
    api = JsonApi(http_port)
    calls = {"stats": lambda: api.call("GET", "/v1/stats"),
             "search": lambda: api.call("POST", "/v1/Mien/SearchExpression", body)}
    try:
        without = measure(calls, n, warmup=20, rounds=1)
        held = []
        for _ in range(idle):  # each makes a request, then idles on keep-alive
            conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=30)
            conn.request("GET", "/v1/session")
            conn.getresponse().read()
            held.append(conn)
        held_at = time.monotonic()
        with_idle = measure(calls, n, warmup=20, rounds=1)
        still_open = 0
        for conn in held:  # one the server closed fails here (http.client does not reconnect a used socket)
            try:
                conn.request("GET", "/v1/session")
                conn.getresponse().read()
                still_open += 1
            except (OSError, http.client.HTTPException) as exc:
                print(f"an idle connection was closed after {time.monotonic() - held_at:.1f}s: {exc!r}",
                      file=sys.stderr)
            conn.close()
    finally:
        api.close()
    rows = []
    for name in calls:
        a, b = percentiles_ms(without[name]), percentiles_ms(with_idle[name])
        rows.append({"call": name, "p50_ms_none": a["p50_ms"], "p99_ms_none": a["p99_ms"],
                     f"p50_ms_{idle}_idle": b["p50_ms"], f"p99_ms_{idle}_idle": b["p99_ms"],
                     "p50_ratio": b["p50_ms"] / a["p50_ms"], "p99_ratio": b["p99_ms"] / a["p99_ms"]})
    return rows, still_open


def first_face_id(client, limit: int = 1000) -> int | None:
    """The lowest face id in the store (ids start at 1; deleted ones leave gaps)."""
    from mien.clients.errors import MienError

    for face_id in range(1, limit + 1):
        try:
            client.get_face(face_id)
            return face_id
        except MienError:
            continue
    return None


def _front_of(log_path: Path) -> str:
    """The gRPC front the server reports in its start-up line ("... (native front, ...")."""
    text = log_path.read_text(errors="replace")
    for front in ("native", "python"):
        if f"({front} front" in text:
            return front
    return "unknown"


if __name__ == "__main__":
    sys.exit(main())
