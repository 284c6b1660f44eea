"""Helpers for the web app tests: a store indexed from package photos and a rendered
video, served over gRPC and HTTP on 127.0.0.1, and headless Chromium from Debian."""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import cv2

from mien.demo import photos
from mien.demo.videos import expression_clip

TOKEN = "web-test-token-0123456789"
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str | None:
    """Debian's chromium (apt-get install chromium; `make system-deps` does it), or None."""
    env = os.environ.get("MIEN_CHROMIUM")
    if env:
        return env
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class WebStore:
    root: Path
    media: Path
    store_dir: Path
    video: Path
    timeline: list


def build_web_store(root: Path) -> WebStore:
    """obama.jpg, obama2.jpg, biden.jpg and an 8 s video (smile, speaking, smile), indexed at 2 fps."""
    from mien.indexer import IndexOptions, index_paths

    media = root / "media"
    media.mkdir(parents=True)
    for name in ("obama.jpg", "obama2.jpg", "biden.jpg"):
        cv2.imwrite(str(media / name), photos.face_recognition_photo(name))
    video = media / "obama_moods.avi"
    timeline = expression_clip(video)
    summary = index_paths([str(media)], str(root / "store"),
                          options=IndexOptions(fps=2.0, workers=1, show_progress=False))
    assert summary.failed_count == 0, summary.failures
    return WebStore(root, media, root / "store", video, timeline)


def start(store: WebStore, token: str | None = TOKEN):
    """(grpc server, web server, "http://127.0.0.1:PORT") over one ServerContext."""
    from mien.server.app import build_server
    from mien.web import start_web

    server, _ = build_server(store.store_dir, port=0, host="127.0.0.1", token=token,
                             allowed_roots=[store.media])
    server.start()
    web = start_web(server.mien_context, port=0, host="127.0.0.1", token=token)
    return server, web, f"http://127.0.0.1:{web.server_address[1]}"


def stop(server, web) -> None:
    from mien.web import stop_web

    stop_web(web)
    server.stop(1).wait()
    server.mien_context.close()


def http(method: str, url: str, body=None, headers=None) -> tuple[int, dict, bytes]:
    """(status, headers, body) of one request; never raises for HTTP errors."""
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if isinstance(body, (dict, list)):
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def bearer(token: str = TOKEN) -> dict:
    return {"Authorization": f"Bearer {token}"}
