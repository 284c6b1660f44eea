"""Replicas: search latency over one server vs two balanced replicas, on both client
transports, and calls lost when a replica is killed under load.

    .venv/bin/python benchmarks/replicas.py [--n 10000] [--calls 500] --out bench-out/replicas.json

Builds a synthetic store (benchmarks/grpc.py's build_store), snapshots it with
`mien snapshot`, starts two `mien serve` processes on the snapshot and measures,
in the same run:
- p50/p99 of a k=10 vector search through `Client(one address)` and
  `Client("a,b")` (gRPC round_robin), for the native and the grpcio transport;
  the ratio is against one server on grpcio;
- how the balanced calls split between the two servers (their per-RPC logs);
- fail-over: 4 threads searching while one replica is SIGKILLed; failed calls
  out of all calls (the client retries UNAVAILABLE on the other replica).
"""

from __future__ import annotations

import argparse
import importlib.util
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from common import free_port, print_table, write_json  # noqa: E402


def _grpc_bench():
    """benchmarks/grpc.py by path: its module name would shadow the grpc package."""
    spec = importlib.util.spec_from_file_location("mien_bench_grpc", ROOT / "benchmarks" / "grpc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def latency(target: str, transport: str, query, calls: int) -> list[float]:
    from mien.clients import Client

    with Client(target, transport=transport) as c:
        for _ in range(50):
            c.search(query, k=10)
        times = []
        for _ in range(calls):
            t = time.perf_counter()
            c.search(query, k=10)
            times.append(time.perf_counter() - t)
    return times


def fail_over(target: str, transport: str, query, victim: subprocess.Popen) -> tuple[int, int]:
    """(failed, total) calls of 4 threads searching for ~2 s while `victim` is killed at 0.5 s."""
    from mien.clients import Client

    stop = threading.Event()
    counts = {"ok": 0, "failed": 0}
    lock = threading.Lock()

    def caller():
        with Client(target, transport=transport, timeout=5) as c:
            while not stop.is_set():
                try:
                    c.search(query, k=10)
                    key = "ok"
                except Exception:  # noqa: BLE001 - any failed call counts
                    key = "failed"
                with lock:
                    counts[key] += 1

    threads = [threading.Thread(target=caller) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    victim.send_signal(signal.SIGKILL)
    time.sleep(1.5)
    stop.set()
    for t in threads:
        t.join()
    return counts["failed"], counts["ok"] + counts["failed"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="synthetic faces in the store")
    parser.add_argument("--calls", type=int, default=500, help="timed calls per target, transport and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out")
    args = parser.parse_args(argv)

    import numpy as np

    bench = _grpc_bench()
    work = Path(tempfile.mkdtemp(prefix="mien-bench-replicas-"))
    bench.build_store(work / "store", args.n)
    subprocess.run([sys.executable, "-m", "mien", "snapshot", "--store", str(work / "store"),
                    "--out", str(work / "snap")], check=True, capture_output=True, cwd=ROOT)
    ports = [free_port(), free_port()]
    logs = [work / f"server{i}.log" for i in range(2)]
    servers = [bench.start_server(work / "snap", p, log) for p, log in zip(ports, logs)]
    query = np.random.default_rng(1).standard_normal(16).astype(np.float32)
    query /= np.linalg.norm(query)
    one, both = f"127.0.0.1:{ports[0]}", f"127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}"
    try:
        samples: dict[tuple, list] = {}
        for _ in range(args.rounds):  # interleaved, so machine noise hits every row alike
            for name, target in (("1 server", one), ("2 replicas", both)):
                for transport in ("native", "python"):
                    samples.setdefault((name, transport), []).extend(
                        latency(target, transport, query, args.calls))
        time.sleep(0.5)  # the servers' log lines of the timed calls land first
        before = [log.read_text().count("rpc=SearchExpression") for log in logs]
        latency(both, "python", query, 100)
        time.sleep(0.5)  # the servers' log lines land
        split = [log.read_text().count("rpc=SearchExpression") - b for log, b in zip(logs, before)]
        base = statistics.median(samples[("1 server", "python")])
        rows = [{"target": name, "transport": tr, "p50_ms": statistics.median(v) * 1e3,
                 "p99_ms": float(np.percentile(v, 99)) * 1e3, "vs_1_server_grpcio": statistics.median(v) / base}
                for (name, tr), v in samples.items()]
        print(f"{args.n} faces; {args.rounds} x {args.calls} calls per row")
        print_table(rows, ["target", "transport", "p50_ms", "p99_ms", "vs_1_server_grpcio"])
        print(f"150 balanced calls (grpcio; 50 warm-up + 100): {split[0]} on server 1, {split[1]} on server 2")
        failed, total = fail_over(both, "native", query, servers[1])
        print(f"fail-over (native transport, one replica SIGKILLed under 4 threads): {failed} of {total} calls failed")
        write_json(args.out, {"n": args.n, "rows": rows, "balanced_split": split,
                              "failover_failed": failed, "failover_calls": total})
    finally:
        for s in servers:
            if s.poll() is None:
                s.send_signal(signal.SIGTERM)
        for s in servers:
            try:
                s.wait(timeout=10)
            except subprocess.TimeoutExpired:
                s.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
