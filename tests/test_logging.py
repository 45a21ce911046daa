"""Logs: one JSON object per line in json mode (granian's lines too), one summary per
committed reload (written by the loader process only, whatever the number of workers),
one line per bad file with path, field and reason, and never `secured`."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from conftest import (
    REPO,
    LiveServer,
    article_fields,
    seed_text,
    wait_for,
    write_config,
    write_seed,
)

from feedservice.runtime.logs import JsonFormatter, logging_config


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord(
        "feedservice.reload", logging.WARNING, __file__, 1, message, args, None
    )
    made.__dict__.update(extra)
    return made


def test_json_formatter_gives_one_object_per_line_with_extras() -> None:
    formatter = JsonFormatter()
    line = formatter.format(
        record("seed error: %s", "a.md: title: bad\nsecond line", path="a.md", field="title")
    )
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "warning" and entry["logger"] == "feedservice.reload"
    assert entry["message"] == "seed error: a.md: title: bad\nsecond line"
    assert entry["path"] == "a.md" and entry["field"] == "title"
    assert entry["time"].endswith("Z")
    try:
        raise ValueError("boom")
    except ValueError:
        failing = record("failed")
        failing.exc_info = sys.exc_info()
    entry = json.loads(formatter.format(failing))
    assert "ValueError: boom" in entry["exception"]


def test_logging_config_covers_granian_loggers() -> None:
    config = logging_config("json", "warning")
    assert config["formatters"]["main"]["()"] == "feedservice.runtime.logs.JsonFormatter"
    assert {"_granian", "granian.access"} <= set(config["loggers"])
    assert config["root"]["level"] == "WARNING"


def bad_seeds(seeds: Path) -> None:
    write_seed(seeds, "good.md", **article_fields(1))
    write_seed(
        seeds, "bad-date.md", **article_fields(2, publishedDateTime="sometime soon")
    )  # `secured` is set in every article_fields
    (seeds / "bad-yaml.md").write_text(
        "---\ntitle: Broken\nsecured: SECRET-yaml-do-not-publish\nwebUrl: a: b\n---\n",
        encoding="utf-8",
    )


def atomic_write(path: Path, text: str) -> None:
    """Replace a file whole, as editors do: a reload never sees it half written."""
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


def test_json_logs_from_a_two_worker_server(
    tmp_path: Path, seeds: Path, live_server_factory: Callable[..., LiveServer]
) -> None:
    config = write_config(tmp_path / "feeds.yaml", title="Logs", reload_interval=1)
    bad_seeds(seeds)
    # The environment variable selects json, as a container or systemd unit would; at debug
    # level granian says its start-up lines too (at the default level it is quiet).
    environment = {"FEEDSERVICE_LOG_FORMAT": "json", "FEEDSERVICE_LOG_LEVEL": "debug"}
    server = live_server_factory(seeds, config, workers=2, env=environment)
    atomic_write(
        seeds / "later-bad.md", seed_text(**article_fields(3, webUrl="javascript:alert(1)"))
    )
    wait_for(lambda: "later-bad.md" in server.log(), "the reload that finds later-bad.md")
    atomic_write(config, "title: [broken\n")
    wait_for(lambda: server.health().get("config_error"), "the config error")
    wait_for(lambda: "keeping the last good one" in server.log(), "the config error line")
    generations = server.health()["generation"]
    server.stop()

    text = server.log()
    assert "SECRET" not in text
    entries = []
    for line in text.splitlines():
        if line.strip():
            entry = json.loads(line)  # every line is one JSON object
            assert isinstance(entry, dict) and {"time", "level", "logger", "message"} <= set(entry)
            entries.append(entry)
    loggers = {entry["logger"] for entry in entries}
    assert "_granian" in loggers  # granian's own lines are JSON too
    summaries = [e for e in entries if e["message"].startswith("reload: ")]
    # One line per committed generation (start-up, the new file, the bad config), from
    # the loader alone: two workers do not make it two.
    assert len(summaries) == generations == 3, summaries
    assert {e["logger"] for e in summaries} == {"feedservice.reload"}
    assert (summaries[0]["added"], summaries[0]["errors"]) == (3, 2)
    assert (summaries[1]["added"], summaries[1]["changed"], summaries[1]["errors"]) == (1, 0, 3)
    assert (summaries[2]["added"], summaries[2]["changed"], summaries[2]["removed"]) == (0, 0, 0)
    assert all(isinstance(e["duration_ms"], int | float) for e in summaries)
    bad_lines = [e for e in entries if e["message"].startswith("seed error: ")]
    by_path = {e["path"]: e for e in bad_lines}
    assert len(bad_lines) == len(by_path) == 3  # one line per bad file, once
    assert by_path["bad-date.md"]["field"] == "publishedDateTime"
    assert by_path["bad-yaml.md"]["field"] == "(yaml)" and by_path["bad-yaml.md"]["line"] == 4
    assert by_path["later-bad.md"]["field"] == "webUrl"
    assert all(e["reason"] for e in bad_lines)
    config_errors = [e for e in entries if "keeping the last good one" in e["message"]]
    assert len(config_errors) == 1 and config_errors[0]["level"] == "error"
    assert str(config) in config_errors[0]["message"]


def test_text_logs(
    tmp_path: Path, seeds: Path, live_server_factory: Callable[..., LiveServer]
) -> None:
    config = write_config(tmp_path / "feeds.yaml", title="Logs", reload_interval=60)
    bad_seeds(seeds)
    server = live_server_factory(seeds, config, workers=1, extra_args=("--log-format", "text"))
    server.stop()
    text = server.log()
    assert "SECRET" not in text
    assert " INFO feedservice.reload: reload: +3 ~0 -0 files, 2 errors, " in text
    assert "seed error: bad-yaml.md: (yaml): invalid YAML: " in text
    assert "seed error: bad-date.md: publishedDateTime: " in text
    assert text.count(" reload: ") == 1  # the first load, logged once


def test_bad_log_format_from_environment_is_refused(seeds: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "feeds.yaml", title="Logs")
    result = subprocess.run(
        [sys.executable, "-m", "feedservice", "serve", "--seeds", str(seeds), "--config",
         str(config), "--state-dir", str(tmp_path / "state")],
        env={"FEEDSERVICE_LOG_FORMAT": "xml", "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "FEEDSERVICE_LOG_FORMAT" in result.stderr
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
