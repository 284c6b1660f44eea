"""Where and how the server's CPUs run: `mien serve --cpus 1 --keep-cpus-awake`.

On a machine shared with clients or other work, a server kept on its own
cores answers faster: each RPC hands work between gRPC's polling thread and
a worker thread, and on one core that hand-off needs no cross-core wake-up
(expensive in a VM); its caches also stay warm. benchmarks/grpc.py measures
both layouts, pinned and shared.

An idle CPU halts, and waking it costs a VM tens of microseconds and cold
caches; a query arrives at a halted CPU every time. --keep-cpus-awake asks
the kernel to poll instead (PM QoS: /dev/cpu_dma_latency held at 0, as
tuned's latency-performance profile does). That is machine-wide while the
server runs, and idle CPUs then spin: a dedicated server's choice.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import struct

from mien.errors import BadInputError

log = logging.getLogger(__name__)

PM_QOS_DEVICE = "/dev/cpu_dma_latency"


def parse_cpus(text: str) -> set[int]:
    """'1', '0,2' or '0-3,6' -> {CPU numbers}; BadInputError when malformed."""
    bad = f"bad CPU list {text!r}: use numbers and ranges, e.g. 1 or 0,2-3"
    cpus: set[int] = set()
    for part in text.replace(" ", "").split(","):
        try:
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                if lo > hi:
                    raise ValueError
                cpus.update(range(lo, hi + 1))
            else:
                cpus.add(int(part))
        except ValueError:
            raise BadInputError(bad) from None
    if not cpus or min(cpus) < 0:
        raise BadInputError(bad)
    return cpus


def pin_to_cpus(cpus: set[int]) -> None:
    """Run this process, and every thread and child it starts later, on `cpus` only."""
    cpus = set(cpus)
    before = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, cpus)  # this thread first: the kernel says what is allowed
        got = os.sched_getaffinity(0)
    except OSError:  # none of them allowed
        got = set()
    if got != cpus:  # Linux silently drops CPUs outside the cgroup's set
        os.sched_setaffinity(0, before)
        raise BadInputError(f"CPU(s) {sorted(cpus - got)} not available: this process may use "
                            f"{_ranges(before)} (of {os.cpu_count()} on the machine)")
    # The mask is per thread, and imports (OpenMP, BLAS, gRPC) may have started
    # threads already: set it on each of them; later ones inherit it.
    for task in _threads():
        try:
            os.sched_setaffinity(task, cpus)
        except ProcessLookupError:  # the thread ended meanwhile
            pass


def _threads() -> list[int]:
    try:
        return [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:  # no /proc: this thread only
        return [0]


def _ranges(cpus) -> str:
    """{0, 1, 2, 5} -> '0-2,5'."""
    out = []
    # consecutive CPUs share the difference between their value and their position
    for _, group in itertools.groupby(enumerate(sorted(cpus)), key=lambda p: p[1] - p[0]):
        run = [c for _, c in group]
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)


@contextlib.contextmanager
def cpus_kept_awake(device: str = PM_QOS_DEVICE):
    """Hold a 0 us CPU wake-up latency request while inside; yields whether it holds.

    Without permission to write the device (it is root's by default) this logs
    a warning and carries on: the server then runs as it would without it.
    """
    try:
        fd = os.open(device, os.O_WRONLY)
    except OSError as exc:
        log.warning("--keep-cpus-awake: cannot open %s (%s); idle CPUs will sleep as usual",
                    device, exc.strerror or exc)
        yield False
        return
    try:
        os.write(fd, struct.pack("<i", 0))
        log.info("idle CPUs kept awake (%s = 0 us) while the server runs", device)
        yield True
    finally:
        os.close(fd)  # the kernel drops the request with the last close
