"""`mien index --ray` on a real local Ray cluster gives the same store as `mien index`.

Ray's own runtime (ray.init with 2 CPUs, its GCS, raylet and actor processes),
no mock. The archive: package photos, a rendered video of two people and a
7 s one cut into 2 s ranges (--range-seconds 2) that actors read themselves,
so tracks, identity clustering and persons all take part, across ranges too.
Marked `ray`: skip locally with `pytest -m "not ray"`; CI runs them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from indexer_support import env_for_subprocess, small_photo
from store_support import assert_same_faces

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def cluster():
    import ray

    ctx = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ctx.address_info["gcs_address"]
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    from mien.demo.videos import write_clip

    root = tmp_path_factory.mktemp("ray-archive")
    for name in ("obama", "obama2", "biden", "t1", "astronaut"):
        small_photo(name, root / "photos" / f"{name}.jpg")
    write_clip(root / "videos" / "pair.avi", people=("obama", "biden"), motion="pan", fps=10.0,
               seconds=3.0)
    # mp4v: seeking decodes from the keyframe before each range's start
    write_clip(root / "videos" / "long.mp4", people=("obama2",), motion="zoom", fps=25.0, seconds=7.0,
               size=(1280, 720), blur_frames=range(90, 100))
    return root


def _index(archive: Path, store: Path, *extra: str) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "mien", "index", str(archive), "--store", str(store),
                        "--quiet", "--strict", *extra],
                       cwd=ROOT, env=env_for_subprocess(), capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def _content(store_dir: Path):
    from mien.engine.store import Store

    with Store(store_dir, mode="r") as st:
        faces = {}
        for s in st.list_sources():
            assert s.status == "done", (s.uri, s.error)
            faces[s.uri] = st.faces_of_source(s.uri, thumbnail=False)
        persons = sorted((p.person_id, p.name, p.count) for p in st.list_persons())
        return faces, persons


@pytest.mark.ray
def test_ray_index_gives_the_local_store(cluster, archive, tmp_path):
    """Local: one range per video; Ray: 2 s ranges (the long video in 4) read by the actors."""
    import json

    _index(archive, tmp_path / "local", "--workers", "2", "--range-seconds", "1000",
           "--json", str(tmp_path / "local.json"))
    out = _index(archive, tmp_path / "ray", "--ray", cluster, "--workers", "2", "--range-seconds", "2",
                 "--json", str(tmp_path / "ray.json"))
    assert "indexed" in out.stdout.lower() or out.stdout
    local_summary = json.loads((tmp_path / "local.json").read_text())
    ray_summary = json.loads((tmp_path / "ray.json").read_text())
    assert local_summary["video_ranges"] == 2
    assert ray_summary["video_ranges"] >= 2 + 4 and ray_summary["video_rereads"] == 0
    assert ray_summary["frames"] == local_summary["frames"]

    local, local_persons = _content(tmp_path / "local")
    ray_faces, ray_persons = _content(tmp_path / "ray")
    assert sum(len(v) for v in local.values()) >= 10
    assert any(len(v) > 10 for v in local.values())  # the video's faces
    assert_same_faces(local, ray_faces)
    assert local_persons == ray_persons and len(local_persons) >= 2
    long_uri = next(u for u in local if u.endswith("long.mp4"))
    assert len({f.frame_index for f in local[long_uri]}) >= 10  # faces in every range

    # a re-run on Ray finds nothing to do (resumability is the local path's own)
    again = _index(archive, tmp_path / "ray", "--ray", cluster)
    assert _content(tmp_path / "ray")[1] == ray_persons
    assert "unchanged" in again.stdout


def _arrays(value, seen=None):
    """Every ndarray inside a job's arguments or result (dataclasses, lists, dicts)."""
    import dataclasses

    if isinstance(value, np.ndarray):
        return [value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [a for f in dataclasses.fields(value) for a in _arrays(getattr(value, f.name))]
    if isinstance(value, (list, tuple)):
        return [a for v in value for a in _arrays(v)]
    if isinstance(value, dict):
        return [a for v in value.values() for a in _arrays(v)]
    return []


@pytest.mark.ray
def test_ray_jobs_carry_paths_not_images(cluster, archive, tmp_path, monkeypatch):
    """A real run on the Ray cluster, every job seen on its way to an actor: image and
    video jobs carry a path (and a time range), no array; the only pixels that travel
    are identity patches going back for embedding, each a small crop, not a frame."""
    from mien.indexer import IndexOptions, index_paths, worker
    from mien.indexer.ray_runner import RayRunner

    jobs = []
    real_submit = RayRunner.submit

    def recording_submit(self, fn, *args):
        future = real_submit(self, fn, *args)
        jobs.append((fn.__name__, args, future))
        return future

    monkeypatch.setattr(RayRunner, "submit", recording_submit)
    summary = index_paths([archive], tmp_path / "store", options=IndexOptions(
        workers=2, range_seconds=2, ray_address=cluster, show_progress=False))
    assert summary.failed_count == 0 and summary.videos == 2 and summary.video_ranges >= 6
    names = [name for name, _, _ in jobs]
    assert names.count("analyze_range") >= 6 and names.count("analyze_image") == 5
    assert set(names) <= {"encoders", "analyze_image", "analyze_range", "embed_patches"}
    # an identity patch: the face scaled to at most PATCH_FACE_WIDTH px wide plus a margin each
    # side (faces are taller than wide): a small crop, not a frame
    patch_side = int((1 + 2 * worker.PATCH_MARGIN) * worker.PATCH_FACE_WIDTH) + 2

    def small(shape) -> bool:
        return len(shape) < 2 or (shape[1] <= patch_side and shape[0] <= 2 * patch_side
                                  and 5 * int(np.prod(shape)) < 1280 * 720 * 3)

    for name, args, future in jobs:
        if name in ("analyze_image", "analyze_range"):
            assert _arrays(args) == [], name
            assert isinstance(args[0], str) and os.path.isfile(args[0])
        if name == "analyze_range" and args[0].endswith("long.mp4"):  # 1280x720 frames
            for array in _arrays(future.result()):  # faces' points and vectors, identity patches
                assert small(array.shape), array.shape
        elif name == "embed_patches":
            patches = args[0]
            assert patches and all(isinstance(p, worker.Patch) for p in patches)
            assert all(small(p.image.shape) for p in patches)


@pytest.mark.ray
def test_ray_runner_replaces_a_dead_worker(cluster):
    """A worker killed mid-job (as a segfault on hostile input would) is reported
    as a dead worker, and recover() brings up a fresh pool that works."""
    import os

    from mien.engine.faces import EngineConfig
    from mien.indexer import worker
    from mien.indexer.ray_runner import RayRunner

    runner = RayRunner(EngineConfig(), 1, address=cluster)
    try:
        assert runner.submit(worker.encoders).result()["expression_dim"] == 16
        with pytest.raises(Exception) as info:
            runner.submit(os._exit, 1).result()
        assert runner.recover(info.value) is True
        assert runner.submit(worker.encoders).result()["expression_dim"] == 16
    finally:
        runner.close()


def _kill_actors_reading(path: Path, kills: list, stop, once: bool) -> None:
    """SIGKILL each Ray actor process that has `path` open, i.e. one in the middle of
    reading one of its ranges (as a segfault in a decoder would), until `stop` is set;
    once: only the first one."""
    import signal
    import time

    import psutil

    target = os.path.realpath(path)
    while not stop.is_set():
        for proc in psutil.process_iter(["cmdline"]):
            try:
                if not any("_Actor" in part for part in proc.info["cmdline"] or []):
                    continue
                if any(f.path == target for f in proc.open_files()):
                    proc.send_signal(signal.SIGKILL)
                    kills.append(proc.pid)
                    if once:
                        return
            except psutil.Error:  # gone meanwhile, or a zombie
                continue
        time.sleep(0.01)


def _index_while_killing(archive: Path, store: Path, cluster: str, once: bool):
    import json
    import threading

    kills: list = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_actors_reading,
                              args=(archive / "videos" / "long.mp4", kills, stop, once), daemon=True)
    killer.start()
    try:
        r = subprocess.run([sys.executable, "-m", "mien", "index", str(archive), "--store", str(store),
                            "--quiet", "--ray", cluster, "--workers", "2", "--range-seconds", "2",
                            "--json", str(store.parent / f"{store.name}.json")],
                           cwd=ROOT, env=env_for_subprocess(), capture_output=True, text=True, timeout=900)
    finally:
        stop.set()
        killer.join()
    return r, json.loads((store.parent / f"{store.name}.json").read_text()), kills


@pytest.mark.ray
def test_an_actor_killed_in_a_range_is_recovered(cluster, archive, tmp_path):
    """`mien index --ray`: an actor SIGKILLed while it reads a range of the long video;
    the driver replaces the actors, analyses the files in flight again, one at a time,
    and the store equals a clean run's."""
    r, summary, kills = _index_while_killing(archive, tmp_path / "killed", cluster, once=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(kills) == 1, "no actor was caught reading the video"
    assert summary["failed"] == {} and summary["videos"] == 2, summary
    _index(archive, tmp_path / "clean", "--workers", "2", "--range-seconds", "2")
    clean, clean_persons = _content(tmp_path / "clean")
    killed, killed_persons = _content(tmp_path / "killed")
    assert_same_faces(clean, killed)
    assert clean_persons == killed_persons


@pytest.mark.ray
def test_an_actor_killed_on_every_attempt_fails_the_video(cluster, archive, tmp_path):
    """Every actor that reads the long video is killed: the video is retried once,
    alone, then failed with "analysis crashed"; every other file is indexed."""
    from mien.engine.store import Store

    r, summary, kills = _index_while_killing(archive, tmp_path / "store", cluster, once=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(kills) >= 2
    assert summary["failed"] == {"analysis crashed": 1}, summary
    with Store(tmp_path / "store", mode="r") as st:
        status = {Path(s.uri).name: (s.status, s.error) for s in st.list_sources()}
    assert status.pop("long.mp4")[0] == "failed"
    assert len(status) == 6 and all(state == "done" for state, _ in status.values()), status


def test_index_without_ray_never_imports_it(tmp_path):
    photo = small_photo("obama", tmp_path / "a" / "obama.jpg")
    code = ("import sys; from mien.cli import main; "
            f"rc = main(['index', {str(photo.parent)!r}, '--store', {str(tmp_path / 's')!r}, '--quiet', "
            "'--workers', '1']); assert 'ray' not in sys.modules, 'ray imported'; sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env_for_subprocess(),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
