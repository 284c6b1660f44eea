"""Server-side indexing: one `mien serve` running IndexPaths jobs one after another.

    .venv/bin/python benchmarks/index_jobs.py [--jobs 4] [--rounds 3] [--baseline-src DIR] [--out F]

A web app user who indexes folder after folder waits for each job's worker pool to start as
well as for the analysis. The archive is the package photos of benchmarks/index.py (--copies
variants each), split into --jobs folders of the same size. Each round starts a server on a
fresh store (indexed once with the first folder, so the store exists), runs the other folders
as IndexPaths jobs one after another, and times each job by the wall clock as the client sees
it. With --baseline-src the mien tree at DIR runs the same rounds, alternated with this one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# benchmarks/grpc.py would shadow the grpc package from this script's folder: import the real one
# first, with the folder off sys.path (benchmarks/index.py puts it back when imported)
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(ROOT))
import grpc  # noqa: E402,F401

from benchmarks.common import (compile_tree, free_port, print_table, start_mien_serve, stop_process,  # noqa: E402
                               write_json)
from benchmarks.index import build_folder  # noqa: E402


def split_archive(work: Path, copies: int, jobs: int) -> list[Path]:
    """The package photos (`copies` variants each) dealt round-robin into `jobs` folders."""
    photos = sorted(build_folder(work / "all", copies))
    folders = [work / f"job{i}" for i in range(jobs)]
    for folder in folders:
        folder.mkdir()
    for i, photo in enumerate(photos):
        shutil.move(str(photo), folders[i % jobs] / photo.name)
    return folders


def one_round(src: Path, work: Path, folders: list[Path]) -> list[float]:
    """Seconds of each IndexPaths job after the first folder, on a server of the tree at src."""
    from mien.clients.client import Client

    store = work / f"store-{os.getpid()}-{time.monotonic_ns()}"
    env = dict(os.environ, PYTHONPATH=str(src))
    subprocess.run([sys.executable, "-m", "mien", "index", str(folders[0]), "--store", str(store), "--quiet"],
                   cwd=src, env=env, check=True, capture_output=True)
    port = free_port()
    server = start_mien_serve(["--store", str(store), "--port", str(port), "--allow-root", str(work)],
                              port, work / "serve.log", src)
    try:
        seconds = []
        with Client(f"127.0.0.1:{port}") as client:
            for folder in folders[1:]:
                start = time.perf_counter()
                for _ in client.index_paths([folder]):
                    pass
                seconds.append(time.perf_counter() - start)
        return seconds
    finally:
        stop_process(server)
        shutil.rmtree(store, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=6, help="variants per package photo")
    parser.add_argument("--jobs", type=int, default=4, help="folders: one indexed first, then one job each")
    parser.add_argument("--rounds", type=int, default=3, help="servers per tree, alternated with the baseline")
    parser.add_argument("--baseline-src", metavar="DIR", help="also the mien tree at DIR, alternated")
    parser.add_argument("--out", help="write the results as JSON")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mien-bench-jobs-"))
    folders = split_archive(work, args.copies, args.jobs)
    sides = {"this tree": ROOT}
    if args.baseline_src:
        sides["baseline"] = Path(args.baseline_src).resolve()
    for src in sides.values():
        compile_tree(src)   # a job's new workers import modules lazily: neither side compiles them there
    load_before = os.getloadavg()[0]
    runs: dict = {name: [] for name in sides}
    for r in range(args.rounds):
        for name, src in sides.items():
            runs[name].append(one_round(src, work, folders))
            print(f"round {r + 1}, {name}: " + ", ".join(f"{s:.2f} s" for s in runs[name][-1]), flush=True)
    rows = []
    for name, rounds in runs.items():
        first = [jobs[0] for jobs in rounds]
        later = [s for jobs in rounds for s in jobs[1:]]
        rows.append({"side": name, "photos_per_job": len(list(folders[1].iterdir())),
                     "first_job_s": statistics.median(first), "later_jobs_s": statistics.median(later)})
    print()
    print(f"{args.rounds} servers per side, {args.jobs - 1} jobs each (medians); load average "
          f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}")
    print_table(rows, ["side", "photos_per_job", "first_job_s", "later_jobs_s"], "{:.2f}")
    write_json(args.out, {"rows": rows, "runs": runs, "load_average_before": load_before,
                          "load_average_after": os.getloadavg()[0]})
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
