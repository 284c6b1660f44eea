"""Per-RPC log lines written by a background thread, in batches.

Every RPC logs one line. Writing it on the RPC thread costs tens of
microseconds (format, write, flush); handing it to a thread that blocks on a
queue costs as much again, because each record wakes that thread, which then
competes with the RPC thread for the GIL. Here an RPC only appends the record
to a deque; the writer wakes every `interval` seconds and writes what has
gathered. Lines appear at most `interval` late; stop() writes the rest.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time


class BatchedLogHandler(logging.Handler):
    """Collect records; a writer thread hands them to `handlers` every `interval` s."""

    def __init__(self, handlers, interval: float = 0.1):
        super().__init__()
        self.handlers = list(handlers)
        self.interval = interval
        self._records: collections.deque = collections.deque()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mien-log-writer", daemon=True)

    def handle(self, record: logging.LogRecord) -> bool:
        # no handler lock: deque.append is atomic
        if not self.filter(record):
            return False
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        # merge the arguments now: what they refer to may change before the write
        record.msg, record.args = record.getMessage(), None
        self._records.append(record)

    def only_route(self, logger: logging.Logger) -> bool:
        """Whether this handler alone, unfiltered, would see `logger`'s records: no handler or
        filter between the logger and the root, and the root's only handler is this one."""
        root = logging.root
        if self.filters or root.filters or len(root.handlers) != 1 or root.handlers[0] is not self:
            return False
        while logger is not root:
            if logger.handlers or logger.filters or not logger.propagate:
                return False
            logger = logger.parent
        return True

    def defer(self, logger: logging.Logger, level: int, msg: str) -> None:
        """Queue a finished line; the writer thread makes its LogRecord (stamped now)."""
        self._records.append((logger, level, msg, time.time()))

    def start(self) -> None:
        self._thread.start()

    def flush(self) -> None:
        records = self._records
        while records:
            record = records.popleft()
            if type(record) is tuple:  # a deferred line (log_line)
                record = _record(*record)
            for handler in self.handlers:
                if record.levelno >= handler.level:
                    handler.handle(record)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()


def _record(logger: logging.Logger, level: int, msg: str, created: float) -> logging.LogRecord:
    """The LogRecord logger.log(level, msg) would have made at `created` (no caller lookup, as
    batched_root_logging switches it off)."""
    record = logger.makeRecord(logger.name, level, "(unknown file)", 0, msg, None, None, "(unknown function)")
    record.created = created
    record.msecs = int((created - int(created)) * 1000) + 0.0
    record.relativeCreated = (created - logging._startTime) * 1000
    return record


_active: BatchedLogHandler | None = None  # the root's, while batched_root_logging is on


def log_line(logger: logging.Logger, level: int, msg: str) -> None:
    """logger.log(level, msg) for a line with nothing left to format. Where the batched root
    handler is its only way out (a server: batched_root_logging), the RPC thread only queues
    (logger, level, msg, time) and the writer thread makes the LogRecord: the logging
    machinery's tens of microseconds per RPC, doubled when a call's caches are cold, leave the
    call. Elsewhere (another handler, a filter: tests' caplog) the plain logger.log."""
    batched = _active
    if batched is not None and logger.isEnabledFor(level) and batched.only_route(logger):
        batched.defer(logger, level, msg)
    else:
        logger.log(level, msg)


@contextlib.contextmanager
def batched_root_logging(interval: float = 0.1):
    """Route the root logger's handlers through a BatchedLogHandler while inside.

    Also stops records from looking up their caller's file and line, thread and
    process (the logging docs' "Optimization" switches): the server's format
    shows none of them, and the caller lookup walks the stack on every RPC.
    """
    switches = ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing")
    saved = {name: getattr(logging, name) for name in switches}
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    root = logging.getLogger()
    handlers = list(root.handlers)
    batched = BatchedLogHandler(handlers, interval)
    for handler in handlers:
        root.removeHandler(handler)
    root.addHandler(batched)
    batched.start()
    global _active
    previous, _active = _active, batched
    try:
        yield batched
    finally:
        _active = previous
        batched.stop()  # writes what is still gathered
        root.removeHandler(batched)
        for handler in handlers:
            root.addHandler(handler)
        for name, value in saved.items():
            setattr(logging, name, value)
