"""How long `mien serve` takes to exit after SIGTERM, with work in flight (issue 14).

    .venv/bin/python benchmarks/shutdown.py --graces 1 5 --fronts native,python --out bench-out/shutdown.json

For each front and grace: a store of the package photos, an allowed root with
--files copies of them, a real `mien serve --grace G --allow-root ROOT`
subprocess, a server-side IndexPaths over the root plus an UploadImage whose
client never finishes (a call that only the grace can end). SIGTERM goes
after --after files are indexed. Reported: seconds from SIGTERM to exit, and
that over the grace (the promise: at most 1 s), how far indexing got, the
statuses both calls ended with, the exit code, and whether every source the
store kept is whole.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# benchmarks/grpc.py would shadow the grpc package: drop this folder from the import path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT / "tests"))


def run_once(ps, front: str, grace: float, files: int, after: int) -> dict:
    import grpc

    from mien.clients.client import Client
    from mien.engine.store import Store
    from mien.v1 import search_pb2, search_pb2_grpc
    from server_support import free_port, wait_until

    work = Path(tempfile.mkdtemp(prefix="mien-shutdown-"))
    store_dir = work / "store"
    shutil.copytree(ps.store_dir, store_dir)
    allowed = work / "in"
    allowed.mkdir()
    names = sorted(ps.archive)
    for i in range(files):
        shutil.copy(ps.archive[names[i % len(names)]], allowed / f"{i:03d}-{names[i % len(names)]}")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MIEN_TOKEN"}
    proc = subprocess.Popen([sys.executable, "-m", "mien", "serve", "--store", str(store_dir), "--port", str(port),
                             "--allow-root", str(allowed), "--grace", str(grace), "--front", front],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    target = f"127.0.0.1:{port}"
    client = Client(target, timeout=600)

    def up():
        try:
            return client.health() == "SERVING"
        except grpc.RpcError:
            return proc.poll() is not None

    assert wait_until(up, 120) and proc.poll() is None, "the server did not start"
    seen, outcome, release = [], {}, threading.Event()

    def index():
        try:
            for p in client.index_paths([str(allowed)]):
                seen.append(p)
        except grpc.RpcError as exc:
            outcome["index"] = exc.code().name

    def upload():
        def chunks():
            yield search_pb2.ImageChunk(data=b"x")
            release.wait(600)
        try:
            search_pb2_grpc.MienStub(grpc.insecure_channel(target)).UploadImage(chunks(), timeout=600)
        except grpc.RpcError as exc:
            outcome["upload"] = exc.code().name

    threads = [threading.Thread(target=f, daemon=True) for f in (index, upload)]
    for t in threads:
        t.start()
    assert wait_until(lambda: any(p.files_done >= after for p in seen), 600), "indexing did not start"
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    log, _ = proc.communicate(timeout=120)
    exit_s = time.monotonic() - start
    # the server's own account: drained in time, or left a handler behind
    drained = [line.rsplit(" in ", 1)[-1] for line in log.splitlines() if "drained and stopped in" in line]
    release.set()
    for t in threads:
        t.join(30)
    client.close()
    with Store(store_dir) as s:
        originals = {str(p) for p in ps.archive.values()}
        kept = [src for src in s.list_sources() if src.uri not in originals]
        whole = all(src.status == "done" and src.face_count == len(s.faces_of_source(src.uri)) for src in kept)
    shutil.rmtree(work, ignore_errors=True)
    return {"front": front, "grace_s": grace, "exit_s": round(exit_s, 3), "over_grace_s": round(exit_s - grace, 3),
            "returncode": proc.returncode, "indexed": len(kept), "files": files,
            "index_status": outcome.get("index", "OK"), "upload_status": outcome.get("upload", "OK"),
            "store_whole": whole, "server_drain": drained[0] if drained else "left handlers behind"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--graces", type=float, nargs="+", default=[1.0, 5.0])
    parser.add_argument("--fronts", default="native,python")
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--after", type=int, default=2, help="files indexed before SIGTERM")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    from mien import native
    from server_support import build_photo_store

    fronts = [f for f in args.fronts.split(",") if f != "native" or native.available()]
    ps = build_photo_store(Path(tempfile.mkdtemp(prefix="mien-shutdown-store-")))
    rows = [run_once(ps, front, grace, args.files, args.after) for front in fronts for grace in args.graces]
    cols = ["front", "grace_s", "exit_s", "over_grace_s", "returncode", "indexed", "index_status", "upload_status",
            "store_whole", "server_drain"]
    print("  ".join(f"{c:>13}" for c in cols))
    for r in rows:
        print("  ".join(f"{str(r[c]):>13}" for c in cols))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"runs": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
