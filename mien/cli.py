"""The `mien` command. Each layer registers its own subcommands.

Every module of COMMAND_MODULES (each layer's `commands`) exposes `register(subparsers)`,
which adds its parsers and sets `func` on each. Heavy imports (torch, dlib, faiss) stay
inside the command functions so that `mien --help` is instant. This is the top layer:
the only place that sees every other one, so it also hands a layer what it may not
import itself (the engine's in-process analytics to the client's commands, the web app to `mien serve`).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from mien import __version__
from mien.clients.commands.error_lines import rpc_error_line
from mien.errors import MienError

# in the order `mien --help` lists them
COMMAND_MODULES = [
    "mien.indexer.commands",       # index, person, reembed
    "mien.server.commands",        # serve
    "mien.engine.store.commands",  # snapshot
    "mien.clients.commands",       # search, cross, identity, stats, persons; tag, summary, clusters
    "mien.training.commands",      # fec fetch, train feenet / head, rate, eval fec
    "mien.demo.commands",          # demo
    "mien.engine.faces.commands",  # models fetch, models verify
]


def analytics_on_store(store_dir: str):
    """`mien tag|summary|clusters --store DIR`: the engine's analytics in this process."""
    from mien.engine.analytics.on_store import StoreAnalytics

    return StoreAnalytics(store_dir)


def web_front(http_port: int, **kwargs):
    """`mien serve --http PORT`: the web app beside the gRPC server (mien.web.serving.web_front)."""
    from mien.web.serving import web_front as front

    return front(http_port, **kwargs)


# what register() of a module takes besides the subparsers
WIRING = {"mien.clients.commands": {"analytics_on_store": analytics_on_store},
          "mien.server.commands": {"web_front": web_front}}


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
        module.register(subparsers, **WIRING.get(name, {}))
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


if __name__ == "__main__":
    sys.exit(main())
