"""The web app's HTTP/1.1 transport: one asyncio loop owns every socket, h11 parses.

Why not the standard library's ThreadingHTTPServer (what served the app
before): it gives each connection a thread for its whole life, with no
deadline for a request's head, so 1,000 half-sent requests held 1,030 threads;
it does not decode chunked bodies (a chunked body was read as the next
request: smuggling behind a proxy), and a listen backlog of 5 made every sixth
new connection wait. Here:

- sockets live on one event loop: an idle or slow connection costs a socket
  and a few KB, never a thread. Complete requests go to a bounded thread pool
  (the servicers block on FAISS, LMDB and the face analyser);
- h11 (python-hyper's HTTP/1.1 state machine, the parser under uvicorn and
  httpx) frames messages: a malformed or doubled Content-Length is a 400, a
  chunked body is decoded, a Transfer-Encoding other than chunked is a 501;
- Content-Length together with Transfer-Encoding (the smuggling shape) is a 400
  and the connection closes (RFC 9112 6.1 lets a server refuse it);
- deadlines: a request's head must be complete header_timeout after its first
  byte (or after the accept), a keep-alive connection may wait idle_timeout
  for its next request, a body must arrive within body_timeout, a reader that
  stops reading a response is dropped after send_timeout;
- at most max_connections at once: the next gets a 503 and is closed.

The application is a plain function `handle(Request) -> Response`, run in the
pool; a Response body is bytes or an iterator of bytes (a file's ranges, an
NDJSON stream), pulled chunk by chunk from the pool and written with flow
control, chunked when it has no Content-Length.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Callable, Iterable, Iterator

import h11

log = logging.getLogger("mien.web")


@dataclass(frozen=True)
class HttpLimits:
    header_timeout: float = 10.0      # seconds from a request's first byte (or the accept) to its last header
    idle_timeout: float = 60.0        # a keep-alive connection waiting for its next request
    body_timeout: float = 120.0       # the whole request body
    send_timeout: float = 60.0        # one write the client does not read
    max_connections: int = 1000       # open at once; the next gets 503
    max_header_bytes: int = 64 * 1024
    max_body_bytes: int = 32 * 1024 * 1024
    workers: int = 16                 # threads running handlers


class Headers:
    """A request's headers, looked up case-insensitively; repeated ones joined (Cookie with '; ')."""

    def __init__(self, pairs: Iterable[tuple[bytes, bytes]]):
        self._items: dict[str, str] = {}
        for name, value in pairs:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            if key in self._items:
                text = self._items[key] + ("; " if key == "cookie" else ", ") + text
            self._items[key] = text

    def get(self, name: str, default=None):
        return self._items.get(name.lower(), default)

    def __contains__(self, name: str) -> bool:
        return name.lower() in self._items


@dataclass
class Request:
    method: str                    # "GET", "POST", ...
    target: str                    # path and query, as sent
    headers: Headers
    body: bytes = b""
    secure: bool = False           # came over TLS


@dataclass
class Response:
    status: int
    headers: list = field(default_factory=list)   # [(name, value)]
    body: bytes | Iterator[bytes] = b""
    close: bool = False            # close the connection after this response


class _Closed(Exception):
    """The connection is over (peer gone, deadline passed, protocol error answered)."""


class HttpServer:
    """Serve `handle` on host:port from a background thread; stop() ends it."""

    def __init__(self, handle: Callable[[Request], Response], host: str, port: int, *,
                 limits: HttpLimits | None = None, ssl_context=None):
        self.handle = handle
        self.limits = limits or HttpLimits()
        self.ssl_context = ssl_context
        self._pool = ThreadPoolExecutor(max_workers=self.limits.workers, thread_name_prefix="mien-http")
        self._loop = asyncio.new_event_loop()
        self._connections: set[asyncio.Task] = set()
        self.active = 0                # open connections (the loop thread's count)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((host, port))
        except OSError:
            self._sock.close()
            raise
        self._sock.listen(1024)
        self._sock.setblocking(False)
        self.server_address = self._sock.getsockname()[:2]
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._loop_main, name="mien-http-loop", daemon=True)
        self._started = threading.Event()
        self._thread.start()
        self._started.wait()

    # -- life cycle -----------------------------------------------------------------
    def _loop_main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._server = self._loop.run_until_complete(asyncio.start_server(
                self._connection, sock=self._sock, ssl=self.ssl_context,
                ssl_handshake_timeout=self.limits.header_timeout if self.ssl_context else None))
        finally:
            self._started.set()
        self._loop.run_forever()
        self._loop.close()

    def stop(self) -> None:
        """Stop accepting, drop open connections, let running handlers finish on their own."""
        async def close():
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            self._loop.stop()

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self._loop)
            self._thread.join(10)
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- one connection -------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if self.active >= self.limits.max_connections:
            await self._refuse_overload(writer)
            return
        self.active += 1
        self._connections.add(task)
        sock = writer.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # a reply's last segment must not wait for the ACK of the one before (Nagle against the
            # client's delayed ACK held keep-alive replies ~40 ms)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        secure = writer.get_extra_info("ssl_object") is not None
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.limits.max_header_bytes)
        try:
            first = True
            while True:
                request = await self._read_request(conn, reader, writer, first, secure)
                if request is None:
                    break
                first = False
                response = await self._run(self.handle, request)
                await self._write(conn, writer, request, response)
                if response.close or conn.our_state is h11.MUST_CLOSE:
                    break
                conn.start_next_cycle()
        except (_Closed, ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass
        except Exception:  # noqa: BLE001 - one connection's failure is logged, the server goes on
            log.exception("http connection failed")
        finally:
            self.active -= 1
            self._connections.discard(task)
            writer.close()

    async def _refuse_overload(self, writer) -> None:
        body = b'{"error": {"code": 14, "status": "UNAVAILABLE", "message": "too many connections; retry later"}}'
        head = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
                b"Retry-After: 1\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n")
        try:
            writer.write(head + body)
            await asyncio.wait_for(writer.drain(), 1.0)
        except (OSError, asyncio.TimeoutError):
            pass
        writer.close()

    async def _receive(self, conn, reader, timeout: float) -> None:
        try:
            data = await asyncio.wait_for(reader.read(65536), max(0.0, timeout))
        except asyncio.TimeoutError:
            raise _Closed() from None
        conn.receive_data(data)  # b"" = the peer closed

    async def _read_request(self, conn, reader, writer, first: bool, secure: bool) -> Request | None:
        loop = asyncio.get_running_loop()
        limits = self.limits
        # the head's deadline runs from the accept (first request) or from its first byte (the next ones)
        deadline = loop.time() + limits.header_timeout if first else None
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    if deadline is None:
                        await self._receive(conn, reader, limits.idle_timeout)
                        deadline = loop.time() + limits.header_timeout
                    else:
                        await self._receive(conn, reader, deadline - loop.time())
                    continue
                if isinstance(event, h11.ConnectionClosed):
                    return None
                break
            assert isinstance(event, h11.Request)
            names = {k.lower() for k, _ in event.headers}
            if b"transfer-encoding" in names and b"content-length" in names:
                await self._reject(conn, writer, 400, "a request may not carry both Content-Length and "
                                                     "Transfer-Encoding")
                raise _Closed()
            length = next((int(v) for k, v in event.headers if k.lower() == b"content-length"), None)
            if length is not None and length > limits.max_body_bytes:
                await self._too_large(conn, reader, writer)
            body = bytearray()
            deadline = loop.time() + limits.body_timeout
            while True:
                if conn.they_are_waiting_for_100_continue:
                    writer.write(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
                part = conn.next_event()
                if part is h11.NEED_DATA:
                    await self._receive(conn, reader, deadline - loop.time())
                    continue
                if isinstance(part, h11.Data):
                    body += part.data
                    if len(body) > limits.max_body_bytes:
                        await self._too_large(conn, reader, writer)
                    continue
                if isinstance(part, h11.EndOfMessage):
                    break
                raise _Closed()  # ConnectionClosed mid-body
        except h11.RemoteProtocolError as exc:
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                await self._reject(conn, writer, exc.error_status_hint, f"malformed request: {exc}")
            raise _Closed() from None
        return Request(method=event.method.decode("ascii", "replace"), target=event.target.decode("latin-1"),
                       headers=Headers(event.headers), body=bytes(body), secure=secure)

    async def _too_large(self, conn, reader, writer) -> None:
        await self._reject(conn, writer, 413, f"the request is larger than the server's limit of "
                                              f"{self.limits.max_body_bytes} bytes (the gRPC message limit, "
                                              "in base64 JSON)", status_name="RESOURCE_EXHAUSTED", code=8)
        # read (and drop) what the client still sends for a moment before closing: closing on
        # unread bytes resets the connection, and a client still sending never sees the 413
        loop = asyncio.get_running_loop()
        until, budget = loop.time() + 2.0, 4 * self.limits.max_body_bytes
        try:
            while budget > 0 and loop.time() < until:
                data = await asyncio.wait_for(reader.read(1 << 16), until - loop.time())
                if not data:
                    break
                budget -= len(data)
        except (asyncio.TimeoutError, OSError):
            pass
        raise _Closed()

    async def _reject(self, conn, writer, status: int, message: str, *, status_name: str = "INVALID_ARGUMENT",
                      code: int = 3) -> None:
        """An error answered by the transport itself; the connection closes after it."""
        import json

        body = json.dumps({"error": {"code": code, "status": status_name, "message": message[:300]}}).encode()
        try:
            writer.write(conn.send(h11.Response(status_code=status, headers=[
                ("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                ("Connection", "close"), ("X-Content-Type-Options", "nosniff"),
                ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; sandbox")])))
            writer.write(conn.send(h11.Data(data=body)))
            writer.write(conn.send(h11.EndOfMessage()))
            await asyncio.wait_for(writer.drain(), self.limits.send_timeout)
        except (h11.LocalProtocolError, OSError, asyncio.TimeoutError):
            pass

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def _write(self, conn, writer, request: Request, response: Response) -> None:
        headers = [("Server", "mien"), ("Date", formatdate(usegmt=True)), *response.headers]
        if response.close:
            headers.append(("Connection", "close"))
        body = response.body
        try:
            head = conn.send(h11.Response(status_code=response.status, headers=headers))
            if request.method == "HEAD":
                writer.write(head)  # the headers say what a GET would get; no body
            elif isinstance(body, (bytes, bytearray)):
                # one write: head, body and end together in as few segments as the kernel likes
                writer.write(head + (conn.send(h11.Data(data=body)) if body else b"") + conn.send(h11.EndOfMessage()))
                await self._drain(writer)
                return
            else:
                writer.write(head)
                sentinel = object()
                while True:
                    chunk = await self._run(next, body, sentinel)
                    if chunk is sentinel:
                        break
                    if chunk:
                        writer.write(conn.send(h11.Data(data=chunk)))
                        await self._drain(writer)
            writer.write(conn.send(h11.EndOfMessage()))
            await self._drain(writer)
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                await self._run(close)  # a generator's cleanup (files, a stream's call) runs in the pool

    async def _drain(self, writer) -> None:
        try:
            await asyncio.wait_for(writer.drain(), self.limits.send_timeout)
        except asyncio.TimeoutError:
            raise _Closed() from None
