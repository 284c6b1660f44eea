"""The CLI with ordinary mistakes: one line, non-zero exit, a hint; never a traceback.

Real `mien` processes (so exit codes, stderr and closed pipes are the user's), a
real server on 127.0.0.1 over the package photos.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from server_support import build_photo_store, free_port, start_server, stop_server

from mien.cli import DefaultsFormatter, build_parser, main

MIEN = [sys.executable, "-m", "mien.cli"]


def mien(*args, cwd=None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*MIEN, *map(str, args)], capture_output=True, text=True, timeout=300,
                          cwd=cwd, **kwargs)


def one_line_error(out: subprocess.CompletedProcess) -> str:
    assert out.returncode != 0, out
    assert "Traceback" not in out.stderr, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    return lines[0]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    ps = build_photo_store(tmp_path_factory.mktemp("cli_usage"))
    server, target = start_server(ps.store_dir, front="python")
    yield ps, target
    stop_server(server)


def test_no_server_gives_a_hint():
    port = free_port()
    line = one_line_error(mien("persons", "--server", f"127.0.0.1:{port}"))
    assert f"no server at 127.0.0.1:{port}" in line and "mien serve --store DIR" in line


def test_missing_files_are_named_in_one_line(tmp_path):
    line = one_line_error(mien("search", "--image", tmp_path / "nosuch.jpg", "--server", f"127.0.0.1:{free_port()}"))
    assert "nosuch.jpg" in line and "No such file" in line
    line = one_line_error(mien("persons", "--token-file", tmp_path / "token", "--server", "127.0.0.1:1"))
    assert "token" in line


def test_unreadable_query_image_is_named(served, tmp_path):
    _, target = served
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    line = one_line_error(mien("search", "--image", text, "--server", target))
    assert "INVALID_ARGUMENT" in line and "notes.jpg" in line


def test_k_zero_is_refused():
    out = mien("search", "--face-id", "1", "-k", "0")
    assert out.returncode == 2 and "at least 1" in out.stderr and "Traceback" not in out.stderr


def test_server_without_port_takes_the_default():
    from mien.clients.replica_targets import parse_target

    assert parse_target("127.0.0.1").uri == "127.0.0.1:50051"
    assert parse_target("localhost").uri == "localhost:50051"
    assert parse_target("::1").uri == "[::1]:50051"
    assert parse_target("127.0.0.1:7").uri == "127.0.0.1:7"


def test_index_of_a_missing_path_exits_2_and_creates_nothing(tmp_path):
    out = mien("index", tmp_path / "nonexistent", "--store", tmp_path / "s2")
    assert out.returncode == 2 and "nonexistent" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "s2").exists()


def test_closed_pipe_is_silent(served):
    _, target = served
    proc = subprocess.Popen([*MIEN, "persons", "--json", "--server", target], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader (`| head`) is gone before anything is written
    _, err = proc.communicate(timeout=120)
    assert err == b"", err.decode()
    assert proc.returncode in (0, 141)


def test_persons_and_person_list_print_the_same(served, capsys):
    ps, target = served
    assert main(["persons", "--server", target, "--json"]) == 0
    remote = json.loads(capsys.readouterr().out)
    assert main(["person", "list", "--store", str(ps.store_dir), "--json"]) == 0
    local = json.loads(capsys.readouterr().out)
    assert remote == local and {p["name"] for p in remote} == {"Obama", "Biden"}
    assert set(remote[0]) == {"person_id", "name", "face_count"}
    assert main(["persons", "--server", target]) == 0
    table_remote = capsys.readouterr().out
    assert main(["person", "list", "--store", str(ps.store_dir)]) == 0
    assert table_remote == capsys.readouterr().out
    assert table_remote.split()[:3] == ["id", "name", "faces"]


def test_relative_source_is_resolved_like_the_indexer(served, capsys, monkeypatch):
    ps, target = served
    obama = Path(ps.archive["obama.jpg"])
    monkeypatch.chdir(obama.parent.parent)
    relative = os.path.join(obama.parent.name, obama.name)
    assert main(["search", "--face-id", str(ps.face_ids["obama2.jpg"][0]), "--source", relative,
                 "--server", target, "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert hits and {h["source"] for h in hits} == {str(obama)}


def test_time_filter_on_search(served, capsys):
    ps, target = served
    # stills sit at 0 s: from 1 s on there is nothing; up to 1 s there is everything asked
    assert main(["search", "--face-id", str(ps.face_ids["obama.jpg"][0]), "--start", "1",
                 "--server", target, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["hits"] == []
    assert main(["search", "--face-id", str(ps.face_ids["obama.jpg"][0]), "--end", "0:01", "-k", "3",
                 "--server", target, "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["hits"]) == 3


def _parsers(parser, name="mien"):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, child in action.choices.items():
                yield from _parsers(child, f"{name} {sub}")


def test_help_shows_every_default():
    for name, parser in _parsers(build_parser()):
        formatter = DefaultsFormatter(name)
        for action in parser._actions:
            default = action.default
            if not action.option_strings or default in (None, False, argparse.SUPPRESS, []):
                continue
            shown = formatter._get_help_string(action) or ""
            assert "default" in shown.lower(), (name, action.option_strings)
        parser.format_help()  # formats without error
