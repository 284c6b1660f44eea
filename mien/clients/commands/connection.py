"""How every client subcommand reaches a server: the same flags, one Client."""

from __future__ import annotations

import argparse
import os

DEFAULT_SERVER = "127.0.0.1:50051"


def add_connection_args(parser: argparse.ArgumentParser) -> None:
    """--server, --token-file and --tls-ca, identical on every client subcommand."""
    g = parser.add_argument_group("server")
    g.add_argument("--server", default=os.environ.get("MIEN_SERVER", DEFAULT_SERVER),
                   help="server HOST:PORT, or replicas H1:P1,H2:P2 or dns:NAME:PORT balanced "
                        "round-robin (default %(default)s; env MIEN_SERVER)")
    g.add_argument("--token-file", default=None, help="bearer token file (else env MIEN_TOKEN)")
    g.add_argument("--tls-ca", default=None, metavar="PEM",
                   help="use TLS, trusting this CA certificate ('system' for the system roots)")


def client_from_args(args):
    """A mien.clients.Client for the flags of add_connection_args."""
    from mien.clients.client import Client

    token = None
    if args.token_file:
        with open(args.token_file, encoding="utf-8") as fh:
            token = fh.read().strip()
        if not token:
            from mien.errors import BadInputError

            raise BadInputError(f"the token file {args.token_file} is empty or only whitespace")
    tls = None
    if args.tls_ca:
        tls = True if args.tls_ca == "system" else args.tls_ca
    return Client(args.server, token=token, tls=tls)
