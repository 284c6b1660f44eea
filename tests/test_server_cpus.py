"""`mien serve --cpus`: parsing CPU lists and refusing CPUs the process can't use."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mien.errors import BadInputError
from mien.server.cpus import parse_cpus, pin_to_cpus


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
