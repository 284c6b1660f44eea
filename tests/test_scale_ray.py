"""`mien index --ray` on a real local Ray cluster gives the same store as `mien index`.

Ray's own runtime (ray.init with 2 CPUs, its GCS, raylet and actor processes),
no mock. The archive: package photos and a rendered video of two people, so
tracks, identity clustering and persons all take part. Marked `ray`: skip
locally with `pytest -m "not ray"`; CI runs them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from indexer_support import env_for_subprocess, small_photo

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
    _index(archive, tmp_path / "local", "--workers", "2")
    out = _index(archive, tmp_path / "ray", "--ray", cluster, "--workers", "2")
    assert "indexed" in out.stdout.lower() or out.stdout

    local, local_persons = _content(tmp_path / "local")
    ray_faces, ray_persons = _content(tmp_path / "ray")
    assert sorted(local) == sorted(ray_faces)
    assert sum(len(v) for v in local.values()) >= 10
    assert any(len(v) > 10 for v in local.values())  # the video's faces
    for uri in local:
        a, b = local[uri], ray_faces[uri]
        assert len(a) == len(b), uri
        for fa, fb in zip(a, b):
            assert (fa.face_id, fa.frame_index, fa.timestamp_ms, fa.track_id, fa.person_id) == \
                   (fb.face_id, fb.frame_index, fb.timestamp_ms, fb.track_id, fb.person_id)
            np.testing.assert_allclose(fa.bbox, fb.bbox, atol=1e-3)
            np.testing.assert_allclose(fa.expression, fb.expression, atol=1e-5)
            np.testing.assert_allclose(fa.pooled, fb.pooled, atol=1e-5)
            if fa.identity is None:
                assert fb.identity is None
            else:
                np.testing.assert_allclose(fa.identity, fb.identity, atol=1e-5)
    assert local_persons == ray_persons and len(local_persons) >= 2

    # a re-run on Ray finds nothing to do (resumability is the local path's own)
    again = _index(archive, tmp_path / "ray", "--ray", cluster)
    assert _content(tmp_path / "ray")[1] == ray_persons
    assert "unchanged" in again.stdout


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


def test_index_without_ray_never_imports_it(tmp_path):
    photo = small_photo("obama", tmp_path / "a" / "obama.jpg")
    code = ("import sys; from mien.clients.cli import main; "
            f"rc = main(['index', {str(photo.parent)!r}, '--store', {str(tmp_path / 's')!r}, '--quiet', "
            "'--workers', '1']); assert 'ray' not in sys.modules, 'ray imported'; sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env_for_subprocess(),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
