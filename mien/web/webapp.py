"""The web app of `mien serve --http PORT`: its pages, its JSON API, source media.

WebApp.handle turns one HTTP request into one response; mien.web.httpd owns
the sockets (timeouts, connection cap, HTTP framing) and runs handle on its
thread pool. Everything is served by mien itself: no CDN, no build step.

Paths:
  /                  the app (static/index.html; its JS and CSS under /static/)
  /login             the token form (when the server has a token); POST /logout ends the session
  /v1/...            the JSON API (mien.web.gateway)
  /v1/faces/{id}/thumbnail.jpg   a stored face's thumbnail
  /media/file?uri=   an indexed source file; /media/play?uri= a video as the browser plays it
"""

from __future__ import annotations

import json
import logging
import mimetypes
import os
from dataclasses import replace
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import grpc

from mien.errors import NotFoundError
from mien.web import auth as web_auth
from mien.web.gateway import Gateway, RpcError
from mien.web.httpd import HttpLimits, HttpServer, Request, Response
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


class HttpError(RpcError):
    """An error answered with a given HTTP status (the transport's own, not a servicer's)."""

    def __init__(self, status: int, code: grpc.StatusCode, message: str, headers=()):
        super().__init__(code, message)
        self._status = status
        self.headers = list(headers)

    @property
    def http_status(self) -> int:
        return self._status


class WebApp:
    """Requests to responses over one ServerContext: gateway, media, auth."""

    def __init__(self, ctx, *, token: str | None, host: str, secure_cookies: bool):
        self.ctx = ctx
        self.gateway = Gateway(ctx)
        self.media = Media(ctx)
        self.auth = web_auth.WebAuth(token, host, secure_cookies=secure_cookies)
        # one gRPC message's worth of JSON: base64 makes bytes 4/3 larger
        self.max_body = ctx.limits.max_message_bytes * 4 // 3 + 64 * 1024

    # -- entry point ----------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        try:
            return self._route(req)
        except RpcError as err:
            return self._error(err)
        except Exception:  # noqa: BLE001 - never a traceback to the client
            log.exception("http %s %s failed", req.method, req.target[:200])
            return self._error(RpcError(grpc.StatusCode.INTERNAL, "internal error; the server's log has the details"))

    def _route(self, req: Request) -> Response:
        url = urlsplit(req.target)
        path, query = url.path, parse_qs(url.query)
        verb = "GET" if req.method == "HEAD" else req.method
        auth = self.auth
        if not auth.host_ok(req.headers.get("Host")):
            raise HttpError(421, grpc.StatusCode.PERMISSION_DENIED, "this server answers to loopback names only")
        if verb not in ("GET", "POST"):
            raise HttpError(405, grpc.StatusCode.UNIMPLEMENTED, "method not allowed", [("Allow", "GET, HEAD, POST")])
        if path == "/login":
            return self._login(req, verb)
        if path.startswith("/static/") or path in ("/", "/index.html", "/favicon.ico"):
            if verb != "GET":
                raise HttpError(405, grpc.StatusCode.UNIMPLEMENTED, "method not allowed", [("Allow", "GET, HEAD")])
            return self._static(req, path)
        how = auth.authenticate(req.headers)
        if how is None:
            # nothing about the store without the token, not even which routes exist
            raise HttpError(401, grpc.StatusCode.UNAUTHENTICATED,
                            "missing or invalid token: log in at /login or send 'Authorization: Bearer <token>'")
        if verb == "POST" and not auth.csrf_ok(req.headers, how, {req.headers.get("Host", "")}):
            raise HttpError(403, grpc.StatusCode.PERMISSION_DENIED,
                            f"missing or wrong {web_auth.CSRF_HEADER} header (cross-site request refused; "
                            "reload the page)")
        if path == "/logout":
            if verb != "POST":  # a link or an <img> from anywhere must not end the session
                raise HttpError(405, grpc.StatusCode.UNIMPLEMENTED, "log out with POST /logout",
                                [("Allow", "POST")])
            return self._json(200, {"logged_out": True}, [("Set-Cookie", auth.session_cookie_header(clear=True))])
        if path.startswith("/media/") and verb == "GET":
            return self._media(req, path, query)
        thumb = _thumbnail_path(path)
        if thumb is not None and verb == "GET":
            return self._thumbnail(thumb)
        if path == "/v1/session" and verb == "GET":
            return self._json(200, {"auth": auth.enabled, "how": how,
                                    "allowed_roots": bool(self.ctx.allowed_roots)})
        routed = self.gateway.route(verb, path)
        if routed is None:
            raise HttpError(404, grpc.StatusCode.NOT_FOUND, f"no API route {verb} {path[:200]}")
        method, path_fields = routed
        request = self.gateway.build_request(method, req.body, path_fields, query)
        if method.streaming:
            return self._stream(method, request)
        return self._json(200, self.gateway.call(method, request))

    # -- responses ------------------------------------------------------------------
    @staticmethod
    def _send(status: int, body: bytes, content_type: str, headers=()) -> Response:
        out = [("Content-Type", content_type), ("Content-Length", str(len(body))),
               ("X-Content-Type-Options", "nosniff"),
               # same-origin, not no-referrer: with no-referrer Chromium sends "Origin: null" on form posts
               ("Referrer-Policy", "same-origin"), ("Cache-Control", "no-store")]
        if not any(k == "Content-Security-Policy" for k, _ in headers):
            out.append(("Content-Security-Policy", DATA_CSP))
        return Response(status, out + list(headers), body)

    def _json(self, status: int, obj, headers=()) -> Response:
        return self._send(status, json.dumps(obj).encode(), "application/json", headers)

    def _error(self, err: RpcError) -> Response:
        return self._json(err.http_status, {"error": err.body()}, getattr(err, "headers", ()))

    def _redirect(self, where: str, headers=()) -> Response:
        return self._send(303, b"", "text/plain", [("Location", where), *headers])

    def _stream(self, method, request) -> Response:
        """Newline-delimited JSON, one message per line, until the stream ends.

        A call refused before its first message (bad path, outside the allowed
        roots, store busy) answers with its HTTP status like a unary call.
        """
        messages = self.gateway.stream(method, request)
        first = next(messages, None)  # RpcError -> the call's status
        return Response(200, [("Content-Type", "application/x-ndjson"), ("Cache-Control", "no-store"),
                              ("X-Content-Type-Options", "nosniff"), ("Content-Security-Policy", DATA_CSP)],
                        _Lines(first, messages))

    # -- pages ----------------------------------------------------------------------
    def _static(self, req: Request, path: str) -> Response:
        name = "index.html" if path in ("/", "/index.html") else path[len("/static/"):]
        if path == "/favicon.ico":
            name = "favicon.svg"
        target = (STATIC / name).resolve()
        if STATIC.resolve() not in target.parents or not target.is_file():
            raise HttpError(404, grpc.StatusCode.NOT_FOUND, "no such file")
        ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        headers = [("Content-Security-Policy", _CSP), ("X-Frame-Options", "DENY")]
        body = target.read_bytes()
        if name == "index.html":
            if self.auth.authenticate(req.headers) is None:
                return self._redirect("/login")
            # the page carries the CSRF value: the cookie itself is HttpOnly, out of every script's reach
            csrf = self.auth.csrf_value(req.headers)
            headers.append(("Set-Cookie", self.auth.csrf_cookie_header(csrf)))
            body = body.replace(b"<!--csrf-->", f'<meta name="mien-csrf" content="{csrf}">'.encode())
        charset = "; charset=utf-8" if ctype.startswith("text/") or ctype.endswith("javascript") else ""
        return self._send(200, body, ctype + charset, headers)

    def _login(self, req: Request, verb: str) -> Response:
        auth = self.auth
        if not auth.enabled:
            return self._redirect("/")
        page = (STATIC / "login.html").read_bytes()
        if verb == "GET":
            return self._send(200, page, "text/html; charset=utf-8", [("Content-Security-Policy", _CSP)])
        origin = req.headers.get("Origin")
        if origin and origin.split("://", 1)[-1] != req.headers.get("Host", ""):
            raise HttpError(403, grpc.StatusCode.PERMISSION_DENIED, "cross-site login refused")
        wait = auth.throttle.take()
        if wait:
            message = f"Too many attempts: wait {wait:.0f} s and try again." if wait >= 1 else \
                "Too many attempts: wait a second and try again."
            page = page.replace(b"<!--error-->", f"<p class=error>{message}</p>".encode())
            return self._send(429, page, "text/html; charset=utf-8",
                              [("Content-Security-Policy", _CSP), ("Retry-After", str(max(1, round(wait))))])
        given = parse_qs(req.body.decode("utf-8", "replace")).get("token", [""])[-1]
        if not auth.check_login(given):
            page = page.replace(b"<!--error-->", b"<p class=error>Wrong token.</p>")
            return self._send(401, page, "text/html; charset=utf-8", [("Content-Security-Policy", _CSP)])
        return self._redirect("/", [
            ("Set-Cookie", auth.session_cookie_header()),
            ("Set-Cookie", auth.csrf_cookie_header(auth.csrf_value(req.headers))),
        ])

    # -- files ----------------------------------------------------------------------
    def _thumbnail(self, face_id: int) -> Response:
        from mien.v1 import search_pb2

        method = self.gateway.methods["Mien/GetFace"]
        record = self.gateway.call_raw(method, search_pb2.GetFaceRequest(face_id=face_id))
        return self._send(200, record.thumbnail, "image/jpeg", [("Cache-Control", "private, max-age=60"),
                                                                ("Content-Security-Policy", MEDIA_CSP)])

    def _media(self, req: Request, path: str, query: dict) -> Response:
        uri = (query.get("uri") or [""])[-1]
        media = self.media
        try:
            if path == "/media/file":
                f = media.original(uri)
            elif path == "/media/play":
                f = media.playable(uri)
            else:
                raise HttpError(404, grpc.StatusCode.NOT_FOUND, "no such media route")
        except MediaDenied as exc:
            raise HttpError(403, grpc.StatusCode.PERMISSION_DENIED, str(exc)) from None
        except NotFoundError as exc:
            raise HttpError(404, grpc.StatusCode.NOT_FOUND, str(exc).strip("'\"")) from None
        # the file media.py opened beneath its allowed root: read that, never the name again
        return self._file(req, f.file, f.content_type)

    def _file(self, req: Request, fh, content_type: str) -> Response:
        size = _size(fh)
        headers = [("Accept-Ranges", "bytes"), ("X-Content-Type-Options", "nosniff"),
                   ("Content-Security-Policy", MEDIA_CSP), ("Cache-Control", "private, max-age=60")]
        try:
            rng = byte_range(req.headers.get("Range"), size)
        except ValueError:
            fh.close()
            return Response(416, [*headers, ("Content-Range", f"bytes */{size}"), ("Content-Length", "0")])
        start, end = rng if rng else (0, size - 1)
        headers += [("Content-Type", content_type), ("Content-Length", str(max(0, end - start + 1)))]
        if rng:
            headers.append(("Content-Range", f"bytes {start}-{end}/{size}"))
        return Response(206 if rng else 200, headers, _FileRange(fh, start, end))


class _FileRange:
    """The bytes start..end (inclusive) of an open file, 64 KiB at a time; close() closes the file."""

    def __init__(self, fh, start: int, end: int):
        self.fh, self.left = fh, end - start + 1
        fh.seek(start)

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        if self.left <= 0:
            raise StopIteration
        chunk = self.fh.read(min(1 << 16, self.left))
        if not chunk:
            raise OSError("the file shrank while it was sent")  # the client sees a short body
        self.left -= len(chunk)
        return chunk

    def close(self) -> None:
        self.fh.close()


class _Lines:
    """An NDJSON stream of a server-streaming call; close() ends the call (the client went away)."""

    def __init__(self, first, messages):
        self.first, self.messages, self.done = first, messages, False

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        if self.done:
            raise StopIteration
        try:
            if self.first is not None:
                message, self.first = self.first, None
            else:
                message = next(self.messages)
        except StopIteration:
            self.done = True
            raise
        except RpcError as err:
            self.done = True
            message = {"error": err.body()}
        return json.dumps(message).encode() + b"\n"

    def close(self) -> None:
        self.messages.close()  # the call stops at its next safe point


def _size(fh) -> int:
    return os.fstat(fh.fileno()).st_size


def _thumbnail_path(path: str) -> int | None:
    prefix, suffix = "/v1/faces/", "/thumbnail.jpg"
    if path.startswith(prefix) and path.endswith(suffix):
        middle = path[len(prefix):-len(suffix)]
        if middle.isdigit() and len(middle) < 19:
            return int(middle)
    return None


def start_web(ctx, *, port: int, host: str = "127.0.0.1", token: str | None = None, tls=None,
              limits: HttpLimits | None = None) -> HttpServer:
    """Serve the app on host:port in a background thread; returns the server (its .server_address).

    tls: the gRPC server's TLSConfig (cert_file, key_file): the app is then
    HTTPS with the same certificate; a token typed into the login form never
    crosses the network in clear when gRPC does not. Cookies are Secure
    `__Host-` cookies on HTTPS and on loopback (where browsers keep them
    over plain HTTP).
    """
    from mien.server.app import is_loopback

    app = WebApp(ctx, token=token, host=host, secure_cookies=tls is not None or is_loopback(host))
    ssl_context = None
    if tls is not None:
        import ssl

        ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ssl_context.load_cert_chain(tls.cert_file, tls.key_file)
    # a request body holds at most one gRPC message (the transport refuses more before reading it)
    limits = replace(limits or HttpLimits(), max_body_bytes=app.max_body)
    try:
        server = HttpServer(app.handle, host.strip("[]"), port, limits=limits, ssl_context=ssl_context)
    except OSError as exc:
        raise OSError(f"cannot serve the web app on {host}:{port}: {exc.strerror or exc}") from None
    server.app = app
    return server


def stop_web(server: HttpServer) -> None:
    server.stop()
