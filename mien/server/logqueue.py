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

    def start(self) -> None:
        self._thread.start()

    def flush(self) -> None:
        records = self._records
        while records:
            record = records.popleft()
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
    try:
        yield batched
    finally:
        batched.stop()  # writes what is still gathered
        root.removeHandler(batched)
        for handler in handlers:
            root.addHandler(handler)
        for name, value in saved.items():
            setattr(logging, name, value)
