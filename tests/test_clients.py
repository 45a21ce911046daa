"""Hostile and broken clients get a clear 4xx, never a 500, and never slow anyone down.

Each request runs against the Flask app alone (the view path, `app.wsgi_app.fallback`),
the full WSGI stack a worker serves (metrics, then the fast path in front of Flask) and,
where the HTTP server itself is involved (raw malformed requests, head size limits, slow
clients), against the live granian server.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    LiveServer,
    article_fields,
    make_site,
    start_server,
    write_config,
    write_seed,
)
from werkzeug.test import Client

from feedservice.http.app import MAX_TARGET_BYTES, FastPath, create_app
from feedservice.runtime.metrics import instrument
from feedservice.runtime.server import MAX_HEAD_BYTES
from feedservice.store.db import Store

pytestmark = pytest.mark.timeout(120)
FEED = "/topics/ai.rss"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    base = tmp_path_factory.mktemp("clients")
    seeds = base / "seeds"
    for n in range(5):
        write_seed(seeds, f"a{n}.md", **article_fields(n))
    config = write_config(
        base / "feeds.yaml",
        title="Clients",
        base_url="http://feeds.test",
        reload_interval=60,
        topic_limit=2,
    )
    yield seeds, config


@pytest.fixture(scope="module")
def clients(
    site: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    state = tmp_path_factory.mktemp("clients-state")
    loaded = make_site(*site, state)  # the loader commits one generation to the store
    readers = [Store.in_dir(state, writable=False) for _ in range(2)]
    flask_only = create_app(readers[0]).wsgi_app
    assert isinstance(flask_only, FastPath)
    # What a granian worker serves (runtime.server.worker_app): metrics around the fast path.
    production = instrument(create_app(readers[1]), readers[1]).wsgi_app
    yield {"flask": Client(flask_only.fallback), "wsgi": Client(production)}
    for store in (*readers, loaded.store):
        store.close()


@pytest.fixture(scope="module")
def live(site: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(*site, tmp_path_factory.mktemp("live"), workers=1)
    yield server
    server.stop()
    assert "Traceback" not in server.log()


def get(client: Any, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
    response = client.get(path, headers=headers or {})
    return response.status_code, response.headers, response.get_data()


def raw(server: LiveServer, request: bytes, timeout: float = 5) -> bytes:
    """Send bytes as they are; return the response head (status line and headers)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return data


def status_of(head: bytes) -> int:
    assert head.startswith(b"HTTP/1."), head[:80]
    return int(head.split(b" ", 2)[1])


def request(target: bytes | str, *extra: bytes) -> bytes:
    if isinstance(target, str):
        target = target.encode()
    return (
        b"GET "
        + target
        + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        + b"".join(extra)
        + b"\r\n"
    )


TRAVERSALS = [
    "/topics/..%2f..%2fetc%2fpasswd.rss",
    "/topics/..%2F..%2Fetc%2Fpasswd.rss",
    "/topics/%2e%2e/%2e%2e/etc/passwd.rss",
    "/topics/....//....//etc/passwd.rss",
    "/topics/..%5c..%5cetc%5cpasswd.rss",
    "/topics/%252e%252e%252fetc%252fpasswd.rss",
    "/feeds/..%2f..%2f..%2f..%2fetc%2fpasswd.json",
    "/static/..%2f..%2f..%2fetc%2fpasswd",
    "/static/../../../../etc/passwd",
    "/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/topics/ai.rss%00.txt",
    "/topics/%00.rss",
    "/topics/ai/../../../etc/passwd",
    "//etc/passwd",
]
BAD_PAGES = [
    "abc",
    "0",
    "-1",
    "",
    "1.5",
    "1e3",
    "%00",
    "%EF%BC%92",
    "+1",
    "%201",
    "1%20",
    "0x10",
    "1/2",
    "%FF",
    "1;2",
    "[1]",
]
PAST_LAST = ["4", "999", "99999999999", "1" + "0" * 30]
BAD_IMS = [
    "garbage",
    "Mon, 32 Foo 2021 25:61:61 GMT",
    "0",
    "-1",
    "yesterday",
    "\t",
    "Thu, 01 Jan 1970 00:00:00",
    "x" * 4000,
    "Sun, 06 Nov 1994 08:49:37 GMT garbage",
]
BAD_INM = ["garbage", '"', "W/", '"a" "b"', "W/garbage", '"a", garbage', "x" * 4000]


@pytest.mark.parametrize("stack", ["flask", "wsgi"])
def test_path_traversal_is_a_plain_404(clients: dict[str, Any], stack: str) -> None:
    for path in TRAVERSALS:
        status, _, body = get(clients[stack], path)
        assert status in {400, 404}, (path, status)
        assert b"root:" not in body


def test_path_traversal_live(live: LiveServer) -> None:
    for path in TRAVERSALS:
        status, _, body = live.get(path)
        assert status in {400, 404}, (path, status)
        assert b"root:" not in body
    for target in (
        b"/topics/../../../../etc/passwd",
        b"/static/../../../../etc/passwd",
        b"/../../../etc/passwd",
        b"../../etc/passwd",
    ):
        head = raw(live, request(target))
        assert 400 <= status_of(head) < 500, (target, head[:60])


@pytest.mark.parametrize("stack", ["flask", "wsgi"])
def test_request_target_over_8kb_is_414(clients: dict[str, Any], stack: str) -> None:
    client = clients[stack]
    for path in (
        FEED + "?x=" + "a" * MAX_TARGET_BYTES,
        "/" + "a" * MAX_TARGET_BYTES,
        "/topics/" + "é" * 5000 + ".rss",
    ):
        assert get(client, path)[0] == 414, len(path)
    fits = FEED + "?x=" + "a" * (MAX_TARGET_BYTES - len(FEED) - 3)
    assert len(fits) == MAX_TARGET_BYTES
    status, _, body = get(client, fits)  # read, and refused for its unknown parameter
    assert status == 400 and b"unknown parameter 'x'" in body


def test_request_target_over_8kb_is_414_live(live: LiveServer) -> None:
    assert status_of(raw(live, request(FEED + "?x=" + "a" * MAX_TARGET_BYTES))) == 414
    assert status_of(raw(live, request("/" + "b" * 12_000))) == 414
    fits = FEED + "?x=" + "a" * (MAX_TARGET_BYTES - len(FEED) - 3)
    assert status_of(raw(live, request(fits))) == 400  # read, and refused for its parameter


def test_headers_over_16kb_are_refused_live(live: LiveServer) -> None:
    big = b"X-Big: " + b"b" * MAX_HEAD_BYTES + b"\r\n"
    many = b"".join(b"X-H%d: %s\r\n" % (n, b"v" * 200) for n in range(90))
    huge_cookie = b"Cookie: " + b"c=" + b"z" * (MAX_HEAD_BYTES * 4) + b"\r\n"
    for extra in (big, many, huge_cookie):
        status = status_of(raw(live, request(FEED, extra)))
        assert status == 431 or 400 <= status < 500, status
    assert live.get(FEED)[0] == 200  # and the server is fine afterwards


MALFORMED = {
    "no colon": request(FEED, b"BadHeader\r\n"),
    "space in name": request(FEED, b"Bad Header: v\r\n"),
    "control character": request(FEED, b"X: a\x01b\r\n"),
    "NUL in value": request(FEED, b"X: a\x00b\r\n"),
    "obsolete folding": request(FEED, b"X: a\r\n b\r\n"),
    "empty name": request(FEED, b": v\r\n"),
    "bad version": b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
    "no version": b"GET /\r\nHost: x\r\n\r\n",
    "TLS handshake": b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 40 + b"\r\n\r\n",
    "missing method": b" / HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad content-length": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    "two content-lengths": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
    b"Content-Length: 2\r\n\r\nab",
    "latin-1 path": request(b"/topics/\xff.rss"),
    "bad percent in query": request(FEED + "?page=%ff"),
    "bad host": request(b"/topics/ai/", b"Host: \xff\xfe\r\n"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_requests_get_a_4xx_live(live: LiveServer, name: str) -> None:
    head = raw(live, MALFORMED[name])
    status = status_of(head)
    assert 400 <= status < 500 or (name == "bad host" and status == 200), (name, head[:100])
    assert live.get(FEED)[0] == 200


@pytest.mark.parametrize("stack", ["flask", "wsgi"])
def test_unknown_page_values_are_400(clients: dict[str, Any], stack: str) -> None:
    client = clients[stack]
    for base in (FEED, "/topics/ai.json", "/feeds/all.atom", "/topics/ai/"):
        for value in BAD_PAGES:
            status, _, body = get(client, f"{base}?page={value}")
            assert status == 400, (base, value, status)
            assert b"page" in body
        assert get(client, f"{base}?page=1")[0] == 200
        for past in PAST_LAST:  # pages that do not exist, however large the number
            assert get(client, f"{base}?page={past}")[0] == 404, (base, past)
    assert get(client, "/feeds.opml?format=xml")[0] == 400


def test_unknown_page_values_are_400_live(live: LiveServer) -> None:
    for value in BAD_PAGES:
        assert live.get(f"{FEED}?page={value}")[0] == 400, value
    assert live.get(f"{FEED}?page=2")[0] == 200
    for past in PAST_LAST:
        assert live.get(f"{FEED}?page={past}")[0] == 404, past


@pytest.mark.parametrize("stack", ["flask", "wsgi"])
def test_other_methods_never_500(clients: dict[str, Any], stack: str) -> None:
    client = clients[stack]
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"):
        response = client.open(FEED, method=method, data=b"x" * 100)
        assert response.status_code < 500, (method, response.status_code)
        if method != "OPTIONS":  # a 405 says which methods would do
            assert response.status_code == 405, method
            assert {"GET", "HEAD"} <= set(response.headers["Allow"].split(", ")), method
    assert client.head(FEED).status_code == 200 and client.head(FEED).get_data() == b""


def _as_if_absent(client: Any, path: str, headers: dict[str, str]) -> None:
    status, plain_headers, plain_body = get(client, path)
    got_status, got_headers, got_body = get(client, path, headers)
    assert (got_status, got_body) == (status, plain_body), headers
    assert got_headers.get("ETag") == plain_headers.get("ETag")


@pytest.mark.parametrize("stack", ["flask", "wsgi"])
def test_malformed_validators_are_ignored(clients: dict[str, Any], stack: str) -> None:
    client = clients[stack]
    _, headers, _ = get(client, FEED)
    etag, modified = headers["ETag"], headers["Last-Modified"]
    # The well-formed validators really do give 304, so a 200 below means "ignored".
    assert get(client, FEED, {"If-None-Match": etag})[0] == 304
    assert get(client, FEED, {"If-Modified-Since": modified})[0] == 304
    for value in BAD_IMS:
        _as_if_absent(client, FEED, {"If-Modified-Since": value})
    for value in BAD_INM:
        _as_if_absent(client, FEED, {"If-None-Match": value})
        # Ignored means absent: a valid If-Modified-Since beside it then decides.
        assert (
            get(client, FEED, {"If-None-Match": value, "If-Modified-Since": modified})[0] == 304
        ), value


def test_malformed_validators_are_ignored_live(live: LiveServer) -> None:
    _, headers, body = live.get(FEED)
    for name, value in [("If-Modified-Since", v) for v in BAD_IMS] + [
        ("If-None-Match", v) for v in BAD_INM
    ]:
        status, got_headers, got_body = live.get(FEED, {name: value})
        assert (status, got_body, got_headers["ETag"]) == (200, body, headers["ETag"]), value
    head = raw(live, request(FEED, b"If-Modified-Since: \xff\xfe\r\n", b"If-None-Match: \xff\r\n"))
    assert status_of(head) == 200


def _trickler(
    port: int, kind: str, stop: threading.Event, started: threading.Barrier, cut: list[str]
) -> None:
    """A client that sends one more header line (or body byte) every half second."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        if kind == "headers":
            sock.sendall(f"GET {FEED} HTTP/1.1\r\nHost: x\r\n".encode())
        else:  # a body that never completes, to a URL that does not want one
            sock.sendall(
                f"POST {FEED} HTTP/1.1\r\nHost: x\r\nContent-Length: 99999\r\n\r\n".encode()
            )
        started.wait()
        number = 0
        while not stop.wait(0.5):
            try:
                sock.sendall(f"X-Slow-{number}: y\r\n".encode() if kind == "headers" else b"x")
            except OSError as error:
                cut.append(repr(error))  # the server cut this client off
                return
            number += 1


@pytest.mark.parametrize("kind", ["headers", "body"])
def test_slow_clients_do_not_block_others(live: LiveServer, kind: str) -> None:
    """16 clients trickle their headers (or bodies) to the live single-worker server;
    another client's requests are all answered while the slow ones are still
    mid-request (or were cut off). Were they blocking it, those requests would hang
    until the slow clients stop, and fail at LiveServer.get's timeout."""
    stop = threading.Event()
    started = threading.Barrier(17)
    cut: list[str] = []
    threads = [
        threading.Thread(target=_trickler, args=(live.port, kind, stop, started, cut))
        for _ in range(16)
    ]
    for thread in threads:
        thread.start()
    started.wait(timeout=10)
    try:
        stop.wait(1.0)  # the slow clients are now mid-request
        for path in [FEED, "/", "/topics/ai/", "/feeds/all.json", "/healthz"] * 3:
            status, _, _ = live.get(path)
            assert status == 200, path
        still_sending = sum(thread.is_alive() for thread in threads)
        if kind == "headers":  # all of them still holding a connection open
            assert still_sending == 16 and cut == [], cut
        else:  # the server may answer a body it does not want, and cut the client: fine
            assert still_sending + len(cut) == 16
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)
