"""Walk the given paths into a deterministic list of files to consider.

Never raises for a bad path: every problem becomes a `Found` with a reason, so
one unreadable folder, broken symlink or loop cannot stop a run. Directories
are followed through symlinks; a directory reached twice (a symlink loop or
two links to one folder) is walked once. Files are keyed by their real path,
so a file reachable by two names is indexed once.

With `allowed_roots` (the server's --allow-root folders) every file and folder
is resolved to its real path, and one that lies outside every root (a symlink
leading out) is skipped as "outside allowed roots": a root confines what a
client can make the server read, whatever links lie inside it. The real path
is then opened beneath its root (beneath.py) and stat'ed and listed from that
descriptor, so a folder swapped for a link after the check is refused, not
listed; later reads open the file the same way.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass

from mien.indexer import beneath


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
VANISHED = "vanished"   # found by the crawl, gone when its turn came (removed or renamed meanwhile)


def under_roots(real: str, roots) -> bool:
    """Whether the real (resolved) path `real` is one of `roots` or lies below one."""
    return beneath.root_of(real, roots) is not None


def crawl(paths: list[str], allowed_roots=None) -> list[Found]:
    """Files under `paths`; with allowed_roots (real paths), nothing outside them is opened."""
    roots = None if allowed_roots is None else [os.path.realpath(os.fspath(r)) for r in allowed_roots]
    found: dict[str, Found] = {}
    problems: list[Found] = []
    seen_dirs: set[tuple[int, int]] = set()

    def visit_file(path: str, st: os.stat_result, real: str | None) -> None:
        real = real or os.path.realpath(path)
        if real in found:
            return
        if not stat.S_ISREG(st.st_mode):
            # FIFOs, sockets, devices: opening a FIFO would block the run.
            found[real] = Found(real, skip="not a regular file")
            return
        found[real] = Found(real, size=st.st_size, mtime_ns=st.st_mtime_ns)

    def visit(path: str) -> None:
        fd = None   # with roots: the real path opened beneath its root; stat and list through it
        try:
            if roots is None:
                real, st = None, os.stat(path)  # follows symlinks
            else:
                real = beneath.real_path(path)
                if not under_roots(real, roots):
                    # reported under the name inside the root: the target stays unnamed
                    problems.append(Found(os.path.abspath(path), skip=OUTSIDE_ROOTS))
                    return
                fd = beneath.open_under(real, roots, beneath.O_PATH | os.O_NOFOLLOW)
                st = os.fstat(fd)
        except beneath.OutsideRootsError:  # a link appeared in the real path since it was resolved
            problems.append(Found(os.path.abspath(path), skip=OUTSIDE_ROOTS))
            return
        except OSError as exc:
            if os.path.islink(path) and exc.errno in (errno.ENOENT, errno.ENOTDIR):
                problems.append(Found(os.path.abspath(path), fail="broken symlink"))
            else:
                problems.append(Found(os.path.abspath(path), fail=_reason(exc)))
            return
        try:
            if not stat.S_ISDIR(st.st_mode):
                visit_file(path, st, real)
                return
            key = (st.st_dev, st.st_ino)
            if key in seen_dirs:
                problems.append(Found(os.path.abspath(path), skip="symlink loop or repeated folder"))
                return
            seen_dirs.add(key)
            try:
                names = _names(path if fd is None else fd)
            except OSError as exc:
                problems.append(Found(os.path.abspath(path), fail=f"unreadable folder: {_reason(exc)}"))
                return
        finally:
            if fd is not None:
                os.close(fd)
        for name in names:
            visit(os.path.join(path if real is None else real, name))

    for path in paths:
        visit(os.fspath(path))
    return [found[k] for k in sorted(found)] + problems


def _names(folder) -> list[str]:
    """The sorted entries of a folder given by path or by a descriptor (an O_PATH one included)."""
    if isinstance(folder, int):
        fd = os.open(".", beneath.DIR_FLAGS, dir_fd=folder)
        try:
            with os.scandir(fd) as it:
                return sorted(entry.name for entry in it)
        finally:
            os.close(fd)
    with os.scandir(folder) as it:
        return sorted(entry.name for entry in it)


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0
