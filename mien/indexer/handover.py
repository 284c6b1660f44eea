"""Results of pool workers handed to the parent as files, not through the pool's pipe.

A range's result is tens of MB. ProcessPoolExecutor writes it into one pipe that
all workers share, and its manager thread, once it has seen the first bytes, waits
in `recv()` for the rest. A worker SIGKILLed (OOM, a hostile file) partway through
that write leaves a message that never ends: the manager never notices the death,
the other worker waits on the pipe's lock, and `mien index` freezes without an
error. Written to a file instead, a death mid-write leaves only a partial file;
the pipe carries the file's name, a message small enough to be written at once,
and the pool breaks as it does for any other death.

The files live in a directory of the parent's own: RAM-backed /dev/shm, like the
pipe, where it has room (a 15 s range of 720p with two faces is 24 MB, and a run
keeps a few in flight; a container's /dev/shm is often 64 MB), else the temp
directory. A result that cannot be written (the disk is full) goes through the pipe
as before. A parent killed with -9 leaves its directory behind; the next parent to
start removes the directories of processes that are gone.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from concurrent.futures import Future

_PREFIX = "mien-results-"
SHM_ROOM = 1 << 30   # free bytes /dev/shm needs to be used


def run_to_file(directory: str, fn, *args) -> tuple[str | None, object]:
    """In the worker: fn(*args), its result pickled into a new file in `directory`:
    (its name, None); or (None, the result) when the file cannot be written."""
    result = fn(*args)
    fd, part = tempfile.mkstemp(dir=directory, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(result, f, protocol=pickle.HIGHEST_PROTOCOL)
    except OSError:  # no space left: the pipe still works
        os.unlink(part)
        return None, result
    done = part[: -len(".part")] + ".pkl"
    os.rename(part, done)  # a name the parent sees is a whole result
    return done, None


def _take(path: str):
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    finally:
        os.unlink(path)


class HandedOver(Future):
    """The result of `inner` (a pool future holding a file name): the object in that file.
    Cancelling it cancels the pool's job too, or drops its file when it was running."""

    def __init__(self, inner: Future):
        super().__init__()
        self._inner = inner
        inner.add_done_callback(self._inner_done)

    def cancel(self) -> bool:
        self._inner.cancel()
        return super().cancel()

    def _inner_done(self, inner: Future) -> None:
        if inner.cancelled():
            super().cancel()
            return
        exc = inner.exception()
        path, inline = (None, None) if exc is not None else inner.result()
        if not self.set_running_or_notify_cancel():  # cancelled while the job ran
            if path is not None:
                os.unlink(path)
            return
        if exc is not None:
            self.set_exception(exc)
            return
        try:
            self.set_result(inline if path is None else _take(path))
        except BaseException as err:  # noqa: BLE001 - delivered through the future
            self.set_exception(err)


class ResultDirectory:
    """This process's directory of handed-over results."""

    def __init__(self):
        base = _base()
        # where a killed parent may have left one, whichever had room then
        for place in {base, "/dev/shm", tempfile.gettempdir()}:
            if os.path.isdir(place):
                _remove_orphans(place)
        self.path = tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=base)

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _base() -> str:
    """/dev/shm when it is writable and has room, else the temp directory."""
    try:
        shm = os.statvfs("/dev/shm")
        if os.access("/dev/shm", os.W_OK) and shm.f_bavail * shm.f_frsize >= SHM_ROOM:
            return "/dev/shm"
    except OSError:
        pass
    return tempfile.gettempdir()


def _remove_orphans(base: str) -> None:
    """Directories left by parents that were killed: their process no longer exists."""
    try:
        names = os.listdir(base)
    except OSError:
        return  # not ours to read
    for name in names:
        if not name.startswith(_PREFIX):
            continue
        try:
            pid = int(name[len(_PREFIX):].split("-", 1)[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)
        except (ValueError, PermissionError):
            pass  # not ours to judge: another user's process, or not a name we made
