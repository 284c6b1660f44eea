"""The commands `mien demo` prints work in a fresh shell (no activated environment).

`mien` lives in .venv/bin, which a fresh shell does not have on its PATH: the
demo prints the console script's path ('.venv/bin/mien' from the project
folder) or `python -m mien`. Each form is run here by a clean `bash` (PATH
/usr/bin:/bin only) from the folder the demo runs in.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mien.demo.commands import mien_command

ROOT = Path(__file__).resolve().parents[1]


def _fresh_shell(command: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root")}
    if os.environ.get("PYTHONPATH"):  # tests run the worktree's code, as the console script would its install
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_printed_mien_command_runs_in_a_fresh_shell(monkeypatch):
    monkeypatch.chdir(ROOT)
    command = mien_command()
    assert command != "mien", "a bare `mien` is not on a fresh shell's PATH"
    done = _fresh_shell(f"{command} serve --help", ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--http PORT" in done.stdout and "--allow-root" in done.stdout
    # the bare name, as the demo used to print it, is not found there
    assert _fresh_shell("mien --help", ROOT).returncode == 127


def test_without_a_console_script_it_is_python_dash_m(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python3"))
    os.symlink(shutil.which("python3") or "/usr/bin/python3", tmp_path / "python3")
    assert mien_command() == f"{tmp_path / 'python3'} -m mien"
