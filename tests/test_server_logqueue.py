"""The server's batched log writer: order, timing, levels and merged arguments."""

from __future__ import annotations

import io
import logging
import threading
import time

from mien.server.logqueue import BatchedLogHandler, batched_root_logging


def _stream_handler(level=logging.NOTSET):
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    return handler, out


def test_lines_from_many_threads_all_arrive_in_each_threads_order():
    handler, out = _stream_handler()
    batched = BatchedLogHandler([handler], interval=0.01)
    logger = logging.Logger("t-batched")
    logger.addHandler(batched)
    batched.start()

    def work(t):
        for i in range(500):
            logger.info("thread=%d line=%d", t, i)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    batched.stop()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2000
    for t in range(4):
        mine = [int(x.rsplit("=", 1)[1]) for x in lines if f"thread={t} " in x]
        assert mine == list(range(500))


def test_lines_appear_while_running_and_arguments_are_taken_at_the_call():
    handler, out = _stream_handler(level=logging.WARNING)
    batched = BatchedLogHandler([handler], interval=0.02)
    logger = logging.Logger("t-batched-2")
    logger.addHandler(batched)
    batched.start()
    try:
        state = {"phase": "before"}
        logger.warning("state %s", state)
        state["phase"] = "after"     # changed before the writer runs
        logger.info("below the handler's level")
        deadline = time.monotonic() + 5
        while "state" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert out.getvalue() == "WARNING state {'phase': 'before'}\n"
    finally:
        batched.stop()


def test_root_handlers_are_restored_after_the_block():
    root = logging.getLogger()
    handler, out = _stream_handler()
    root.addHandler(handler)
    try:
        with batched_root_logging(interval=10.0) as batched:
            assert handler not in root.handlers and batched in root.handlers
            logging.getLogger("t-root").warning("written at stop")
        assert "written at stop" in out.getvalue()   # flushed by stop(), not by the 10 s timer
        assert handler in root.handlers and batched not in root.handlers
    finally:
        root.removeHandler(handler)


def test_a_deferred_line_is_written_as_the_logger_would_write_it():
    """log_line (the per-RPC line): under batched_root_logging the writer thread makes the record,
    with the logger's name, the level and the time of the call; with another handler on the
    root (caplog, say) it is an ordinary logger.log call that handler sees."""
    from mien.server.logqueue import log_line

    root = logging.getLogger()
    handler, out = _stream_handler()
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s %(created).3f"))
    saved = root.handlers[:], root.level
    for h in saved[0]:
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        logger = logging.getLogger("t-deferred.rpc")
        with batched_root_logging(interval=10.0) as batched:
            before = time.time()
            log_line(logger, logging.INFO, "rpc=Stats status=OK ms=0.12 100%")
            log_line(logger, logging.DEBUG, "below the root's level")
            queued = list(batched._records)
            assert len(queued) == 1 and type(queued[0]) is tuple   # no LogRecord made on the call
            extra, seen = logging.Handler(), []
            extra.emit = seen.append
            root.addHandler(extra)   # now the batched handler is not the only way out
            try:
                log_line(logger, logging.INFO, "rpc=GetFace status=OK ms=0.05")
            finally:
                root.removeHandler(extra)
            assert [r.getMessage() for r in seen] == ["rpc=GetFace status=OK ms=0.05"]
        lines = out.getvalue().splitlines()
        assert [x.rsplit(" ", 1)[0] for x in lines] == [
            "t-deferred.rpc INFO rpc=Stats status=OK ms=0.12 100%", "t-deferred.rpc INFO rpc=GetFace status=OK ms=0.05"]
        assert abs(float(lines[0].rsplit(" ", 1)[1]) - before) < 1.0
    finally:
        root.removeHandler(handler)
        for h in saved[0]:
            root.addHandler(h)
        root.setLevel(saved[1])
