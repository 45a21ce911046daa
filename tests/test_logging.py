"""Logs: one JSON object per line in json mode (granian's lines too), one summary per
reload, one line per bad file with path, field and reason, and never `secured`."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from conftest import REPO, LiveServer, article_fields, wait_for, write_config, write_seed

from feedservice.logs import JsonFormatter, logging_config


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
    assert config["formatters"]["main"]["()"] == "feedservice.logs.JsonFormatter"
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


def test_json_logs_from_a_two_worker_server(
    tmp_path: Path, seeds: Path, live_server_factory: Callable[..., LiveServer]
) -> None:
    config = write_config(tmp_path / "feeds.yaml", title="Logs", reload_interval=1)
    bad_seeds(seeds)
    # The environment variable selects json, as a container or systemd unit would.
    server = live_server_factory(seeds, config, workers=2, env={"FEEDSERVICE_LOG_FORMAT": "json"})
    write_seed(seeds, "later-bad.md", **article_fields(3, webUrl="javascript:alert(1)"))
    wait_for(lambda: "later-bad.md" in server.log(), "the reload that finds later-bad.md")
    config.write_text("title: [broken\n", encoding="utf-8")
    wait_for(lambda: "keeping the last good config" in server.log(), "the config error line")
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
    assert len(summaries) == 2, summaries  # start-up and one change; one worker reports
    assert summaries[0]["added"] == 3 and summaries[0]["errors"] == 2
    assert summaries[1]["added"] == 1 and summaries[1]["errors"] == 3
    bad_lines = [e for e in entries if e["message"].startswith("seed error: ")]
    by_path = {e["path"]: e for e in bad_lines}
    assert len(bad_lines) == len(by_path) == 3  # one line per bad file
    assert by_path["bad-date.md"]["field"] == "publishedDateTime"
    assert by_path["bad-yaml.md"]["field"] == "(yaml)" and by_path["bad-yaml.md"]["line"] == 4
    assert by_path["later-bad.md"]["field"] == "webUrl"
    assert all(e["reason"] for e in bad_lines)
    config_errors = [e for e in entries if "keeping the last good config" in e["message"]]
    assert len(config_errors) == 1 and config_errors[0]["level"] == "error"


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


def test_bad_log_format_from_environment_is_refused(seeds: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "feedservice", "serve", "--seeds", str(seeds), "--config",
         str(tmp_path / "none.yaml")],
        env={"FEEDSERVICE_LOG_FORMAT": "xml", "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "FEEDSERVICE_LOG_FORMAT" in result.stderr
