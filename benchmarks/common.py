"""Small helpers shared by the benchmarks: timing, percentiles, tables, JSON, RSS, a `mien serve` to measure."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np


@contextmanager
def timer():
    """`with timer() as t: ...` then t() is the elapsed seconds."""
    start = time.perf_counter()
    end = []
    yield lambda: (end[0] if end else time.perf_counter()) - start
    end.append(time.perf_counter())


def time_each(fn, items) -> np.ndarray:
    """Seconds taken by fn(item) for each item."""
    out = np.empty(len(items))
    for i, item in enumerate(items):
        t = time.perf_counter()
        fn(item)
        out[i] = time.perf_counter() - t
    return out


def percentiles_ms(seconds, qs=(50, 99)) -> dict:
    s = np.asarray(seconds) * 1000.0
    return {f"p{q}_ms": float(np.percentile(s, q)) for q in qs}


def compile_tree(src) -> None:
    """Byte-compile the mien package of the tree at `src`, as pip does when it installs one.

    A fresh worktree (a --baseline-src side) has no __pycache__, and with PYTHONDONTWRITEBYTECODE
    set (the reference VM sets it) Python never writes one: each fresh process of that side then
    compiled ~70 modules (0.1 s on the driver and as much in the fork server) that the other side
    read compiled, and timings made from a process's start favoured the compiled side."""
    import compileall

    compileall.compile_dir(str(Path(src) / "mien"), quiet=1)


def peak_rss_mb() -> float:
    """Peak resident set size of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def rss_mb() -> float:
    """Current resident set size, from /proc (Linux)."""
    with open(f"/proc/{os.getpid()}/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def print_table(rows: list[dict], columns: list[str], floatfmt: str = "{:.3f}") -> None:
    def fmt(v):
        if isinstance(v, float):
            return floatfmt.format(v)
        return str(v)

    cells = [[fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c)
              for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths)))


def write_json(path: str | None, obj) -> None:
    if not path:
        return
    tmp = f"{path}.tmp"
    with open(tmp, "w") as fh:
        json.dump(obj, fh, indent=2, default=float)
        fh.write("\n")
    os.replace(tmp, path)
    print(f"wrote {path}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mien_serve(flags: list[str], grpc_port: int, log_path: Path, src: Path,
                     ready=lambda: True) -> subprocess.Popen:
    """`python -m mien serve FLAGS` of the mien tree at src, returned once health says SERVING on
    grpc_port and ready() is true (both polled for up to 300 s)."""
    from mien.clients.client import Client

    cmd = [sys.executable, "-m", "mien", "serve", *flags]
    # the per-call log goes to a file: an undrained pipe would stall the server
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, cwd=src, env=dict(os.environ, PYTHONPATH=str(src)), stdout=log,
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    with Client(f"127.0.0.1:{grpc_port}", timeout=2) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {Path(log_path).read_text()[-2000:]}")
            try:
                if client.health() == "SERVING" and ready():
                    return proc
            except Exception:  # noqa: BLE001 - not up yet
                pass
            time.sleep(0.2)
    stop_process(proc)
    raise RuntimeError("server did not come up")


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 30 s."""
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
