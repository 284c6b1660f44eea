"""The `mien` command. Each area registers its own subcommands.

Every module listed in COMMAND_MODULES exposes `register(subparsers)` that adds
its parsers and sets `func` on each. Heavy imports (torch, dlib, faiss) stay
inside the command functions so that `mien --help` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from mien import __version__
from mien.errors import MienError

COMMAND_MODULES = [
    "mien.indexer.cli",          # index, person
    "mien.server.cli",           # serve
    "mien.engine.store.cli",     # snapshot
    "mien.clients.cli_query",    # search, cross, identity, stats
    "mien.clients.cli_analytics",  # tag, summary, clusters
    "mien.training.cli",         # fec fetch, train feenet / head, rate, eval fec
    "mien.demo.cli",             # demo
    "mien.clients.cli_models",   # models fetch, models verify
]


class DefaultsFormatter(argparse.HelpFormatter):
    """Help that names every option's default (unless the help already says it, or there is
    none: a flag that is off, an option left unset)."""

    def _format_action(self, action):
        if action.option_strings and not action.help and self._get_help_string(action):
            import copy

            action = copy.copy(action)  # no help text: still show the default
            action.help = self._get_help_string(action)
        return super()._format_action(action)

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (not action.option_strings or "default" in text.lower() or default is argparse.SUPPRESS
                or default is None or default is False or default == []):
            return text
        return f"{text} (default: %(default)s)".strip()


class Parser(argparse.ArgumentParser):
    """Every mien parser and subparser: defaults in --help (subparsers inherit the class)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="mien",
        description="Search image and video archives by facial expression.",
    )
    parser.add_argument("--version", action="version", version=f"mien {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a real missing dependency, not an absent area
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # faiss announces which SIMD build it loaded at INFO; that is noise to a user
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the try
        return code
    except MienError as exc:
        print(f"mien: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # `mien persons --json | head`: the reader left; say nothing (and let Python's exit
        # flush write to /dev/null instead of failing again)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as exc:  # a file the user named: missing, unreadable, a folder
        print(f"mien: error: {describe_os_error(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        import grpc

        if isinstance(exc, grpc.RpcError):
            print(f"mien: {rpc_error_line(exc, getattr(args, 'server', None))}", file=sys.stderr)
            return 1
        raise


def describe_os_error(exc: OSError) -> str:
    what = exc.strerror or str(exc)
    return f"{exc.filename}: {what}" if exc.filename else what


def rpc_error_line(exc, server: str | None = None) -> str:
    """One line for a failed call; a hint when nothing answers at the address."""
    import grpc

    code = exc.code() if callable(getattr(exc, "code", None)) else None
    name = code.name if code else "UNKNOWN"
    details = exc.details() if callable(getattr(exc, "details", None)) else str(exc)
    if code == grpc.StatusCode.UNAVAILABLE and server:
        return (f"no server at {server} ({details}) — start one with `mien serve --store DIR`, "
                "or give its address with --server HOST[:PORT]")
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return f"{name}: {details} (give the server's token with --token-file FILE or env MIEN_TOKEN)"
    return f"{name}: {details}"


if __name__ == "__main__":
    sys.exit(main())
