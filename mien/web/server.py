"""The HTTP server of `mien serve --http PORT`: the web app, its JSON API, source media.

The standard library's ThreadingHTTPServer, one thread per connection: the
servicer methods are blocking calls (FAISS, LMDB, the face analyser), so an
async stack would run them on a thread pool anyway, and this needs no new
dependency. Everything is served by mien itself: no CDN, no build step.

Paths:
  /                  the app (static/index.html; its JS and CSS under /static/)
  /login             the token form (when the server has a token)
  /v1/...            the JSON API (mien.web.gateway)
  /v1/faces/{id}/thumbnail.jpg   a stored face's thumbnail
  /media/file?uri=   an indexed source file; /media/play?uri= a video as the browser plays it
"""

from __future__ import annotations

import json
import logging
import mimetypes
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import grpc

from mien.errors import NotFoundError
from mien.web import auth as web_auth
from mien.web.gateway import Gateway, RpcError
from mien.web.media import Media, MediaDenied, byte_range

log = logging.getLogger("mien.web")

STATIC = Path(str(resources.files("mien.web") / "static"))
# the app's own pages: scripts and styles from its files only (no inline script or handler), never framed
_CSP = ("default-src 'self'; img-src 'self' data: blob:; media-src 'self'; style-src 'self'; "
        "script-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
# archive files and thumbnails: data, never a page. Opened as a page (a link, a
# navigation from another site), the document is sandboxed: no script, no form,
# no navigation of its opener, whatever the bytes hold (no script-src at all).
# allow-same-origin and img/media-src only let the browser's own image and video
# viewer load the file it shows (a sandboxed video viewer of opaque origin is
# refused its own video by CORS).
MEDIA_CSP = ("default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; "
             "sandbox allow-same-origin")
# everything else (JSON, errors, redirects): nothing to run, nothing to frame
DATA_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"


class WebApp:
    """What every request handler shares: gateway, media, auth, limits."""

    def __init__(self, ctx, *, token: str | None, host: str):
        self.ctx = ctx
        self.gateway = Gateway(ctx)
        self.media = Media(ctx)
        self.auth = web_auth.WebAuth(token, host)
        # one gRPC message's worth of JSON: base64 makes bytes 4/3 larger
        self.max_body = ctx.limits.max_message_bytes * 4 // 3 + 64 * 1024
        self.secure = False  # HTTPS (start_web with tls): cookies get the Secure flag


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mien"
    # headers and body go out in two writes: with Nagle on, a keep-alive
    # client's delayed ACK held every reply ~40 ms (p50 44 ms vs 0.7 ms gRPC)
    disable_nagle_algorithm = True
    app: WebApp  # set on the subclass made by start_web

    # -- plumbing -----------------------------------------------------------------
    def log_message(self, fmt, *args):  # one line per request into mien's log, not stderr
        log.info("http %s", fmt % args)

    def _send(self, status: int, body: bytes, content_type: str, headers=()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        # same-origin, not no-referrer: with no-referrer Chromium sends "Origin: null" on form posts
        self.send_header("Referrer-Policy", "same-origin")
        self.send_header("Cache-Control", "no-store")
        if not any(k == "Content-Security-Policy" for k, _ in headers):
            self.send_header("Content-Security-Policy", DATA_CSP)
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj, headers=()) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json", headers)

    def _error(self, err: RpcError) -> None:
        self._json(err.http_status, {"error": err.body()})

    def _fail(self, status: int, code: grpc.StatusCode, message: str) -> None:
        self._error(_Err(code, message, status))

    # -- entry points ---------------------------------------------------------------
    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def _dispatch(self, verb: str) -> None:
        self._body_read = False
        try:
            self._handle(verb)
            if not self._body_read and self._content_length():
                self.close_connection = True  # an unread body would be read as the next request
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser went away (e.g. a video seek cancels a range request)
        except Exception:  # noqa: BLE001 - never a traceback to the client
            log.exception("http %s %s failed", verb, self.path)
            try:
                self._fail(500, grpc.StatusCode.INTERNAL, "internal error; the server's log has the details")
            except OSError:
                pass

    def _handle(self, verb: str) -> None:
        app = self.app
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query)
        if not app.auth.host_ok(self.headers.get("Host")):
            return self._fail(421, grpc.StatusCode.PERMISSION_DENIED, "this server answers to loopback names only")
        if path in ("/login", "/logout"):
            return self._login(verb) if path == "/login" else self._logout()
        if path.startswith("/static/") or path in ("/", "/index.html", "/favicon.ico"):
            if verb != "GET":
                return self._fail(405, grpc.StatusCode.UNIMPLEMENTED, "method not allowed")
            return self._static(path)
        how = app.auth.authenticate(self.headers)
        if how is None:
            # nothing about the store without the token, not even which routes exist
            return self._fail(401, grpc.StatusCode.UNAUTHENTICATED,
                              "missing or invalid token: log in at /login or send 'Authorization: Bearer <token>'")
        if verb == "POST" and not app.auth.csrf_ok(self.headers, how, {self.headers.get("Host", "")}):
            return self._fail(403, grpc.StatusCode.PERMISSION_DENIED,
                              f"missing or wrong {web_auth.CSRF_HEADER} header (cross-site request refused)")
        if path.startswith("/media/") and verb == "GET":
            return self._media(path, query)
        thumb = _thumbnail_path(path)
        if thumb is not None and verb == "GET":
            return self._thumbnail(thumb)
        if path == "/v1/session" and verb == "GET":
            return self._json(200, {"auth": app.auth.enabled, "how": how,
                                    "allowed_roots": bool(app.ctx.allowed_roots)})
        routed = app.gateway.route(verb, path)
        if routed is None:
            return self._fail(404, grpc.StatusCode.NOT_FOUND, f"no API route {verb} {path[:200]}")
        method, path_fields = routed
        body = self._body()
        if body is None:
            return None
        try:
            request = app.gateway.build_request(method, body, path_fields, query)
            if method.streaming:
                return self._stream(method, request)
            return self._json(200, app.gateway.call(method, request))
        except RpcError as err:
            return self._error(err)

    def _content_length(self) -> int:
        value = self.headers.get("Content-Length") or "0"
        return int(value) if value.isdigit() else -1

    def _body(self) -> bytes | None:
        length = self._content_length()
        if length < 0 or length > self.app.max_body:
            self.close_connection = True
            self._fail(413, grpc.StatusCode.RESOURCE_EXHAUSTED,
                       f"the request is larger than the server's limit of {self.app.max_body} bytes "
                       "(the gRPC message limit, in base64 JSON)")
            return None
        self._body_read = True
        return self.rfile.read(length) if length else b""

    def _stream(self, method, request) -> None:
        """Newline-delimited JSON, one message per line, until the stream ends.

        A call refused before its first message (bad path, outside the allowed
        roots, store busy) answers with its HTTP status like a unary call.
        """
        messages = self.app.gateway.stream(method, request)
        try:
            first = next(messages, None)
        except RpcError as err:
            return self._error(err)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            for message in ([first] if first is not None else []):
                self.wfile.write(json.dumps(message).encode() + b"\n")
                self.wfile.flush()
            for message in messages:
                self.wfile.write(json.dumps(message).encode() + b"\n")
                self.wfile.flush()
        except RpcError as err:
            self.wfile.write(json.dumps({"error": err.body()}).encode() + b"\n")

    # -- pages and files ------------------------------------------------------------
    def _static(self, path: str) -> None:
        name = "index.html" if path in ("/", "/index.html") else path[len("/static/"):]
        if path == "/favicon.ico":
            name = "favicon.svg"
        target = (STATIC / name).resolve()
        if STATIC.resolve() not in target.parents or not target.is_file():
            return self._fail(404, grpc.StatusCode.NOT_FOUND, "no such file")
        ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        headers = [("Content-Security-Policy", _CSP), ("X-Frame-Options", "DENY")]
        if name == "index.html":
            csrf = web_auth.cookies(self.headers).get(web_auth.CSRF_COOKIE) or web_auth.new_csrf()
            headers.append(("Set-Cookie", web_auth.cookie_header(web_auth.CSRF_COOKIE, csrf, http_only=False,
                                                                 secure=self.app.secure)))
            if self.app.auth.authenticate(self.headers) is None:
                return self._redirect("/login")
        self._send(200, target.read_bytes(), ctype + ("; charset=utf-8" if ctype.startswith("text/") or
                                                      ctype.endswith("javascript") else ""), headers)

    def _redirect(self, where: str, headers=()) -> None:
        self._send(303, b"", "text/plain", [("Location", where), *headers])

    def _login(self, verb: str) -> None:
        auth = self.app.auth
        if not auth.enabled:
            return self._redirect("/")
        if verb == "GET":
            page = (STATIC / "login.html").read_bytes()
            return self._send(200, page, "text/html; charset=utf-8", [("Content-Security-Policy", _CSP)])
        origin = self.headers.get("Origin")
        if origin and origin.split("://", 1)[-1] != self.headers.get("Host", ""):
            return self._fail(403, grpc.StatusCode.PERMISSION_DENIED, "cross-site login refused")
        body = self._body()
        if body is None:
            return None
        given = parse_qs(body.decode("utf-8", "replace")).get("token", [""])[-1]
        if not auth.check_login(given):
            time.sleep(0.5)  # slows guessing; the token itself should be long
            page = (STATIC / "login.html").read_bytes().replace(b"<!--error-->", b"<p class=error>Wrong token.</p>")
            return self._send(401, page, "text/html; charset=utf-8", [("Content-Security-Policy", _CSP)])
        return self._redirect("/", [
            ("Set-Cookie", web_auth.cookie_header(web_auth.SESSION_COOKIE, auth.session_value(), http_only=True,
                                                    secure=self.app.secure)),
            ("Set-Cookie", web_auth.cookie_header(web_auth.CSRF_COOKIE, web_auth.new_csrf(), http_only=False,
                                                    secure=self.app.secure)),
        ])

    def _logout(self) -> None:
        self._redirect("/login", [("Set-Cookie", web_auth.cookie_header(web_auth.SESSION_COOKIE, "", http_only=True,
                                                                         max_age=0))])

    def _thumbnail(self, face_id: int) -> None:
        from mien.v1 import search_pb2

        method = self.app.gateway.methods["Mien/GetFace"]
        try:
            record = _call_raw(method, search_pb2.GetFaceRequest(face_id=face_id))
        except RpcError as err:
            return self._error(err)
        self._send(200, record.thumbnail, "image/jpeg", [("Cache-Control", "private, max-age=60"),
                                                         ("Content-Security-Policy", MEDIA_CSP)])

    def _media(self, path: str, query: dict) -> None:
        uri = (query.get("uri") or [""])[-1]
        media = self.app.media
        try:
            if path == "/media/file":
                f = media.original(uri)
            elif path == "/media/play":
                f = media.playable(uri)
            else:
                return self._fail(404, grpc.StatusCode.NOT_FOUND, "no such media route")
        except MediaDenied as exc:
            return self._fail(403, grpc.StatusCode.PERMISSION_DENIED, str(exc))
        except NotFoundError as exc:
            return self._fail(404, grpc.StatusCode.NOT_FOUND, str(exc).strip("'\""))
        self._file(f.path, f.content_type)

    def _file(self, path: Path, content_type: str) -> None:
        size = path.stat().st_size
        try:
            rng = byte_range(self.headers.get("Range"), size)
        except ValueError:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Security-Policy", MEDIA_CSP)
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start, end = rng if rng else (0, size - 1)
        self.send_response(206 if rng else 200)
        self.send_header("Content-Type", content_type)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(max(0, end - start + 1)))
        self.send_header("Cache-Control", "private, max-age=60")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", MEDIA_CSP)
        if rng:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if self.command == "HEAD" or size == 0:
            return
        with open(path, "rb") as fh:
            fh.seek(start)
            left = end - start + 1
            while left > 0:
                chunk = fh.read(min(1 << 16, left))
                if not chunk:
                    break
                self.wfile.write(chunk)
                left -= len(chunk)


class _Err(RpcError):
    def __init__(self, code, message, status):
        super().__init__(code, message)
        self._status = status

    @property
    def http_status(self) -> int:
        return self._status


def _call_raw(method, request):
    from mien.web.gateway import HttpContext

    context = HttpContext()
    try:
        return method.call(request, context)
    except Exception:  # noqa: BLE001
        raise context.error() or RpcError(grpc.StatusCode.INTERNAL, "internal error") from None


def _thumbnail_path(path: str) -> int | None:
    prefix, suffix = "/v1/faces/", "/thumbnail.jpg"
    if path.startswith(prefix) and path.endswith(suffix):
        middle = path[len(prefix):-len(suffix)]
        if middle.isdigit() and len(middle) < 19:
            return int(middle)
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # a failed TLS handshake (plain HTTP on the HTTPS port, a scanner) or a
        # dropped connection is the client's business: one line, no traceback
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):  # ssl.SSLError and connection errors are OSErrors
            log.info("http connection from %s dropped: %s", client_address[0], exc)
            return
        log.exception("http connection from %s failed", client_address[0])


def start_web(ctx, *, port: int, host: str = "127.0.0.1", token: str | None = None, tls=None):
    """Serve the app on host:port in a background thread; returns the server (its .server_address, .shutdown()).

    tls: the gRPC server's TLSConfig (cert_file, key_file): the app is then
    HTTPS with the same certificate, and its cookies are Secure; a token typed
    into the login form never crosses the network in clear when gRPC does not.
    """
    app = WebApp(ctx, token=token, host=host)
    app.secure = tls is not None
    handler = type("MienHandler", (Handler,), {"app": app})
    family_host = host.strip("[]")
    try:
        server = _Server((family_host, port), handler)
    except OSError as exc:
        raise OSError(f"cannot serve the web app on {host}:{port}: {exc.strerror or exc}") from None
    if tls is not None:
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls.cert_file, tls.key_file)
        # the handshake runs in the connection's own thread, not in the accept loop
        server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    thread = threading.Thread(target=server.serve_forever, name="mien-http", daemon=True)
    thread.start()
    server.mien_thread = thread
    return server


def stop_web(server) -> None:
    server.shutdown()
    server.server_close()

