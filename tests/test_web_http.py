"""HTTP hygiene of `mien serve --http`: what a hostile client on 127.0.0.1 tries.

A real store of package photos behind a real gRPC server and the web app on
127.0.0.1 (short timeouts where a test waits for one). Checks: half-sent and
idle connections hold no thread and are closed at the head deadline even while
they trickle bytes; a connection cap answers 503 past it; Transfer-Encoding
chunked is decoded (one request, one response: nothing of a body is read as a
request), Content-Length with Transfer-Encoding is refused, a malformed
Content-Length is 400; logout only by POST with the CSRF header; parallel
token guesses share one global budget.
"""

from __future__ import annotations

import http.client as httpclient
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from server_support import build_photo_store, start_server
from web_support import TOKEN, http


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build_photo_store(tmp_path_factory.mktemp("web-http"))


def _serve(store, **limits):
    from mien.web import start_web
    from mien.web.httpd import HttpLimits

    server, _ = start_server(store.store_dir, token=TOKEN, front="python")
    web = start_web(server.mien_context, port=0, host="127.0.0.1", token=TOKEN, limits=HttpLimits(**limits))
    return server, web, web.server_address[1]


def _stop(server, web):
    from mien.web import stop_web

    stop_web(web)
    server.stop(1).wait()
    server.mien_context.close()


@pytest.fixture
def web(store):
    server, web, port = _serve(store, header_timeout=1.0, idle_timeout=2.0, max_connections=400)
    yield port
    _stop(server, web)


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def _response(sock: socket.socket):
    r = httpclient.HTTPResponse(sock)
    r.begin()
    return r.status, r.read()


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    """Whether the server closes `sock` within `within` seconds (reading and dropping what it sends)."""
    sock.settimeout(within)
    try:
        while sock.recv(4096):
            pass
        return True
    except ConnectionResetError:
        return True
    except (TimeoutError, socket.timeout):
        return False


STATS = b"GET /v1/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n\r\n"


def test_slow_and_idle_connections_hold_no_thread_and_are_closed(web):
    port = web
    threads_before = threading.active_count()
    # 150 never send a byte; 150 send a request head one byte at a time, forever
    idle = [_connect(port) for _ in range(150)]
    slow = [_connect(port) for _ in range(150)]
    stop = threading.Event()

    def trickle():
        i = 0
        while not stop.is_set() and i < len(STATS) - 2:
            for s in slow:
                try:
                    s.send(STATS[i:i + 1])
                except OSError:
                    pass
            i += 1
            stop.wait(0.2)

    sender = threading.Thread(target=trickle)
    sender.start()
    try:
        time.sleep(0.5)
        # 300 open connections: the server process holds no thread for them
        assert threading.active_count() - threads_before < 20, threading.active_count() - threads_before
        # and answers a whole request at once
        with _connect(port) as s:
            s.sendall(STATS)
            assert _response(s)[0] == 200
        # the head deadline (1 s here) closes both kinds, though the slow ones keep sending
        assert all(_closed_by_server(s, 5.0) for s in slow), "a trickled head outlived its deadline"
        assert all(_closed_by_server(s, 5.0) for s in idle), "a silent connection outlived the head deadline"
    finally:
        stop.set()
        sender.join()
        for s in idle + slow:
            s.close()
    # a keep-alive connection is closed after idle_timeout (2 s here) without a next request
    with _connect(port) as s:
        s.sendall(STATS)
        assert _response(s)[0] == 200
        assert _closed_by_server(s, 6.0)


def test_connections_past_the_cap_get_503(store):
    server, web, port = _serve(store, max_connections=20, header_timeout=30.0)
    held = [_connect(port) for _ in range(20)]
    try:
        time.sleep(0.3)
        with _connect(port) as extra:
            extra.sendall(STATS)
            status, body = _response(extra)
            assert status == 503 and b"too many connections" in body
        held.pop().close()
        time.sleep(0.3)
        with _connect(port) as again:
            again.sendall(STATS)
            assert _response(again)[0] == 200
    finally:
        for s in held:
            s.close()
        _stop(server, web)


class _Reader:
    """A socket stand-in whose makefile() is one shared buffer: responses read one after another."""

    def __init__(self, sock):
        self.fp = sock.makefile("rb")

    def makefile(self, mode):
        return self

    def __getattr__(self, name):   # readline, read, readinto, ... of the shared buffer
        return getattr(self.fp, name)

    def close(self):               # a response read to its end closes its file: not this one
        pass


def _exchange(port: int, raw: bytes, wait: float = 1.0) -> list[int]:
    """The statuses of every response the server sends back for `raw` on one connection."""
    statuses = []
    with _connect(port) as s:
        s.sendall(raw)
        s.settimeout(wait)
        reader = _Reader(s)
        while True:
            r = httpclient.HTTPResponse(reader)
            try:
                r.begin()
                r.read()
            except (TimeoutError, socket.timeout, httpclient.RemoteDisconnected, ConnectionError):
                break
            statuses.append(r.status)
            if r.will_close:
                break
    return statuses


def test_chunked_bodies_are_decoded_and_smuggling_shapes_refused(web):
    port = web
    auth = b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
    head = b"POST /v1/Mien/Stats HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" + auth
    # chunked: the body is the JSON, and the chunk framing is not a second request
    chunked = head + b"Transfer-Encoding: chunked\r\n\r\n1\r\n{\r\n1\r\n}\r\n0\r\n\r\n"
    assert _exchange(port, chunked) == [200]
    # a chunk that holds a request line is body, not a request
    inner = b"GET /v1/persons HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    sneaky = head + b"Transfer-Encoding: chunked\r\n\r\n" + f"{len(inner):x}".encode() + b"\r\n" + inner + \
        b"\r\n0\r\n\r\n"
    assert _exchange(port, sneaky) == [400], "one request (a body that is not JSON), one answer"
    # Content-Length and Transfer-Encoding together: refused, and the connection closes
    both = head + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + STATS
    assert _exchange(port, both) == [400]
    # a Content-Length that is not a number, or is two numbers
    for value in ("\u00b2".encode(), b"1, 2", b"-1", b"0x10"):
        assert _exchange(port, head + b"Content-Length: " + value + b"\r\n\r\n{}") == [400], value
    # codings the server does not decode
    assert _exchange(port, head + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n") == [501]
    # pipelined requests are answered in order
    assert _exchange(port, STATS + STATS) == [200, 200]


def _login(port: int) -> tuple[str, str]:
    conn = httpclient.HTTPConnection("127.0.0.1", port)
    conn.request("POST", "/login", body=f"token={TOKEN}", headers={"Content-Type": "application/x-www-form-urlencoded"})
    r = conn.getresponse()
    r.read()
    assert r.status == 303
    jar = dict(c.split(";")[0].split("=", 1) for c in r.msg.get_all("Set-Cookie"))
    return (f"__Host-mien_session={jar['__Host-mien_session']}; __Host-mien_csrf={jar['__Host-mien_csrf']}",
            jar["__Host-mien_csrf"])


def test_logout_only_by_post_with_the_csrf_header(web):
    base = f"http://127.0.0.1:{web}"
    cookie, csrf = _login(web)
    # what an <img src=/logout> or a link from another port sends: refused, the session lives
    status, headers, _ = http("GET", base + "/logout", headers={"Cookie": cookie})
    assert status == 405 and headers["Allow"] == "POST"
    assert http("GET", base + "/v1/stats", headers={"Cookie": cookie})[0] == 200
    assert http("POST", base + "/logout", b"", {"Cookie": cookie})[0] == 403
    status, headers, _ = http("POST", base + "/logout", b"", {"Cookie": cookie, "X-CSRF-Token": csrf})
    assert status == 200 and "__Host-mien_session=;" in headers["Set-Cookie"] and "Max-Age=0" in headers["Set-Cookie"]


def test_parallel_token_guesses_share_one_budget(web):
    base = f"http://127.0.0.1:{web}"

    def guess(i):
        return http("POST", base + "/login", f"token=guess-{i}".encode(),
                    {"Content-Type": "application/x-www-form-urlencoded"})[0]

    start = time.monotonic()
    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(guess, range(20)))
    elapsed = time.monotonic() - start
    checked = statuses.count(401)
    # a burst of 5, then 2 a second, however many connections guess at once
    assert checked <= 5 + 2 * elapsed + 1, (statuses, elapsed)
    assert statuses.count(429) == 20 - checked and checked >= 1
    # the budget refills: the right token logs in a few seconds later
    time.sleep(1.0)
    conn = httpclient.HTTPConnection("127.0.0.1", web)
    conn.request("POST", "/login", body=f"token={TOKEN}", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert conn.getresponse().status == 303


def test_the_web_front_that_mien_serve_http_hands_the_server(store):
    """mien.web.serving.web_front, what `mien serve --http` gives mien.server.app.serve(fronts=...):
    the app over the gRPC server's context, on its host and token, until the stop it returns."""
    from mien.web.serving import web_front

    server, _ = start_server(store.store_dir, token=TOKEN, front="python")
    try:
        stop = web_front(0, host="127.0.0.1", token=TOKEN)(server.mien_context)
        port = stop.args[0].server_address[1]  # the HttpServer stop_web will stop
        status, _, body = http("GET", f"http://127.0.0.1:{port}/v1/stats", headers={"Authorization": f"Bearer {TOKEN}"})
        assert status == 200 and b'"faces"' in body
        assert http("GET", f"http://127.0.0.1:{port}/v1/stats")[0] == 401
        stop()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:
        server.stop(1).wait()
        server.mien_context.close()
