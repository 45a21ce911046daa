"""A bad config never takes the service down.

At startup, `feedservice serve` with an invalid config exits with status 2 and a
message naming the offending key, before any worker starts. At reload, an invalid
config is ignored: the last good one stays in force, feeds keep being served, and
/healthz reports the problem until the file is fixed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, article_fields, free_port, start_server, write_config, write_seed

pytestmark = pytest.mark.timeout(120)

INVALID = {
    "reload_interval: soon\n": "reload_interval",
    "reload_interval: 0\n": "reload_interval",
    "reload_interval: 2021-13-45\n": "reload_interval",  # a broken date must not crash
    "topic_limit: " + "9" * 5000 + "\n": "topic_limit",
    "base_url: ftp://x\n": "base_url",
    "language: 'en gb'\n": "language",
    "colour: blue\n": "colour",
    "feeds:\n  - name: ok\n    title: OK\n    topics: [AI]\n    limit: 0\n": "feeds[ok].limit",
    "feeds:\n  - name: Bad Name\n    title: x\n    topics: [AI]\n": "feeds[Bad Name].name",
    "feeds:\n  - name: x\n    title: x\n": "feeds[x].topics",
    "feeds:\n  - title: x\n    topics: [AI]\n": "feeds[0].name",
    "feeds: {a: 1}\n": "feeds",
    "title: [unclosed\n": "(yaml)",
    "feeds: " + "[" * 100_000 + "\n": "(yaml)",  # libyaml would crash on this depth
    "feeds:\n  " + "- " * 100_000 + "x\n": "(yaml)",
    "just a string\n": "(top level)",
    "": "(file)",  # an empty file is an error, never "all defaults"
    "# only a comment\n": "(file)",
}


def serve(
    seeds: Path, config: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`feedservice serve` that must refuse to start; if it starts after all, it is stopped
    with everything it started when the timeout expires."""
    command = [
        sys.executable, "-m", "feedservice", "serve", "--seeds", str(seeds),
        "--config", str(config), "--port", str(free_port()), "--workers", "1",
        "--state-dir", str(seeds.parent / "state"),
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
    return subprocess.CompletedProcess(command, process.returncode, out, err)


@pytest.mark.parametrize("text", sorted(INVALID), ids=lambda text: text[:30])
def test_invalid_config_at_startup_exits_2_naming_the_key(tmp_path: Path, text: str) -> None:
    seeds = tmp_path / "seeds"
    write_seed(seeds, "a.md", **article_fields(1))
    config = tmp_path / "feeds.yaml"
    config.write_text(text, encoding="utf-8")
    result = serve(seeds, config)
    assert result.returncode == 2, result.stderr[-2000:]
    assert INVALID[text] in result.stderr, result.stderr
    assert str(config) in result.stderr
    assert "Traceback" not in result.stderr


def test_non_utf8_config_and_bad_environment_exit_2(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    write_seed(seeds, "a.md", **article_fields(1))
    config = tmp_path / "feeds.yaml"
    config.write_bytes(b"title: caf\xe9\n")
    result = serve(seeds, config)
    assert result.returncode == 2 and "(file)" in result.stderr and "UTF-8" in result.stderr
    config = write_config(tmp_path / "good.yaml", title="Good")
    result = serve(seeds, config, {"FEEDSERVICE_TOPIC_LIMIT": "many"})
    assert result.returncode == 2 and "FEEDSERVICE_TOPIC_LIMIT" in result.stderr, result.stderr


def test_a_config_file_named_explicitly_must_exist(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    write_seed(seeds, "a.md", **article_fields(1))
    missing = tmp_path / "missing.yaml"
    result = serve(seeds, missing)
    assert result.returncode == 2 and str(missing) in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = serve(seeds, missing, {"FEEDSERVICE_CONFIG_FILE": str(missing)})
    assert result.returncode == 2 and str(missing) in result.stderr, result.stderr


def _poll(server: Any, predicate: Any, timeout: float = 20) -> dict[str, Any]:
    """Wait until `predicate(health)` holds on several answers in a row (every worker)."""
    deadline = time.monotonic() + timeout
    streak, health = 0, {}
    while streak < 8:
        assert time.monotonic() < deadline, health
        health = server.health()
        streak = streak + 1 if predicate(health) else 0
        time.sleep(0.05 if streak else 0.2)
    return health


def atomic_write(path: Path, text: str) -> None:
    """Replace the file whole, as editors do: a reload never sees it half written."""
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


def test_invalid_config_at_reload_keeps_the_last_good_one(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    for n in range(3):
        write_seed(seeds, f"a{n}.md", **article_fields(n))
    config = write_config(
        tmp_path / "feeds.yaml", title="Good title", reload_interval=1, topic_limit=2
    )
    server = start_server(seeds, config, tmp_path, workers=2, wait_articles=3)
    try:
        good = server.get("/feeds/all.json")
        assert json.loads(good[2])["title"] == "All articles"
        for text, key in [
            ("title: Bad\ntopic_limit: -5\nreload_interval: 1\n", "topic_limit"),
            ("title: Bad\nfeeds: " + "[" * 100_000 + "\n", "(yaml)"),
            ("title: Bad\nreload_interval: 2021-13-45\n", "reload_interval"),
        ]:
            atomic_write(config, text)
            health = _poll(server, lambda h, key=key: key in (h.get("config_error") or ""))
            assert health["status"] == "degraded"
            assert str(config) in health["config_error"]
            assert health["articles"] == 3
            status, _, body = server.get("/topics/ai.json")
            assert status == 200
            assert len(json.loads(body)["items"]) == 2  # still the good topic_limit
            assert "Good title" in server.get("/")[2].decode()
            assert server.process.poll() is None
        atomic_write(config, "title: Fixed title\nreload_interval: 1\ntopic_limit: 3\n")
        health = _poll(server, lambda h: h.get("config_error") is None)
        assert health["status"] == "ok"
        _poll(server, lambda h: True)
        assert len(json.loads(server.get("/topics/ai.json")[2])["items"]) == 3
        assert "Fixed title" in server.get("/")[2].decode()
    finally:
        server.stop()
    log = server.log()
    assert "Traceback" not in log
    # The operator is told in the log too: once per bad config, not once per reload.
    told = [line for line in log.splitlines() if "keeping the last good one" in line]
    assert len(told) == 3, told
    assert "topic_limit" in told[0] and "(yaml)" in told[1] and "reload_interval" in told[2]
