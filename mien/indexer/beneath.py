"""Open a file beneath an allowed root by descriptor, so no link can lead the open out of it.

A server confined to --allow-root folders checks a file's real path when it
finds it, but reads it later. Checking a name and then opening the same name
is a race: a folder under the root swapped for a link to an outside folder in
between (rename, or renameat2(RENAME_EXCHANGE) to do it atomically) makes the
open read the outside file. So every file the server reads for a client is
opened here, relative to a descriptor of the allowed root it lies under, and
the reader then works from that descriptor, never from the name again:

- `openat2(root_fd, rel, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` where the
  kernel has it (Linux 5.6+): the kernel refuses any resolution that leaves
  the root or passes through a link;
- elsewhere a walk: each component opened with `openat(dir_fd, name,
  O_NOFOLLOW)` from the previous one's descriptor, a link refused.

No link is followed at all, not even one that stays inside the root: the
paths opened here are real paths (the crawl resolved every link), so a link
in one now means the tree changed since it was checked.

What it trusts: the root's own path, which the operator gave (an attacker who
can replace the root itself or one of its parents is beyond any path check).
Hard links and mounts inside a root are the operator's business too.

Readers that need a name (OpenCV's VideoCapture, cv2.haveImageReader) get
`fd_path(fd)`, the /proc/self/fd entry of the open file: it names the open
file itself, whatever happens to the path.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import stat

# linux/openat2.h
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_NO_SYMLINKS = 0x04
_RESOLVE_BENEATH = 0x08
_SYS_OPENAT2 = 437   # the same number on every Linux architecture (added after the syscall tables merged)
_AGAIN_TRIES = 64    # openat2 answers EAGAIN when a rename raced the lookup: try again
_REALPATH_TRIES = 5

FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0)
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY
O_PATH = getattr(os, "O_PATH", 0)   # a descriptor to stat and walk from, never blocks (FIFOs)


class OutsideRootsError(PermissionError):
    """The path leads out of the allowed roots (a link in it, or it lies outside them)."""


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_openat2_state: list = []   # [] = not probed yet; [None] = unavailable; [libc's syscall]


def _syscall():
    """libc's syscall() where openat2 may exist (Linux), else None."""
    if not _openat2_state:
        fn = None
        if os.uname().sysname == "Linux":
            try:
                fn = ctypes.CDLL(None, use_errno=True).syscall
                fn.restype = ctypes.c_long
            except (OSError, AttributeError):
                fn = None
        _openat2_state.append(fn)
    return _openat2_state[0]


def use_openat2(enabled: bool) -> None:
    """Tests: force the O_NOFOLLOW walk (False), or use openat2 where the kernel has it (True)."""
    _openat2_state.clear()
    if not enabled:
        _openat2_state.append(None)


def _link_error(rel: str) -> OutsideRootsError:
    return OutsideRootsError(errno.ELOOP, "a link in the path (it changed since it was found)", rel)


def _openat2(root_fd: int, rel: str, flags: int) -> int | None:
    """The descriptor, or None where there is no openat2 (old kernel, a seccomp filter)."""
    syscall = _syscall()
    if syscall is None:
        return None
    how = _OpenHow(flags | os.O_CLOEXEC, 0, _RESOLVE_BENEATH | _RESOLVE_NO_SYMLINKS | _RESOLVE_NO_MAGICLINKS)
    name = os.fsencode(rel)
    for _ in range(_AGAIN_TRIES):
        fd = syscall(ctypes.c_long(_SYS_OPENAT2), ctypes.c_int(root_fd), ctypes.c_char_p(name),
                     ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
        if fd >= 0:
            return int(fd)
        err = ctypes.get_errno()
        if err == errno.EAGAIN:
            continue
        if err == errno.ENOSYS:
            use_openat2(False)   # this kernel has none: walk from now on
            return None
        if err == errno.EPERM:
            return None          # a seccomp filter refusing unknown calls (or a real EPERM: the walk says)
        if err in (errno.ELOOP, errno.EXDEV):
            raise _link_error(rel)
        raise OSError(err, os.strerror(err), rel)
    raise OSError(errno.EAGAIN, "the folder kept being renamed while it was opened", rel)


def _walk(root_fd: int, rel: str, flags: int) -> int:
    """openat(O_NOFOLLOW) one component at a time, each from the previous one's descriptor."""
    parts = rel.split("/")
    fd = os.dup(root_fd)
    try:
        for name in parts[:-1]:
            step = os.open(name, O_PATH | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = step
            mode = os.fstat(fd).st_mode
            if stat.S_ISLNK(mode):
                raise _link_error(rel)
            if not stat.S_ISDIR(mode):
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), rel)
        try:
            last = os.open(parts[-1], flags | os.O_NOFOLLOW, dir_fd=fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:   # O_NOFOLLOW met a link
                raise _link_error(rel) from None
            raise
        if stat.S_ISLNK(os.fstat(last).st_mode):   # O_PATH | O_NOFOLLOW opens the link itself
            os.close(last)
            raise _link_error(rel)
        return last
    finally:
        os.close(fd)


def real_path(path) -> str:
    """os.path.realpath, tried again when a link changes while it is resolved (readlink then
    fails on what is no link any more); the OSError of the last try."""
    for _ in range(_REALPATH_TRIES - 1):
        try:
            return os.path.realpath(path)
        except OSError:
            pass
    return os.path.realpath(path)


def root_of(path: str, roots) -> str | None:
    """The allowed root `path` (a real, absolute path) lies under, the deepest one; None if none."""
    best = None
    for root in roots:
        root = os.fspath(root).rstrip(os.sep) or os.sep
        if path == root or path.startswith(root if root == os.sep else root + os.sep):
            if best is None or len(root) > len(best):
                best = root
    return best


def open_beneath(root: str, rel: str, flags: int = FILE_FLAGS) -> int:
    """A descriptor of `rel` (no '.', '..' or empty components) resolved beneath the folder
    `root` without following any link; OutsideRootsError when a link is in the way."""
    parts = rel.split("/") if rel else []
    if any(p in ("", ".", "..") for p in parts):
        raise OutsideRootsError(errno.EXDEV, "not a plain path below the root", rel)
    root_fd = os.open(root, (O_PATH or os.O_RDONLY) | os.O_DIRECTORY)
    try:
        if not parts:
            return os.open(".", flags & ~os.O_NOFOLLOW, dir_fd=root_fd)
        fd = _openat2(root_fd, rel, flags)
        if fd is None:
            fd = _walk(root_fd, rel, flags)
        elif flags & O_PATH and stat.S_ISLNK(os.fstat(fd).st_mode):   # O_PATH|O_NOFOLLOW: the link itself
            os.close(fd)
            raise _link_error(rel)
        return fd
    finally:
        os.close(root_fd)


def open_under(path: str, roots, flags: int = FILE_FLAGS) -> int:
    """A descriptor of the real path `path`, opened beneath the allowed root it lies under.

    roots None: no confinement (the operator's own `mien index`): opened by name.
    """
    path = os.fspath(path)
    if roots is None:
        return os.open(path, flags & ~os.O_NOFOLLOW)
    root = root_of(path, roots)
    if root is None:
        raise OutsideRootsError(errno.EXDEV, "outside the allowed roots", path)
    return open_beneath(root, path[len(root):].lstrip(os.sep), flags)


def open_file(path: str, roots) -> int:
    """A read-only descriptor of the regular file at `path` (see open_under); the caller closes it."""
    fd = open_under(path, roots, FILE_FLAGS)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise IsADirectoryError(errno.EISDIR, "not a regular file", path)
        os.set_blocking(fd, True)
        return fd
    except BaseException:
        os.close(fd)
        raise


def read_file(path: str, roots) -> bytes:
    """The bytes of the regular file at `path`, read from its descriptor (see open_under)."""
    with os.fdopen(open_file(path, roots), "rb") as fh:
        return fh.read()


@contextlib.contextmanager
def found_file_errors(doing: str):
    """OSErrors of opening or reading a file the crawl found, as what the run reports: gone since
    (removed or renamed) -> VanishedError, any other -> BadInputError "cannot DOING: why";
    OutsideRootsError passes as it is."""
    from mien.errors import BadInputError, VanishedError

    try:
        yield
    except OutsideRootsError:
        raise
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        raise VanishedError("the file is gone (removed or renamed since it was found)") from None
    except OSError as exc:
        raise BadInputError(f"cannot {doing}: {exc.strerror or exc}") from None


def fd_path(fd: int) -> str:
    """A name for the open file itself, for readers that take a name (FFmpeg, OpenCV)."""
    return f"/proc/self/fd/{fd}" if os.path.isdir("/proc/self/fd") else f"/dev/fd/{fd}"
