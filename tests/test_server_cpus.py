"""`mien serve --cpus` and `--keep-cpus-awake`: CPU lists, refused CPUs, the PM QoS request."""

from __future__ import annotations

import logging
import os
import struct
import subprocess
import sys

import pytest

from mien.errors import BadInputError
from mien.server.cpus import PM_QOS_DEVICE, parse_cpus, pin_to_cpus


def test_cpu_lists_parse():
    assert parse_cpus("1") == {1}
    assert parse_cpus("0,2") == {0, 2}
    assert parse_cpus("0-3, 6") == {0, 1, 2, 3, 6}
    for bad in ("", "x", "3-1", "-1", "1,,2", "1-"):
        with pytest.raises(BadInputError, match="bad CPU list"):
            parse_cpus(bad)


def test_unavailable_cpus_are_refused_and_nothing_changes():
    before = os.sched_getaffinity(0)
    beyond = max(before) + 1
    with pytest.raises(BadInputError, match=rf"\[{beyond}\] not available"):
        pin_to_cpus({beyond})
    assert os.sched_getaffinity(0) == before


def test_serve_with_a_bad_cpu_list_fails_before_opening_the_store(tmp_path):
    out = subprocess.run([sys.executable, "-m", "mien", "serve", "--store", str(tmp_path / "none"),
                          "--cpus", "0-x"], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "bad CPU list '0-x'" in out.stderr


def test_keep_awake_without_the_device_warns_and_carries_on(tmp_path, caplog):
    from mien.server.cpus import cpus_kept_awake

    with caplog.at_level(logging.WARNING), cpus_kept_awake(str(tmp_path / "no-such-device")) as held:
        assert held is False
    assert "idle CPUs will sleep as usual" in caplog.text


def test_keep_awake_writes_a_zero_latency_request_and_releases_it(tmp_path):
    from mien.server.cpus import cpus_kept_awake

    fake = tmp_path / "latency"
    fake.write_bytes(b"")
    with cpus_kept_awake(str(fake)) as held:
        assert held is True
        assert fake.read_bytes() == struct.pack("<i", 0)
        assert _open_fds_to(fake) == 1
    assert _open_fds_to(fake) == 0   # the request ends with the close


@pytest.mark.skipif(not os.access(PM_QOS_DEVICE, os.R_OK | os.W_OK),
                    reason=f"{PM_QOS_DEVICE} is not writable here (needs root)")
def test_keep_awake_sets_the_kernels_latency_target_while_held():
    from mien.server.cpus import cpus_kept_awake

    def current() -> int:
        with open(PM_QOS_DEVICE, "rb") as fh:
            return struct.unpack("<i", fh.read(4))[0]

    before = current()
    assert before > 0
    with cpus_kept_awake() as held:
        assert held and current() == 0
    assert current() == before


def _open_fds_to(path) -> int:
    target = os.path.realpath(path)
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.path.realpath(f"/proc/self/fd/{fd}") == target
        except OSError:
            pass
    return n


def test_a_server_keeps_opencv_to_one_thread(tmp_path):
    """OpenCV's pool would spin on the core the LiteRT threads of an image query need (app.py)."""
    code = ("import cv2, sys\n"
            "from mien.engine.store import Store\n"
            "from mien.server.app import build_server\n"
            "Store(sys.argv[1], mode='w', encoders={'expression': 'fer-au-478', 'expression_dim': 16}).close()\n"
            "before = cv2.getNumThreads()\n"
            "server, port = build_server(sys.argv[1], port=0, front='python')\n"
            "print(before, cv2.getNumThreads())\n"
            "server.stop(None)\n")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "store")], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    before, after = map(int, out.stdout.split()[-2:])
    assert after == 1, f"OpenCV ran {after} threads in the server ({before} before it started)"
