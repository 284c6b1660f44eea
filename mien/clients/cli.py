"""The `mien` command. Each area registers its own subcommands.

Every module listed in COMMAND_MODULES exposes `register(subparsers)` that adds
its parsers and sets `func` on each. Heavy imports (torch, dlib, faiss) stay
inside the command functions so that `mien --help` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from mien import __version__
from mien.errors import MienError

COMMAND_MODULES = [
    "mien.indexer.cli",          # index, person
    "mien.server.cli",           # serve
    "mien.engine.store.cli",     # snapshot
    "mien.clients.cli_query",    # search, cross, identity, stats
    "mien.clients.cli_analytics",  # tag, summary, clusters
    "mien.training.cli",         # fec fetch, train feenet, eval fec
    "mien.demo.cli",             # demo
    "mien.clients.cli_models",   # models fetch, models verify
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
        return int(args.func(args) or 0)
    except MienError as exc:
        print(f"mien: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
