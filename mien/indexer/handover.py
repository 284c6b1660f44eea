"""Results of pool workers handed to the parent as files, not through the pool's pipe.

A range's result is tens of MB. ProcessPoolExecutor writes it into one pipe that
all workers share, and its manager thread, once it has seen the first bytes, waits
in `recv()` for the rest. A worker SIGKILLed (OOM, a hostile file) partway through
that write leaves a message that never ends: the manager never notices the death,
the other worker waits on the pipe's lock, and `mien index` freezes without an
error. Written to a file instead, a death mid-write leaves only a partial file;
the pipe carries the file's name, a message small enough to be written at once,
and the pool breaks as it does for any other death.

The files live in a directory of the parent's own (RAM-backed /dev/shm where there
is one, like the pipe); a parent killed with -9 leaves its directory behind, and
the next parent to start removes the directories of processes that are gone.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from concurrent.futures import Future

_PREFIX = "mien-results-"


def run_to_file(directory: str, fn, *args) -> str:
    """In the worker: fn(*args), its result pickled into a new file in `directory`; its name."""
    result = fn(*args)
    fd, part = tempfile.mkstemp(dir=directory, suffix=".part")
    with os.fdopen(fd, "wb") as f:
        pickle.dump(result, f, protocol=pickle.HIGHEST_PROTOCOL)
    done = part[: -len(".part")] + ".pkl"
    os.rename(part, done)  # a name the parent sees is a whole result
    return done


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
        if not self.set_running_or_notify_cancel():  # cancelled while the job ran
            if exc is None:
                os.unlink(inner.result())
            return
        if exc is not None:
            self.set_exception(exc)
            return
        try:
            self.set_result(_take(inner.result()))
        except BaseException as err:  # noqa: BLE001 - delivered through the future
            self.set_exception(err)


class ResultDirectory:
    """This process's directory of handed-over results."""

    def __init__(self):
        base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()
        _remove_orphans(base)
        self.path = tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=base)

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _remove_orphans(base: str) -> None:
    """Directories left by parents that were killed: their process no longer exists."""
    for name in os.listdir(base):
        if not name.startswith(_PREFIX):
            continue
        try:
            pid = int(name[len(_PREFIX):].split("-", 1)[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)
        except (ValueError, PermissionError):
            pass  # not ours to judge: another user's process, or not a name we made
