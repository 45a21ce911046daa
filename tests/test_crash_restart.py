"""kill -9 of the whole service, then a new start on the same --state-dir.

- Killed while idle: the new start answers every URL byte for byte as before (status,
  ETag, Last-Modified, body), at once and after its loader has looked at the files.
- Killed in the middle of a reload (3,000 files all changed, so the reload takes a
  while): the store still holds the previous generation, whole and readable, with none
  of the interrupted reload's writes; the next start takes the change in and serves
  what a fresh load of the files gives.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import (
    LiveServer,
    Site,
    article_fields,
    free_port,
    start_server,
    wait_for,
    write_config,
    write_seed,
)
from consumers import read_feed

from feedservice.http.app import create_app
from feedservice.runtime.export import targets
from feedservice.store.db import DATABASE_NAME, Store

FILES = 3000
ATTEMPTS = 6  # the kill races the reload; faster reloads win that race more often
pytestmark = pytest.mark.timeout(290)

Answers = dict[str, tuple[int, str, str, bytes]]


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


def every_url(state: Path) -> list[str]:
    """Every URL the service answers 200 (each page of each feed in each format, the
    lists, the stylesheet), as the static export enumerates them, plus some that fail."""
    store = Store.in_dir(state, writable=False)
    try:
        found = [url for url, _ in targets(store)]
    finally:
        store.close()
    return [*found, "/topics/nope.rss", "/feeds/all.json?page=999", "/topics/topic-1.atom?page=0"]


def answers_of(get: Callable[[str], tuple[int, str, str, bytes]], urls: list[str]) -> Answers:
    return {url: get(url) for url in urls}


def over_http(server: LiveServer) -> Callable[[str], tuple[int, str, str, bytes]]:
    def get(url: str) -> tuple[int, str, str, bytes]:
        status, headers, body = server.get(url)
        return status, headers.get("ETag", ""), headers.get("Last-Modified", ""), body

    return get


def kill_service(server: LiveServer) -> None:
    """SIGKILL to the service's whole process group at once, then wait until every one
    of its processes is gone."""
    group = server.process.pid  # started with start_new_session: its own group
    members = [pid for pid in _pids() if _pgid(pid) == group]
    os.killpg(group, signal.SIGKILL)
    server.process.wait(timeout=10)
    for pid in members:
        wait_for(lambda pid=pid: not _alive(pid), f"process {pid} gone", 10)


def _pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def group_cpu_ticks(group: int) -> tuple[int, int]:
    """(processes, utime + stime ticks) of a process group, from /proc."""
    count = total = 0
    for pid in _pids():
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group:  # pgrp
            count += 1
            total += int(fields[11]) + int(fields[12])
    return count, total


def busy(new_processes: int, ticks: int) -> bool:
    """The loader is inside the reload's write transaction: on two or more cores it parses
    3,000 files with a pool it starts inside that transaction, so new processes in the
    service's group prove it; so does a tenth of a second of CPU burnt (one core, or a
    reload that began before the corpus was all written, with too few files for a pool)."""
    return new_processes > 0 or ticks >= 10  # (a slow writer's reload may parse without a pool)


def newest_generation(state: Path) -> int:
    connection = sqlite3.connect(state / DATABASE_NAME)
    try:
        return connection.execute("SELECT max(id) FROM generations").fetchone()[0]
    finally:
        connection.close()


def stored(state: Path) -> tuple[int, dict[str, bytes], str]:
    """(newest generation, every file's stamp, integrity check) read off the database."""
    connection = sqlite3.connect(state / DATABASE_NAME)
    try:
        generation = connection.execute("SELECT max(id) FROM generations").fetchone()[0]
        stamps = dict(connection.execute("SELECT path, stamp FROM files"))
        integrity = connection.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        connection.close()
    return generation, stamps, integrity


def taken_in(state: Path, version: str) -> bool:
    """Every file's stored article is of `version` (a reload may have taken in part of a
    change that was still being renamed into place; the next one takes the rest)."""
    connection = sqlite3.connect(state / DATABASE_NAME)
    try:
        count = connection.execute(
            "SELECT count(*) FROM files WHERE instr(record, ?) > 0", (f"({version})",)
        ).fetchone()[0]
    finally:
        connection.close()
    return count == FILES


def settled_answers(server: LiveServer, state: Path, version: str, urls: list[str]) -> Answers:
    """Every URL's answer, once the store holds all of `version`, all from one generation."""
    wait_for(lambda: taken_in(state, version), f"version {version} taken in", 120)
    while True:
        generation = stored(state)[0]
        answers = answers_of(over_http(server), urls)
        if stored(state)[0] == generation:
            return answers


def start(
    root: Path,
    config: Path,
    tmp_path: Path,
    state: Path,
    port: int,
    request: pytest.FixtureRequest,
) -> LiveServer:
    server = start_server(
        root, config, tmp_path, workers=2, port=port, extra_args=("--state-dir", str(state))
    )
    request.addfinalizer(server.stop)  # even if the test fails halfway
    return server


def test_kill_9_then_restart_answers_every_url_identically(
    tmp_path: Path, seeds: Path, request: pytest.FixtureRequest
) -> None:
    for n in range(120):
        topics = ["AI", f"Topic {n % 3}"] + (["Rare"] if n % 40 == 0 else [])
        write_seed(seeds, f"d{n % 4}/{n:03d}.md", **article_fields(n, topics=topics))
    write_seed(seeds, "draft.md", **article_fields(500, published=False))
    (seeds / "bad.md").write_text("---\ntitle: [unclosed\n---\n", encoding="utf-8")
    config = write_config(
        tmp_path / "feeds.yaml",
        title="Crash",
        reload_interval=1,
        topic_limit=7,
        feeds=[{"name": "ml", "title": "ML", "topics": ["Topic 1"], "limit": 4}],
    )
    state, port = tmp_path / "state", free_port()
    server = start(seeds, config, tmp_path, state, port, request)
    urls = every_url(state)
    assert len(urls) > 100
    before = answers_of(over_http(server), urls)
    assert sum(1 for answer in before.values() if answer[0] == 200) == len(urls) - 3
    kill_service(server)

    server = start(seeds, config, tmp_path, state, port, request)
    assert answers_of(over_http(server), urls) == before  # from the store, at once
    time.sleep(2.5)  # the new loader's first reloads: the files have not changed
    assert answers_of(over_http(server), urls) == before
    server.stop()
    assert "Traceback" not in server.log()


def test_kill_9_mid_reload_keeps_the_previous_generation(
    tmp_path: Path, request: pytest.FixtureRequest, site_factory: Callable[..., Site]
) -> None:
    root = tmp_path / "seeds"
    write_corpus(root, "A")
    config = write_config(
        tmp_path / "feeds.yaml", title="Crash", base_url="http://feeds.test", reload_interval=1
    )
    state, port = tmp_path / "state", free_port()
    server = start(root, config, tmp_path, state, port, request)
    urls = every_url(state)
    before = settled_answers(server, state, "A", urls)
    assert sum(1 for answer in before.values() if answer[0] == 200) == len(urls) - 3
    generation, stamps, _ = stored(state)
    version = ""
    for attempt in range(ATTEMPTS):
        version = f"V{attempt}"
        group = server.process.pid
        processes, ticks = group_cpu_ticks(group)
        write_corpus(root, version)
        deadline = time.monotonic() + 30
        while True:  # until the reload is under way (see busy), or has already committed
            count, now = group_cpu_ticks(group)
            if busy(count - processes, now - ticks) or newest_generation(state) != generation:
                break
            assert time.monotonic() < deadline, "the service never started the reload"
            time.sleep(0.005)
        kill_service(server)
        newest, _, _ = stored(state)
        if newest == generation:
            break  # the kill landed before the reload committed
        # The reload won the race: its generation is now the previous one; try again.
        server = start(root, config, tmp_path, state, port, request)
        before = settled_answers(server, state, version, urls)
        generation, stamps, _ = stored(state)
    else:
        pytest.fail(f"no kill landed mid-reload in {ATTEMPTS} attempts")

    # The previous generation is intact: the same generation, none of the interrupted
    # reload's writes, a sound database, and a worker over it answers exactly as before.
    assert stored(state) == (generation, stamps, "ok")
    reader = Store.in_dir(state, writable=False)
    client = create_app(reader).test_client()

    def in_process(url: str) -> tuple[int, str, str, bytes]:
        response = client.get(url)
        return (
            response.status_code,
            response.headers.get("ETag", ""),
            response.headers.get("Last-Modified", ""),
            response.get_data(),
        )

    assert answers_of(in_process, urls) == before
    reader.close()

    # The next start takes the change in: every feed carries what a fresh load of the
    # files carries (ids and titles; update times differ: the restart saw edits).
    server = start(root, config, tmp_path, state, port, request)
    wait_for(lambda: server.health()["generation"] > generation, "the change taken in", 120)
    fresh = site_factory(root, config, environ={"FEEDSERVICE_BASE_URL": server.url})
    for url in ("/feeds/all.json", "/feeds/all.json?page=7", "/topics/topic-3.json",
                "/topics/everything.json?page=2"):  # fmt: skip
        status, _, body = server.get(url)
        expected = fresh.get(url)
        assert status == expected.status_code == 200, url
        got = [(item.id, item.title) for item in read_feed(body, "json")[1]]
        want = [(item.id, item.title) for item in read_feed(expected.get_data(), "json")[1]]
        assert got == want, url
        assert all(f"({version})" in title for _, title in got), url
    assert server.health()["articles"] == FILES
    server.stop()
    assert "SEKRIT" not in server.log()
    assert "Traceback" not in server.log()
