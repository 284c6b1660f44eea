"""Where a video worker's time goes, and the real-time factor the models and decoding alone allow.

    .venv/bin/python benchmarks/video_floor.py [--seconds 120] [--clip FILE] [--out floor.json]

One process analyses the clip the way a pool worker does (worker.analyze_range over the whole
file, one thread, the indexer's defaults: 2 sampled fps, keyframes every 2 s, segments of 4
frames), after a warm-up on its first seconds. Each model call is timed where it runs (the
LiteRT models one by one, fer's network), and the file is also read alone with the same reader
(video_packets.PacketRangeReader: decoding and the sampled frames' colour conversion; also
video.RangeReader, which decodes every frame, as a reference); inside the analysis the
reader's share is timed too, and is larger: the models evict its data from the caches.

The floor: decoding plus the models, split perfectly over `--workers` cores with nothing else
(no pool start, no Python around the models, no tracking, identity or commit). A wall-clock
target above it cannot be met by making mien's own code faster; only cheaper models, less
decoding or a faster machine can. The default clip is the one `benchmarks/index.py
--video-clock` times (index.clip_720p): 1280x720, 30 fps mp4v, two faces panning.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import print_table, write_json  # noqa: E402

FPS, KEY_MS, BATCH_FRAMES = 2.0, 2000.0, 4     # IndexOptions' defaults
MAX_PIXELS = 100_000_000


def timed_models() -> collections.Counter:
    """Seconds spent in each model's calls from now on, by model name (the returned Counter fills)."""
    from mien.engine.faces import expression_fer, litert

    spent: collections.Counter = collections.Counter()

    def timing(run, name_of):
        def wrapper(self, *args):
            start = time.perf_counter()
            try:
                return run(self, *args)
            finally:
                spent[name_of(self)] += time.perf_counter() - start
        return wrapper

    litert.TFLiteModel.run = timing(litert.TFLiteModel.run, lambda model: model.name)
    expression_fer.EmotionNet.run = timing(expression_fer.EmotionNet.run, lambda net: net.name)
    return spent


def timed_reading() -> list:
    """Seconds spent producing sampled frames inside the analysis from now on (the returned
    one-item list fills): decoding, as interleaved with the models, whose data it evicts."""
    from mien.indexer import video_packets

    spent = [0.0]
    iterate = video_packets.PacketRangeReader.__iter__

    def timed(self):
        frames = iterate(self)
        while True:
            start = time.perf_counter()
            try:
                frame = next(frames)
            except StopIteration:
                spent[0] += time.perf_counter() - start
                return
            spent[0] += time.perf_counter() - start
            yield frame

    video_packets.PacketRangeReader.__iter__ = timed
    return spent


def decode_seconds(path: str, every_frame: bool = False, discard_nonref: bool = False) -> tuple[float, int]:
    """(seconds, sampled frames) of reading the file's sampled frames alone, as a worker does
    (PacketRangeReader: only the packets the samples need, where the stream allows it).

    every_frame: with RangeReader, which decodes every frame (the reader before video_packets.py,
    and the one for files it does not take). discard_nonref (with every_frame): FFmpeg skips
    decoding the frames no other frame refers to (OpenCV's capture option avdiscard=nonref), the
    sampled ones too, so OpenCV then counts only the decoded frames (wrong frame numbers): a bound
    for PacketRangeReader on B-frame streams, which skips those frames but the sampled ones.
    Nothing on the rendered mp4v clip (every frame is a reference)."""
    from mien.indexer.video import RangeReader
    from mien.indexer.video_packets import PacketRangeReader

    key = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
    saved = os.environ.get(key)
    if discard_nonref:
        os.environ[key] = "avdiscard;nonref"   # read when a capture opens
    try:
        start = time.perf_counter()
        if every_frame:
            frames = sum(1 for _ in RangeReader(path, 0, None, FPS, max_pixels=MAX_PIXELS))
        else:
            frames = sum(1 for _ in PacketRangeReader(path, 0, None, FPS, max_pixels=MAX_PIXELS))
        return time.perf_counter() - start, frames
    finally:
        if saved is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = saved


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="length of the rendered clip")
    parser.add_argument("--clip", help="a video file to use instead of the rendered clip")
    parser.add_argument("--workers", type=int, default=2, help="cores the floor splits the work over")
    parser.add_argument("--target", type=float, default=30.0, help="the real-time factor to compare with")
    parser.add_argument("--out", help="write the results as JSON")
    args = parser.parse_args()

    from mien.engine.faces import EngineConfig
    from mien.indexer import worker

    if args.clip:
        path = args.clip
    else:
        from index import clip_720p   # benchmarks/index.py: the clip --video-clock times

        print(f"rendering a {args.seconds:.0f} s 720p clip ...", flush=True)
        path = str(clip_720p(Path(tempfile.mkdtemp(prefix="mien-bench-floor-")), args.seconds).path)

    worker.init(EngineConfig(), 1)
    worker.analyze_range(path, 0, 4000, FPS, KEY_MS, BATCH_FRAMES, MAX_PIXELS)   # models loaded, first calls made
    decode_s, frames = decode_seconds(path)
    every_s, _ = decode_seconds(path, every_frame=True)
    discard_s, _ = decode_seconds(path, every_frame=True, discard_nonref=True)
    spent = timed_models()
    reading = timed_reading()
    from mien.engine.faces import still_faces

    passes_before = dict(still_faces.counts)
    start, cpu0 = time.perf_counter(), time.process_time()
    result = worker.analyze_range(path, 0, None, FPS, KEY_MS, BATCH_FRAMES, MAX_PIXELS)
    total_s, total_cpu = time.perf_counter() - start, time.process_time() - cpu0
    passes = {k: still_faces.counts[k] - passes_before[k] for k in passes_before}
    if result.error:
        raise SystemExit(f"{path}: {result.error}")
    duration_s = (result.last[1] if result.last else 0.0) / 1000.0 + 1.0 / 30.0
    faces = sum(len(f.faces) for f in result.frames)
    models_s = sum(spent.values())
    read_s = reading[0]
    other_s = max(0.0, total_s - read_s - models_s)

    rows = [{"part": f"model {name}", "seconds": s} for name, s in spent.most_common()]
    rows += [{"part": "decoding, inside the analysis", "seconds": read_s},
             {"part": "everything else (Python, crops, FaceQA, AUs, patches)", "seconds": other_s},
             {"part": "the whole analysis", "seconds": total_s},
             {"part": "(decoding alone, the file read by itself)", "seconds": decode_s},
             {"part": "(the same, every frame decoded: RangeReader)", "seconds": every_s},
             {"part": "(every frame but the non-reference ones: not mien's)", "seconds": discard_s}]
    for row in rows:
        row["ms_per_video_s"] = 1000.0 * row["seconds"] / duration_s
        row["share"] = row["seconds"] / total_s
    print(f"\n{Path(path).name}: {duration_s:.1f} s of video, {frames} sampled frames, {faces} faces; "
          f"{result.frames_decoded} frames decoded; one process, one thread ({total_cpu:.2f} CPU-s for "
          f"{total_s:.2f} s); 478-point passes "
          f"run {passes['computed']}, reused for still faces {passes['reused']} (still_faces.py)")
    print_table(rows, ["part", "seconds", "ms_per_video_s", "share"], "{:.3f}")

    w = max(1, args.workers)
    # the floor counts decoding as it costs alone: interleaved with the models it costs more
    floor_x = duration_s / ((decode_s + models_s) / w)
    analysis_x = duration_s / (total_s / w)
    budget_s = w * duration_s / args.target
    summary = {"clip": str(path), "duration_s": duration_s, "sampled_frames": frames, "faces": faces,
               "models_s": dict(spent), "decode_s": decode_s, "decode_every_frame_s": every_s,
               "decode_nonref_discarded_s": discard_s,
               "decode_in_analysis_s": read_s, "frames_decoded": result.frames_decoded,
               "other_s": other_s, "analysis_s": total_s,
               "landmark_passes": passes, "workers": w, "floor_x_real_time": floor_x, "analysis_x_real_time": analysis_x,
               "target_x": args.target, "target_cpu_budget_s": budget_s}
    print(f"\non {w} cores: the models and decoding alone allow at most {floor_x:.1f}x real time; "
          f"the whole analysis, split perfectly and started at no cost, {analysis_x:.1f}x. "
          f"{args.target:.0f}x leaves {budget_s:.2f} CPU-s for everything, against {decode_s + models_s:.2f} "
          f"for decoding and the models alone")
    write_json(args.out, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
