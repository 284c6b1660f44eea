"""A worker drops the identity patches no track can choose (patch_choice.py): the driver's
choice of each track's best faces stays the same, however the video is cut into ranges.

The driver here is the real one (JobQueue._feed with its Tracker), fed random scenes: people
walking, crossing, leaving and coming back, missed detections, faces FaceQA rejects, frames with
nobody; each scene cut into random ranges, each range's patches chosen as a worker chooses them.
A real clip analysed by a real worker checks the same on real detections.
"""

from __future__ import annotations

import random
from types import SimpleNamespace

import numpy as np
import pytest

from mien.engine.faces.types import Face, Quality
from mien.indexer.patch_choice import PatchChoice
from mien.indexer.summary import IndexOptions, IndexSummary
from mien.indexer.video_jobs import FileRun, JobQueue
from mien.indexer.worker import FrameResult


def driver(keep: int = 3) -> JobQueue:
    indexer = SimpleNamespace(options=IndexOptions(identity_faces=keep), runner=SimpleNamespace(workers=1),
                              summary=IndexSummary())
    return JobQueue(indexer)


def chosen(queue: JobQueue, ranges) -> set:
    """The patches the driver keeps for the tracks' identities, fed `ranges` of FrameResults."""
    run = FileRun(job=None)
    for frames in ranges:
        queue._feed(run, frames)
    return {id(c[2]) for best in run.candidates.values() for c in best}


def scene(rng: random.Random, samples: int, crowded: bool) -> list:
    """Frames of faces [(bbox, quality score inputs, passed)] for `samples` samples; crowded:
    up to 9 people in a small picture, often missed (tracks compete for the same boxes)."""
    width, height = (300, 200) if crowded else (1000, 500)
    missed = 0.3 if crowded else 0.1
    people = []
    for _ in range(rng.randint(1, 9 if crowded else 5)):
        size = rng.uniform(40, 100 if crowded else 160)
        people.append({"x": rng.uniform(0, width), "y": rng.uniform(0, height), "size": size,
                       "vx": rng.uniform(-60, 60), "vy": rng.uniform(-20, 20),
                       "on": rng.random() < 0.8})
    frames = []
    for _ in range(samples):
        faces = []
        for p in people:
            if rng.random() < 0.05:
                p["on"] = not p["on"]            # leaves, or comes back
            if rng.random() < 0.05:
                p["x"] = rng.uniform(0, width)   # a cut: somewhere else
            p["x"] += p["vx"] + rng.gauss(0, 15)
            p["y"] += p["vy"] + rng.gauss(0, 5)
            p["size"] = max(30.0, p["size"] * rng.uniform(0.9, 1.1))
            if not p["on"] or rng.random() < missed:   # not there, or missed
                continue
            x, y, s = p["x"], p["y"], p["size"]
            faces.append(((x, y, x + s, y + s), rng.uniform(0, 60), rng.uniform(2, 20), rng.random() < 0.85))
        rng.shuffle(faces)
        frames.append(faces)
    return frames


def results(frames) -> list:
    """FrameResults of scene frames, each passed face with a patch of its own."""
    out = []
    for k, faces in enumerate(frames):
        made, patches = [], {}
        for pos, (bbox, yaw, sharpness, passed) in enumerate(faces):
            face = Face(bbox=bbox, det_score=1.0, landmarks5=np.zeros((5, 2), np.float32),
                        quality=Quality(sharpness=sharpness, yaw=yaw, pitch=0.0, roll=0.0, passed=passed),
                        expression=np.zeros(16, np.float32) if passed else None)
            made.append(face)
            if passed:
                patches[pos] = SimpleNamespace(image=None, face=face)
        out.append(FrameResult(k, k * 500, made, patches))
    return out


def choose(frames: list, keep: int) -> list:
    """One range of `frames` as a worker ships it: the same faces, and of their patches those
    PatchChoice cuts (the very objects of `frames`, so the driver's choices compare by identity)."""
    choice, out = PatchChoice(keep), []
    for frame in frames:
        result = FrameResult(frame.index, frame.timestamp_ms, frame.faces)
        choice.add(result, lambda pos, frame=frame: frame.patches[pos])
        out.append(result)
    return out


def cut(rng: random.Random, n: int) -> list:
    bounds = sorted(rng.sample(range(1, n), rng.randint(0, min(6, n - 1))))
    return list(zip([0] + bounds, bounds + [n]))


@pytest.mark.parametrize("crowded", [False, True])
@pytest.mark.parametrize("seed", range(300))
def test_the_driver_chooses_the_same_patches_from_what_workers_keep(seed, crowded):
    rng = random.Random(seed)
    frames = scene(rng, rng.randint(1, 80), crowded)
    keep = rng.choice([1, 2, 3, 3, 5])
    whole = results(frames)
    expected = chosen(driver(keep), [whole])
    shipped = 0
    ranges = []
    for a, b in cut(rng, len(frames)):
        part = choose(whole[a:b], keep)
        shipped += sum(len(f.patches) for f in part)
        ranges.append(part)
    assert chosen(driver(keep), ranges) == expected
    assert shipped <= sum(len(f.patches) for f in whole)


def test_a_steady_scene_ships_a_few_patches_per_range():
    """Two people walking steadily, 120 samples in 4 ranges: a handful of patches per range,
    not one per face."""
    rng = random.Random(7)
    frames = [[((100 + 3 * k, 100, 260 + 3 * k, 260), rng.uniform(0, 10), rng.uniform(8, 12), True),
               ((700 - 2 * k, 120, 860 - 2 * k, 280), rng.uniform(0, 10), rng.uniform(8, 12), True)]
              for k in range(120)]
    whole = results(frames)
    expected = chosen(driver(), [whole])
    ranges, shipped = [], 0
    for a in range(0, 120, 30):
        part = choose(whole[a:a + 30], 3)
        shipped += sum(len(f.patches) for f in part)
        ranges.append(part)
    assert chosen(driver(), ranges) == expected
    # per range: each person's 3 best, plus the faces of its second sample (not linked: the samples
    # before the range could hold other tracks)
    assert shipped <= 4 * (2 * 3 + 2)


def test_a_real_clip_analysed_in_ranges_keeps_the_drivers_choice(tmp_path):
    """A real worker on a rendered clip of two people, in two ranges: the patches it ships hold
    every one the driver chooses from the full set, and far fewer than all."""
    from mien.demo.videos import write_clip
    from mien.engine.faces import EngineConfig
    from mien.indexer import worker

    clip = write_clip(tmp_path / "two.mp4", ["obama2", "biden"], fps=10, seconds=12.0, size=(640, 360))
    worker.init(EngineConfig(), 1)
    args = (str(clip.path), 2.0, 2000.0, 4, 10**8)
    full = [worker.analyze_range(str(clip.path), a, b, *args[1:]) for a, b in ((0, 6000), (6000, None))]
    kept = [worker.analyze_range(str(clip.path), a, b, *args[1:], True, None, 3) for a, b in ((0, 6000), (6000, None))]
    every = [f for r in full for f in r.frames]
    assert sum(len(f.patches) for f in every) >= 40
    shipped = {(f.index, pos) for r in kept for f in r.frames for pos in f.patches}
    assert len(shipped) <= 2 * (2 * 3 + 2)
    # the driver's choice from every patch is among those shipped
    queue = driver(3)
    run = FileRun(job=None)
    for r in full:
        queue._feed(run, r.frames)
    index_of = {id(p): (f.index, pos) for f in every for pos, p in f.patches.items()}
    best = {index_of[id(c[2])] for b in run.candidates.values() for c in b}
    assert len(best) == 6 and best <= shipped
