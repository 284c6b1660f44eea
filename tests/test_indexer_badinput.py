"""Bad input never stops a run; each kind is counted with its reason.

One archive holds one good photo and every kind of bad input; it is indexed
once (module fixture) and each test checks its own kind.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from indexer_support import check_consistent, env_for_subprocess, mp4_without_video, png_bomb, small_photo
from mien.indexer.crawl import is_root


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    from mien.demo.videos import write_clip
    from mien.engine.store import Store
    from mien.indexer import IndexOptions, index_paths

    root = tmp_path_factory.mktemp("bad")
    archive = root / "archive"
    archive.mkdir()
    small_photo("obama", archive / "good.jpg")
    data = (archive / "good.jpg").read_bytes()
    (archive / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (archive / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(4000))
    (archive / "empty.jpg").write_bytes(b"")
    (archive / "empty_notes").write_bytes(b"")
    (archive / "letter.jpg").write_text("Dear archive, I am not a JPEG.\n")
    (archive / "readme.txt").write_text("plain text, skipped by content\n")
    png_bomb(archive / "bomb.png")
    mp4_without_video(archive / "silent.mp4")
    clip = write_clip(root / "clip.mp4", ["obama"], fps=10, seconds=1.0)
    raw = clip.path.read_bytes()
    (archive / "truncated.mp4").write_bytes(raw[: len(raw) // 2])
    os.symlink(archive / "does-not-exist.jpg", archive / "dangling.jpg")
    os.symlink(archive, archive / "loop")           # a folder symlink back to its parent
    os.mkfifo(archive / "pipe.jpg")                 # would block a naive open()
    locked = archive / "locked.jpg"
    locked.write_bytes(data)
    locked.chmod(0)
    sub = archive / "private"
    sub.mkdir()
    small_photo("biden", sub / "hidden.jpg")
    sub.chmod(0)
    store_dir = root / "store"
    try:
        summary = index_paths([archive, root / "vanished-folder"], store_dir,
                              options=IndexOptions(workers=1, show_progress=False))
    finally:
        sub.chmod(0o755)
        locked.chmod(0o644)
    store = Store(store_dir, mode="r")
    yield {"archive": archive, "summary": summary, "store": store, "store_dir": store_dir}
    store.close()


def failure_of(bad, name):
    for path, reason in bad["summary"].failures:
        if os.path.basename(path) == name:
            return reason
    return None


def test_good_photo_indexed_despite_bad_neighbours(bad):
    store = bad["store"]
    good = store.get_source(os.path.realpath(bad["archive"] / "good.jpg"))
    assert good is not None and good.status == "done" and good.face_count == 1
    check_consistent(store)


def test_truncated_image(bad):
    assert "corrupt" in failure_of(bad, "truncated.jpg")
    assert store_status(bad, "truncated.jpg") == "failed"


def test_corrupt_image_data(bad):
    assert "corrupt" in failure_of(bad, "garbage.png")


def test_zero_byte_files(bad):
    assert failure_of(bad, "empty.jpg") == "empty file"          # claims to be media
    assert bad["summary"].skipped["empty file"] == 1             # empty_notes: just skipped


def test_non_media_with_media_extension(bad):
    assert failure_of(bad, "letter.jpg").startswith("not media")


def test_non_media_file_is_skipped_not_failed(bad):
    assert failure_of(bad, "readme.txt") is None
    assert bad["summary"].skipped["not media"] == 1


def test_decompression_bomb(bad):
    assert failure_of(bad, "bomb.png").startswith("too large")


def test_video_without_video_stream(bad):
    assert failure_of(bad, "silent.mp4").startswith("no video stream")


def test_truncated_video(bad):
    reason = failure_of(bad, "truncated.mp4")
    assert reason is not None and ("video" in reason)


def test_broken_symlink(bad):
    assert failure_of(bad, "dangling.jpg") == "broken symlink"


def test_symlink_loop_walked_once(bad):
    assert bad["summary"].skipped["symlink loop or repeated folder"] == 1
    # the photo reached through the loop is the same file: indexed once
    uris = [s.uri for s in bad["store"].list_sources()]
    assert len(uris) == len(set(uris))
    assert sum(u.endswith("good.jpg") for u in uris) == 1


def test_fifo_is_skipped_without_blocking(bad):
    assert bad["summary"].skipped["not a regular file"] == 1


def test_vanished_path(bad):
    assert failure_of(bad, "vanished-folder") == "vanished during crawl"


def test_unreadable_file_and_folder(bad):
    if is_root():
        # root reads chmod 000 files: both are simply indexed; the point is the run went on
        assert store_status(bad, "locked.jpg") == "done"
        assert store_status(bad, "hidden.jpg") == "done"
    else:
        assert failure_of(bad, "locked.jpg") == "permission denied"
        assert failure_of(bad, "private").startswith("unreadable folder")


def store_status(bad, name):
    for s in bad["store"].list_sources():
        if os.path.basename(s.uri) == name:
            return s.status
    return None


def test_failures_are_remembered_and_strict_exit_code(bad, tmp_path):
    """A re-run does not retry unchanged failures but still reports them; --strict exits 1."""
    cmd = [sys.executable, "-m", "mien", "index", str(bad["archive"]), "--store", str(bad["store_dir"]),
           "--quiet", "--workers", "1"]
    env = env_for_subprocess()
    strict = subprocess.run(cmd + ["--strict"], capture_output=True, text=True, env=env, timeout=120)
    assert strict.returncode == 1, strict.stderr
    assert "unchanged since last run" in strict.stderr
    assert "sources indexed" in strict.stdout
    relaxed = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert relaxed.returncode == 0, relaxed.stderr


def test_damaged_video_does_not_stop_the_run(tmp_path):
    """An AVI with its middle overwritten: decoded as far as possible or failed, never a crash."""
    from mien.demo.videos import write_clip
    from mien.indexer import IndexOptions, index_paths

    clip = write_clip(tmp_path / "in" / "damaged.avi", ["obama"], fps=10, seconds=1.0)
    raw = bytearray(clip.path.read_bytes())
    mid = len(raw) // 2
    raw[mid:mid + 20000] = os.urandom(min(20000, len(raw) - mid))
    clip.path.write_bytes(bytes(raw))
    small_photo("biden", tmp_path / "in" / "after.jpg")
    summary = index_paths([tmp_path / "in"], tmp_path / "store",
                          options=IndexOptions(workers=1, show_progress=False))
    assert summary.images == 1
    assert summary.videos + summary.failed_count == 1


def test_files_deleted_during_the_run_are_counted_as_vanished(tmp_path):
    """Issue 22: a photo or a video deleted after the crawl found it was counted as 'corrupt or
    unreadable' (its detail, 'no such file', was right). Now it is 'vanished', and nothing is
    stored for it: the store keeps what it had (--prune drops sources whose files are gone)."""
    from mien.demo.videos import write_clip
    from mien.engine.store import Store
    from mien.indexer import IndexOptions, index_paths

    archive = tmp_path / "in"
    for name in ("a", "b", "c", "d"):
        small_photo("obama", archive / f"{name}.jpg", max_side=320)
    write_clip(archive / "e.avi", ["obama"], fps=10, seconds=1.0)
    doomed = [archive / "c.jpg", archive / "d.jpg", archive / "e.avi"]

    def progress(event):   # the first commit: c, d and e are found, fingerprinted and not read yet
        for path in doomed:
            if path.exists():
                path.unlink()

    summary = index_paths([archive], tmp_path / "store", progress=progress,
                          options=IndexOptions(workers=1, show_progress=False))
    assert dict(summary.failed) == {"vanished": 3}, summary.failures
    assert sorted(os.path.basename(p) for p, _ in summary.failures) == ["c.jpg", "d.jpg", "e.avi"]
    assert all("removed or renamed" in reason for _, reason in summary.failures)
    assert summary.images == 2
    with Store(tmp_path / "store") as store:
        assert sorted(os.path.basename(s.uri) for s in store.list_sources()) == ["a.jpg", "b.jpg"]
