"""The indexer's small parts on their own: sniffing, crawl, fingerprints, tracking,
pooling, identity clustering and person linking."""

from __future__ import annotations

import os

import numpy as np

from indexer_support import mp4_without_video, png_bomb, small_photo, unit


def test_sniff_by_content_not_name(tmp_path):
    import cv2

    from mien.demo.videos import write_clip
    from mien.indexer.sniff import kind_of_head, sniff

    jpg = small_photo("obama", tmp_path / "photo.dat")               # JPEG without extension
    png = tmp_path / "photo.mp4"
    cv2.imwrite(str(tmp_path / "x.png"), np.zeros((20, 20, 3), np.uint8))
    os.rename(tmp_path / "x.png", png)                                # PNG named .mp4
    webp = tmp_path / "x.webp"
    cv2.imwrite(str(webp), np.zeros((20, 20, 3), np.uint8))
    clip = write_clip(tmp_path / "clip.avi", ["obama"], fps=5, seconds=0.4)
    renamed = tmp_path / "clip.jpg"
    os.rename(clip.path, renamed)                                     # AVI named .jpg
    mp4 = write_clip(tmp_path / "c.mp4", ["obama"], fps=5, seconds=0.4).path
    text = tmp_path / "notes.png"
    text.write_text("hello")
    assert sniff(str(jpg)) == "image"
    assert sniff(str(png)) == "image"
    assert sniff(str(webp)) == "image"
    assert sniff(str(renamed)) == "video"
    assert sniff(str(mp4)) == "video"
    assert sniff(str(mp4_without_video(tmp_path / "n.mp4"))) == "video"
    assert sniff(str(png_bomb(tmp_path / "b.png"))) == "image"
    assert sniff(str(text)) is None
    assert kind_of_head(b"\x1a\x45\xdf\xa3rest") == "video"          # Matroska/WebM
    assert kind_of_head(b"\x00\x00\x00\x18ftypheic") == "image"      # HEIF still, not a movie
    assert kind_of_head(b"") is None


def test_crawl_is_sorted_deduplicated_and_survives_loops(tmp_path):
    from mien.indexer.crawl import crawl

    (tmp_path / "b").mkdir()
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "b" / "c.jpg").write_bytes(b"y")
    os.symlink(tmp_path / "a.jpg", tmp_path / "b" / "alias.jpg")     # same file, second name
    os.symlink(tmp_path, tmp_path / "b" / "up")                      # loop
    os.symlink("self", tmp_path / "self")                            # a link to itself
    found = crawl([tmp_path, tmp_path / "a.jpg"])
    files = [f.path for f in found if f.candidate]
    assert files == [str((tmp_path / "a.jpg").resolve()), str((tmp_path / "b" / "c.jpg").resolve())]
    reasons = sorted(f.skip or f.fail for f in found if not f.candidate)
    assert reasons == ["symlink loop", "symlink loop or repeated folder"]


def test_fingerprint_changes_with_content_not_with_reading(tmp_path):
    from mien.indexer.fingerprint import fingerprint

    path = tmp_path / "f.bin"
    path.write_bytes(os.urandom(3 << 20))
    st = os.stat(path)
    first = fingerprint(str(path))
    assert fingerprint(str(path)) == first
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF                      # change in the last MiB, same size, same mtime
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert fingerprint(str(path)) != first
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert fingerprint(str(path)).split(":")[2] != first.split(":")[2]


def test_tracker_follows_moving_boxes_and_splits_far_ones():
    from mien.indexer.tracking import Tracker

    tracker = Tracker(max_gap=1)
    a, b = [10, 10, 60, 60], [200, 10, 250, 60]
    ids = [tracker.update([a, b])]
    for step in range(1, 5):     # both faces move 30 px per sample: IoU drops, centres stay close
        ids.append(tracker.update([[a[0] + 30 * step, 10, a[2] + 30 * step, 60],
                                   [b[0] - 5 * step, 10, b[2] - 5 * step, 60]]))
    assert all(i == ids[0] for i in ids) and ids[0][0] != ids[0][1]
    tracker.update([])
    tracker.update([])           # gap longer than max_gap: the next box is a new track
    assert tracker.update([[130, 10, 180, 60]])[0] not in ids[0]
    assert [t.track_id for t in tracker.finish()] == [0, 1, 2]
    # a face of very different size at the same place is not the same track
    fresh = Tracker()
    first = fresh.update([[100, 100, 150, 150]])
    assert fresh.update([[60, 60, 260, 260]]) != first


def test_median_pool_window_and_norm():
    from mien.indexer.pooling import median_pool

    rng = np.random.default_rng(0)
    v = np.stack([unit(rng.normal(size=16)) for _ in range(5)])
    pooled = median_pool(v)
    assert pooled.shape == v.shape
    assert np.allclose(np.linalg.norm(pooled, axis=1), 1.0, atol=1e-5)
    mid = np.median(v[1:4], axis=0)
    assert np.allclose(pooled[2], mid / np.linalg.norm(mid), atol=1e-6)
    one = median_pool(v[:1])
    assert np.allclose(one, v[:1])
    spike = np.stack([v[0], v[0], v[1], v[0], v[0]])       # one outlier frame is voted away
    assert np.allclose(median_pool(spike)[2], v[0], atol=1e-6)
