"""gRPC benchmark: vector queries through the server vs in-process on the same store.

    .venv/bin/python benchmarks/grpc.py --n 1000000 --out bench-out/grpc.json

Builds (or reuses, --store DIR) a store of --n synthetic faces, starts
`mien serve` in a subprocess, and measures
- an empty round trip (health Check): the floor any RPC pays;
- vector SearchExpression p50/p99 with 1 client, QPS with 16 client threads;
- the same searches in-process on a Store reader of the same directory (ratio);
- an image query at 640x480: decode / detect / encode / search in-process,
  and the end-to-end gRPC image query.
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


def pct(values, q):
    return float(np.percentile(np.asarray(values), q))


def unit_vectors(n: int, rng) -> np.ndarray:
    v = rng.standard_normal((n, 16)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def build_store(store_dir: Path, n: int, batch: int = 50_000, seed: int = 0) -> None:
    """n synthetic faces in sources of `batch` faces; 1 % of them in one person."""
    from tqdm import tqdm

    from mien.engine.store import FaceRecord, SourceRecord, Store

    rng = np.random.default_rng(seed)
    from mien.engine.faces import EngineConfig, FaceAnalyzer

    # the default engine's encoder names, so the server accepts image queries on this store
    encoders = FaceAnalyzer(EngineConfig()).encoders
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


def start_server(store_dir: Path, port: int, log_path: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "mien", "serve", "--store", str(store_dir), "--port", str(port)]
    # the per-RPC log goes to a file: an undrained pipe would stall the server
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    from mien.clients.client import Client

    deadline = time.monotonic() + 300
    with Client(f"127.0.0.1:{port}", timeout=2) as c:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {log_path.read_text()[-2000:]}")
            try:
                if c.health() == "SERVING":
                    return proc
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.2)
    raise RuntimeError("server did not come up")


def time_calls(fn, args_list) -> list[float]:
    out = []
    for a in args_list:
        t = time.perf_counter()
        fn(a)
        out.append((time.perf_counter() - t) * 1000.0)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000, help="synthetic faces (default %(default)s)")
    ap.add_argument("--store", default=None, help="reuse/build the store here (default: a temp dir)")
    ap.add_argument("--queries", type=int, default=2000, help="queries per measurement")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--out", default=None, help="write JSON results here")
    ap.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.build_only:
        build_store(Path(args.store), args.n)
        return 0

    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from mien.clients.client import Client
    from mien.engine.store import Store
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
        subprocess.run([sys.executable, __file__, "--build-only", "--store", str(store_dir),
                        "--n", str(args.n)], check=True)
        print(f"built store of {args.n} faces in {time.perf_counter() - t:.1f}s", file=sys.stderr)

    if not args.port:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            args.port = s.getsockname()[1]
    rng = np.random.default_rng(1)
    queries = unit_vectors(args.queries, rng)
    requests = [search_pb2.SearchExpressionRequest(
        query=common_pb2.FaceQuery(vector=common_pb2.Vector(values=q.tolist())), top_k=args.k)
        for q in queries]
    results: dict = {"n": args.n, "k": args.k, "queries": args.queries, "cpus": os.cpu_count()}

    # in-process: the same store, same vectors, search + the record reads the server does,
    # with the server's FAISS threading (one OpenMP thread per call)
    from mien.server.app import single_threaded_search

    single_threaded_search()
    store = Store(store_dir, mode="r")
    n_faces = int(store.stats().get("faces", 0))
    results["n"] = n_faces
    for q in queries[:50]:
        store.search(q, args.k)
    inproc_search = time_calls(lambda q: store.search(q, args.k), queries)
    inproc_full = time_calls(
        lambda q: [store.get_face(h.face_id, thumbnail=False) for h in store.search(q, args.k)], queries)

    log_path = Path(tempfile.gettempdir()) / f"mien-grpc-bench-{os.getpid()}.log"
    proc = start_server(store_dir, args.port, log_path)
    try:
        target = f"127.0.0.1:{args.port}"
        with Client(target) as client:
            health = health_pb2_grpc.HealthStub(client.channel)
            hreq = health_pb2.HealthCheckRequest()
            for _ in range(200):
                health.Check(hreq)
            empty = time_calls(lambda r: health.Check(r), [hreq] * args.queries)
            for r in requests[:200]:
                client.search_vector_raw(r)
            grpc1 = time_calls(client.search_vector_raw, requests)

            # 16 concurrent clients (threads, one channel each), all queries each
            def worker(lat: list):
                with Client(target) as c:
                    for r in requests[: args.queries // 4]:
                        t = time.perf_counter()
                        c.search_vector_raw(r)
                        lat.append((time.perf_counter() - t) * 1000.0)

            lats = [[] for _ in range(16)]
            threads = [threading.Thread(target=worker, args=(lat,)) for lat in lats]
            t0 = time.perf_counter()
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            wall = time.perf_counter() - t0
            all16 = [x for lat in lats for x in lat]
            qps16 = len(all16) / wall

            # image query at 640x480: in-process split, then end-to-end over gRPC
            import cv2

            from mien.demo import photos
            from mien.engine.faces import EngineConfig, FaceAnalyzer, load_image

            img = cv2.resize(photos.astronaut(), (480, 480))
            canvas = np.full((480, 640, 3), 127, np.uint8)
            canvas[:, 80:560] = img
            ok, jpeg = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 92])
            data = jpeg.tobytes()
            analyzer = FaceAnalyzer(EngineConfig())
            split = {"decode": [], "detect": [], "encode": [], "search": []}
            for _ in range(20):
                t = time.perf_counter()
                image = load_image(data)
                t1 = time.perf_counter()
                faces = analyzer.detect(image)
                t2 = time.perf_counter()
                analyzer.assess(image, faces[:1])
                analyzer.embed_expression(image, faces[:1])
                t3 = time.perf_counter()
                store.search(faces[0].expression, args.k)
                t4 = time.perf_counter()
                for key, a, b in (("decode", t, t1), ("detect", t1, t2), ("encode", t2, t3), ("search", t3, t4)):
                    split[key].append((b - a) * 1000.0)
            client.search(data, k=args.k)  # warm the server's analyzer
            image_grpc = time_calls(lambda d: client.search(d, k=args.k), [data] * 20)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        store.close()
        if tmp is not None:
            tmp.cleanup()

    p50 = statistics.median
    results.update({
        "empty_rpc_p50_ms": p50(empty),
        "inproc_search_p50_ms": p50(inproc_search),
        "inproc_p50_ms": p50(inproc_full),
        "inproc_p99_ms": pct(inproc_full, 99),
        "grpc_p50_ms": p50(grpc1),
        "grpc_p99_ms": pct(grpc1, 99),
        "grpc_qps_1": 1000.0 / statistics.mean(grpc1),
        "grpc_p50_ms_16": p50(all16),
        "grpc_p99_ms_16": pct(all16, 99),
        "qps_16": qps16,
        "image_decode_p50_ms": p50(split["decode"]),
        "image_detect_p50_ms": p50(split["detect"]),
        "image_encode_p50_ms": p50(split["encode"]),
        "image_search_p50_ms": p50(split["search"]),
        "image_query_p50_ms": p50(image_grpc),
    })
    results["ratio"] = results["grpc_p50_ms"] / results["inproc_p50_ms"]
    results["grpc_overhead_ms"] = results["grpc_p50_ms"] - results["inproc_p50_ms"]

    rows = [
        ("faces in store", f"{results['n']:,}"),
        ("empty RPC (health) p50", f"{results['empty_rpc_p50_ms']:.3f} ms"),
        ("in-process search p50", f"{results['inproc_search_p50_ms']:.3f} ms"),
        ("in-process search+records p50 / p99", f"{results['inproc_p50_ms']:.3f} / {results['inproc_p99_ms']:.3f} ms"),
        ("gRPC vector query p50 / p99 (1 client)", f"{results['grpc_p50_ms']:.3f} / {results['grpc_p99_ms']:.3f} ms"),
        ("gRPC / in-process (ratio)", f"{results['ratio']:.2f}x  (+{results['grpc_overhead_ms']:.3f} ms)"),
        ("gRPC QPS, 1 client", f"{results['grpc_qps_1']:.0f}"),
        ("gRPC QPS, 16 clients", f"{results['qps_16']:.0f}  (p50 {results['grpc_p50_ms_16']:.2f} ms, p99 {results['grpc_p99_ms_16']:.2f} ms)"),
        ("image 640x480: decode / detect / encode / search", " / ".join(
            f"{results[f'image_{k}_p50_ms']:.2f}" for k in ("decode", "detect", "encode", "search")) + " ms"),
        ("image query over gRPC p50", f"{results['image_query_p50_ms']:.1f} ms"),
    ]
    w = max(len(r[0]) for r in rows)
    print(f"{'measure'.ljust(w)}  value")
    print(f"{'-' * w}  {'-' * 40}")
    for name, value in rows:
        print(f"{name.ljust(w)}  {value}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
