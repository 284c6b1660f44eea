"""Helpers for the training tests: an FEC-format world built from the package photos.

A real HTTP server on 127.0.0.1 serves the photos (plus 404s and one slow URL),
a real FEC-format CSV points at it, and face boxes come from dlib's detector
run on the photos, as fractions of the image like FEC's.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from mien.demo import photos

# Expression of each face, by photo and left-to-right index (looked at by eye):
# t1: 0, 1 neutral women; 2 smiling man; 3 laughing man; 4 talking man; 5 slight smile.
SMILING = [("t1.jpg", 2), ("t1.jpg", 3), ("astronaut.png", 0), ("obama.jpg", 0),
           ("obama3.jpg", 0)]
NEUTRAL = [("t1.jpg", 0), ("t1.jpg", 1), ("grace_hopper.jpg", 0), ("t1.jpg", 4)]


def photo_bytes() -> dict[str, bytes]:
    """name -> encoded bytes, read from the installed packages (never committed)."""
    import cv2

    out = {
        "t1.jpg": photos.insightface_t1_path().read_bytes(),
        "grace_hopper.jpg": photos.grace_hopper_path().read_bytes(),
        "astronaut.png": cv2.imencode(".png", photos.astronaut())[1].tobytes(),
        # a photo without a face: its "face" falls back to the box crop
        "coffee.png": cv2.imencode(".png", _coffee())[1].tobytes(),
    }
    for name in ("biden.jpg", "obama.jpg", "obama2.jpg", "obama3.jpg"):
        out[name] = (photos.face_recognition_images_dir() / name).read_bytes()
    return out


def _coffee() -> np.ndarray:
    import skimage.data

    return np.ascontiguousarray(skimage.data.coffee()[:, :, ::-1])


def face_boxes(data: bytes) -> list[tuple[float, float, float, float]]:
    """dlib HOG boxes, left to right, as FEC fractions (x1, x2, y1, y2)."""
    import cv2
    import dlib

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    h, w = image.shape[:2]
    rects = dlib.get_frontal_face_detector()(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), 0)
    rects = sorted(rects, key=lambda r: r.left())
    return [(max(r.left(), 0) / w, min(r.right(), w) / w, max(r.top(), 0) / h,
             min(r.bottom(), h) / h) for r in rects]


class PhotoServer:
    """ThreadingHTTPServer on 127.0.0.1 serving /p/<name>; /slow/<name> stalls; else 404."""

    def __init__(self, files: dict[str, bytes], slow_seconds: float = 3.0):
        self.files = files
        self.slow_seconds = slow_seconds
        self.requests: list[str] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server API)
                with server._lock:
                    server.requests.append(self.path)
                parts = self.path.strip("/").split("/", 1)
                if len(parts) == 2 and parts[0] == "slow":
                    time.sleep(server.slow_seconds)
                    parts[0] = "p"
                body = server.files.get(parts[1]) if len(parts) == 2 and parts[0] == "p" else None
                try:
                    if body is None:
                        self.send_error(404, "gone")
                        return
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and hung up: that is the point of /slow

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, name: str, kind: str = "p") -> str:
        return f"{self.base}/{kind}/{name}"

    def __enter__(self) -> "PhotoServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class FecWorld:
    csv: Path
    rows: int
    live_rows: int         # rows whose three faces are all served
    dead_urls: int         # distinct 404 URLs
    slow_urls: int         # distinct URLs that stall past the timeout
    live_urls: int
    noface_rows: int       # live rows with the coffee "face" (box-crop fallback)


def _row(faces: list[tuple[str, tuple]], kind: str, odd: int, raters: int = 6,
         agree: int = 5, choices: list[int] | None = None) -> str:
    """One FEC line: `agree` raters pick `odd` (0-based), the rest split over the others.

    `choices` (0-based, one per rater) overrides that.
    """
    fields: list[str] = []
    for url, (x1, x2, y1, y2) in faces:
        fields += [url, f"{x1:.4f}", f"{x2:.4f}", f"{y1:.4f}", f"{y2:.4f}"]
    fields.append(kind)
    others = [i for i in range(3) if i != odd]
    if choices is None:
        choices = [odd if r < agree else others[r % 2] for r in range(raters)]
    for r, choice in enumerate(choices):
        fields += [f"rater{r:03d}", str(choice + 1)]
    return ",".join(fields)


def write_fec_csv(path: Path, server: PhotoServer, files: dict[str, bytes]) -> FecWorld:
    """Smiling-vs-neutral triplets (learnable) + rows with dead, slow and face-less URLs."""
    boxes = {name: face_boxes(data) for name, data in files.items() if name != "coffee.png"}
    ref = lambda name_idx: (server.url(name_idx[0]), boxes[name_idx[0]][name_idx[1]])  # noqa: E731
    lines = []
    rng = np.random.default_rng(0)
    for group, other in ((SMILING, NEUTRAL), (NEUTRAL, SMILING)):
        for (a, b), c in itertools.product(itertools.combinations(group, 2), other):
            odd = int(rng.integers(3))  # put the odd face at a random position
            faces = [ref(a), ref(b)]
            faces.insert(odd, ref(c))
            kind = "TWO_CLASS_TRIPLET" if rng.random() < 0.5 else "THREE_CLASS_TRIPLET"
            lines.append(_row(faces, kind, odd))
    live = len(lines)
    # one-class rows with biden/obama2 and a face-less photo: survive via the box crop
    coffee = (server.url("coffee.png"), (0.3, 0.7, 0.3, 0.7))
    lines.append(_row([ref(("biden.jpg", 0)), ref(("obama2.jpg", 0)), coffee],
                      "ONE_CLASS_TRIPLET", 2))
    lines.append(_row([coffee, ref(("biden.jpg", 0)), ref(("t1.jpg", 5))],
                      "ONE_CLASS_TRIPLET", 0, agree=4))
    noface = 2
    live += noface
    # rows with gone images (404) and one that stalls past the timeout
    dead = [server.url(f"gone{i}.jpg") for i in range(3)] + [server.base + "/nothing/here.jpg"]
    slow = server.url("obama.jpg", kind="slow")
    box = (0.2, 0.8, 0.2, 0.8)
    lines.append(_row([(dead[0], box), ref(SMILING[0]), ref(NEUTRAL[0])], "TWO_CLASS_TRIPLET", 2))
    lines.append(_row([ref(SMILING[1]), (dead[1], box), (dead[2], box)], "THREE_CLASS_TRIPLET", 0))
    lines.append(_row([(dead[3], box), (slow, box), ref(NEUTRAL[1])], "ONE_CLASS_TRIPLET", 1))
    lines.append(_row([(slow, box), ref(SMILING[2]), ref(SMILING[3])], "ONE_CLASS_TRIPLET", 0))
    # a tie (3 vs 3) carries no label, and a malformed line
    lines.append(_row([ref(SMILING[0]), ref(SMILING[1]), ref(NEUTRAL[2])], "TWO_CLASS_TRIPLET",
                      2, choices=[2, 2, 2, 0, 0, 0]))
    lines.append("not,an,fec,row")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    live_urls = len({n for n, _ in SMILING + NEUTRAL}) + 3  # + biden, obama2, coffee
    return FecWorld(csv=path, rows=len(lines), live_rows=live, dead_urls=len(dead),
                    slow_urls=1, live_urls=live_urls, noface_rows=noface)
