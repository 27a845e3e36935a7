"""`recsmith serve --workers 2`: worker processes build the app from settings passed in the
environment, every one of them answers with the model and the store, clients that connect
together are spread over them, and a worker that dies is replaced."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from recsmith.serving import create_api_key
from recsmith.serving.supervisor import reuseport_balances
from recsmith.store.sqlite import SQLiteStore
from recsmith.testing.ports import free_port

pytestmark = pytest.mark.slow
linux_only = pytest.mark.skipif(not reuseport_balances(), reason="SO_REUSEPORT balancing: Linux")


def _serve(bundle_dir: Path, store_url: str, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "recsmith",
            "-q",
            "serve",
            "--model-dir",
            str(bundle_dir),
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        env={**os.environ, "RECSMITH_STORE__URL": store_url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    headers: dict[str, str]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.proc.stderr.read().decode()  # type: ignore[union-attr]
            try:
                if httpx.get(f"{self.base}/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError("server did not become ready")

    def ask(self, n: int) -> list[httpx.Response]:
        url = f"{self.base}/v1/users/nobody/recommendations?k=3"
        return [httpx.get(url, headers=self.headers, timeout=5) for _ in range(n)]

    def workers(self) -> list[int]:
        """The server's worker processes (multiprocessing's resource tracker is not one)."""
        pids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        return [
            int(p)
            for p in pids
            if b"resource_tracker" not in Path(f"/proc/{p}/cmdline").read_bytes()
        ]

    def owners(self) -> dict[int, int]:
        """The worker (pid) holding each established connection, by the client's port."""
        inode_port: dict[str, int] = {}
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, remote, st, inode = fields[1], fields[2], fields[3], fields[9]
                if st == "01" and int(local.rsplit(":", 1)[1], 16) == self.port:
                    inode_port[inode] = int(remote.rsplit(":", 1)[1], 16)
        held: dict[int, int] = {}
        for pid in self.workers():
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    link = os.readlink(fd)
                except OSError:  # closed meanwhile
                    continue
                if link.startswith("socket:") and link[8:-1] in inode_port:
                    held[inode_port[link[8:-1]]] = pid
        return held

    def sockets_per_worker(self, state: str) -> list[int]:
        """Each worker's sockets on the port in a TCP ``state`` of /proc/net/tcp ("01" =
        established, "0A" = listening)."""
        inodes: set[str] = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, st, inode = fields[1], fields[3], fields[9]
                if st == state and int(local.rsplit(":", 1)[1], 16) == self.port:
                    inodes.add(inode)
        counts = []
        for pid in self.workers():
            links = []
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    links.append(os.readlink(fd))
                except OSError:  # closed meanwhile
                    continue
            counts.append(sum(link[8:-1] in inodes for link in links if link.startswith("socket:")))
        return sorted(counts)

    def wait_all_listening(self) -> None:
        """A worker listens once its model is loaded; /health/ready answers from the first."""
        deadline = time.monotonic() + 60
        while self.sockets_per_worker("0A") != [1, 1]:
            assert time.monotonic() < deadline, self.sockets_per_worker("0A")
            time.sleep(0.2)


@pytest.fixture
def server(bundle_dir: Path, tmp_path: Path) -> Iterator[Server]:
    db = tmp_path / "w.sqlite"
    store = SQLiteStore(db)
    _, secret = create_api_key(store, "t", ["read"])
    store.close()
    port = free_port()
    proc = _serve(bundle_dir, f"sqlite:///{db}", port)
    running = Server(proc, port, {"Authorization": f"Bearer {secret}"})
    try:
        running.wait_ready()
        yield running
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_two_workers_serve_recommendations(server: Server) -> None:
    answers = server.ask(20)
    assert all(r.status_code == 200 for r in answers)
    assert {r.json()["fallback"] for r in answers} == {"popular"}


@linux_only
def test_clients_that_connect_together_are_spread_over_the_workers(server: Server) -> None:
    server.wait_all_listening()
    clients = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(32)]
    try:
        deadline = time.monotonic() + 30  # poll until the workers have accepted all 32
        while sum(split := server.sockets_per_worker("01")) < 32:
            assert time.monotonic() < deadline, f"accepted {split} of 32 within 30 s"
            time.sleep(0.05)
        # one shared socket gave 32/0 in a third of such trials; the kernel's hash over two
        # sockets leaves fewer than 4 on one side about once in 400,000
        assert len(split) == 2 and sum(split) == 32 and min(split) >= 4, split
    finally:
        for c in clients:
            c.close()


@linux_only
def test_a_worker_that_dies_is_replaced(server: Server) -> None:
    # /health/ready answers from the first worker to listen: kill one only once both listen,
    # or the survivor may still be loading its model and nothing answers (CI, stop 22)
    server.wait_all_listening()
    before = server.workers()
    assert len(before) == 2
    os.kill(before[0], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = server.workers()
        if len(now) == 2 and before[0] not in now:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the dead worker was not replaced")
    assert all(r.status_code == 200 for r in server.ask(10))  # the other worker served meanwhile
    server.wait_ready()
    assert server.proc.poll() is None


def test_a_taken_port_is_a_clear_error(bundle_dir: Path, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        proc = _serve(bundle_dir, f"sqlite:///{tmp_path / 'w.sqlite'}", port)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert f"serving.port: cannot listen on 127.0.0.1:{port}" in err.decode()


@linux_only
def test_workers_that_cannot_start_stop_the_server(bundle_dir: Path, tmp_path: Path) -> None:
    # a model whose manifest reads fine but whose arrays are damaged: only loading finds out,
    # so every worker's start-up fails (what serve can check up front, it checks before)
    broken = tmp_path / "broken"
    shutil.copytree(bundle_dir, broken)
    for arrays in broken.rglob("*.npy"):
        arrays.write_bytes(b"not an npy file")
    proc = _serve(broken, f"sqlite:///{tmp_path / 'w.sqlite'}", free_port())
    _, err = proc.communicate(timeout=60)  # ends by itself: no restart loop
    assert proc.returncode != 0
    assert "a server worker could not start" in err.decode()


@linux_only
def test_workers_stop_when_the_supervisor_is_killed(server: Server) -> None:
    workers = server.workers()
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait(timeout=10)
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() and _running(pid) for pid in workers):
        assert time.monotonic() < deadline, "orphaned workers keep the port"
        time.sleep(0.2)


def _running(pid: int) -> bool:
    """Alive and not a zombie (an exited orphan waits for init to reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class _Client:
    """One keep-alive HTTP/1.1 connection that reconnects when a response says
    ``Connection: close`` (as every HTTP/1.1 client does)."""

    def __init__(self, sock: socket.socket, request: bytes) -> None:
        self.sock, self.request = sock, request
        self.closes = 0

    def ask(self, port: int) -> int:
        """Send the request, read the whole answer; returns its status."""
        self.sock.sendall(self.request)
        data = b""
        while b"\r\n\r\n" not in data:
            data += self.sock.recv(65536)
        head, body = data.split(b"\r\n\r\n", 1)
        lines = head.decode().lower().split("\r\n")
        length = next(int(x.split(":")[1]) for x in lines if x.startswith("content-length:"))
        while len(body) < length:
            body += self.sock.recv(65536)
        if "connection: close" in lines:
            self.sock.close()
            self.sock = socket.create_connection(("127.0.0.1", port))
            self.closes += 1
        return int(lines[0].split()[1])


@linux_only
def test_a_worker_holding_more_connections_closes_them_until_the_split_is_even(
    server: Server,
) -> None:
    server.wait_all_listening()
    a, b = server.workers()
    # the kernel hashes each connection: open 64, then keep 24 that landed on one worker and 8
    # on the other, a 24/8 split to start from (the benchmark's 32 connections, unevenly)
    opened = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(64)]
    deadline = time.monotonic() + 30
    while len(owners := server.owners()) < 64:
        assert time.monotonic() < deadline, f"accepted {len(owners)} of 64"
        time.sleep(0.05)
    on_a = [s for s in opened if owners[s.getsockname()[1]] == a]
    on_b = [s for s in opened if owners[s.getsockname()[1]] == b]
    heavy, light = (on_a, on_b) if len(on_a) >= len(on_b) else (on_b, on_a)
    assert len(heavy) >= 32 >= len(light) >= 8, (len(on_a), len(on_b))
    kept = heavy[:24] + light[:8]
    for s in opened:
        if s not in kept:
            s.close()
    request = (
        f"GET /v1/users/nobody/recommendations?k=3 HTTP/1.1\r\nHost: t\r\n"
        f"Authorization: {server.headers['Authorization']}\r\n\r\n"
    ).encode()
    clients = [_Client(s, request) for s in kept]
    statuses: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while True:
            statuses += [c.ask(server.port) for c in clients]
            split = sorted(
                Counter(server.owners()[c.sock.getsockname()[1]] for c in clients).values()
            )
            if len(split) == 2 and split[1] - split[0] <= 1 and len(statuses) >= 32 * 20:
                break
            assert time.monotonic() < deadline, f"split still {split} after {len(statuses)}"
        # every request answered, none lost to a close; the 24/8 start took at least 8 closes
        assert statuses == [200] * len(statuses)
        assert sum(c.closes for c in clients) >= 8
        assert sum(split) == 32
    finally:
        for c in clients:
            c.sock.close()
