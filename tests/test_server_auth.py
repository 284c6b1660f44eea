"""Bearer-token auth (on and off), TLS, and `mien serve` with graceful SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from server_support import FRONTS, TOKEN, build_photo_store, free_port, start_server, stop_server, wait_until

from mien.clients.client import Client

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def photo_store(tmp_path_factory):
    return build_photo_store(tmp_path_factory.mktemp("server_auth"))


@pytest.mark.parametrize("front", FRONTS)
def test_auth_off_accepts_anyone(photo_store, front):
    server, target = start_server(photo_store.store_dir, front=front)
    try:
        with Client(target, token="") as c:
            assert c.stats().faces > 0
    finally:
        stop_server(server)


@pytest.mark.parametrize("front", FRONTS)
def test_auth_on(photo_store, front):
    server, target = start_server(photo_store.store_dir, token=TOKEN, front=front)
    try:
        with Client(target, token="") as anonymous:
            assert anonymous.health() == "SERVING"            # health is exempt
            for call in (anonymous.stats, anonymous.persons, lambda: anonymous.search(1),
                         lambda: list(anonymous.index_paths(["/tmp"]))):
                with pytest.raises(grpc.RpcError) as e:
                    call()
                assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
                assert "bearer token" in e.value.details()
            with pytest.raises(grpc.RpcError) as e:          # client-streaming too
                anonymous.upload_image(b"abc")
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with Client(target, token="wrong-" + TOKEN) as wrong, pytest.raises(grpc.RpcError) as e:
            wrong.stats()
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with Client(target, token=TOKEN) as good:
            assert good.stats().faces > 0
            assert good.cross(photo_store.archive["obama.jpg"], "Biden", k=1).hits[0].person_name == "Biden"
    finally:
        stop_server(server)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test certificate")
@pytest.mark.parametrize("front", FRONTS)
def test_tls(photo_store, tmp_path, front):
    from mien.server.app import TLSConfig

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    server, target = start_server(photo_store.store_dir, tls=TLSConfig(str(cert), str(key)), token=TOKEN,
                                  front=front)
    try:
        with Client(target, token=TOKEN, tls=str(cert)) as c:
            assert c.stats().faces > 0
        with Client(target, token=TOKEN, timeout=5) as plain, pytest.raises(grpc.RpcError):
            plain.stats()                                       # plaintext cannot talk to TLS
    finally:
        stop_server(server)


def test_mien_serve_token_file_and_sigterm(photo_store, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MIEN_TOKEN"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mien", "serve", "--store", str(photo_store.store_dir),
         "--port", str(port), "--token-file", str(token_file), "--grace", "2", "--cpus", "0"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        with Client(f"127.0.0.1:{port}", token=TOKEN, timeout=2) as c:
            def up():
                try:
                    return c.health() == "SERVING"
                except grpc.RpcError:
                    return proc.poll() is not None
            assert wait_until(up, timeout=120) and proc.poll() is None
            assert c.stats().faces > 0
        # --cpus 0: the server and every thread it started run on CPU 0 only
        tasks = list(Path(f"/proc/{proc.pid}/task").iterdir())
        assert len(tasks) > 3
        for task in tasks:
            status = (task / "status").read_text()
            assert "Cpus_allowed_list:\t0\n" in status, status
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "rpc=Stats status=OK" in out                       # one structured line per RPC
    assert "SIGTERM" in out and "stopped" in out


def test_every_cli_client_command_sends_the_token_file(photo_store, tmp_path, monkeypatch, capsys):
    """Query and analytics subcommands share one set of connection flags and one token."""
    from mien.cli import main

    monkeypatch.delenv("MIEN_TOKEN", raising=False)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    server, target = start_server(photo_store.store_dir, token=TOKEN)
    try:
        for argv in (["stats"], ["tag", "list"], ["summary", "--person", "Obama"]):
            assert main(argv + ["--server", target, "--token-file", str(token_file)]) == 0, argv
            assert main(argv + ["--server", target]) != 0, argv   # no token: refused
        out = capsys.readouterr()
        assert "UNAUTHENTICATED" in out.err
    finally:
        stop_server(server)


# -- issue 22: a token of whitespace is no token -----------------------------------------------
BLANKS = ["   ", "\t", " \n "]


@pytest.mark.parametrize("blank", BLANKS)
def test_a_blank_mien_token_refuses_to_serve_even_on_an_open_bind(photo_store, blank):
    """MIEN_TOKEN of whitespace passed the guard of non-loopback binds and then accepted
    `Bearer ` plus blanks: now `mien serve` refuses it in one line, on any host."""
    env = {**{k: v for k, v in os.environ.items() if k != "MIEN_TOKEN"}, "MIEN_TOKEN": blank}
    for host in ("0.0.0.0", "127.0.0.1"):
        proc = subprocess.Popen(
            [sys.executable, "-m", "mien", "serve", "--store", str(photo_store.store_dir), "--host", host,
             "--port", str(free_port()), "--front", "python"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            pytest.fail(f"mien serve started on {host} with MIEN_TOKEN={blank!r}")
        assert proc.returncode != 0 and "Traceback" not in err, err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and "MIEN_TOKEN" in lines[0] and "whitespace" in lines[0], err


@pytest.mark.parametrize("front", FRONTS)
def test_a_blank_token_is_refused_by_both_fronts_and_the_web_app(photo_store, front):
    from mien.errors import BadInputError
    from mien.server.app import build_server
    from mien.web import start_web, stop_web

    for blank in ["", *BLANKS]:
        with pytest.raises(BadInputError, match="whitespace"):
            server, _ = build_server(photo_store.store_dir, port=0, token=blank, front=front)
            stop_server(server)   # only reached on the old code, which served
    server, _ = start_server(photo_store.store_dir, front=front)
    try:
        for blank in BLANKS:
            with pytest.raises(BadInputError, match="whitespace"):
                web = start_web(server.mien_context, port=0, host="127.0.0.1", token=blank)
                stop_web(web)
    finally:
        stop_server(server)


def test_a_blank_token_file_is_refused_by_serve_and_by_clients(photo_store, tmp_path):
    from mien.errors import BadInputError
    from mien.server.app import read_token

    token_file = tmp_path / "token"
    token_file.write_text(" \t\n")
    with pytest.raises(BadInputError, match="empty"):
        read_token(str(token_file))
    proc = subprocess.run([sys.executable, "-m", "mien", "stats", "--server", f"127.0.0.1:{free_port()}",
                           "--token-file", str(token_file)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "token file" in proc.stderr and "whitespace" in proc.stderr, proc.stderr
