"""The JSON API and the guards of `mien serve --http`, without a browser.

A real store of package photos (tests/server_support.py), a real gRPC server and
the HTTP server over the same ServerContext on 127.0.0.1. Checks: the HTTP/JSON
mapping answers what gRPC answers (one implementation), errors map to HTTP
statuses, the token guards everything but the login form and static files,
CSRF and Host checks, media only for store sources under the allowed roots
(links resolved), range requests, size limits; and the person and source RPCs
the web app uses, over gRPC on both server fronts.
"""

from __future__ import annotations

import base64
import http.client as httpclient
import json
import os
import shutil
import ssl
import subprocess
import urllib.request
from pathlib import Path

import grpc
import pytest

from server_support import FRONTS, build_photo_store, start_server
from web_support import TOKEN, bearer, http
from mien.v1 import common_pb2, search_pb2, search_pb2_grpc


@pytest.fixture
def served(tmp_path):
    """(PhotoStore, grpc target, web base url, archive root) with a token and the archive allowed."""
    from mien.web import start_web, stop_web

    ps = build_photo_store(tmp_path)
    archive_root = ps.archive["obama.jpg"].parent
    server, target = start_server(ps.store_dir, token=TOKEN, allowed_roots=[archive_root], front="python")
    web = start_web(server.mien_context, port=0, host="127.0.0.1", token=TOKEN)
    yield ps, target, f"http://127.0.0.1:{web.server_address[1]}", archive_root
    stop_web(web)
    server.stop(1).wait()
    server.mien_context.close()


def _j(body: bytes) -> dict:
    return json.loads(body)


def _login(base: str) -> dict:
    """Cookie and CSRF headers of a logged-in browser."""
    status, headers, _ = http("POST", base + "/login", f"token={TOKEN}".encode(),
                              {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 303 or status == 200
    return headers


def _session(base: str) -> tuple[str, str]:
    conn = httpclient.HTTPConnection(base.split("//")[1])
    conn.request("POST", "/login", body=f"token={TOKEN}", headers={"Content-Type": "application/x-www-form-urlencoded"})
    r = conn.getresponse()
    r.read()
    assert r.status == 303 and r.getheader("Location") == "/"
    cookies = r.msg.get_all("Set-Cookie")
    session = next(c for c in cookies if c.startswith("__Host-mien_session="))
    csrf = next(c for c in cookies if c.startswith("__Host-mien_csrf="))
    for cookie in (session, csrf):  # host-only, Secure (kept on loopback http), out of every script's reach
        attributes = {a.strip().split("=")[0] for a in cookie.split(";")[1:]}
        assert {"HttpOnly", "Secure", "Path", "SameSite"} <= attributes and "Domain" not in attributes, cookie
        assert "SameSite=Strict" in cookie and "Path=/" in cookie
    assert TOKEN not in session, "the cookie holds an HMAC of the token, not the token"
    return session.split(";")[0], csrf.split(";")[0].split("=", 1)[1]


def test_json_api_answers_what_grpc_answers(served):
    ps, target, base, _ = served
    image = ps.archive["obama.jpg"].read_bytes()
    stub = search_pb2_grpc.MienStub(grpc.insecure_channel(target))
    request = search_pb2.SearchExpressionRequest(query=common_pb2.FaceQuery(image=common_pb2.ImageInput(data=image)),
                                                 top_k=8)
    via_grpc = stub.SearchExpression(request, metadata=[("authorization", f"Bearer {TOKEN}")])
    status, _, body = http("POST", base + "/v1/Mien/SearchExpression",
                           {"query": {"image": {"data": base64.b64encode(image).decode()}}, "top_k": 8}, bearer())
    assert status == 200
    via_http = _j(body)
    assert [int(h["face_id"]) for h in via_http["hits"]] == [h.face_id for h in via_grpc.hits]
    assert [h["distance"] for h in via_http["hits"]] == pytest.approx([h.distance for h in via_grpc.hits], abs=1e-6)
    # resource-style GET routes map onto the same methods
    stats = _j(http("GET", base + "/v1/stats", headers=bearer())[2])
    assert int(stats["faces"]) == stub.Stats(search_pb2.StatsRequest(),
                                             metadata=[("authorization", f"Bearer {TOKEN}")]).faces
    obama = ps.persons["Obama"]
    person = _j(http("GET", f"{base}/v1/persons/{obama}", headers=bearer())[2])
    assert person["name"] == "Obama"
    faces = _j(http("GET", f"{base}/v1/persons/{obama}/faces?page_size=2&include_thumbnails=true", headers=bearer())[2])
    assert len(faces["faces"]) == 2 and faces["next_page_token"] and int(faces["total_size"]) == 3
    assert base64.b64decode(faces["faces"][0]["thumbnail"])[:2] == b"\xff\xd8"
    rest = _j(http("GET", f"{base}/v1/persons/{obama}/faces?page_size=2&page_token={faces['next_page_token']}",
                   headers=bearer())[2])
    assert len(rest["faces"]) == 1 and not rest["next_page_token"]
    status, headers, jpeg = http("GET", f"{base}/v1/faces/{faces['faces'][0]['face_id']}/thumbnail.jpg", headers=bearer())
    assert status == 200 and headers["Content-Type"] == "image/jpeg" and jpeg[:2] == b"\xff\xd8"


def test_errors_map_to_http_statuses_with_a_status_body(served):
    _, _, base, _ = served
    cases = [
        ("POST", "/v1/Mien/GetFace", {"face_id": 99999}, 404, "NOT_FOUND"),
        ("GET", "/v1/faces/99999", None, 404, "NOT_FOUND"),
        ("POST", "/v1/Mien/SearchExpression", {"query": {"vector": {"values": [1, 2]}}}, 400, "INVALID_ARGUMENT"),
        ("POST", "/v1/Mien/SearchExpression", {"query": {"face_id": 1}, "top_k": 100000}, 400, "INVALID_ARGUMENT"),
        ("POST", "/v1/Mien/SearchExpression", b"{not json", 400, "INVALID_ARGUMENT"),
        ("POST", "/v1/Mien/SearchExpression", {"no_such_field": 1}, 400, "INVALID_ARGUMENT"),
        ("POST", "/v1/Mien/IndexPaths", {"paths": ["/etc"]}, 403, "PERMISSION_DENIED"),
        ("POST", "/v1/Mien/NoSuchMethod", {}, 404, "NOT_FOUND"),
        ("GET", "/v1/persons?page_size=x", None, 400, "INVALID_ARGUMENT"),
    ]
    for verb, path, body, status, code in cases:
        got, _, raw = http(verb, base + path, body, bearer())
        assert (got, _j(raw)["error"]["status"]) == (status, code), (path, raw)


def test_without_the_token_nothing_is_answered(served):
    ps, _, base, _ = served
    uri = str(ps.archive["obama.jpg"])
    for verb, path, body in [("GET", "/v1/stats", None), ("GET", "/v1/persons", None),
                             ("POST", "/v1/Mien/ListPersons", {}), ("GET", "/v1/faces/1/thumbnail.jpg", None),
                             ("GET", f"/media/file?uri={uri}", None), ("GET", "/v1/no/such/route", None)]:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Cookie": "__Host-mien_session=forged"}):
            status, _, raw = http(verb, base + path, body, headers)
            assert status == 401, (path, headers, status)
            assert b"Obama" not in raw and b"faces" not in raw
    # the app's page itself sends a visitor to the login form
    conn = httpclient.HTTPConnection(base.split("//")[1])
    conn.request("GET", "/")
    r = conn.getresponse()
    assert r.status == 303 and r.getheader("Location") == "/login"
    status, _, page = http("POST", base + "/login", b"token=wrong", {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 401 and b"Wrong token" in page


def test_cookie_sessions_need_the_csrf_header_and_a_same_origin(served):
    ps, _, base, _ = served
    session, csrf = _session(base)
    host = base.split("//")[1]
    rename = {"person": {"name": "Biden"}, "name": "Joe Biden"}
    # reads with the cookie work
    assert http("GET", base + "/v1/stats", headers={"Cookie": session})[0] == 200
    cookie = f"{session}; __Host-mien_csrf={csrf}"
    # a state-changing POST without the header (what a cross-site form could send) is refused
    assert http("POST", base + "/v1/Mien/RenamePerson", rename, {"Cookie": cookie})[0] == 403
    assert http("POST", base + "/v1/Mien/RenamePerson", rename, {"Cookie": cookie, "X-CSRF-Token": "guess"})[0] == 403
    assert http("POST", base + "/v1/Mien/RenamePerson", rename,
                {"Cookie": cookie, "X-CSRF-Token": csrf, "Origin": "http://evil.example"})[0] == 403
    status, _, raw = http("POST", base + "/v1/Mien/RenamePerson", rename,
                          {"Cookie": cookie, "X-CSRF-Token": csrf, "Origin": f"http://{host}"})
    assert status == 200 and _j(raw)["name"] == "Joe Biden"
    # bearer calls carry no ambient credential: no CSRF header needed
    status, _, raw = http("POST", base + "/v1/Mien/RenamePerson", {"person": {"name": "Joe Biden"}, "name": "Biden"},
                          bearer())
    assert status == 200
    # a DNS-rebinding page reaches the loopback server under a foreign Host name
    assert http("GET", base + "/v1/stats", headers={**bearer(), "Host": "evil.example"})[0] == 421


def test_media_only_for_store_sources_under_the_allowed_roots(served, tmp_path):
    ps, _, base, root = served
    photo = ps.archive["obama.jpg"]
    data = photo.read_bytes()
    status, headers, body = http("GET", f"{base}/media/file?uri={photo}", headers=bearer())
    assert status == 200 and body == data and headers["Accept-Ranges"] == "bytes"
    status, headers, body = http("GET", f"{base}/media/file?uri={photo}", headers={**bearer(), "Range": "bytes=10-19"})
    assert status == 206 and body == data[10:20] and headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    status, _, body = http("GET", f"{base}/media/file?uri={photo}", headers={**bearer(), "Range": "bytes=-5"})
    assert status == 206 and body == data[-5:]
    assert http("GET", f"{base}/media/file?uri={photo}", headers={**bearer(), "Range": f"bytes={len(data)}-"})[0] == 416
    # not a source of the store, even under the root or with .. in it
    outsider = root / "not-indexed.jpg"
    outsider.write_bytes(data)
    for uri in ("/etc/passwd", str(outsider), f"{root}/../{root.name}/obama.jpg", "", "/x" * 600, "a%00b"):
        assert http("GET", f"{base}/media/file?uri={uri}", headers=bearer())[0] == 404, uri
    # a source whose file became a link to somewhere else is refused: the real path decides
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"not for the browser")
    biden = ps.archive["biden_flip.jpg"]
    saved = biden.read_bytes()
    biden.unlink()
    try:
        os.symlink(secret, biden)
        status, _, body = http("GET", f"{base}/media/file?uri={biden}", headers=bearer())
        assert status == 403 and b"not for the browser" not in body
    finally:
        biden.unlink()
        biden.write_bytes(saved)
    # static files stay inside the app's folder
    conn = httpclient.HTTPConnection(base.split("//")[1])
    conn.request("GET", "/static/../server.py")
    r = conn.getresponse()
    assert r.status == 404 and b"import" not in r.read()


def test_request_size_follows_the_grpc_message_limit(tmp_path):
    from mien.server.context import Limits
    from mien.web import start_web, stop_web

    ps = build_photo_store(tmp_path)
    server, _ = start_server(ps.store_dir, token=TOKEN, limits=Limits(max_message_bytes=64 * 1024), front="python")
    web = start_web(server.mien_context, port=0, host="127.0.0.1", token=TOKEN)
    base = f"http://127.0.0.1:{web.server_address[1]}"
    try:
        big = base64.b64encode(b"\0" * (200 * 1024)).decode()
        status, _, raw = http("POST", base + "/v1/Mien/SearchExpression", {"query": {"image": {"data": big}}}, bearer())
        assert status == 413 and _j(raw)["error"]["status"] == "RESOURCE_EXHAUSTED"
    finally:
        stop_web(web)
        server.stop(1).wait()
        server.mien_context.close()


@pytest.mark.parametrize("front", FRONTS)
def test_person_and_source_rpcs_over_grpc(tmp_path, front):
    """Rename, merge (refused for persons sharing a frame), split, delete, list sources: both fronts."""
    from mien.engine.store import Store

    ps = build_photo_store(tmp_path)
    t1 = ps.face_ids["t1.jpg"]
    with Store(ps.store_dir, mode="w") as store:   # two people of one group photo
        ident = store.vectors(t1[:2], kind="identity")
        a, b = store.add_person(None, ident[0]), store.add_person(None, ident[1])
        store.set_faces_person([t1[0]], a)
        store.set_faces_person([t1[1]], b)
    server, target = start_server(ps.store_dir, token=TOKEN, front=front)
    md = [("authorization", f"Bearer {TOKEN}")]
    stub = search_pb2_grpc.MienStub(grpc.insecure_channel(target))
    ref = common_pb2.PersonRef
    try:
        named = stub.RenamePerson(search_pb2.RenamePersonRequest(person=ref(person_id=a), name="Ada"), metadata=md)
        assert (named.person_id, named.name) == (a, "Ada")
        with pytest.raises(grpc.RpcError) as err:
            stub.RenamePerson(search_pb2.RenamePersonRequest(person=ref(person_id=b), name="Obama"), metadata=md)
        assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS and "already exists" in err.value.details()
        with pytest.raises(grpc.RpcError) as err:
            stub.MergePersons(search_pb2.MergePersonsRequest(source=ref(person_id=b), target=ref(name="Ada")), metadata=md)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "same frame" in err.value.details()
        merged = stub.MergePersons(search_pb2.MergePersonsRequest(source=ref(person_id=b), target=ref(name="Ada"),
                                                                  allow_same_frame=True), metadata=md)
        assert merged.face_count == 2
        split = stub.SplitPerson(search_pb2.SplitPersonRequest(face_ids=[t1[1]]), metadata=md)
        assert split.face_count == 1 and split.person_id not in (a, b)
        with pytest.raises(grpc.RpcError) as err:
            stub.DeletePerson(search_pb2.DeletePersonRequest(person=ref(name="Ada")), metadata=md)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        gone = stub.DeletePerson(search_pb2.DeletePersonRequest(person=ref(name="Ada"), release_faces=True), metadata=md)
        assert (gone.person_id, gone.released_faces) == (a, 1)
        names = {p.name for p in stub.ListPersons(search_pb2.ListPersonsRequest(), metadata=md).persons}
        assert "Ada" not in names and {"Obama", "Biden"} <= names
        # sources, a page at a time, in URI order
        uris, token = [], ""
        while True:
            page = stub.ListSources(search_pb2.ListSourcesRequest(page_size=4, page_token=token), metadata=md)
            uris += [s.uri for s in page.sources]
            assert page.total_size == len(ps.archive)
            token = page.next_page_token
            if not token:
                break
        assert uris == sorted(str(p) for p in ps.archive.values())
        first = stub.ListSources(search_pb2.ListSourcesRequest(page_size=1), metadata=md).sources[0]
        assert first.kind == search_pb2.SOURCE_KIND_IMAGE and first.status == search_pb2.SOURCE_STATUS_DONE
        with pytest.raises(grpc.RpcError) as err:
            stub.ListSources(search_pb2.ListSourcesRequest(page_token="forged"), metadata=md)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        server.stop(1).wait()
        server.mien_context.close()


def test_index_paths_streams_progress_as_ndjson(tmp_path):
    import cv2

    from mien.demo import photos
    from mien.web import start_web, stop_web

    ps = build_photo_store(tmp_path)
    media = tmp_path / "new"
    media.mkdir()
    for name in ("obama.jpg", "biden.jpg"):  # mirrored: new files for the store
        cv2.imwrite(str(media / f"mirrored_{name}"), cv2.flip(photos.face_recognition_photo(name), 1))
    server, _ = start_server(ps.store_dir, token=TOKEN, allowed_roots=[media], front="python")
    web = start_web(server.mien_context, port=0, host="127.0.0.1", token=TOKEN)
    try:
        status, headers, body = http("POST", f"http://127.0.0.1:{web.server_address[1]}/v1/Mien/IndexPaths",
                                     {"paths": [str(media)]}, bearer())
        assert status == 200 and headers["Content-Type"] == "application/x-ndjson"
        lines = [json.loads(line) for line in body.splitlines()]
        assert lines[-1]["done"] is True and int(lines[-1]["files_total"]) == 2 and int(lines[-1]["faces"]) >= 2
        assert all("error" not in line for line in lines)
    finally:
        stop_web(web)
        server.stop(1).wait()
        server.mien_context.close()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test certificate")
def test_https_with_the_grpc_servers_certificate(tmp_path):
    """With --tls-cert/--tls-key the app is HTTPS too, and its cookies are Secure."""
    from mien.server.app import TLSConfig
    from mien.web import start_web, stop_web

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    ps = build_photo_store(tmp_path)
    tls = TLSConfig(str(cert), str(key))
    server, _ = start_server(ps.store_dir, token=TOKEN, tls=tls, front="python")
    web = start_web(server.mien_context, port=0, host="127.0.0.1", token=TOKEN, tls=tls)
    port = web.server_address[1]
    try:
        context = ssl.create_default_context(cafile=str(cert))
        request = urllib.request.Request(f"https://127.0.0.1:{port}/v1/stats", headers=bearer())
        with urllib.request.urlopen(request, context=context, timeout=30) as r:
            assert r.status == 200 and int(json.loads(r.read())["faces"]) > 0
        conn = httpclient.HTTPSConnection("127.0.0.1", port, context=context)
        conn.request("POST", "/login", body=f"token={TOKEN}", headers={"Content-Type": "application/x-www-form-urlencoded"})
        r = conn.getresponse()
        r.read()
        assert all("Secure" in c for c in r.msg.get_all("Set-Cookie"))
        # plain HTTP gets no answer from the TLS port
        with pytest.raises((OSError, httpclient.HTTPException)):
            http("GET", f"http://127.0.0.1:{port}/v1/stats", headers=bearer())
    finally:
        stop_web(web)
        server.stop(1).wait()
        server.mien_context.close()


def test_without_auth_scripts_post_json_but_cross_site_forms_are_refused(tmp_path):
    """Auth off (loopback): curl-style JSON POSTs work; a form or text/plain POST, or another Origin, is refused."""
    from mien.web import start_web, stop_web

    ps = build_photo_store(tmp_path)
    server, _ = start_server(ps.store_dir, front="python")
    web = start_web(server.mien_context, port=0, host="127.0.0.1")
    base = f"http://127.0.0.1:{web.server_address[1]}"
    rename = {"person": {"name": "Biden"}, "name": "Joe"}
    try:
        assert http("GET", base + "/v1/stats")[0] == 200
        for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
            status, _, _ = http("POST", base + "/v1/Mien/RenamePerson", json.dumps(rename).encode(),
                                {"Content-Type": content_type})
            assert status == 403, content_type
        assert http("POST", base + "/v1/Mien/RenamePerson", rename, {"Origin": "http://evil.example"})[0] == 403
        status, _, raw = http("POST", base + "/v1/Mien/RenamePerson", rename)
        assert status == 200 and _j(raw)["name"] == "Joe"
    finally:
        stop_web(web)
        server.stop(1).wait()
        server.mien_context.close()
