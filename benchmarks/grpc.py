"""gRPC benchmark: vector queries through the server vs in-process on the same store.

    .venv/bin/python benchmarks/grpc.py --n 1000000 --out bench-out/grpc.json

Builds (or reuses, --store DIR) a store of --n synthetic faces, starts
`mien serve` in a subprocess, and measures
- an empty round trip (health Check): the floor any RPC pays;
- vector SearchExpression p50/p99 with 1 client, QPS with 16 client threads;
- the same searches in-process on a Store reader of the same directory (ratio),
  bare and with the hit records the server returns;
- an image query at 640x480: decode / detect / encode / search in-process,
  and the end-to-end gRPC image query, back to back and each after 10 ms idle
  (as a person or a page sends them).

Each is measured for every stack (--stacks FRONT/TRANSPORT: the server's
front, "native" = gRPC C++ calling mien's handlers, "python" = grpcio's
server; the Client's transport for unary calls, likewise) in every CPU
layout (--layouts): "shared" (a default `mien
serve`) lets the scheduler place server and client; "pinned" runs the server
with `--cpus <last CPU>` and this client on the other CPUs, as separate
machines would be; "pinned-awake" adds `--keep-cpus-awake` (only where
/dev/cpu_dma_latency is writable). The first stack in the first layout gives
the JSON's top-level figures; all are under "layouts", keyed "<front>/<transport> <layout>".

--baseline-src DIR measures the mien tree at DIR on the same store too, and then
runs both trees' servers at once, their image queries in alternated rounds
(--rounds): the machine's speed drifts too much for one tree measured after the
other to say which is faster.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# This file is named grpc.py: drop its own directory from sys.path so that
# `import grpc` finds the real package, not this script.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(ROOT))

from benchmarks.common import free_port, start_mien_serve, stop_process  # noqa: E402


def pct(values, q):
    return float(np.percentile(np.asarray(values), q))


def unit_vectors(n: int, rng) -> np.ndarray:
    v = rng.standard_normal((n, 16)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def build_store(store_dir: Path, n: int, batch: int = 50_000, seed: int = 0, identity: str | None = None) -> None:
    """n synthetic faces in sources of `batch` faces; 1 % of them in one person. identity: the
    identity model the store names (default: the engine's), e.g. one a --baseline-src tree knows."""
    from tqdm import tqdm

    from mien.engine.store import FaceRecord, SourceRecord, Store

    rng = np.random.default_rng(seed)
    from mien.engine.faces import EngineConfig, FaceAnalyzer

    # the default engine's encoder names, so the server accepts image queries on this store
    encoders = FaceAnalyzer(EngineConfig() if identity is None else EngineConfig(identity=identity)).encoders
    lm = np.zeros((5, 2), np.float32)
    person_ids = []
    with Store(store_dir, mode="w", encoders=encoders) as store:
        with tqdm(total=n, desc="synthetic faces", unit="face") as bar:
            for start in range(0, n, batch):
                m = min(batch, n - start)
                vecs = unit_vectors(m, rng)
                uri = f"synthetic://video{start // batch:05d}.mp4"
                faces = [FaceRecord(source_uri=uri, frame_index=i, timestamp_ms=i * 500,
                                    bbox=(10.0, 10.0, 90.0, 90.0), landmarks5=lm, det_score=0.99,
                                    sharpness=10.0, yaw=0.0, pitch=0.0, roll=0.0,
                                    expression=vecs[i], pooled=vecs[i], identity=None)
                         for i in range(m)]
                ids = store.replace_source(
                    SourceRecord(uri=uri, fingerprint=uri, kind="video", status="done",
                                 face_count=m, frames=m), faces)
                person_ids.extend(ids[:: 100])
                bar.update(m)
        pid = store.add_person("synthetic-1pct", unit_vectors(1, rng)[0].repeat(8))
        store.set_faces_person(person_ids, pid)
        if hasattr(store, "rebuild_shards"):
            store.rebuild_shards()


def start_server(store_dir: Path, port: int, log_path: Path, cpus: set[int] | None = None,
                 awake: bool = False, front: str = "auto", src: Path = ROOT) -> subprocess.Popen:
    """`mien serve` of the mien tree at src (this one by default), once health says SERVING."""
    cmd = ["--store", str(store_dir), "--port", str(port), "--front", front]
    if cpus:
        cmd += ["--cpus", ",".join(str(c) for c in sorted(cpus))]
    if awake:
        cmd += ["--keep-cpus-awake"]
    return start_mien_serve(cmd, port, log_path, src)


def time_calls(fn, args_list) -> list[float]:
    out = []
    for a in args_list:
        t = time.perf_counter()
        fn(a)
        out.append((time.perf_counter() - t) * 1000.0)
    return out


# A person or a page sends image queries with pauses between them, not back to back: the
# server's threads and CPUs are idle when one arrives. The paced figures leave this gap first.
QUERY_GAP_S = 0.01


def time_paced(fn, args_list, gap: float = QUERY_GAP_S) -> list[float]:
    """time_calls, each call after `gap` seconds of idle."""
    out = []
    for a in args_list:
        time.sleep(gap)
        out += time_calls(fn, [a])
    return out


LAYOUTS = ("shared", "pinned", "pinned-awake")
# what --vector-only leaves unmeasured (NaN in the table and the JSON)
VECTOR_ONLY_BLANKS = {key: float("nan") for key in (
    "grpc_p50_ms_16", "grpc_p99_ms_16", "qps_16", "image_decode_p50_ms", "image_detect_p50_ms",
    "image_encode_p50_ms", "image_search_p50_ms", "image_total_p50_ms", "image_query_p50_ms",
    "image_query_paced_p50_ms", "first_image_query_ms")}


def default_layouts() -> str:
    """pinned-awake needs write access to the PM QoS device (root, usually)."""
    from mien.server.cpus import PM_QOS_DEVICE

    awake = os.access(PM_QOS_DEVICE, os.W_OK)
    return ",".join(x for x in LAYOUTS if awake or x != "pinned-awake")


def default_stacks() -> str:
    """Server front / client transport pairs: what mien runs by default first, then grpcio's
    client on the native front, then grpcio on both ends (the stack before mien.native)."""
    from mien import native

    return "native/native,native/python,python/python" if native.available() else "python/python"


def cpu_layout(layout: str, cpus: set[int]) -> tuple[set[int] | None, set[int] | None]:
    """(server CPUs, benchmark-process CPUs) for a layout; (None, None) = no pinning.

    pinned: the server on the last CPU, the client (this process) on the rest,
    as if they were separate machines; shared: the scheduler places both;
    pinned-awake: pinned, and the server started with --keep-cpus-awake.
    """
    cpus = sorted(cpus)  # all this process may use, whatever the previous layout pinned
    if layout == "shared" or len(cpus) < 2:
        return None, None
    return {cpus[-1]}, set(cpus[:-1])


def measure_vector_queries(store, client, queries, requests, k: int, rounds: int = 4) -> dict:
    """In-process searches (bare, and with the records the server returns), an
    empty RPC and gRPC vector queries, alternated in `rounds` so that a slow
    spell of the machine falls on all of them alike."""
    # Warm every path with every query first: each process maps the LMDB pages a
    # query touches on first use (page faults), and a fresh server or reader
    # would otherwise pay them inside the measurement.
    for q, r in zip(queries, requests):
        store.search(q, k)
        store.search(q, k, records=True)
        client._search_raw(r)
        client.health()
    bare, full, empty, grpc1 = [], [], [], []
    step = -(-len(queries) // rounds)
    for lo in range(0, len(queries), step):
        qs, rs = queries[lo:lo + step], requests[lo:lo + step]
        bare += time_calls(lambda q: store.search(q, k), qs)
        full += time_calls(lambda q: store.search(q, k, records=True), qs)
        # the empty RPC, through the client's own transport (qs only sets the count)
        empty += time_calls(lambda _: client.health(), qs)
        grpc1 += time_calls(client._search_raw, rs)
    # The same in-process search, but after an idle gap like the one between RPCs:
    # an idle CPU halts and the next search starts with cold caches.
    paced = []
    for q in queries[:500]:
        time.sleep(0.0005)
        t = time.perf_counter()
        store.search(q, k, records=True)
        paced.append((time.perf_counter() - t) * 1000.0)
    return {"inproc_search_p50_ms": statistics.median(bare), "inproc_p50_ms": statistics.median(full),
            "inproc_paced_p50_ms": statistics.median(paced),
            "inproc_p99_ms": pct(full, 99), "empty_rpc_p50_ms": statistics.median(empty),
            "grpc_p50_ms": statistics.median(grpc1), "grpc_p99_ms": pct(grpc1, 99),
            "grpc_qps_1": 1000.0 / statistics.mean(grpc1)}


def measure_image_queries(client, image_data: bytes, k: int) -> dict:
    """Image queries over gRPC: the first one the server gets, then 20 back to back and 20 each
    after QUERY_GAP_S idle (p50s)."""
    def search(d):
        return client.search(d, k=k)

    first = time_calls(search, [image_data])[0]
    search(image_data)
    return {"first_image_query_ms": first,
            "image_query_p50_ms": statistics.median(time_calls(search, [image_data] * 20)),
            "image_query_paced_p50_ms": statistics.median(time_paced(search, [image_data] * 20))}


def measure_concurrent(target: str, requests, per_client: int, transport: str, clients: int = 16) -> dict:
    """QPS and latency with `clients` threads, one channel each."""
    from mien.clients.client import Client

    def worker(lat: list):
        with Client(target, transport=transport) as c:
            for r in requests[:per_client]:
                t = time.perf_counter()
                c._search_raw(r)
                lat.append((time.perf_counter() - t) * 1000.0)

    lats = [[] for _ in range(clients)]
    threads = [threading.Thread(target=worker, args=(lat,)) for lat in lats]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    every = [x for lat in lats for x in lat]
    return {"grpc_p50_ms_16": statistics.median(every), "grpc_p99_ms_16": pct(every, 99),
            "qps_16": len(every) / wall}


def query_image() -> bytes:
    """A 640x480 JPEG with one face (the astronaut photo from scikit-image)."""
    import cv2

    from mien.demo import photos

    img = cv2.resize(photos.astronaut(), (480, 480))
    canvas = np.full((480, 640, 3), 127, np.uint8)
    canvas[:, 80:560] = img
    ok, jpeg = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return jpeg.tobytes()


def measure_image_split(store, data: bytes, k: int) -> dict:
    """An image query's stages in-process, as the server runs them (ServerContext._resolve_image):
    decode; detect (the query path: detect_query); encode (FaceQA of the query face with its
    occlusion score, its verdict, the expression vector); search with the hits' records.
    A tree without a query path of its own (--baseline-src before it) runs detect, FaceQA of
    every face and embed_expression, as its server did; one without a helper thread for the
    landmark pass runs its query path in order."""
    from mien.engine.faces import EngineConfig, FaceAnalyzer, load_image
    from mien.engine.faces.query_qa import image_face_verdict

    analyzer = FaceAnalyzer(EngineConfig())
    own_path = hasattr(analyzer, "detect_query")
    in_one_call = hasattr(analyzer, "query_face")
    split = {"decode": [], "detect": [], "encode": [], "search": [], "total": []}
    for i in range(25):
        t = time.perf_counter()
        image = load_image(data)
        t1 = time.perf_counter()
        faces = analyzer.detect_query(image) if own_path else analyzer.detect(image)
        t2 = time.perf_counter()
        face = faces[0]
        if in_one_call:   # the server's own call (the landmark pass on a helper thread)
            analyzer.query_face(image, faces, face)
        elif own_path:
            analyzer.assess(image, [f for f in faces if f is not face], occlusion=False)
            analyzer.assess(image, [face])
            image_face_verdict(image, face, analyzer.config)
            analyzer.embed_query_expression(image, face)
        else:
            analyzer.assess(image, faces)
            image_face_verdict(image, face, analyzer.config)
            analyzer.embed_expression(image, [face])
        t3 = time.perf_counter()
        store.search(face.expression, k, records=True)
        t4 = time.perf_counter()
        if i < 5:
            continue  # the runtimes settle their buffers on the first runs
        for key, a, b in (("decode", t, t1), ("detect", t1, t2), ("encode", t2, t3), ("search", t3, t4),
                          ("total", t, t4)):
            split[key].append((b - a) * 1000.0)
    return {f"image_{key}_p50_ms": statistics.median(v) for key, v in split.items()}


BASELINE_SPLIT = r"""
import json, sys
sys.argv = sys.argv[:1]
from pathlib import Path
import importlib.util
spec = importlib.util.spec_from_file_location("baseline_grpc_bench", Path("benchmarks/grpc.py").resolve())
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)
from mien.engine.store import Store
from mien.server.app import single_threaded_search
single_threaded_search()
data = bench.query_image()
store = Store(sys.stdin.readline().strip(), mode="r")
print(json.dumps(bench.measure_image_split(store, data, 10)))
"""


def baseline_image_split(src: str, store_dir: Path) -> dict:
    """measure_image_split of the mien tree at `src` (its own benchmarks/grpc.py), in a process of
    its own on the same store."""
    env = dict(os.environ, PYTHONPATH=src)
    done = subprocess.run([sys.executable, "-c", BASELINE_SPLIT], cwd=src, env=env, input=f"{store_dir}\n",
                          capture_output=True, text=True, check=True)
    split = json.loads(done.stdout.strip().splitlines()[-1])
    if "image_total_p50_ms" not in split:  # an older benchmark: the sum of its stages' medians
        split["image_total_p50_ms"] = sum(split[f"image_{k}_p50_ms"] for k in ("decode", "detect", "encode", "search"))
    return split


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000, help="synthetic faces (default %(default)s)")
    ap.add_argument("--store", default=None, help="reuse/build the store here (default: a temp dir)")
    ap.add_argument("--queries", type=int, default=2000, help="queries per measurement")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--layouts", default=default_layouts(),
                    help=f"CPU layouts to measure ({', '.join(LAYOUTS)}); the first gives the "
                         "headline figures (default %(default)s)")
    ap.add_argument("--stacks", default=default_stacks(),
                    help="server front / client transport pairs to measure, each in every layout: "
                         "native = gRPC C++ (mien.native), python = grpcio; the first gives the "
                         "headline figures (default %(default)s)")
    ap.add_argument("--out", default=None, help="write JSON results here")
    ap.add_argument("--baseline-src", metavar="DIR", default=None,
                    help="also measure the mien tree at DIR (e.g. `git worktree add /tmp/base HEAD~1`) on "
                         "the same store: its default stack's RPCs and its in-process image split")
    ap.add_argument("--rounds", type=int, default=8,
                    help="with --baseline-src: rounds of 20 image queries to each tree's server, alternated "
                         "(default %(default)s)")
    ap.add_argument("--vector-only", action="store_true",
                    help="only the vector and empty RPCs and the in-process searches (no image queries, no "
                         "concurrent clients): the servicer's per-call cost, in a minute")
    ap.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--store-identity", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.build_only:
        build_store(Path(args.store), args.n, identity=args.store_identity)
        return 0
    layouts = [x.strip() for x in args.layouts.split(",") if x.strip()]
    unknown = set(layouts) - set(LAYOUTS)
    if unknown or not layouts:
        ap.error(f"--layouts takes {', '.join(LAYOUTS)}; got {args.layouts!r}")
    stacks = [tuple(x.strip().split("/")) for x in args.stacks.split(",") if x.strip()]
    if not stacks or any(len(st) != 2 or set(st) - {"native", "python"} for st in stacks):
        ap.error(f"--stacks takes FRONT/TRANSPORT pairs of native, python; got {args.stacks!r}")

    from mien.clients.client import Client
    from mien.engine.store import Store
    from mien.server.app import single_threaded_search
    from mien.server.cpus import pin_to_cpus
    from mien.v1 import common_pb2, search_pb2

    tmp = None
    if args.store:
        store_dir = Path(args.store)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="mien-grpc-bench-")
        store_dir = Path(tmp.name) / "store"
    if not (store_dir.exists() and any(store_dir.iterdir())):
        t = time.perf_counter()
        # built in a child process so that this process measures a fresh reader,
        # exactly like the server's
        # with a baseline tree: an identity model both trees know (dlib's 68-point alignment; a
        # tree before dlib5 refuses a store of 5-point vectors), which no query here computes
        same_identity = ["--store-identity", "dlib"] if args.baseline_src else []
        subprocess.run([sys.executable, __file__, "--build-only", "--store", str(store_dir),
                        "--n", str(args.n), *same_identity], check=True)
        print(f"built store of {args.n} faces in {time.perf_counter() - t:.1f}s", file=sys.stderr)

    if not args.port:
        args.port = free_port()
    rng = np.random.default_rng(1)
    queries = unit_vectors(args.queries, rng)
    requests = [search_pb2.SearchExpressionRequest(
        query=common_pb2.FaceQuery(vector=common_pb2.Vector(values=q.tolist())), top_k=args.k)
        for q in queries]
    image_data = query_image()

    # in-process searches use the server's FAISS threading (one OpenMP thread per call)
    single_threaded_search()
    all_cpus = os.sched_getaffinity(0)
    store = Store(store_dir, mode="r")
    per_layout: dict = {}
    try:
        n_faces = int(store.stats().get("faces", 0))
        for (front, transport), layout in [(st, lay) for st in stacks for lay in layouts]:
            server_cpus, client_cpus = cpu_layout(layout, all_cpus)
            r = {"front": front, "transport": transport, "cpu_layout": layout,
                 "server_cpus": sorted(server_cpus) if server_cpus else None,
                 "client_cpus": sorted(client_cpus) if client_cpus else None}
            log_path = Path(tempfile.gettempdir()) / f"mien-grpc-bench-{os.getpid()}.log"
            pin_to_cpus(all_cpus)  # the server inherits this mask, then pins itself
            proc = start_server(store_dir, args.port, log_path, server_cpus, awake=layout == "pinned-awake",
                                front=front)
            try:
                # everything measured from the client's CPUs
                pin_to_cpus(client_cpus or all_cpus)  # every thread of this process
                target = f"127.0.0.1:{args.port}"
                with Client(target, transport=transport) as client:
                    r.update(measure_vector_queries(store, client, queries, requests, args.k))
                    if args.vector_only:
                        r.update(VECTOR_ONLY_BLANKS)
                    else:
                        r.update(measure_concurrent(target, requests, args.queries // 4, transport))
                        r.update(measure_image_split(store, image_data, args.k))
                        r.update(measure_image_queries(client, image_data, args.k))
            finally:
                stop_process(proc)
            r["ratio"] = r["grpc_p50_ms"] / r["inproc_p50_ms"]
            r["grpc_overhead_ms"] = r["grpc_p50_ms"] - r["inproc_p50_ms"]
            r["grpc_overhead_vs_search_ms"] = r["grpc_p50_ms"] - r["inproc_search_p50_ms"]
            # the budget: a vector query costs at most an empty RPC + the search + 0.15 ms
            r["grpc_over_empty_and_search_ms"] = r["grpc_p50_ms"] - r["empty_rpc_p50_ms"] - r["inproc_p50_ms"]
            # the same against the in-process search after an idle gap, as a server's search runs
            # (caches cold): what the servicer itself adds
            r["grpc_over_empty_and_paced_search_ms"] = (r["grpc_p50_ms"] - r["empty_rpc_p50_ms"]
                                                        - r["inproc_paced_p50_ms"])
            r["first_over_warm_image_query"] = r["first_image_query_ms"] / r["image_query_p50_ms"]
            per_layout[f"{front}/{transport} {layout}"] = r
        baseline = None
        if args.baseline_src:  # on the same store, before a temporary one is removed
            pin_to_cpus(all_cpus)
            baseline = measure_baseline(Path(args.baseline_src).resolve(), store_dir, args, queries, requests,
                                        image_data)
            if not args.vector_only:
                baseline["alternated"] = alternate_image_queries(Path(args.baseline_src).resolve(), store_dir,
                                                                 image_data, args.k, args.rounds)
    finally:
        pin_to_cpus(all_cpus)
        store.close()
        if tmp is not None:
            tmp.cleanup()

    results: dict = {"n": n_faces, "k": args.k, "queries": args.queries, "cpus": len(all_cpus),
                     "layout": next(iter(per_layout)), **next(iter(per_layout.values())),
                     "layouts": per_layout, "load_average": os.getloadavg()}
    if baseline is not None:
        results["baseline"] = baseline
    print_table(per_layout, n_faces)
    if args.baseline_src:
        print_baseline(results["baseline"], next(iter(per_layout.values())))
    print(f"load average {os.getloadavg()[0]:.1f}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2))
    return 0


def measure_baseline(src: Path, store_dir: Path, args, queries, requests, image_data: bytes) -> dict:
    """The default stack (a shared-CPU `mien serve` and Client) of the mien tree at `src` on the same
    store, and its in-process image split: vector and empty RPCs, first and warm image queries."""
    from mien.clients.client import Client
    from mien.engine.store import Store

    log_path = Path(tempfile.gettempdir()) / f"mien-grpc-bench-baseline-{os.getpid()}.log"
    proc = start_server(store_dir, args.port, log_path, src=src)
    out: dict = {"src": str(src)}
    try:
        with Client(f"127.0.0.1:{args.port}") as client, Store(store_dir, mode="r") as store:
            out.update(measure_vector_queries(store, client, queries, requests, args.k))
            if not args.vector_only:
                out.update(measure_image_queries(client, image_data, args.k))
    finally:
        stop_process(proc)
    out.update(VECTOR_ONLY_BLANKS if args.vector_only else baseline_image_split(str(src), store_dir))
    out["grpc_over_empty_and_search_ms"] = out["grpc_p50_ms"] - out["empty_rpc_p50_ms"] - out["inproc_p50_ms"]
    out["grpc_over_empty_and_paced_search_ms"] = (out["grpc_p50_ms"] - out["empty_rpc_p50_ms"]
                                                  - out["inproc_paced_p50_ms"])
    return out


def alternate_image_queries(src: Path, store_dir: Path, image_data: bytes, k: int, rounds: int) -> dict:
    """Image queries over gRPC to this tree's server and to the one of the tree at `src`, both
    running, in alternated rounds of 20: this machine's speed drifts by a third within minutes,
    so one tree measured after the other compares the drift. Each side's median of its round
    medians, and the median of the per-round ratios (this tree / baseline)."""
    from mien.clients.client import Client

    ports = [free_port(), free_port()]
    tmpdir = Path(tempfile.gettempdir())
    procs = {"this": start_server(store_dir, ports[0], tmpdir / f"mien-grpc-alt-this-{os.getpid()}.log"),
             "baseline": start_server(store_dir, ports[1], tmpdir / f"mien-grpc-alt-base-{os.getpid()}.log",
                                      src=src)}
    medians: dict = {"this": [], "baseline": []}
    paced: dict = {"this": [], "baseline": []}
    try:
        clients = {name: Client(f"127.0.0.1:{port}") for name, port in zip(procs, ports)}
        for _ in range(rounds):
            for name, client in clients.items():
                for _ in range(3):
                    client.search(image_data, k=k)
                medians[name].append(statistics.median(
                    time_calls(lambda d: client.search(d, k=k), [image_data] * 20)))
                paced[name].append(statistics.median(
                    time_paced(lambda d: client.search(d, k=k), [image_data] * 20)))
        for client in clients.values():
            client.close()
    finally:
        for proc in procs.values():
            stop_process(proc)
    ratios = [a / b for a, b in zip(medians["this"], medians["baseline"])]
    paced_ratios = [a / b for a, b in zip(paced["this"], paced["baseline"])]
    return {"rounds": rounds, "this_ms": statistics.median(medians["this"]),
            "baseline_ms": statistics.median(medians["baseline"]), "ratio": statistics.median(ratios),
            "this_rounds_ms": medians["this"], "baseline_rounds_ms": medians["baseline"],
            "this_paced_ms": statistics.median(paced["this"]), "baseline_paced_ms": statistics.median(paced["baseline"]),
            "paced_ratio": statistics.median(paced_ratios),
            "this_paced_rounds_ms": paced["this"], "baseline_paced_rounds_ms": paced["baseline"]}


def print_baseline(base: dict, new: dict) -> None:
    rows = [
        ("image query over gRPC p50", "image_query_p50_ms"),
        ("  each after 10 ms idle", "image_query_paced_p50_ms"),
        ("image in-process total p50", "image_total_p50_ms"),
        ("  decode", "image_decode_p50_ms"), ("  detect", "image_detect_p50_ms"),
        ("  encode (FaceQA, verdict, vector)", "image_encode_p50_ms"), ("  search", "image_search_p50_ms"),
        ("first image query after SERVING", "first_image_query_ms"),
        ("empty RPC p50", "empty_rpc_p50_ms"), ("in-process search+records p50", "inproc_p50_ms"),
        ("gRPC vector query p50", "grpc_p50_ms"),
        ("vector query - empty RPC - search", "grpc_over_empty_and_search_ms"),
        ("  - search after idle instead", "grpc_over_empty_and_paced_search_ms"),
    ]
    print(f"\nside by side with the baseline tree {base['src']} (its default stack, shared CPUs):")
    w = max(len(r[0]) for r in rows)
    print(f"{'measure':<{w}}  {'this tree':>10}  {'baseline':>10}  {'ratio':>6}")
    for name, key in rows:
        a, b = new.get(key), base.get(key)
        if a is None or b is None:
            continue
        print(f"{name:<{w}}  {a:>8.3f}ms  {b:>8.3f}ms  {a / b if b else float('nan'):>6.2f}")
    alt = base.get("alternated")
    if alt:
        print(f"image queries over gRPC, both servers up, {alt['rounds']} alternated rounds of 20: "
              f"this tree {alt['this_ms']:.1f} ms, baseline {alt['baseline_ms']:.1f} ms (medians of the "
              f"round medians), median per-round ratio {alt['ratio']:.2f}; each after 10 ms idle: "
              f"this tree {alt['this_paced_ms']:.1f} ms, baseline {alt['baseline_paced_ms']:.1f} ms, "
              f"ratio {alt['paced_ratio']:.2f}")


def print_table(per_layout: dict, n_faces: int) -> None:
    rows = [
        ("CPUs: server / client", lambda r: f"{_cpus(r['server_cpus'])} / {_cpus(r['client_cpus'])}"),
        ("empty RPC (health) p50", lambda r: f"{r['empty_rpc_p50_ms']:.3f} ms"),
        ("in-process search p50", lambda r: f"{r['inproc_search_p50_ms']:.3f} ms"),
        ("in-process search+records p50 / p99", lambda r: f"{r['inproc_p50_ms']:.3f} / {r['inproc_p99_ms']:.3f} ms"),
        ("in-process, 0.5 ms idle before each, p50", lambda r: f"{r['inproc_paced_p50_ms']:.3f} ms"),
        ("gRPC vector query p50 / p99 (1 client)", lambda r: f"{r['grpc_p50_ms']:.3f} / {r['grpc_p99_ms']:.3f} ms"),
        ("gRPC over search+records", lambda r: f"+{r['grpc_overhead_ms']:.3f} ms ({r['ratio']:.2f}x)"),
        ("gRPC over bare search", lambda r: f"+{r['grpc_overhead_vs_search_ms']:.3f} ms"),
        ("gRPC QPS, 1 client", lambda r: f"{r['grpc_qps_1']:.0f}"),
        ("gRPC QPS, 16 clients", lambda r: f"{r['qps_16']:.0f} (p50 {r['grpc_p50_ms_16']:.2f} ms)"),
        ("gRPC - empty RPC - search+records", lambda r: f"+{r['grpc_over_empty_and_search_ms']:.3f} ms"),
        ("gRPC - empty RPC - search+records after idle", lambda r: f"{r['grpc_over_empty_and_paced_search_ms']:+.3f} ms"),
        ("image 640x480 decode/detect/encode/search", lambda r: "/".join(
            f"{r[f'image_{k}_p50_ms']:.1f}" for k in ("decode", "detect", "encode", "search")) + " ms"),
        ("image in-process total p50", lambda r: f"{r['image_total_p50_ms']:.1f} ms"),
        ("image query over gRPC p50", lambda r: f"{r['image_query_p50_ms']:.1f} ms"),
        ("  each after 10 ms idle, p50", lambda r: f"{r['image_query_paced_p50_ms']:.1f} ms"),
        ("first image query after SERVING", lambda r: f"{r['first_image_query_ms']:.0f} ms "
                                                      f"({r['first_over_warm_image_query']:.1f}x warm)"),
    ]
    names = list(per_layout)
    cells = [[fmt(per_layout[n]) for n in names] for _, fmt in rows]
    w0 = max(len(r[0]) for r in rows)
    ws = [max(len(n), *(len(c[i]) for c in cells)) for i, n in enumerate(names)]
    print(f"{n_faces:,} faces")
    print("  ".join([f"{'measure':<{w0}}", *(f"{n:<{w}}" for n, w in zip(names, ws))]))
    print("  ".join(["-" * w0, *("-" * w for w in ws)]))
    for (name, _), row in zip(rows, cells):
        print("  ".join([f"{name:<{w0}}", *(f"{c:<{w}}" for c, w in zip(row, ws))]))


def _cpus(cpus) -> str:
    return "any" if not cpus else ",".join(str(c) for c in cpus)


if __name__ == "__main__":
    sys.exit(main())
