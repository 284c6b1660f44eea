"""A small demo archive: package photos, generated videos, and two bad files.

    demo/
      photos/   t1.jpg astronaut.png grace_hopper.jpg biden.jpg obama.jpg obama2.jpg obama3.jpg
      videos/   obama_pan.mp4 (blurred frames)  astronaut_zoom.mp4 (rotated frames)
                obama_and_biden.avi (two people)  obama_moods.avi (smile, speaking, smile)
      broken/   truncated.jpg (half a JPEG)  notes.txt (not media)

Nothing is committed: photos are copied from the installed packages, videos
are rendered (about 1 s), so building it takes a few seconds.
"""

from __future__ import annotations

import shutil
from pathlib import Path

PHOTOS = ["t1", "astronaut", "grace_hopper", "biden", "obama", "obama2", "obama3"]


def _write_photos(directory: Path) -> list[Path]:
    import cv2

    from mien.demo import photos

    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for name in PHOTOS:
        if name == "t1":
            src = photos.insightface_t1_path()
        elif name == "grace_hopper":
            src = photos.grace_hopper_path()
        elif name == "astronaut":
            src = None   # skimage ships it as an array in its own format
        else:
            src = photos.face_recognition_images_dir() / f"{name}.jpg"
        if src is None:
            target = directory / f"{name}.png"
            cv2.imwrite(str(target), photos.astronaut())
        else:
            target = directory / f"{name}.jpg"
            shutil.copyfile(src, target)
        out.append(target)
    return out


def build_demo_archive(directory, *, fps: float = 10.0, seconds: float = 3.0) -> Path:
    """Build (or rebuild) the demo archive under `directory`; returns its root."""
    from mien.demo.videos import demo_clips, expression_clip

    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    photo_paths = _write_photos(root / "photos")
    demo_clips(root / "videos", fps=fps, seconds=seconds)
    # smile, speaking, smile: the expression changes over time, for `mien tag run`
    expression_clip(root / "videos" / "obama_moods.avi", fps=fps)
    broken = root / "broken"
    broken.mkdir(exist_ok=True)
    data = photo_paths[PHOTOS.index("obama")].read_bytes()
    (broken / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (broken / "notes.txt").write_text("Not a photo: the indexer skips this file by its content.\n")
    return root
