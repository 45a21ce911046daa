"""deploy/nginx.conf, run for real: Debian's nginx on a loopback port in front of a real
`feedservice serve`. Cache hits, 304s to clients, revalidation upstream, and a seed
change visible through the proxy within max-age + reload interval."""

from __future__ import annotations

import gzip
import os
import pwd
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    REPO,
    LiveServer,
    article_fields,
    free_port,
    seed_text,
    write_config,
    write_seed,
)
from prometheus_client.parser import text_string_to_metric_families

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
CONF = REPO / "deploy" / "nginx.conf"
INTERVAL = 2  # reload_interval, and so the feeds' max-age
FEED = "/topics/ai.atom"

pytestmark = pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed (.ci/run installs Debian's nginx package)"
)


@dataclass
class Proxy:
    port: int

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
        """(status, case-insensitive headers, body)."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", headers=headers or {}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read()


def nginx_config(tmp: Path, listen: int, upstream: int) -> str:
    """deploy/nginx.conf with its port and paths moved into `tmp`; every rewrite must apply."""
    text = CONF.read_text(encoding="utf-8")
    user = pwd.getpwuid(os.geteuid()).pw_name
    rewrites = {
        "listen 80;": f"listen 127.0.0.1:{listen};",
        "server 127.0.0.1:8080;": f"server 127.0.0.1:{upstream};",
        "user www-data;": f"user {user};",
        "/run/nginx.pid": str(tmp / "nginx.pid"),
        "/var/cache/nginx/feedservice": str(tmp / "cache"),
        "/var/lib/nginx/": f"{tmp}/temp/",
        "/var/log/nginx/": f"{tmp}/log/",
    }
    for old, new in rewrites.items():
        assert old in text, f"deploy/nginx.conf no longer contains {old!r}"
        text = text.replace(old, new)
    for sub in ("cache", "temp", "log"):
        (tmp / sub).mkdir()
    return text


@pytest.fixture
def stack(
    tmp_path: Path, seeds: Path, live_server_factory: Callable[..., LiveServer]
) -> Iterator[tuple[Proxy, LiveServer, Path]]:
    config = write_config(tmp_path / "feeds.yaml", title="Proxied", reload_interval=INTERVAL)
    for n in range(3):
        write_seed(seeds, f"a{n}.md", **article_fields(n, topics=["AI"]))
    server = live_server_factory(seeds, config, workers=1)
    with running_nginx(tmp_path / "nginx", server.port) as port:
        yield Proxy(port), server, seeds


@contextmanager
def running_nginx(prefix: Path, upstream: int) -> Iterator[int]:
    """deploy/nginx.conf (see nginx_config) on a free loopback port in front of `upstream`,
    listening when this yields the port; stopped (SIGTERM to the master) after."""
    prefix.mkdir()
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_config(prefix, port, upstream), encoding="utf-8")
    base = [NGINX, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "log" / "error.log")]
    checked = subprocess.run([*base, "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(
        [*base, "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "nginx did not start listening"
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()  # SIGTERM to the master: fast shutdown
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def upstream_requests(server: LiveServer, status: str) -> float:
    """How many feed requests the service itself answered with `status`."""
    body = server.get("/metrics")[2].decode()
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == "feedservice_requests_total"
                and labels.get("route") == "/topics/<name>"
                and labels.get("format") == "atom"
                and labels.get("status") == status
            ):
                return sample.value
    return 0.0


GZIP = {"Accept-Encoding": "gzip"}


def test_cache_hits_and_client_revalidation(stack: tuple[Proxy, LiveServer, Path]) -> None:
    proxy, server, _ = stack
    status, headers, body = proxy.get(FEED, GZIP)
    assert (status, headers["X-Cache-Status"]) == (200, "MISS")
    assert headers["Content-Encoding"] == "gzip"
    assert b"<feed" in gzip.decompress(body)
    upstream_etag = server.get(FEED, GZIP)[1]["ETag"]
    assert headers["ETag"] == upstream_etag  # the service's validator, passed through
    served = upstream_requests(server, "200")

    # Another client spelling of "gzip" shares the cached copy (normalised key).
    status, headers, again = proxy.get(FEED, {"Accept-Encoding": "br, gzip, deflate"})
    assert (status, headers["X-Cache-Status"], again) == (200, "HIT", body)
    # Without gzip: its own cached copy, plain XML with its own ETag.
    status, headers, plain = proxy.get(FEED)
    assert (status, headers["X-Cache-Status"]) == (200, "MISS")
    assert "Content-Encoding" not in headers and plain == gzip.decompress(body)
    plain_etag = headers["ETag"]
    assert proxy.get(FEED)[1]["X-Cache-Status"] == "HIT"
    assert upstream_requests(server, "200") == served + 1  # only the plain MISS went upstream

    # A client's conditional request is answered 304 from the cache.
    status, headers, empty = proxy.get(FEED, {**GZIP, "If-None-Match": upstream_etag})
    assert (status, headers["X-Cache-Status"], empty) == (304, "HIT", b"")
    status, headers, _ = proxy.get(FEED, {"If-None-Match": plain_etag})
    assert status == 304
    assert upstream_requests(server, "200") == served + 1


def test_expired_entries_are_revalidated_upstream(stack: tuple[Proxy, LiveServer, Path]) -> None:
    proxy, server, _ = stack
    first = proxy.get(FEED, GZIP)
    assert first[1]["Cache-Control"] == f"public, max-age={INTERVAL}"
    not_modified = upstream_requests(server, "304")
    time.sleep(INTERVAL + 1.2)  # past max-age (nginx counts whole seconds): stale
    status, headers, body = proxy.get(FEED, GZIP)
    # nginx asked the service "still this ETag?", got 304, and served its copy.
    assert (status, headers["X-Cache-Status"]) == (200, "REVALIDATED")
    assert body == first[2]
    assert upstream_requests(server, "304") == not_modified + 1
    assert proxy.get(FEED, GZIP)[1]["X-Cache-Status"] == "HIT"  # fresh again


def test_seed_change_shows_within_max_age_plus_interval(
    stack: tuple[Proxy, LiveServer, Path],
) -> None:
    """The promise is reload_interval (the service sees the change) + max-age (the proxy
    lets go of its copy). Both legs are timed separately, so a slow machine delaying
    the reload cannot hide a proxy that holds on to stale copies, or the reverse."""
    proxy, server, seeds = stack
    assert proxy.get(FEED)[0] == 200
    assert proxy.get(FEED)[1]["X-Cache-Status"] == "HIT"  # a cached copy exists
    temp = seeds / ".a1.md.tmp"
    temp.write_text(seed_text(**article_fields(1, topics=["AI"], title="Retitled")), "utf-8")
    os.replace(temp, seeds / "a1.md")
    changed_at = time.monotonic()
    upstream_at = proxy_at = None
    while proxy_at is None:
        now = time.monotonic()
        if upstream_at is None and b"Retitled" in server.get(FEED)[2]:
            upstream_at = now
        if b"Retitled" in proxy.get(FEED)[2]:
            proxy_at = now
            upstream_at = upstream_at or now
        assert now - changed_at < 30, "change never visible through the proxy"
        time.sleep(0.05)
    # The service: within one interval, plus the reload itself on a busy machine.
    assert upstream_at - changed_at < INTERVAL + 4
    # The proxy: within max-age of the service (nginx counts whole seconds: +1; one
    # more for the polling requests themselves on a loaded machine).
    assert proxy_at - upstream_at < INTERVAL + 1 + 1
    status, headers, body = proxy.get(FEED)
    assert status == 200 and b"Retitled" in body
    assert headers["X-Cache-Status"] == "HIT"  # and cached again


def test_metrics_only_from_this_machine(stack: tuple[Proxy, LiveServer, Path]) -> None:
    proxy, _, _ = stack
    status, headers, body = proxy.get("/metrics")
    assert status == 200 and b"feedservice_requests_total" in body
    assert "deny all;" in CONF.read_text(encoding="utf-8")
    assert headers.get("X-Cache-Status") is None  # not in the cached location
