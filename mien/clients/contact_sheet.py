"""Contact sheets: the query face next to the hit thumbnails with their scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np

TILE = 128
LABEL_H = 36
PAD = 8
COLUMNS = 6


def _decode(jpeg: bytes) -> np.ndarray | None:
    import cv2

    if not jpeg:
        return None
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    return img


def crop_face(image: np.ndarray, bbox, margin: float = 0.25) -> np.ndarray:
    """A square-ish crop around bbox with some margin, clipped to the image."""
    x1, y1, x2, y2 = bbox
    w, h = x2 - x1, y2 - y1
    side = max(w, h) * (1 + 2 * margin)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    H, W = image.shape[:2]
    a, b = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    c, d = int(min(W, cx + side / 2)), int(min(H, cy + side / 2))
    return image[b:d, a:c]


def _tile(face: np.ndarray | None, lines: list[str], border=(200, 200, 200)) -> np.ndarray:
    import cv2

    tile = np.full((TILE + LABEL_H, TILE, 3), 255, np.uint8)
    if face is not None and face.size:
        h, w = face.shape[:2]
        scale = TILE / max(h, w)
        face = cv2.resize(face, (max(1, round(w * scale)), max(1, round(h * scale))),
                          interpolation=cv2.INTER_AREA)
        h, w = face.shape[:2]
        y, x = (TILE - h) // 2, (TILE - w) // 2
        tile[y:y + h, x:x + w] = face
    else:
        cv2.putText(tile, "no thumbnail", (8, TILE // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (90, 90, 90), 1,
                    cv2.LINE_AA)
    cv2.rectangle(tile, (0, 0), (TILE - 1, TILE - 1), border, 2)
    for i, text in enumerate(lines[:2]):
        cv2.putText(tile, text[:22], (3, TILE + 14 + 16 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (20, 20, 20), 1, cv2.LINE_AA)
    return tile


def make_sheet(query_face: np.ndarray | None, hits, out_path: str | Path, *, title: str = "",
               query_label: str = "query") -> Path:
    """Write a PNG: the query face (blue border) then the hits, row-major, with scores.

    query_face is a BGR crop (or None); hits are client FaceHits with thumbnails.
    """
    import cv2

    tiles = [_tile(query_face, [query_label, ""], border=(200, 90, 0))]
    for rank, hit in enumerate(hits, 1):
        who = hit.person_name or (f"person {hit.person_id}" if hit.person_id >= 0 else "unknown")
        when = f" {hit.timestamp_ms / 1000:.1f}s" if hit.timestamp_ms else ""
        tiles.append(_tile(_decode(hit.thumbnail), [f"#{rank} d={hit.distance:.3f}", f"{who}{when}"]))
    cols = min(COLUMNS, len(tiles))
    rows = (len(tiles) + cols - 1) // cols
    th, tw = TILE + LABEL_H, TILE
    top = 28 if title else 0
    sheet = np.full((top + PAD + rows * (th + PAD), PAD + cols * (tw + PAD), 3), 255, np.uint8)
    if title:
        cv2.putText(sheet, title[:90], (PAD, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        y, x = top + PAD + r * (th + PAD), PAD + c * (tw + PAD)
        sheet[y:y + th, x:x + tw] = tile
    out = Path(out_path)
    if not cv2.imwrite(str(out), sheet):
        raise OSError(f"cannot write {out}")
    return out
