"""Denial of service by connections, a bounded stop, and deploy files that say so (issue 16).

granian holds one of a worker's `backpressure` permits for every open connection, idle
ones included, and a worker with none left accepts nothing: ~300 idle connections once
locked a directly exposed two-worker server out. And a SIGTERM once waited 97 s for one
slow reader. So, against real servers on loopback:
- 1,000 idle and 1,000 trickling (slowloris) connections are held open, and a new client
  must still get /healthz and a feed within 2 s, from the service alone and through
  deploy/nginx.conf; the service closes such connections after its header timeout;
- a server with a slow reader attached stops within its drain timeout, every process;
- the systemd unit verifies as shipped, and the deploy files agree with the service.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from conftest import (
    REPO,
    LiveServer,
    article_fields,
    write_config,
    write_seed,
)

from feedservice.runtime.server import BACKPRESSURE, HEADER_TIMEOUT_MS
from feedservice.settings import by_name

pytestmark = pytest.mark.timeout(120)

DEPLOY = REPO / "deploy"
IDLE = 1000
TRICKLING = 1000
ANSWER_WITHIN = 2.0  # seconds, for a new client while the flood is held
HEADER_TIMEOUT = HEADER_TIMEOUT_MS / 1000
SLOWLORIS_HEAD = b"GET /feeds/all.rss HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: " + b"s" * 200


# --- helpers ------------------------------------------------------------------------------


@pytest.fixture
def many_files() -> Iterator[None]:
    """Room for the flood's sockets in this process and in the server it starts (which
    inherits the limit); the previous soft limit is restored afterwards."""
    needed = IDLE + TRICKLING + 512
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        yield
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {needed}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


class Flood:
    """Idle connections, then trickling ones: each of those sends the next byte of a
    request head every second and never finishes it. Closes everything on exit."""

    def __init__(self, port: int, idle: int, trickling: int) -> None:
        self.sockets: list[socket.socket] = []
        self.trickling: list[socket.socket] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._trickle, name="slowloris", daemon=True)
        try:
            for _ in range(idle):
                self.sockets.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            for _ in range(trickling):
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                sock.setblocking(False)
                self.sockets.append(sock)
                self.trickling.append(sock)
            self._send_byte(0)
        except BaseException:
            self.close()
            raise
        self.thread.start()

    def _send_byte(self, index: int) -> None:
        piece = SLOWLORIS_HEAD[index % len(SLOWLORIS_HEAD) :][:1]
        for sock in self.trickling:
            with contextlib.suppress(OSError):  # closed by the server: fine
                sock.send(piece)

    def _trickle(self) -> None:
        index = 1
        while not self.stopping.wait(1):
            self._send_byte(index)
            index += 1

    def still_open(self) -> int:
        """How many have not been closed by the server (nothing is ever sent to them, so a
        readable socket is one at its end)."""
        with selectors.DefaultSelector() as selector:
            for sock in self.sockets:
                selector.register(sock, selectors.EVENT_READ)
            return len(self.sockets) - len(selector.select(timeout=0))

    def wait_all_closed(self, timeout: float) -> float:
        """Seconds until the server has closed every one; fails after `timeout`."""
        started = time.monotonic()
        while self.still_open():
            assert time.monotonic() - started < timeout, (
                f"{self.still_open()} of {len(self.sockets)} connections still open "
                f"after {timeout} s"
            )
            time.sleep(0.1)
        return time.monotonic() - started

    def close(self) -> None:
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(5)
        for sock in self.sockets:
            sock.close()

    def __enter__(self) -> Flood:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def timed_get(port: int, path: str) -> tuple[float, int, int]:
    """(seconds, status, body length) of a GET by a new client on a new connection."""
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    return time.monotonic() - started, response.status, len(body)


def small_site(seeds: Path, tmp: Path) -> Path:
    for n in range(20):
        write_seed(seeds, f"a{n}.md", **article_fields(n))
    return write_config(tmp / "feeds.yaml", title="Flooded", reload_interval=60)


def assert_new_client_answered(port: int, flood: Flood) -> dict[str, float]:
    """Times a new client's /healthz and feed while the flood trickles (its second byte
    has gone out), within the header timeout of the flood's start."""
    time.sleep(1.1)
    timings: dict[str, float] = {}
    for path in ("/healthz", "/feeds/all.rss"):
        seconds, status, length = timed_get(port, path)
        assert status == 200 and length > 0, (path, status)
        assert seconds < ANSWER_WITHIN, f"{path} took {seconds:.2f} s behind the flood"
        timings[path] = seconds
        if path == "/healthz":  # not vacuous: the whole flood was held meanwhile
            held = flood.still_open()
            dropped = len(flood.sockets) - held
            assert dropped == 0, f"the server dropped {dropped} of the flood's connections"
    return timings


# --- the service alone --------------------------------------------------------------------


def test_a_new_client_is_answered_while_2000_idle_and_trickling_connections_are_held(
    many_files: None, seeds: Path, tmp_path: Path, live_server_factory: Callable[..., LiveServer]
) -> None:
    """One worker (two would share the flood): 2,000 connections exceed granian's old
    per-worker cap of 1,024, and the new client then waited for the header timeout."""
    server = live_server_factory(seeds, small_site(seeds, tmp_path), workers=1)
    with Flood(server.port, IDLE, TRICKLING) as flood:
        assert_new_client_answered(server.port, flood)


def test_every_serving_process_can_hold_its_backpressure_in_connections(
    seeds: Path, tmp_path: Path, live_server_factory: Callable[..., LiveServer]
) -> None:
    """Started under a soft limit of 256 open files (shells and containers often give
    1024), the serving processes still may open BACKPRESSURE connections and more: granian
    raises their soft limit to the hard one. (If it ever stops, the service must.)"""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = BACKPRESSURE + 1024  # connections, and the database and log files
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {wanted}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))  # (the server inherits it)
    try:
        server = live_server_factory(seeds, small_site(seeds, tmp_path), workers=2)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    serving = [
        pid
        for pid in process_group(server.process.pid)
        if b"serve" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    ]
    assert len(serving) == 3, serving  # the parent and two workers
    for pid in serving:
        assert open_files_limit(pid) >= wanted, pid


def process_group(pgid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[2]) == pgid:
                    found.append(int(entry))
    return found


def open_files_limit(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError(f"no open files limit for {pid}")


def test_idle_and_trickling_connections_are_closed_after_the_header_timeout(
    seeds: Path, tmp_path: Path, live_server_factory: Callable[..., LiveServer]
) -> None:
    """A flood holds a worker's connections for HEADER_TIMEOUT_MS at most: a trickling
    head gains nothing by its bytes, and a kept-alive connection idles no longer."""
    server = live_server_factory(seeds, small_site(seeds, tmp_path), workers=1)
    kept = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        response = http.client.HTTPResponse(kept)
        response.begin()
        response.read()
        assert response.status == 200 and not response.will_close
        with Flood(server.port, 100, 100) as flood:
            flood.sockets.append(kept)
            took = flood.wait_all_closed(HEADER_TIMEOUT + 3)
        assert HEADER_TIMEOUT - 1 < took < HEADER_TIMEOUT + 2
        seconds, status, _ = timed_get(server.port, "/healthz")
        assert status == 200 and seconds < ANSWER_WITHIN
    finally:
        kept.close()


# --- behind deploy/nginx.conf -------------------------------------------------------------


def nginx_timeout(name: str) -> float:
    """A `name 10s;` directive of deploy/nginx.conf, in seconds."""
    found = re.search(rf"^\s*{name}\s+(\d+)s;", (DEPLOY / "nginx.conf").read_text(), re.M)
    assert found, f"deploy/nginx.conf sets no {name}"
    return float(found.group(1))


def test_behind_the_shipped_nginx_a_flood_is_held_and_shed_by_nginx(
    many_files: None, seeds: Path, tmp_path: Path, live_server_factory: Callable[..., LiveServer]
) -> None:
    """What faces the network in production: nginx holds the flood (never passing a
    partial head upstream), answers the new client, and closes the flood itself."""
    from test_nginx_proxy import NGINX, running_nginx  # the same rewrite of the same file

    if NGINX is None:
        pytest.skip("nginx is not installed (.ci/run installs Debian's nginx package)")
    server = live_server_factory(seeds, small_site(seeds, tmp_path), workers=1)
    with (
        running_nginx(tmp_path / "nginx", server.port) as port,
        Flood(port, IDLE, TRICKLING) as flood,
    ):
        assert_new_client_answered(port, flood)
        shed_within = max(nginx_timeout("client_header_timeout"), HEADER_TIMEOUT)
        flood.wait_all_closed(shed_within + 3)


# --- a bounded stop -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def large_site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(seeds, config, state dir): one feed page of ~6 MB, more than the server's socket
    can buffer, so a slow reader keeps a worker writing. Later servers start warm."""
    tmp = tmp_path_factory.mktemp("large")
    seeds = tmp / "seeds"
    seeds.mkdir()
    topics = [f"topic number {k} " + "x" * 40 for k in range(40)]
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # (seed_text's, only faster)
    for n in range(1000):
        fields = article_fields(n, title=f"T{n} " * 70, excerpt=f"word{n} " * 330, topics=topics)
        text = yaml.dump(fields, Dumper=dumper, allow_unicode=True, sort_keys=False)
        (seeds / f"a{n}.md").write_text(f"---\n{text}---\n", encoding="utf-8")
    all_feed = {"name": "all", "title": "All", "topics": ["*"], "limit": 1000}
    config = write_config(tmp / "feeds.yaml", title="Large", topic_limit=20, feeds=[all_feed])
    return seeds, config, tmp / "state"


def largest_socket_buffer() -> int:
    """The most a TCP socket here may buffer for sending (net.ipv4.tcp_wmem's maximum)."""
    try:
        return int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, IndexError, ValueError):
        return 4 << 20


def live_members(group: int) -> list[str]:
    """The group's processes that are not zombies (a zombie runs nothing and holds no
    socket; one whose parent has exited waits for init to reap it)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            members.append(stat.parent.name)
    return members


def slow_reader(port: int, path: str) -> tuple[socket.socket, threading.Event]:
    """A client with a tiny receive buffer that reads one byte a second."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    assert sock.recv(1) == b"H"  # the response has started
    stop = threading.Event()

    def read() -> None:
        while not stop.wait(1):
            try:
                if not sock.recv(1):
                    return
            except OSError:
                return

    threading.Thread(target=read, name="slow-reader", daemon=True).start()
    return sock, stop


@pytest.mark.parametrize(
    ("drain", "whom"),
    [(2, "main"), (2, "group"), (0, "main")],
    ids=["drain-2s-sigterm-to-main (docker stop)", "drain-2s-sigterm-to-all (systemd)", "no-drain"],
)
def test_sigterm_with_a_slow_reader_stops_every_process_within_the_drain_timeout(
    drain: int,
    whom: str,
    large_site: tuple[Path, Path, Path],
    tmp_path: Path,
    live_server_factory: Callable[..., LiveServer],
) -> None:
    """A slow reader used to hold a stopping server for as long as it read (97 s)."""
    seeds, config, state = large_site
    server = live_server_factory(
        seeds,
        config,
        workers=2,
        extra_args=("--drain-timeout", str(drain), "--state-dir", str(state)),
        wait_articles=1000,
    )
    body = server.get("/feeds/all.rss")[2]
    if len(body) < largest_socket_buffer() + (1 << 20):
        pytest.skip(f"a {len(body)}-byte feed fits this machine's socket buffers")
    sock, stop = slow_reader(server.port, "/feeds/all.rss")
    try:
        time.sleep(0.5)  # the worker has filled the socket and waits to write more
        group = server.process.pid
        started = time.monotonic()
        if whom == "group":
            os.killpg(group, signal.SIGTERM)  # systemd's KillMode=control-group
        else:
            os.kill(group, signal.SIGTERM)  # docker stop: PID 1 only
        server.process.wait(timeout=drain + 15)
        exited = time.monotonic() - started
        while live_members(group):
            assert time.monotonic() - started < drain + 5, f"still running: {live_members(group)}"
            time.sleep(0.05)
        stopped = time.monotonic() - started
        while True:  # and nothing at all: the zombies are reaped too
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                break
            assert time.monotonic() - started < drain + 10, "processes left in the group"
            time.sleep(0.05)
    finally:
        stop.set()
        sock.close()
    assert server.process.returncode == 0, server.log()[-2000:]
    assert exited < drain + 2.5, f"the server exited {exited:.1f} s after SIGTERM"
    assert stopped < drain + 3, f"the last process ended {stopped:.1f} s after SIGTERM"
    if drain:  # not vacuous: the slow reader did hold a worker until the drain ran out
        assert exited > drain - 0.5, f"exited after {exited:.1f} s: no worker was held"
        assert "refused to gracefully stop" in server.log()


def test_the_default_drain_ends_well_inside_the_stop_timeouts() -> None:
    """systemd and Docker kill what is still running after their stop timeout: the drain,
    then the loader's own stop (at most 10 s), must end before it."""
    drain = by_name("drain_timeout").default
    unit = (DEPLOY / "feedservice.service").read_text()
    stop_unit = re.search(r"^TimeoutStopSec=(\d+)$", unit, re.M)
    assert stop_unit and int(stop_unit.group(1)) >= drain + 10 + 5
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    grace = compose["services"]["feedservice"]["stop_grace_period"]
    assert grace.endswith("s") and int(grace[:-1]) >= drain + 10 + 5


# --- the deploy files ---------------------------------------------------------------------


def test_the_systemd_unit_verifies_as_shipped(tmp_path: Path) -> None:
    """`systemd-analyze verify` on the unit file unchanged. It checks that ExecStart is
    an executable, so the unit goes into a scratch root where the install path the
    unit documents exists (an empty script), beside the system's own units."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian's systemd package)")
    system_units = next(
        (p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")) if p.is_dir()),
        None,
    )
    if system_units is None:
        pytest.skip("no systemd unit directory")
    text = (DEPLOY / "feedservice.service").read_text()
    exec_start = re.search(r"^ExecStart=(\S+)", text, re.M)
    assert exec_start, "the unit has no ExecStart"
    binary = Path(exec_start.group(1))
    assert binary == Path("/opt/feedservice/bin/feedservice")  # what its comment installs
    assert "python3 -m venv /opt/feedservice" in text
    root = tmp_path / "root"
    shutil.copytree(system_units, root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(DEPLOY / "feedservice.service", root / "etc/systemd/system")
    stub = root / binary.relative_to("/")
    stub.parent.mkdir(parents=True)
    stub.write_text("#!/bin/sh\n")
    stub.chmod(0o755)
    result = subprocess.run(
        [analyze, "verify", "--man=no", f"--root={root}", "feedservice.service"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = (result.stdout + result.stderr).splitlines()
    assert result.returncode == 0, output
    assert [line for line in output if "feedservice" in line] == []


def test_only_the_proxy_faces_the_network_and_the_limits_fit() -> None:
    """No Docker engine in CI: the container setup is checked against the service here.
    The service listens on loopback in every deploy file; nginx shares the container's
    network namespace and is the only published port; descriptors suffice for the
    service's connection cap; nginx drops idle upstream connections before the service."""
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"FEEDSERVICE_HOST=127\.0\.0\.1\b", dockerfile)
    assert not re.search(r"^\s*EXPOSE\b", dockerfile, re.M)
    assert "0.0.0.0" not in re.sub(r"#.*", "", dockerfile)

    unit = (DEPLOY / "feedservice.service").read_text()
    assert "Environment=FEEDSERVICE_HOST=127.0.0.1\n" in unit
    nofile = re.search(r"^LimitNOFILE=(\d+)$", unit, re.M)
    assert nofile and int(nofile.group(1)) > BACKPRESSURE + 1024

    services = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    service, proxy = services["feedservice"], services["proxy"]
    assert proxy["network_mode"] == "service:feedservice"
    assert "ports" not in proxy
    assert [str(p).split(":")[-1] for p in service["ports"]] == ["80"]  # nginx's, not 8080
    assert "FEEDSERVICE_HOST" not in service.get("environment", {})  # the image's loopback
    assert int(service["ulimits"]["nofile"]) > BACKPRESSURE + 1024

    nginx = (DEPLOY / "nginx.conf").read_text()
    assert "server 127.0.0.1:8080;" in nginx
    assert nginx_timeout("keepalive_timeout") > 0  # for clients
    upstream = re.search(r"upstream feedservice \{(.*?)\}", nginx, re.S)
    assert upstream
    idle_upstream = re.search(r"keepalive_timeout\s+(\d+)s;", upstream.group(1))
    assert idle_upstream and int(idle_upstream.group(1)) < HEADER_TIMEOUT
    for directive in ("client_header_timeout", "send_timeout", "limit_conn", "limit_conn_zone"):
        assert re.search(rf"^\s*{directive}\s", nginx, re.M), directive
