"""`mien serve`: run the gRPC server over a store."""

from __future__ import annotations


def register(subparsers, web_front=None) -> None:
    """web_front(http_port, host=, token=, tls=): the web app's front for --http, handed in by
    the mien command (mien.web sits above this layer)."""
    p = subparsers.add_parser(
        "serve", help="serve a store over gRPC",
        description="Serve a mien store over gRPC (Mien + Analytics services, health, reflection). "
                    "Auth: set MIEN_TOKEN or --token-file; clients send 'authorization: Bearer <token>'.",
    )
    p.add_argument("--store", required=True, help="store directory")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 for all; default %(default)s)")
    p.add_argument("--port", type=int, default=50051, help="port (0 = any free; default %(default)s)")
    p.add_argument("--allow-root", action="append", default=[], metavar="DIR",
                   help="allow IndexPaths under DIR (repeatable; none = server-side indexing off)")
    p.add_argument("--workers", type=int, default=None,
                   help="threads for calls that may block: image queries, analytics; on the native "
                        "front quick lookups run on gRPC's own threads (default: 4 per core + 4)")
    p.add_argument("--token-file", default=None, help="file holding the bearer token (else env MIEN_TOKEN)")
    p.add_argument("--tls-cert", default=None, help="PEM certificate chain (enables TLS with --tls-key)")
    p.add_argument("--tls-key", default=None, help="PEM private key")
    p.add_argument("--max-message-mb", type=int, default=16, help="largest gRPC message (default %(default)s MiB)")
    p.add_argument("--max-image-mp", type=float, default=50.0, help="largest query image in megapixels")
    p.add_argument("--max-top-k", type=int, default=1000, help="largest top_k (default %(default)s)")
    p.add_argument("--cpus", default=None, metavar="LIST",
                   help="run the server on these CPUs only, e.g. 1 or 2-3: keeps its threads and caches "
                        "on cores no client competes for (lower latency on a shared machine)")
    p.add_argument("--keep-cpus-awake", action="store_true",
                   help="while serving, ask the kernel to keep idle CPUs polling instead of sleeping "
                        "(/dev/cpu_dma_latency = 0; needs write access to it, usually root): lower "
                        "latency, machine-wide, at the cost of idle CPUs spinning")
    p.add_argument("--front", choices=("auto", "native", "python"), default="auto",
                   help="who owns the socket and the calls: 'native' is gRPC C++ calling mien's Python "
                        "handlers (lower latency; built when libgrpc++-dev was present at install), "
                        "'python' is grpcio's server, 'auto' native when built (default %(default)s)")
    p.add_argument("--grace", type=float, default=5.0,
                   help="on SIGTERM: seconds calls in flight get to finish (health says NOT_SERVING, new "
                        "calls are refused); then they are cancelled and the process exits within a "
                        "second (default %(default)s)")
    p.add_argument("--ratings", default=None, metavar="FILE",
                   help="where the Rate page and RateTriplet append answers (FEC's format; default: "
                        "STORE/ratings.csv); mien train head --store learns from it")
    p.add_argument("--http", type=int, default=None, metavar="PORT",
                   help="also serve the web app and its JSON API (/v1/...) on this port, on the same "
                        "--host (loopback by default) and guarded by the same token; source photos and "
                        "videos are shown only from under --allow-root folders")
    p.add_argument("--lazy-models", action="store_true",
                   help="do not load the face models at start (a replica that answers vector and face-id "
                        "queries only; an image query then loads them, ~2 s). By default they load at start "
                        "and health says SERVING once they are warm")
    p.add_argument("--insecure", action="store_true",
                   help="allow a non-loopback --host without a token (refused otherwise: anyone on the "
                        "network could query the store)")
    g = p.add_argument_group("models (a store records the engine that built it, model files included; "
                             "these point at files that moved since, checked against the recorded hash)")
    g.add_argument("--detector-model", metavar="PATH", default=None, help="the insightface detector pack or .onnx")
    g.add_argument("--identity-model", metavar="PATH", default=None, help="the ArcFace .onnx")
    g.add_argument("--expression-model", metavar="PATH", default=None, help="the FEENet checkpoint")
    g.add_argument("--expression-head", metavar="PATH", default=None, help="the learned expression head")
    g.add_argument("--device", default=None, help="cpu or cuda for FEENet / ONNX models (default cpu)")
    p.set_defaults(func=run, web_front=web_front)


def run(args) -> int:
    from mien.errors import BadInputError
    from mien.server.app import TLSConfig, read_token, serve
    from mien.server.context import Limits
    from mien.server.cpus import parse_cpus, pin_to_cpus

    if bool(args.tls_cert) != bool(args.tls_key):
        raise BadInputError("TLS needs both --tls-cert and --tls-key")
    if args.grace < 0:
        raise BadInputError(f"--grace must not be negative, got {args.grace}")
    if args.cpus:
        # before anything starts a thread: threads and children inherit the mask
        pin_to_cpus(parse_cpus(args.cpus))
    tls = TLSConfig(args.tls_cert, args.tls_key) if args.tls_cert else None
    limits = Limits(max_message_bytes=args.max_message_mb * 1024 * 1024,
                    max_image_pixels=int(args.max_image_mp * 1_000_000), max_top_k=args.max_top_k)
    engine = {key: getattr(args, key) for key in ("detector_model", "identity_model", "expression_model", "expression_head",
                                                 "device")
              if getattr(args, key, None)}
    engine_config = None
    if engine:
        from mien.engine.faces import EngineConfig

        engine_config = EngineConfig(**engine)
    if args.http is not None and args.web_front is None:
        raise BadInputError("--http: this install has no web app (mien.web)")
    token = read_token(args.token_file)
    fronts = () if args.http is None else (args.web_front(args.http, host=args.host, token=token, tls=tls),)
    return serve(args.store, port=args.port, engine_config=engine_config, host=args.host, workers=args.workers,
                 token=token, tls=tls, fronts=fronts, allowed_roots=args.allow_root, ratings=args.ratings,
                 limits=limits, grace_s=args.grace, keep_cpus_awake=args.keep_cpus_awake,
                 front=args.front, insecure=args.insecure,
                 load_models=not args.lazy_models)
