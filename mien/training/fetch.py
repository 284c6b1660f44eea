"""`mien fec fetch CSV --out DIR`: download FEC images, crop, align and cache faces.

Layout of DIR (everything is a cache; re-running resumes):
  images/<sha1(url)>.img   the downloaded bytes (only images that decode)
  dead.jsonl               URLs that are gone (HTTP 4xx, not an image); skipped
                           on later runs unless --retry-dead
  crops/<face key>.jpg     224x224 expression crops (aligned by the engine, or the
                           box crop when no landmarks were found)
  faces.jsonl              per face: key, aligned or fallback, the 68 landmarks
                           in crop pixels (for the landmark baseline)
  triplets.jsonl           the labelled triplets whose three crops exist
  fetch_report.json        the counts of the last run

Downloads run in a thread pool (network bound) while faces are cropped and
aligned in the calling thread (CPU bound; keeps the detector single-threaded).
Timeouts, 5xx and connection errors are retried with backoff and, if they keep
failing, retried again on the next run; 4xx answers are final.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mien.engine.faces.boxes import iou as box_iou
from mien.training.fec import FaceRef, ParseStats, Triplet, read_csv

log = logging.getLogger(__name__)

CROP_SIZE = 224
MAX_BYTES = 25 * 1024 * 1024
USER_AGENT = "mien-fec-fetch/1 (research dataset download)"
# Around a face box, the detector gets this much context per side (fraction of the box).
DETECT_MARGIN = 0.4


@dataclass
class FetchReport:
    rows: int = 0
    triplets_labelled: int = 0
    no_majority: int = 0
    malformed: int = 0
    urls: int = 0
    downloaded: int = 0          # new this run
    cached: int = 0              # already on disk
    dead: int = 0                # 4xx / not an image (final)
    failed: int = 0              # timeouts, 5xx, connection errors after retries
    faces: int = 0
    crops_new: int = 0
    crops_cached: int = 0
    aligned: int = 0             # crops aligned by the engine's landmarks
    fallback_box: int = 0        # no landmarks found: resized box crop
    triplets_surviving: int = 0
    per_type_surviving: dict = field(default_factory=dict)
    seconds: float = 0.0


def url_key(url: str) -> str:
    return hashlib.sha1(url.encode()).hexdigest()[:20]


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a crash
    return out


def _append_jsonl(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


def download(url: str, timeout: float, retries: int) -> tuple[bytes | None, str, bool]:
    """(data, reason, final). data is None on failure; final = do not retry later."""
    last = ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(min(0.25 * 2 ** (attempt - 1), 4.0))
        try:
            request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
            with urllib.request.urlopen(request, timeout=timeout) as response:
                data = response.read(MAX_BYTES + 1)
            if len(data) > MAX_BYTES:
                return None, "too large", True
            return data, "", False
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
            if 400 <= exc.code < 500 and exc.code not in (408, 429):
                return None, last, True
        except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError,
                OSError) as exc:
            reason = getattr(exc, "reason", exc)
            last = f"{type(reason).__name__}: {reason}"
            if isinstance(reason, ValueError):  # unknown url type etc.
                return None, last, True
        except ValueError as exc:  # malformed URL
            return None, f"bad url: {exc}", True
    return None, last or "failed", False


class FaceCropper:
    """Box crop -> engine detection + 224 expression alignment, else the box resized."""

    def __init__(self, align: bool = True):
        self.align = align
        self._analyzer = None
        self._align_fn = None
        self._align_mod = None
        if align:
            from mien.engine.faces import EngineConfig, FaceAnalyzer
            from mien.engine.faces import align as align_mod

            # Small faces in FEC images: detect with upsampling on the (small) region.
            self._analyzer = FaceAnalyzer(EngineConfig(upsample=1, min_face=20))
            self._align_fn = align_mod.expression_crop
            self._align_mod = align_mod

    def crop(self, image: np.ndarray, face: FaceRef) -> tuple[np.ndarray, bool, np.ndarray | None]:
        """(224 crop, aligned?, the 68 landmarks in crop pixels or None)."""
        h, w = image.shape[:2]
        x1, y1, x2, y2 = face.pixel_box(w, h)
        if self._analyzer is not None:
            bw, bh = x2 - x1, y2 - y1
            rx1 = max(int(x1 - DETECT_MARGIN * bw), 0)
            ry1 = max(int(y1 - DETECT_MARGIN * bh), 0)
            rx2 = min(int(x2 + DETECT_MARGIN * bw), w)
            ry2 = min(int(y2 + DETECT_MARGIN * bh), h)
            region = np.ascontiguousarray(image[ry1:ry2, rx1:rx2])
            box = (x1 - rx1, y1 - ry1, x2 - rx1, y2 - ry1)
            best, best_iou = None, 0.3  # the detection must be this face, not a neighbour
            for det in self._analyzer.detect(region):
                iou = box_iou(det.bbox, box)
                if iou > best_iou:
                    best, best_iou = det, iou
            if best is not None:
                crop = self._align_fn(region, best.landmarks5)
                lm68 = None
                if best.landmarks68 is None:  # the MediaPipe front end fits dlib's 68 on demand
                    from mien.engine.faces.dlib_landmarks import fill_landmarks68

                    fill_landmarks68(region, [best])
                if best.landmarks68 is not None:  # kept for the landmark baseline in `eval fec`
                    matrix = self._align_mod.expression_matrix(best.landmarks5)
                    lm68 = self._align_mod.apply(matrix, best.landmarks68)
                return crop, True, lm68
        return box_crop(image, (x1, y1, x2, y2)), False, None


def box_crop(image: np.ndarray, box: tuple[int, int, int, int], size: int = CROP_SIZE,
             context: float = 1.5) -> np.ndarray:
    """A square crop around the box, `context` times its longer side, resized.

    FEC boxes are tight face boxes; 1.5x puts the face at roughly the scale of the
    engine's aligned crop (inter-ocular 70 px of 224), so fallback crops and
    aligned crops look alike to the network.
    """
    import cv2

    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    half = max(x2 - x1, y2 - y1) * context / 2.0
    scale = size / (2.0 * half)
    m = np.array([[scale, 0.0, size / 2.0 - scale * cx],
                  [0.0, scale, size / 2.0 - scale * cy]], np.float32)
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_AREA,
                          borderMode=cv2.BORDER_REPLICATE)


def fetch(csv_path: str | os.PathLike, out_dir: str | os.PathLike, *, workers: int = 16,
          timeout: float = 10.0, retries: int = 2, limit: int | None = None,
          align: bool = True, retry_dead: bool = False, progress: bool = True) -> FetchReport:
    """Download, crop and cache the faces of an FEC CSV; write triplets.jsonl."""
    import cv2
    from tqdm import tqdm

    started = time.perf_counter()
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "crops").mkdir(parents=True, exist_ok=True)
    triplets, stats = read_csv(csv_path, limit=limit)
    report = _report_from_stats(stats)

    faces_by_url: dict[str, dict[str, FaceRef]] = {}
    for t in triplets:
        for f in t.faces:
            faces_by_url.setdefault(f.url, {})[f.key] = f
    report.urls = len(faces_by_url)
    report.faces = sum(len(v) for v in faces_by_url.values())

    dead_path = out / "dead.jsonl"
    dead = {} if retry_dead else {d["url"]: d["reason"] for d in _read_jsonl(dead_path)}
    faces_path = out / "faces.jsonl"
    face_meta = {d["key"]: d for d in _read_jsonl(faces_path)}
    cropper = None

    def crops_missing(url: str) -> list[FaceRef]:
        return [f for k, f in faces_by_url[url].items()
                if not (out / "crops" / f"{k}.jpg").exists() or k not in face_meta]

    def process(url: str, data: bytes | None) -> None:
        nonlocal cropper
        todo = crops_missing(url)
        report.crops_cached += len(faces_by_url[url]) - len(todo)
        if not todo:
            return
        if data is None:
            data = (out / "images" / f"{url_key(url)}.img").read_bytes()
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None:  # cached file went bad
            return
        if cropper is None:
            cropper = FaceCropper(align=align)
        for f in todo:
            crop, aligned, lm68 = cropper.crop(image, f)
            ok, jpg = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 95])
            if not ok:
                continue
            _atomic_write(out / "crops" / f"{f.key}.jpg", jpg.tobytes())
            meta = {"key": f.key, "aligned": bool(aligned), "url": f.url}
            if lm68 is not None:
                meta["landmarks68"] = np.round(np.asarray(lm68, np.float64), 2).tolist()
            _append_jsonl(faces_path, meta)
            face_meta[f.key] = meta
            report.crops_new += 1

    to_download = []
    for url in faces_by_url:
        if (out / "images" / f"{url_key(url)}.img").exists():  # before `dead`: --retry-dead may have revived it
            report.cached += 1
            if crops_missing(url):
                to_download.append((url, True))
            else:
                report.crops_cached += len(faces_by_url[url])
        elif url in dead:
            report.dead += 1
        else:
            to_download.append((url, False))

    bar = tqdm(total=len(to_download), desc="fec fetch", unit="img", disable=not progress)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {}
        for url, cached in to_download:
            if cached:
                futures[pool.submit(lambda: (None, "", False))] = (url, True)
            else:
                futures[pool.submit(download, url, timeout, retries)] = (url, False)
        for future in as_completed(futures):
            url, cached = futures[future]
            bar.update(1)
            data, reason, final = future.result()
            if not cached:
                if data is None:
                    if final:
                        report.dead += 1
                        _append_jsonl(dead_path, {"url": url, "reason": reason})
                    else:
                        report.failed += 1
                    log.debug("skip %s: %s", url, reason)
                    continue
                probe = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
                if probe is None:
                    report.dead += 1
                    _append_jsonl(dead_path, {"url": url, "reason": "not an image"})
                    continue
                _atomic_write(out / "images" / f"{url_key(url)}.img", data)
                report.downloaded += 1
            process(url, data)
            bar.set_postfix(new=report.downloaded, dead=report.dead, failed=report.failed)
    bar.close()

    surviving = []
    for t in triplets:
        keys = [f.key for f in t.faces]
        if all(k in face_meta and (out / "crops" / f"{k}.jpg").exists() for k in keys):
            surviving.append(t)
    report.triplets_surviving = len(surviving)
    per_type: dict[str, int] = {}
    for t in surviving:
        per_type[t.type] = per_type.get(t.type, 0) + 1
    report.per_type_surviving = per_type
    all_keys = {f.key for t in triplets for f in t.faces}
    report.aligned = sum(1 for k in all_keys if face_meta.get(k, {}).get("aligned") is True)
    report.fallback_box = sum(1 for k in all_keys if face_meta.get(k, {}).get("aligned") is False)
    lines = "".join(json.dumps(t.to_json()) + "\n" for t in surviving)
    _atomic_write(out / "triplets.jsonl", lines.encode())
    report.seconds = round(time.perf_counter() - started, 3)
    _atomic_write(out / "fetch_report.json", json.dumps(asdict(report), indent=2).encode())
    return report


def _report_from_stats(stats: ParseStats) -> FetchReport:
    return FetchReport(rows=stats.rows, triplets_labelled=stats.triplets,
                       no_majority=stats.no_majority, malformed=stats.malformed)


def load_face_meta(data_dir: str | os.PathLike) -> dict[str, dict]:
    """key -> {"aligned", "url", "landmarks68"?} of a fetched directory."""
    return {d["key"]: d for d in _read_jsonl(Path(data_dir) / "faces.jsonl")}


def load_triplets(data_dir: str | os.PathLike) -> list[Triplet]:
    """The surviving triplets of a fetched directory."""
    from mien.errors import BadInputError

    path = Path(data_dir) / "triplets.jsonl"
    if not path.exists():
        raise BadInputError(f"{data_dir} holds no triplets.jsonl; run `mien fec fetch CSV --out {data_dir}`")
    return [Triplet.from_json(d) for d in _read_jsonl(path)]
