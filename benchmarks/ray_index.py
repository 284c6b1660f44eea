"""Indexing on Ray vs the local process pool, on the same archive and machine.

    .venv/bin/python benchmarks/ray_index.py [--copies 8] [--video-seconds 20] [--out ray_index.json]

The archive: the package photos in `--copies` variants each (benchmarks/index.py's
folder) plus one generated 1280x720 30 fps clip of two people, indexed at 2 fps.
Three runs, each into a fresh store, each timed from index_paths() call to its
return (worker start-up and model loading included, as a user waits for them):

- local: the default local pool, 2 worker processes;
- ray1: `--ray` with 1 actor on a local Ray cluster (ray.init(num_cpus=2));
- ray2: `--ray` with 2 actors on the same cluster.

The cluster itself is started once before the Ray runs (a cluster outlives
index runs). Each runner's start-up (processes or actors up, models loaded)
is also measured alone, and faces_per_s is faces / (wall - start-up): the
rate a long archive sees. *_with_startup_faces_per_s keep the start-up in.
scaling_efficiency = ray2 / (2 x ray1) faces/s; overhead = 1 - ray2 / local
faces/s (both with two workers). x_real_time = seconds of video / (wall -
start-up) of the whole run (photos included). Workers read the files
themselves (videos in time ranges, --range-seconds, 0 = automatic); on a
2-core machine the driver (tracking, commits) still shares the cores with the
two workers, so neither 2-worker run can quite double a 1-worker run here.
The machine's load average is recorded at the start and the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import print_table, write_json  # noqa: E402
from index import build_folder  # noqa: E402


def startup(**options) -> float:
    """Seconds until the runner's workers have their models (then closed)."""
    from mien.engine.faces import EngineConfig
    from mien.indexer import IndexOptions, worker
    from mien.indexer.runner import make_runner

    opts = IndexOptions(**options)
    t = time.perf_counter()
    runner = make_runner(EngineConfig(), opts.workers, opts)
    try:
        for f in [runner.submit(worker.encoders) for _ in range(max(1, runner.workers))]:
            f.result()
        return time.perf_counter() - t
    finally:
        runner.close()


def run(archive: Path, store: Path, video_s: float, **options) -> dict:
    from mien.indexer import IndexOptions, index_paths

    start_s = startup(**options)
    t = time.perf_counter()
    s = index_paths([str(archive)], str(store), options=IndexOptions(show_progress=False, **options))
    wall = time.perf_counter() - t
    if s.failures:
        raise SystemExit(f"indexing failed: {s.failures[:3]}")
    work = max(1e-9, wall - start_s)
    return {"wall_s": wall, "startup_s": start_s, "faces": s.faces_passed, "files": s.indexed,
            "frames": s.frames, "faces_per_s": s.faces_passed / work,
            "with_startup_faces_per_s": s.faces_passed / wall, "x_real_time": video_s / work}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=8, help="variants of each package photo")
    ap.add_argument("--video-seconds", type=float, default=20.0)
    ap.add_argument("--range-seconds", type=float, default=0.0,
                    help="video time range per job (0 = automatic, as mien index)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    load_start = os.getloadavg()[0]

    import ray

    from mien.demo.videos import write_clip

    root = Path(tempfile.mkdtemp(prefix="mien-ray-bench-"))
    try:
        archive = root / "archive"
        build_folder(archive / "photos", args.copies)
        write_clip(archive / "videos" / "pair.avi", people=("obama", "biden"), motion="pan", fps=30.0,
                   size=(1280, 720), seconds=args.video_seconds)
        print(f"archive: {len(list((archive / 'photos').iterdir()))} photos + {args.video_seconds:.0f} s "
              f"of 1280x720 video; cores={os.cpu_count()}; load {os.getloadavg()[0]:.2f}", flush=True)

        rows = {}
        opts = {"range_seconds": args.range_seconds}
        rows["local"] = run(archive, root / "s-local", args.video_seconds, workers=2, **opts)
        print("local done", flush=True)
        t = time.perf_counter()
        ctx = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        cluster_s = time.perf_counter() - t
        address = ctx.address_info["gcs_address"]
        try:
            rows["ray1"] = run(archive, root / "s-ray1", args.video_seconds, workers=1, ray_address=address,
                               **opts)
            print("ray1 done", flush=True)
            rows["ray2"] = run(archive, root / "s-ray2", args.video_seconds, workers=2, ray_address=address,
                               **opts)
        finally:
            ray.shutdown()
        table = [{"run": k, **v} for k, v in rows.items()]
        print_table(table, ["run", "wall_s", "startup_s", "faces", "frames", "faces_per_s",
                            "with_startup_faces_per_s", "x_real_time"])
        local, r1, r2 = (rows[k]["faces_per_s"] for k in ("local", "ray1", "ray2"))
        out = {
            "local_faces_per_s": local, "ray1_faces_per_s": r1, "ray2_faces_per_s": r2,
            "scaling_efficiency": r2 / (2 * r1), "overhead": 1 - r2 / local,
            **{f"{k}_with_startup_faces_per_s": rows[k]["with_startup_faces_per_s"] for k in rows},
            "ray_cluster_start_s": cluster_s, "load_average_1m_at_start": load_start,
            "load_average_1m_at_end": os.getloadavg()[0],
            "runs": rows, "copies": args.copies, "video_seconds": args.video_seconds,
            "range_seconds": args.range_seconds,
        }
        print(f"\nscaling efficiency (ray2 / 2 x ray1) {out['scaling_efficiency']:.2f}; "
              f"overhead vs local pool (1 - ray2 / local) {out['overhead']:+.2f}; "
              f"Ray cluster start {cluster_s:.1f} s (not in the runs); load average {load_start:.1f} -> "
              f"{out['load_average_1m_at_end']:.1f}")
        write_json(args.out, out)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
