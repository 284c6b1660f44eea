"""`mien snapshot`: a consistent copy of a live store, to serve as a read replica."""

from __future__ import annotations

import json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "snapshot", help="copy a live store consistently (for read replicas)",
        description="Write a consistent copy of a store (LMDB as of one read transaction plus its "
                    "sealed shards) into a new directory, atomically, while indexers may keep "
                    "writing. Serve the copy with `mien serve --store DIR` on any machine; "
                    "balance clients over the replicas with Client(['host1:port', 'host2:port']).")
    p.add_argument("--store", required=True, metavar="DIR", help="the live store")
    p.add_argument("--out", required=True, metavar="DIR", help="new directory for the copy")
    p.add_argument("--json", action="store_true", help="print what was copied as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from mien.engine.store.snapshot import snapshot

    info = snapshot(args.store, args.out)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(f"snapshot {args.out}: {info['faces']} faces, {info['sources']} sources, "
              f"{info['persons']} persons, {len(info['shards'])} shards, "
              f"{info['bytes'] / 1e6:.1f} MB in {info['seconds']:.2f} s")
    return 0
