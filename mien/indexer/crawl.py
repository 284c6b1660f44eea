"""Walk the given paths into a deterministic list of files to consider.

Never raises for a bad path: every problem becomes a `Found` with a reason, so
one unreadable folder, broken symlink or loop cannot stop a run. Directories
are followed through symlinks; a directory reached twice (a symlink loop or
two links to one folder) is walked once. Files are keyed by their real path,
so a file reachable by two names is indexed once.

With `allowed_roots` (the server's --allow-root folders) every file and folder
is resolved to its real path before it is opened or listed, and one that lies
outside every root (a symlink leading out) is skipped as "outside allowed
roots": a root confines what a client can make the server read, whatever
links lie inside it.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass


@dataclass
class Found:
    path: str               # real, absolute path: the source uri
    size: int = 0
    mtime_ns: int = 0
    skip: str = ""          # reason it is not a candidate, not an error
    fail: str = ""          # reason it is an error (counts for --strict)

    @property
    def candidate(self) -> bool:
        return not self.skip and not self.fail


def _reason(exc: OSError) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.ENOENT:
        return "vanished during crawl"
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    return f"os error: {exc.strerror or exc}"


OUTSIDE_ROOTS = "outside allowed roots"


def under_roots(real: str, roots) -> bool:
    """Whether the real (resolved) path `real` is one of `roots` or lies below one."""
    for root in roots:
        root = root.rstrip(os.sep) or os.sep
        if real == root or real.startswith(root if root == os.sep else root + os.sep):
            return True
    return False


def crawl(paths: list[str], allowed_roots=None) -> list[Found]:
    """Files under `paths`; with allowed_roots (real paths), nothing outside them is opened."""
    roots = None if allowed_roots is None else [os.path.realpath(os.fspath(r)) for r in allowed_roots]
    found: dict[str, Found] = {}
    problems: list[Found] = []
    seen_dirs: set[tuple[int, int]] = set()

    def visit_file(path: str, st: os.stat_result) -> None:
        real = os.path.realpath(path)
        if real in found:
            return
        if not stat.S_ISREG(st.st_mode):
            # FIFOs, sockets, devices: opening a FIFO would block the run.
            found[real] = Found(real, skip="not a regular file")
            return
        found[real] = Found(real, size=st.st_size, mtime_ns=st.st_mtime_ns)

    def visit(path: str) -> None:
        if roots is not None and not under_roots(os.path.realpath(path), roots):
            # reported under the name inside the root: the target stays unnamed
            problems.append(Found(os.path.abspath(path), skip=OUTSIDE_ROOTS))
            return
        try:
            st = os.stat(path)  # follows symlinks
        except OSError as exc:
            if os.path.islink(path) and exc.errno in (errno.ENOENT, errno.ENOTDIR):
                problems.append(Found(os.path.abspath(path), fail="broken symlink"))
            else:
                problems.append(Found(os.path.abspath(path), fail=_reason(exc)))
            return
        if not stat.S_ISDIR(st.st_mode):
            visit_file(path, st)
            return
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:
            problems.append(Found(os.path.abspath(path), skip="symlink loop or repeated folder"))
            return
        seen_dirs.add(key)
        try:
            with os.scandir(path) as it:
                names = sorted(entry.name for entry in it)
        except OSError as exc:
            problems.append(Found(os.path.abspath(path), fail=f"unreadable folder: {_reason(exc)}"))
            return
        for name in names:
            visit(os.path.join(path, name))

    for path in paths:
        visit(os.fspath(path))
    return [found[k] for k in sorted(found)] + problems


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0
