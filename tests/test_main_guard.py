"""A script that calls index_paths from its top level, without the `__main__` guard.

Worker processes import the main script again (multiprocessing's fork server, as spawn), so
such a script would run its whole top level again in every worker: the run itself, and whatever
else it does there. index_paths then analyses in the calling process and says why; a guarded
script keeps its workers. Real scripts in real Python processes, real photos and stores.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from indexer_support import env_for_subprocess, small_photo

SCRIPT = """
import sys
from pathlib import Path
with open(sys.argv[3], "a") as marks:   # the script's top level ran once more
    marks.write("ran\\n")
from mien.indexer import IndexOptions, index_paths
{call}
"""
CALL = ("summary = index_paths([sys.argv[1]], sys.argv[2], options=IndexOptions(workers=2, show_progress=False))\n"
        "print('faces', summary.faces_passed)")


def _run(tmp_path, name: str, call: str):
    folder = tmp_path / "photos"
    if not folder.exists():
        for person in ("obama", "biden"):
            small_photo(person, folder / f"{person}.jpg")
    script, marks, store = tmp_path / f"{name}.py", tmp_path / f"{name}.marks", tmp_path / f"{name}-store"
    script.write_text(SCRIPT.format(call=call))
    done = subprocess.run([sys.executable, str(script), str(folder), str(store), str(marks)], cwd=tmp_path,
                          env=env_for_subprocess(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done, marks.read_text().count("ran")


def test_an_unguarded_script_is_indexed_once_in_its_own_process(tmp_path):
    done, runs = _run(tmp_path, "unguarded", CALL)
    assert "faces 2" in done.stdout
    assert runs == 1                      # no worker imported the script (before: once per worker too)
    assert 'if __name__ == "__main__":' in done.stderr and "unguarded.py:7" in done.stderr


def test_a_guarded_script_keeps_its_workers(tmp_path):
    guarded = "if __name__ == \"__main__\":\n" + textwrap.indent(CALL, "    ")
    done, runs = _run(tmp_path, "guarded", guarded)
    assert "faces 2" in done.stdout
    assert "__main__" not in done.stderr
    assert runs == 3                      # the script and each of the 2 workers that imported it
