"""kill -9 in the middle of a reload, then restart: the feeds come back byte-identical.

The seed directory is large enough (3,000 files) that a full reload takes a while and
goes through the persistent parse cache. The test changes every file, waits until the
server is visibly busy with the reload (worker CPU or parse processes), SIGKILLs the
whole server process tree, proves from the log that the reload had not finished,
restarts on the same port and compares every feed byte for byte.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import LiveServer, free_port, start_server, write_config

from feedservice.service import Service
from feedservice.web import create_app

FILES = 3000
ATTEMPTS = 6  # the kill races the reload; faster reloads win that race more often
pytestmark = pytest.mark.timeout(170)


def write_corpus(root: Path, version: str) -> None:
    """Write every file to a staging directory, then rename them into place: the
    whole change lands within milliseconds, so one reload sees all of it."""
    staging = root.parent / f"staging-{version}"
    for n in range(FILES):
        date = f"20{10 + n % 12}-{n % 12 + 1:02d}-{n % 28 + 1:02d}T10:00:00Z"
        text = (
            f"---\ntitle: Article {n} ({version})\nexcerpt: Excerpt {n}, version {version}.\n"
            f"webUrl: https://crash.example/{n}\npublishedDateTime: {date}\n"
            f"topics: [Topic {n % 7}, Everything]\nsecured: SEKRIT-crash\n---\n"
        )
        path = staging / f"d{n % 10}" / f"a{n:05d}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for path in sorted(staging.rglob("*.md")):
        target = root / path.relative_to(staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)


def paths() -> list[str]:
    wanted = ["/", "/feeds.opml", "/topics.opml"]
    for feed in ["/feeds/all", "/topics/everything", *(f"/topics/topic-{n}" for n in range(7))]:
        for fmt in ("rss", "atom", "json"):
            wanted += [f"{feed}.{fmt}", f"{feed}.{fmt}?page=2"]
    return [*wanted, "/feeds/all.json?page=60", "/topics/topic-3/"]


def snapshot_of(server: LiveServer) -> dict[str, tuple[int, str, bytes]]:
    result = {}
    for path in paths():
        status, headers, body = server.get(path)
        result[path] = (status, headers.get("ETag", ""), body)
    return result


def process_tree(root_pid: int) -> list[int]:
    """`root_pid` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total


def reloads(server: LiveServer) -> list[str]:
    return [line for line in server.log().splitlines() if "reload: " in line]


def changes_applied(lines: list[str]) -> int:
    """Files the finished reloads in `lines` took in (added or changed)."""
    total = 0
    for line in lines:
        found = re.search(r"reload: \+(\d+) ~(\d+) ", line)
        assert found is not None, line
        total += int(found.group(1)) + int(found.group(2))
    return total


def kill_mid_reload(server: LiveServer, change: Callable[[], None]) -> bool:
    """Apply `change`, wait until the worker is busy reloading, SIGKILL the whole tree.

    True if the log proves the kill landed before the change was fully taken in: no
    reload after the change finished, or those that did (a reload can start while the
    change is still being written) took in only part of it. False if the whole change
    was reloaded before the kill.
    """
    before_lines = len(reloads(server))
    tree = process_tree(server.process.pid)
    ticks = cpu_ticks(tree)
    change()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        current = process_tree(server.process.pid)
        if len(current) > len(tree) or cpu_ticks(current) - ticks >= 10:
            break  # parse processes appeared, or the worker is burning CPU
        time.sleep(0.005)
    else:
        pytest.fail("the server never started the reload")
    victims = process_tree(server.process.pid)
    for pid in reversed(victims):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    server.process.wait(timeout=10)
    for pid in victims:  # every process of the old server is gone before the restart
        for _ in range(500):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.01)
    return changes_applied(reloads(server)[before_lines:]) < FILES


def test_sigkill_mid_reload_then_restart_gives_identical_feeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    root = tmp_path / "seeds"
    write_corpus(root, "A")
    config = write_config(
        tmp_path / "feeds.yaml", title="Crash", base_url="http://feeds.test", reload_interval=1
    )
    port = free_port()
    env = {"FEEDSERVICE_CACHE_DIR": str(tmp_path / "cache")}

    def start() -> LiveServer:
        server = start_server(
            root, config, tmp_path, workers=1, port=port, env=env, wait_articles=FILES
        )
        request.addfinalizer(server.stop)  # even if the test fails halfway
        return server

    def touch_all() -> None:  # same bytes, new mtimes: every file is parsed again
        now = time.time_ns()
        for path in root.rglob("*.md"):
            os.utime(path, ns=(now, now))

    server = start()
    before = snapshot_of(server)
    assert all(status == 200 for status, _, _ in before.values()), {
        path: status for path, (status, _, _) in before.items() if status != 200
    }
    for _ in range(ATTEMPTS):
        if kill_mid_reload(server, touch_all):
            break
        server = start()  # the reload won the race: try again
    else:
        pytest.fail(f"no kill landed mid-reload in {ATTEMPTS} attempts")
    server = start()
    try:
        assert snapshot_of(server) == before  # same status, ETag and bytes everywhere
    except BaseException:
        server.stop()
        raise

    # Real edits now: every file changes, the kill lands mid-reload again, and the
    # restarted server must serve exactly what a fresh server makes of the files.
    for version in [f"V{n}" for n in range(ATTEMPTS)]:
        if kill_mid_reload(server, lambda version=version: write_corpus(root, version)):
            break
        server = start()
    else:
        pytest.fail(f"no kill landed mid-reload in {ATTEMPTS} attempts")
    server = start()
    try:
        after = snapshot_of(server)
    finally:
        server.stop()
    monkeypatch.setenv("FEEDSERVICE_CACHE_DIR", "off")
    monkeypatch.setenv("FEEDSERVICE_BASE_URL", f"http://127.0.0.1:{port}")
    client = create_app(Service(root, config)).test_client()
    for path, (status, etag, body) in after.items():
        response = client.get(path)
        assert (status, etag) == (response.status_code, response.headers.get("ETag", "")), path
        assert body == response.get_data(), path
    newest = after["/feeds/all.json"][2]
    assert f"({version})".encode() in newest and b"(A)" not in newest
    assert "SEKRIT" not in server.log()
