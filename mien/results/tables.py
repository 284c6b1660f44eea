"""Reply types as the `mien` commands print them: aligned text tables.

Here, below every layer, because two layers print the same listing: `mien persons`
(a client, over a server) and `mien person list` (the indexer, on a store) show one
table and one JSON shape.
"""

from __future__ import annotations

import json
import sys


def print_table(headers: list[str], rows: list[list], out=None) -> None:
    """An aligned text table; numbers right-aligned."""
    out = out or sys.stdout
    cells = [[str(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    numeric = [all(_is_num(r[i]) for r in cells) and bool(cells) for i in range(len(headers))]

    def fmt(row):
        return "  ".join(c.rjust(w) if n else c.ljust(w) for c, w, n in zip(row, widths, numeric)).rstrip()

    print(fmt(headers), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for r in cells:
        print(fmt(r), file=out)


def _is_num(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def print_persons(rows, as_json: bool) -> None:
    """The one persons listing of `mien persons` and `mien person list`: rows of
    (person_id, name, face_count); JSON [{"person_id", "name" (null when anonymous),
    "face_count"}], the ListPersons field names."""
    if as_json:
        print(json.dumps([{"person_id": int(i), "name": n or None, "face_count": int(c)} for i, n, c in rows],
                         indent=2))
        return
    print_table(["id", "name", "faces"], [[i, n or "(anonymous)", c] for i, n, c in rows])
