"""Build and run the gRPC server: Mien (+ Analytics when present), health, reflection."""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from mien.server.reflection_v1 import PREFIXES as REFLECTION_PREFIXES, add_reflection

from mien import native
from mien.errors import BadInputError, MienError
from mien.server import native_front
from mien.server.context import Limits, ServerContext
from mien.server.cpus import cpus_kept_awake
from mien.server.logqueue import batched_root_logging
from mien.server.arrivals import ArrivalExecutor, Arrivals
from mien.server.parsing import ParseGuard
from mien.server.servicer import MienServicer
from mien.server.shutdown import shutdown
from mien.v1 import search_pb2, search_pb2_grpc

log = logging.getLogger("mien.server")

_HEALTH_PREFIX = "/grpc.health.v1.Health/"


@dataclass(frozen=True)
class TLSConfig:
    """Server certificate chain and private key (PEM files)."""

    cert_file: str
    key_file: str


def default_workers() -> int:
    # Searches release the GIL inside FAISS/LMDB; a few threads per core keep
    # both cores busy while others wait on the network.
    return min(32, (os.cpu_count() or 1) * 4 + 4)


_UNAUTHENTICATED_MESSAGE = "missing or invalid bearer token (metadata 'authorization: Bearer <token>')"


def token_check(token: str):
    """(method, metadata) -> None when the call may go on, else why it may not.

    Health checks always pass: load balancers probe without credentials. So does
    server reflection (v1 and v1alpha): it tells only the public schema (the .proto
    files that ship with mien) and lets grpcurl list and describe the services;
    every call that reads or changes the store needs the token.
    """
    expected = f"Bearer {token}".encode()

    def refusal(method: str, metadata) -> str | None:
        if method.startswith(_HEALTH_PREFIX) or method.startswith(REFLECTION_PREFIXES):
            return None
        for key, value in metadata or ():
            if key == "authorization":
                given = value.encode() if isinstance(value, str) else value
                if hmac.compare_digest(given, expected):
                    return None
                break
        log.info("rpc=%s status=UNAUTHENTICATED", method.rsplit("/", 1)[-1])
        return _UNAUTHENTICATED_MESSAGE

    return refusal


class TokenAuthInterceptor(grpc.ServerInterceptor):
    """Require `authorization: Bearer <token>` on every call except health."""

    def __init__(self, token: str):
        self._refusal = token_check(token)

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if self._refusal(handler_call_details.method, handler_call_details.invocation_metadata) is None:
            return handler
        return _deny(handler)


def _deny(handler):
    def abort(request_or_iterator, context):
        context.abort(grpc.StatusCode.UNAUTHENTICATED, _UNAUTHENTICATED_MESSAGE)

    if handler is None:
        return grpc.unary_unary_rpc_method_handler(abort)
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(abort)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(abort)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(abort)
    return grpc.unary_unary_rpc_method_handler(abort)


class BindError(MienError, OSError):
    """The server cannot listen on the address asked for (in use, or not an address of this machine)."""


def checked_token(token: str | None, where: str = "the bearer token") -> str | None:
    """`token` (None: auth off), or BadInputError when it is empty or only whitespace: such a
    token would pass the guard of non-loopback binds and then let `Bearer ` plus blanks in."""
    if token is not None and not token.strip():
        raise BadInputError(f"{where} is empty or only whitespace; set a real token (or none, to serve "
                            "without auth on loopback)")
    return token


def read_token(token_file: str | None = None) -> str | None:
    """The bearer token from --token-file, else env MIEN_TOKEN, else None (auth off).

    A token file that is missing, unreadable or blank is a BadInputError: the
    operator asked for auth, and serving without it would be worse than not serving.
    So is a MIEN_TOKEN of only whitespace (an empty one means unset). Both are
    stripped of surrounding whitespace (a trailing newline from `$(cat file)`).
    """
    if token_file:
        try:
            with open(token_file, encoding="utf-8") as fh:
                token = fh.read().strip()
        except OSError as exc:
            raise BadInputError(f"cannot read the token file {token_file}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise BadInputError(f"the token file {token_file} is not UTF-8 text") from None
        if not token:
            raise BadInputError(f"the token file {token_file} is empty; put the bearer token in it")
        return token
    token = os.environ.get("MIEN_TOKEN")
    if not token:
        return None
    return checked_token(token, "MIEN_TOKEN").strip()


def host_port(host: str, port: int) -> str:
    """"host:port" as gRPC parses it: an IPv6 literal needs brackets ("::1" -> "[::1]:PORT")."""
    if ":" in host and not host.startswith("["):
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def is_loopback(host: str) -> bool:
    """Whether binding `host` exposes the server to this machine only."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name, or "" (all addresses): assume it reaches the network


INSECURE_BIND_MESSAGE = (
    "refusing to serve on {host} without a token: anyone who can reach this address could read "
    "the store and, with --allow-root, make the server index files. Set a bearer token "
    "(MIEN_TOKEN=... or --token-file FILE, clients send 'authorization: Bearer <token>'), bind "
    "127.0.0.1, or pass --insecure if the network itself is trusted"
)


def check_exposure(host: str, *, token: str | None, tls, insecure: bool = False) -> None:
    """Refuse an open bind to the network unless the operator insists; warn about plaintext tokens."""
    if is_loopback(host):
        return
    if not token:
        if not insecure:
            raise BadInputError(INSECURE_BIND_MESSAGE.format(host=host or "all addresses"))
        log.warning("serving on %s with no token (--insecure): anyone who reaches it may call every method",
                    host)
    elif tls is None:
        log.warning("serving on %s with a token but without TLS: the token and the faces cross the "
                    "network in clear text; use --tls-cert/--tls-key or a TLS-terminating proxy", host)


def single_threaded_search() -> None:
    """One OpenMP thread per FAISS call: the server's parallelism is its RPC threads.

    A 16-d top-k query gains nothing from an OpenMP team, and with more busy
    threads than cores the team's spin-waits cost 30-50x: measured 16 ms vs
    0.3 ms per search at 50k faces on a loaded 2-core machine. The OpenMP
    setting is per thread, so every RPC worker thread calls this at start.
    """
    try:
        import faiss
    except ImportError:  # pragma: no cover - faiss is a dependency
        return
    faiss.omp_set_num_threads(1)


def single_threaded_opencv() -> None:
    """OpenCV's own thread pool off: an image query runs one at a time, and its crops and
    colour conversions are too small to split. Split, the pool's threads spin (sched_yield)
    after each call, taking the second core from the LiteRT threads of the next model:
    measured 9.5-10.5 ms detection in the server against 6.7 ms with the pool off."""
    import cv2

    cv2.setNumThreads(1)


FRONTS = ("auto", "native", "python")


def build_server(store_dir, *, port: int = 50051, host: str = "127.0.0.1", workers: int | None = None,
                 token: str | None = None, tls: TLSConfig | None = None, allowed_roots=(),
                 limits: Limits | None = None, engine_config=None, front: str = "auto", ratings=None):
    """A configured server and the port it is bound to.

    front: "native" serves through gRPC C++ (mien.server.native_front; it is already
    listening when this returns), "python" through grpcio's server (start()
    it), "auto" native when it was built, else python. port=0 picks a free
    port. ratings: the file RateTriplet appends answers to (default: the
    store's ratings.csv). The server has `.mien_context` (the ServerContext), `.mien_health`
    (the health servicer) and `.mien_front` ("native" or "python") attached.
    """
    if front not in FRONTS:
        raise ValueError(f"front must be one of {', '.join(FRONTS)}, not {front!r}")
    if front == "native" and not native.available():
        raise RuntimeError(native.UNAVAILABLE_REASON)
    use_native = front == "native" or (front == "auto" and native.available())
    if front == "auto" and not use_native:
        log.warning("serving with grpcio's Python server, which is slower per call: %s",
                    native.UNAVAILABLE_REASON)
    token = checked_token(token)
    limits = limits or Limits()
    _check_port_free(host, port)
    single_threaded_search()
    single_threaded_opencv()
    ctx = ServerContext(store_dir, limits=limits, allowed_roots=allowed_roots,
                        engine_config=engine_config, ratings=ratings)
    workers = workers or default_workers()
    address = host_port(host, port)
    tls_key_cert = None
    if tls is not None:
        try:
            with open(tls.key_file, "rb") as fh:
                key = fh.read()
            with open(tls.cert_file, "rb") as fh:
                cert = fh.read()
        except OSError as exc:
            ctx.close()
            raise BadInputError(f"cannot read {exc.filename}: {exc.strerror or exc}") from None
        tls_key_cert = (key, cert)

    if use_native:
        table = native_front.HandlerTable()
        health_servicer = _add_services(table, ctx)
        try:
            server = native_front.NativeServer(
                table, address, workers=workers, max_message_bytes=limits.max_message_bytes,
                authorize=token_check(token) if token else None, thread_init=single_threaded_search,
                tls_key_cert=tls_key_cert)
        except RuntimeError as exc:
            ctx.close()
            raise BindError(_bind_message(address, exc)) from None
        ctx.calls.unanswered = server.unanswered   # calls queued for a worker count as in flight
        bound = server.port
    else:
        options = [
            ("grpc.max_receive_message_length", limits.max_message_bytes),
            ("grpc.max_send_message_length", limits.max_message_bytes),
            ("grpc.so_reuseport", 0),
        ]
        # auth first (a refusal never parses the request), then bytes that are no message: INVALID_ARGUMENT
        interceptors = ([TokenAuthInterceptor(token)] if token else []) + [ParseGuard(), Arrivals(ctx.calls)]
        server = grpc.server(
            # records when each call arrived: one queued when a shutdown begins gets the grace
            ArrivalExecutor(ctx.calls, max_workers=workers, thread_name_prefix="mien-rpc",
                            initializer=single_threaded_search),
            options=options, interceptors=interceptors,
        )
        health_servicer = _add_services(server, ctx)
        if tls_key_cert is not None:
            bound = server.add_secure_port(address, grpc.ssl_server_credentials([tls_key_cert]))
        else:
            bound = server.add_insecure_port(address)
        if not bound:
            ctx.close()
            raise BindError(_bind_message(address, None))
    server.mien_context = ctx
    server.mien_health = health_servicer
    server.mien_front = "native" if use_native else "python"
    return server, bound


def _check_port_free(host: str, port: int) -> None:
    """BindError now if host:port is taken: gRPC would log its own multi-line error first."""
    import socket

    if port == 0:
        return
    try:
        family, kind, proto, _, sockaddr = socket.getaddrinfo(host.strip("[]") or None, port, type=socket.SOCK_STREAM,
                                                              flags=socket.AI_PASSIVE)[0]
    except OSError:
        return  # gRPC reports an unusable host itself
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC binds
        try:
            probe.bind(sockaddr)
        except OSError as exc:
            raise BindError(_bind_message(f"{host}:{port}", exc.strerror or exc)) from None


def _bind_message(address: str, exc) -> str:
    detail = str(exc) if exc is not None and "cannot bind" not in str(exc) else ""
    return (f"cannot listen on {address}: the port is in use or the address is not one of this "
            f"machine's (another server running? choose another --port){': ' + detail if detail else ''}")


def _add_services(server, ctx: ServerContext) -> health.HealthServicer:
    """Register Mien (+ Analytics when present), health and reflection; returns the health servicer."""
    search_pb2_grpc.add_MienServicer_to_server(MienServicer(ctx), server)
    services = [search_pb2.DESCRIPTOR.services_by_name["Mien"].full_name]

    try:  # the analytics service lands separately; register it when present
        from mien.server.analytics_servicer import AnalyticsServicer
        from mien.v1 import analytics_pb2, analytics_pb2_grpc
    except ImportError as exc:
        log.debug("analytics service not available: %s", exc)
    else:
        analytics_pb2_grpc.add_AnalyticsServicer_to_server(AnalyticsServicer(ctx), server)
        services.append(analytics_pb2.DESCRIPTOR.services_by_name["Analytics"].full_name)

    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    health_servicer.mien_names = ["", *services]
    for name in health_servicer.mien_names:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    services += [health.SERVICE_NAME]
    add_reflection(server, services)  # grpc.reflection.v1 and v1alpha
    return health_servicer


def set_serving(server, serving: bool) -> None:
    """Health of the server and each of its services: SERVING or NOT_SERVING (ignored once shutting down)."""
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in server.mien_health.mien_names:
        server.mien_health.set(name, status)


def start_warm_up(server) -> threading.Thread:
    """Health says NOT_SERVING now, SERVING once the models are loaded and warm (ServerContext.warm_up).

    Calls are answered meanwhile (an image query waits for the models the
    warm-up is loading); a balancer that follows health sends none until then.
    A warm-up that fails (a model file gone) is logged, and the server serves
    what it can: image queries then fail with the same clear error.
    """
    ctx = server.mien_context
    set_serving(server, False)

    def run():
        try:
            seconds = ctx.warm_up()
            log.info("models loaded and warm in %.2fs", seconds)
        except Exception as exc:  # noqa: BLE001 - the server still answers vector and face-id queries
            log.warning("loading the models at start failed (image queries will say why): %s", exc)
        if not ctx.draining:
            set_serving(server, True)

    thread = threading.Thread(target=run, name="mien-warm-up", daemon=True)
    thread.start()
    return thread


def serve(store_dir, *, grace_s: float = 5.0, keep_cpus_awake: bool = False, insecure: bool = False,
          **kwargs) -> int:
    """Run until SIGTERM/SIGINT, then drain in-flight calls for up to grace_s (mien.server.shutdown).

    keep_cpus_awake: hold the kernel's CPU wake-up latency at 0 while serving
    (see mien.server.cpus). insecure: allow a non-loopback bind without a token.
    fronts: more ways in over the same ServerContext, each a function that starts
    one (given the context) and returns the function that stops it; they start
    once gRPC serves and stop before its drain (the web app: mien.web.serving).
    A handler still running a second after the grace ends the process with
    os._exit (the store stays consistent, as after a crash).
    """
    check_exposure(kwargs.get("host", "127.0.0.1"), token=kwargs.get("token"), tls=kwargs.get("tls"),
                   insecure=insecure)
    # log writes leave the RPC threads: each RPC logs a line
    with batched_root_logging(), (cpus_kept_awake() if keep_cpus_awake else contextlib.nullcontext()):
        clean = _serve(store_dir, grace_s=grace_s, **kwargs)
    if not clean:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # leave the handlers behind: no interpreter teardown waits for them
    return 0


def _serve(store_dir, *, grace_s: float, fronts=(), load_models: bool = True, **kwargs) -> bool:
    server, port = build_server(store_dir, **kwargs)
    if load_models:  # health is registered SERVING and the native front serves already: say otherwise now
        set_serving(server, False)
    stop = threading.Event()

    def on_signal(signum, frame):
        log.info("signal %s: shutting down (grace %.1fs)", signal.Signals(signum).name, grace_s)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.start()
    ctx = server.mien_context
    if load_models:  # health says SERVING once the first image query costs what the next ones do
        start_warm_up(server)
        # after the warm-up has turned health to NOT_SERVING (starting a process takes a while)
        if ctx.allowed_roots:  # IndexPaths may run: its workers' fork server imports beside the warm-up
            from mien.indexer import pool_start

            pool_start.start()
    log.info("mien serving store %s on %s:%d (%s front, auth %s, tls %s, allowed roots: %s, cpus: %s)",
             store_dir, kwargs.get("host", "127.0.0.1"), port, server.mien_front,
             "on" if kwargs.get("token") else "off", "on" if kwargs.get("tls") else "off",
             ", ".join(str(r) for r in ctx.allowed_roots) or "none",
             ",".join(str(c) for c in sorted(os.sched_getaffinity(0))))
    stops = [start(ctx) for start in fronts]
    while not stop.wait(1.0):
        pass
    for stop_front in reversed(stops):
        stop_front()
    clean = shutdown(server, grace_s)
    log.info("mien server stopped")
    return clean
