"""Read replicas: `mien snapshot` of a live store, two `mien serve` processes on the
copy, one Client balancing over both with gRPC's round_robin and failing over,
through both client transports (the gRPC C++ channel and grpcio's).

Real servers on 127.0.0.1 (subprocesses running the `mien` CLI), real LMDB and
FAISS. Which replica answered is read from each server's own log: one line per
call, `rpc=<Method> status=<CODE>`. A replica a test killed is started again on
its port before the next test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import grpc
import numpy as np
import pytest

from server_support import TRANSPORTS, build_photo_store, free_port, wait_until

from mien.clients import Client
from mien.engine.store import Store
from mien.engine.store.snapshot import snapshot
from mien.errors import BadInputError
from store_support import ENC, source_faces, source_record

ROOT = Path(__file__).resolve().parent.parent


class Replica:
    """`mien serve --store DIR` in a subprocess; its log collected line by line."""

    def __init__(self, store_dir: Path, *serve_args: str, host: str = "127.0.0.1"):
        # `mien serve --host` takes an IPv6 literal with or without brackets; the address has them
        bracketed = f"[{host}]" if ":" in host and not host.startswith("[") else host
        self.store_dir, self.serve_args = store_dir, ("--host", host, *serve_args)
        self.port = free_port()
        self.address = f"{bracketed}:{self.port}"
        self.lines: list[str] = []
        self.start()

    def start(self) -> None:
        """Start the server (again, on the same port, after a kill)."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mien", "serve", "--store", str(self.store_dir), "--port", str(self.port),
             "--workers", "2", "--grace", "1", *self.serve_args],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()

    def _read(self, proc) -> None:
        for line in proc.stderr:
            self.lines.append(line)

    def wait_serving(self, tls=None) -> None:
        with Client(self.address, transport="python", timeout=2.0, tls=tls) as c:
            def up():
                if self.proc.poll() is not None:
                    raise AssertionError("server exited:\n" + "".join(self.lines))
                try:
                    return c.health() == "SERVING"
                except Exception:  # noqa: BLE001 - not listening yet
                    return False
            assert wait_until(up, timeout=120), "".join(self.lines)

    def calls(self, method: str) -> int:
        return sum(f"rpc={method} status=OK" in line for line in list(self.lines))

    def stop(self, sig=signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def replicas(tmp_path_factory):
    root = tmp_path_factory.mktemp("replicas")
    ps = build_photo_store(root)
    snap = root / "snap"
    out = subprocess.run([sys.executable, "-m", "mien", "snapshot", "--store", str(ps.store_dir),
                          "--out", str(snap), "--json"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    with Store(ps.store_dir, mode="r") as live:
        assert info["faces"] == live.stats()["faces"] > 0
    servers = [Replica(snap), Replica(snap)]
    try:
        for s in servers:
            s.wait_serving()
        yield ps, servers
    finally:
        for s in servers:
            s.stop(signal.SIGKILL)


@pytest.fixture
def alive(replicas):
    """Both replicas serving (a replica an earlier test killed is started again)."""
    ps, servers = replicas
    for s in servers:
        if s.proc.poll() is not None:
            s.start()
            s.wait_serving()
    return ps, servers


def _query(ps) -> np.ndarray:
    with Store(ps.store_dir, mode="r") as st:
        return st.vectors([ps.face_ids["obama.jpg"][0]])[0]


def test_snapshot_serves_the_live_store_answers(replicas):
    ps, servers = replicas
    q = _query(ps)
    with Store(ps.store_dir, mode="r") as live:
        want = [(h.face_id, round(h.distance, 5)) for h in live.search(q, k=5)]
    for s in servers:
        with Client(s.address, transport="python") as c:
            got = [(h.face_id, round(h.distance, 5)) for h in c.search(q, k=5).hits]
        assert got == want


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_round_robin_balances_and_fails_over(alive, transport):
    ps, servers = alive
    q = _query(ps)
    before = [s.calls("ListPersons") for s in servers]   # only this test calls ListPersons
    with Client(",".join(s.address for s in servers), transport=transport) as c:
        assert c.transport == transport  # unary calls on this transport's own round_robin channel
        for _ in range(40):
            assert {p.name for p in c.persons()} >= {"Obama", "Biden"}
        # every call is logged by exactly one replica, and each got a share
        assert wait_until(lambda: sum(s.calls("ListPersons") for s in servers) - sum(before) == 40)
        shares = [s.calls("ListPersons") - b for s, b in zip(servers, before)]
        assert min(shares) >= 10, shares

        # fail-over: the first replica dies (kill -9, mid-traffic); every call still succeeds
        errors: list[BaseException] = []
        done = threading.Event()
        calls = [0]

        def traffic():
            while not done.is_set():
                try:
                    c.search(q, k=3)
                    calls[0] += 1
                except BaseException as exc:  # noqa: BLE001 - collected, asserted below
                    errors.append(exc)

        # three callers, so calls are in flight on the replica when it dies (without the
        # channel's retry on UNAVAILABLE about 5 of 500 such calls fail, on either transport)
        threads = [threading.Thread(target=traffic) for _ in range(3)]
        for t in threads:
            t.start()
        assert wait_until(lambda: calls[0] >= 60 or bool(errors))
        servers[0].stop(signal.SIGKILL)
        survivor = servers[1].calls("SearchExpression")
        for _ in range(30):
            assert len(c.search(q, k=3).hits) == 3
        done.set()
        for t in threads:
            t.join()
        assert errors == []
        assert wait_until(lambda: servers[1].calls("SearchExpression") >= survivor + 30)  # logs lag

        # the replica comes back on its port: the same client uses it again
        servers[0].start()
        servers[0].wait_serving()
        back = servers[0].calls("Stats")

        def used_again() -> bool:
            c.stats()
            return servers[0].calls("Stats") > back
        assert wait_until(used_again, timeout=120, interval=0.1)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_client_target_forms(alive, transport):
    _, servers = alive
    ports = [s.port for s in servers]
    forms = [
        [s.address for s in servers] + [servers[0].address],     # a list (an address twice)
        ",".join(f"localhost:{p}" for p in ports),              # host names: resolved, IPv4 kept
        f"ipv4:127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}",      # gRPC's own address list
        f"dns:///localhost:{ports[0]}",                         # a DNS name (gRPC resolves it)
        f"dns:localhost:{ports[0]}",
    ]
    for form in forms:
        with Client(form, transport=transport) as c:
            assert c.transport == transport, form
            assert c.health() == "SERVING", form
            assert c.stats().faces > 0, form
    # what one channel cannot hold is refused before any call, on both transports
    with pytest.raises(BadInputError, match="only IPv6"):
        Client(f"127.0.0.1:{ports[0]},[::1]:{ports[1]}", transport=transport)
    with pytest.raises(BadInputError, match="literal IPv4"):
        Client(f"ipv4:localhost:{ports[0]},localhost:{ports[1]}", transport=transport)
    with pytest.raises(BadInputError, match="literal IPv6"):
        Client(f"ipv6:127.0.0.1:{ports[0]}", transport=transport)
    with pytest.raises(BadInputError, match="HOST:PORT"):
        Client("127.0.0.1:1,nonsense", transport=transport)
    with pytest.raises(BadInputError, match="cannot resolve"):
        Client(f"127.0.0.1:{ports[0]},no-such-host.invalid:{ports[1]}", transport=transport)


def stats_shares(client, servers, n: int = 10) -> list[int]:
    """How many of n Stats calls each replica served, the n made once the client's channel has
    reached every replica: round_robin picks only connected ones, and a connection (a TLS
    handshake on a loaded machine) can finish after the first calls went out (CI once saw 8
    and 2 of 10 calls made at once)."""
    start = [s.calls("Stats") for s in servers]
    made = [0]

    def reached_all() -> bool:
        assert client.stats().faces > 0
        made[0] += 1
        return all(s.calls("Stats") > b for s, b in zip(servers, start))

    assert wait_until(reached_all), "the channel never reached every replica"
    # every call so far logged before counting: a replica logs a call after answering it
    assert wait_until(lambda: sum(s.calls("Stats") for s in servers) - sum(start) == made[0])
    before = [s.calls("Stats") for s in servers]
    for _ in range(n):
        assert client.stats().faces > 0
    assert wait_until(lambda: sum(s.calls("Stats") for s in servers) - sum(before) == n)
    return [s.calls("Stats") - b for s, b in zip(servers, before)]


@pytest.fixture(scope="module")
def tls_replicas(replicas, tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl makes the test certificate")
    tmp = tmp_path_factory.mktemp("tls")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    snap = replicas[1][0].store_dir
    servers = [Replica(snap, "--tls-cert", str(cert), "--tls-key", str(key)) for _ in range(2)]
    try:
        for s in servers:
            s.wait_serving(tls=str(cert))
        yield cert, servers
    finally:
        for s in servers:
            s.stop(signal.SIGKILL)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_tls_replicas(tls_replicas, transport):
    """An address list has no host name: the channel's :authority (the first address as
    given) is the name the replicas' certificate is checked against."""
    cert, servers = tls_replicas
    for target in (",".join(f"localhost:{s.port}" for s in servers), ",".join(s.address for s in servers)):
        with Client(target, tls=str(cert), transport=transport) as c:
            assert c.transport == transport
            shares = stats_shares(c, servers)
        assert min(shares) >= 3, (target, shares)
    with Client(",".join(s.address for s in servers), transport=transport, timeout=5) as plain:
        with pytest.raises(grpc.RpcError):
            plain.stats()                                    # plaintext cannot talk to TLS replicas


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def ipv6_replicas(replicas):
    if not _ipv6_loopback():
        pytest.skip("no IPv6 loopback here")
    servers = [Replica(replicas[1][0].store_dir, host=host) for host in ("::1", "[::1]")]
    try:
        for s in servers:
            s.wait_serving()
        yield servers
    finally:
        for s in servers:
            s.stop(signal.SIGKILL)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_ipv6_replicas(ipv6_replicas, transport):
    """IPv6-only replicas become an ipv6: address list on both transports."""
    servers = ipv6_replicas
    for target in (",".join(s.address for s in servers), f"ipv6:{','.join(s.address for s in servers)}"):
        with Client(target, transport=transport) as c:
            assert c.transport == transport
            shares = stats_shares(c, servers)
        assert min(shares) >= 3, (target, shares)


def test_the_cli_balances_over_replicas(alive):
    """`mien persons --server H1:P1,H2:P2` reaches both replicas (the CLI's default transport)."""
    _, servers = alive
    before = [s.calls("ListPersons") for s in servers]
    target = ",".join(f"localhost:{s.port}" for s in servers)
    for _ in range(6):
        r = subprocess.run([sys.executable, "-m", "mien", "persons", "--server", target, "--json"],
                           cwd=ROOT, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert {p["name"] for p in json.loads(r.stdout)} >= {"Obama", "Biden"}
    assert wait_until(lambda: sum(s.calls("ListPersons") for s in servers) - sum(before) >= 6)
    bad = subprocess.run([sys.executable, "-m", "mien", "persons", "--server", "ipv4:localhost:1,localhost:2"],
                         cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode != 0 and "literal IPv4" in bad.stderr and "Traceback" not in bad.stderr


def test_snapshot_is_consistent_while_a_writer_commits(tmp_path):
    """Sources are committed (and shards sealed) while snapshots are taken: every
    snapshot holds whole sources only, and its shards agree with its LMDB."""
    store_dir = tmp_path / "live"
    with Store(store_dir, mode="w", encoders=ENC, shard_size=60) as st:
        st.replace_source(source_record("u0", 1), source_faces("u0", 1, n=20))
    stop = threading.Event()

    def writer():
        with Store(store_dir, mode="w", encoders=ENC, shard_size=60) as st:
            i = 1
            while not stop.is_set() and i < 400:
                st.replace_source(source_record(f"u{i}", 1), source_faces(f"u{i}", 1, n=20))
                i += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        snaps = []
        for j in range(4):
            out = tmp_path / f"snap{j}"
            snapshot(store_dir, out)
            snaps.append(out)
    finally:
        stop.set()
        t.join()
    for out in snaps:
        with Store(out, mode="r") as st:
            stats = st.stats()
            assert stats["faces"] == 20 * stats["sources"]          # whole sources only
            for s in st.list_sources():
                assert s.face_count == 20
            hits = st.search(np.ones(16, np.float32) / 4, k=stats["faces"])
            assert len(hits) == stats["faces"]                       # shards + tail == LMDB
        assert set(os.listdir(out / "shards")) == {s for s in json.loads(
            (out / "snapshot.json").read_text())["shards"]}


def test_snapshot_refuses_an_existing_directory(tmp_path):
    store_dir = tmp_path / "s"
    with Store(store_dir, mode="w", encoders=ENC) as st:
        st.replace_source(source_record("u", 1), source_faces("u", 1, n=3))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("keep me")
    r = subprocess.run([sys.executable, "-m", "mien", "snapshot", "--store", str(store_dir), "--out",
                        str(tmp_path / "busy")], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 1 and "already exists" in r.stderr and "Traceback" not in r.stderr
    assert (tmp_path / "busy" / "x").read_text() == "keep me"
    with pytest.raises(BadInputError):
        snapshot(store_dir, store_dir)
