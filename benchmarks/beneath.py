"""What containment by descriptor costs: opening files beneath an allowed root vs by name.

    .venv/bin/python benchmarks/beneath.py [--files 2000] [--repeat 7] [--out beneath.json]

A tree of --files small files (40 folders) in a temporary folder. Measured, as
the median of --repeat runs, each against its baseline in the same run:
- the crawl of the tree without roots (stat and list by name, the CLI) and
  with the tree as allowed root (each folder and file opened beneath the root,
  stat'ed and listed by descriptor: mien/indexer/beneath.py);
- reading every file by name, and beneath the root with openat2 and with the
  O_NOFOLLOW walk (the fallback where the kernel has no openat2).
The cost is per file, microseconds; an image's analysis costs milliseconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import print_table, write_json  # noqa: E402

from mien.indexer import beneath  # noqa: E402
from mien.indexer.crawl import crawl  # noqa: E402


def median_s(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.realpath(tmp)
        for i in range(args.files):
            folder = os.path.join(root, f"d{i % 40}", "sub")
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, f"f{i}.jpg"), "wb") as fh:
                fh.write(b"\xff\xd8\xff" + b"x" * 2000)
        files = [f.path for f in crawl([root])]

        def read_by_name():
            for path in files:
                with open(path, "rb") as fh:
                    fh.read()

        def read_beneath():
            for path in files:
                beneath.read_file(path, [root])

        crawl_name = median_s(lambda: crawl([root]), args.repeat)
        crawl_beneath = median_s(lambda: crawl([root], [root]), args.repeat)
        read_name = median_s(read_by_name, args.repeat)
        read_openat2 = median_s(read_beneath, args.repeat)
        beneath.use_openat2(False)
        read_walk = median_s(read_beneath, args.repeat)
        beneath.use_openat2(True)
    n = len(files)
    rows = [
        {"what": "crawl, by name (baseline)", "us/file": crawl_name / n * 1e6, "ratio": 1.0},
        {"what": "crawl, beneath the root", "us/file": crawl_beneath / n * 1e6, "ratio": crawl_beneath / crawl_name},
        {"what": "read, by name (baseline)", "us/file": read_name / n * 1e6, "ratio": 1.0},
        {"what": "read, openat2 beneath", "us/file": read_openat2 / n * 1e6, "ratio": read_openat2 / read_name},
        {"what": "read, O_NOFOLLOW walk", "us/file": read_walk / n * 1e6, "ratio": read_walk / read_name},
    ]
    print(f"{n} files, median of {args.repeat} runs")
    print_table(rows, ["what", "us/file", "ratio"], floatfmt="{:.2f}")
    write_json(args.out, {"files": n, "repeat": args.repeat, "rows": rows})


if __name__ == "__main__":
    main()
