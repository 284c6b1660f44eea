"""No file of the archive can run as the web app: media are data, never pages.

An archive holds files built to be pages: a GIF89a/HTML polyglot (indexed as a
failed image), a real JPEG with a script appended and named .html (indexed as
the photo it is), and two files indexed as real images and then replaced by an
SVG with a script and by HTML (names kept: face.svg, renamed.jpg). Headless
Chromium opens each one's /media/ URLs as a top-level page, logged in with a
token and on a server without one. Each payload, if it ran with the app's
origin, would write localStorage and rename a person through the JSON API;
neither may happen, every such file is refused or served as the media type its
content is (nosniff, sandboxed), and the app's own pages keep a strict CSP
with no violation.
"""

from __future__ import annotations

import json
import re

import cv2
import pytest

from mien.demo import photos
from web_support import TOKEN, bearer, chromium_path, http

CHROMIUM = chromium_path()
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: `make system-deps` installs Debian's chromium "
                                                "(as root with apt), or set MIEN_CHROMIUM"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (dev extra) drives the browser")

# What an attacker's page does once it runs with the app's origin: mark the
# origin's storage, rename every person through the API (as the reported attack did).
PAYLOAD = """<script>
localStorage.setItem("pwned", location.href);
document.title = "PWNED";
const meta = document.querySelector('meta[name="mien-csrf"]');
const csrf = meta ? meta.content : (document.cookie.match(/mien_csrf=([^;]*)/) || [])[1] || "";
fetch("/v1/persons").then(r => r.json()).then(j => {
  for (const p of j.persons) fetch("/v1/Mien/RenamePerson", {method: "POST",
    headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
    body: JSON.stringify({person: {person_id: p.person_id}, name: "pwned" + p.person_id})});
});
</script>"""
SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
       + PAYLOAD.replace("<script>", "<script><![CDATA[").replace("</script>", "]]></script>") + "</svg>")


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    from mien.engine.store import Store
    from mien.indexer import IndexOptions, index_paths

    root = tmp_path_factory.mktemp("media-safety")
    media = root / "media"
    media.mkdir()
    obama = photos.face_recognition_photo("obama.jpg")
    biden = photos.face_recognition_photo("biden.jpg")
    cv2.imwrite(str(media / "obama.jpg"), obama)
    # a real photo with a page appended: indexed as the JPEG it is, named as a page
    ok, jpeg = cv2.imencode(".jpg", biden)
    (media / "photo.html").write_bytes(jpeg.tobytes() + b"\n<!doctype html><html><body>" + PAYLOAD.encode())
    # an HTML page that starts like a GIF: the indexer records a failed image
    (media / "polyglot.html").write_bytes(b"GIF89a<!doctype html><html><body>" + PAYLOAD.encode())
    # indexed as real images, then replaced by pages under the same names
    ok, png = cv2.imencode(".png", cv2.flip(biden, 1))
    (media / "face.svg").write_bytes(png.tobytes())
    cv2.imwrite(str(media / "renamed.jpg"), cv2.flip(obama, 1))
    summary = index_paths([str(media)], str(root / "store"), options=IndexOptions(workers=1, show_progress=False))
    assert summary.faces_passed >= 3, summary
    (media / "face.svg").write_text(SVG)
    (media / "renamed.jpg").write_text("<!doctype html><html><body>" + PAYLOAD)
    with Store(root / "store", mode="r") as store:
        status = {p.name: store.get_source(str(p)).status for p in media.iterdir()}
    assert status == {"obama.jpg": "done", "photo.html": "done", "polyglot.html": "failed",
                      "face.svg": "done", "renamed.jpg": "done"}, status
    return root, media


ATTACKS = ("photo.html", "polyglot.html", "face.svg", "renamed.jpg")


def _serve(root, media, token):
    from mien.server.app import build_server
    from mien.web import start_web

    server, _ = build_server(root / "store", port=0, host="127.0.0.1", token=token, allowed_roots=[media],
                             front="python")
    server.start()
    web = start_web(server.mien_context, port=0, host="127.0.0.1", token=token)
    return server, web, f"http://127.0.0.1:{web.server_address[1]}"


def _stop(server, web):
    from mien.web import stop_web

    stop_web(web)
    server.stop(1).wait()
    server.mien_context.close()


def _names(base, token):
    status, _, body = http("GET", base + "/v1/persons", headers=bearer() if token else {})
    assert status == 200
    return sorted(p["name"] for p in json.loads(body)["persons"])


@pytest.mark.parametrize("token", [TOKEN, None], ids=["token", "no-token"])
def test_no_archive_file_runs_as_the_app(archive, token):
    root, media = archive
    server, web, base = _serve(root, media, token)
    try:
        names_before = _names(base, token)
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            context = browser.new_context()
            page = context.new_page()
            page.set_default_timeout(30_000)
            violations = []
            page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
            page.goto(base + "/")
            if token:
                page.fill("#token", TOKEN)
                page.click("#login")
                page.wait_for_url(base + "/")
            page.wait_for_selector("#drop")
            page.wait_for_function("() => document.querySelector('#stats').textContent.includes('faces')")
            assert violations == [], f"the app's own pages break its CSP: {violations}"
            for name in ATTACKS:
                for route in ("file", "play"):
                    url = f"{base}/media/{route}?uri={media / name}"
                    response = page.goto(url)
                    page.wait_for_timeout(300)
                    assert page.title() != "PWNED", (name, route)
                    headers = response.headers
                    assert headers.get("x-content-type-options") == "nosniff", (name, route, headers)
                    assert "sandbox" in headers.get("content-security-policy", ""), (name, route, headers)
                    ctype = headers.get("content-type", "")
                    assert response.status >= 400 or ctype.split("/")[0] in ("image", "video"), (name, route, ctype)
            # a failed source and files that are no longer what was indexed are refused outright
            for name in ("polyglot.html", "face.svg", "renamed.jpg"):
                status, headers, body = http("GET", f"{base}/media/file?uri={media / name}",
                                             headers=bearer() if token else {})
                assert status in (403, 404) and b"<script" not in body, (name, status)
            # the photo with a page appended is the JPEG the indexer read
            status, headers, body = http("GET", f"{base}/media/file?uri={media / 'photo.html'}",
                                         headers=bearer() if token else {})
            assert status == 200 and headers["Content-Type"] == "image/jpeg" and body[:3] == b"\xff\xd8\xff"
            # back in the app: nothing was written in its origin's storage
            page.goto(base + "/")
            page.wait_for_selector("#drop")
            assert page.evaluate("localStorage.getItem('pwned')") is None
            browser.close()
        assert _names(base, token) == names_before, "a payload renamed persons through the API"
    finally:
        _stop(server, web)


def test_media_and_thumbnail_responses_are_sandboxed_data(archive):
    root, media = archive
    server, web, base = _serve(root, media, TOKEN)
    try:
        status, headers, body = http("GET", f"{base}/media/file?uri={media / 'obama.jpg'}", headers=bearer())
        assert status == 200 and headers["Content-Type"] == "image/jpeg"
        face = json.loads(http("GET", base + "/v1/persons", headers=bearer())[2])["persons"][0]
        faces = json.loads(http("GET", f"{base}/v1/persons/{face['person_id']}/faces", headers=bearer())[2])
        thumb = f"{base}/v1/faces/{faces['faces'][0]['face_id']}/thumbnail.jpg"
        for url in (f"{base}/media/file?uri={media / 'obama.jpg'}", thumb):
            status, headers, _ = http("GET", url, headers=bearer())
            assert status == 200
            assert headers["X-Content-Type-Options"] == "nosniff"
            assert "sandbox" in headers["Content-Security-Policy"]
            assert "default-src 'none'" in headers["Content-Security-Policy"]
        # the app's page: no inline script, no framing
        status, headers, page = http("GET", base + "/login")
        csp = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
        assert b"<script>" not in page and not re.search(rb"\son[a-z]+=", page)
    finally:
        _stop(server, web)
