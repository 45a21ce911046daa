"""Operator commands: `config --print-defaults`, environment overrides and their docs,
`check --format json` for CI, and progress bars only on a terminal."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from conftest import REPO, article_fields, write_config, write_seed

from feedservice.cli import main
from feedservice.config import (
    ENV_KEYS,
    FEED_KEYS,
    SITE_KEYS,
    Config,
    ConfigError,
    default_config_text,
    load_config,
    parse_config,
)

DOCS = REPO / "docs" / "configuration.md"


def run(*args: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "feedservice", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env={**os.environ, **(env or {})},
        **kwargs,
    )


# --- config ------------------------------------------------------------------------------


def test_print_defaults_loads_as_the_defaults(tmp_path: Path) -> None:
    result = run("config", "--print-defaults")
    assert result.returncode == 0, result.stderr
    path = tmp_path / "feeds.yaml"
    path.write_text(result.stdout, encoding="utf-8")
    loaded = load_config(path, environ={})
    assert loaded == parse_config({}) == load_config(None, environ={})
    assert loaded.title == Config().title and loaded.feeds[0].name == "all"
    text = result.stdout
    for key in SITE_KEYS:
        assert re.search(rf"^{key}:", text, re.MULTILINE), key  # every key, set
    for key in FEED_KEYS:
        assert re.search(rf"^#\s+(- )?{key}:", text, re.MULTILINE), key  # shown in the example
    commented = [line for line in text.splitlines() if line.startswith("#")]
    assert len(commented) > len(SITE_KEYS) * 2  # every key explained
    assert text == default_config_text()


def test_print_effective_shows_environment_overrides(tmp_path: Path) -> None:
    config = write_config(tmp_path / "feeds.yaml", title="From the file", topic_limit=10)
    result = run(
        "config",
        "--print-effective",
        "--config",
        str(config),
        env={"FEEDSERVICE_TOPIC_LIMIT": "25", "FEEDSERVICE_BASE_URL": "https://feeds.example.org"},
    )
    assert result.returncode == 0, result.stderr
    assert "title: From the file" in result.stdout
    assert "topic_limit: 25" in result.stdout
    assert "base_url: https://feeds.example.org" in result.stdout
    shown = tmp_path / "shown.yaml"
    shown.write_text(result.stdout, encoding="utf-8")
    assert load_config(shown, environ={}) == load_config(
        config,
        environ={
            "FEEDSERVICE_TOPIC_LIMIT": "25",
            "FEEDSERVICE_BASE_URL": "https://feeds.example.org",
        },
    )


def test_every_key_can_come_from_the_environment(tmp_path: Path) -> None:
    config = write_config(tmp_path / "feeds.yaml", title="File title", reload_interval=30)
    environ = {
        "FEEDSERVICE_TITLE": "Env title",
        "FEEDSERVICE_DESCRIPTION": "Env description",
        "FEEDSERVICE_BASE_URL": "https://env.example.org/",
        "FEEDSERVICE_LANGUAGE": "de-AT",
        "FEEDSERVICE_RELOAD_INTERVAL": "5",
        "FEEDSERVICE_TOPIC_LIMIT": "7",
        "FEEDSERVICE_WEBSUB_HUB": "https://hub.example.org/",
        "FEEDSERVICE_FEEDS": '[{"name": "ml", "title": "ML", "topics": ["Machine Learning"]}]',
    }
    assert {f"FEEDSERVICE_{key.upper()}" for key in ENV_KEYS} == set(environ)
    loaded = load_config(config, environ=environ)
    assert (loaded.title, loaded.description, loaded.base_url, loaded.language) == (
        "Env title",
        "Env description",
        "https://env.example.org",
        "de-AT",
    )
    assert (loaded.reload_interval, loaded.topic_limit) == (5, 7)
    assert loaded.websub_hub == "https://hub.example.org/"
    assert [spec.name for spec in loaded.feeds] == ["all", "ml"]
    # YAML flow style works too, and a bad value names the variable.
    flow = load_config(None, environ={"FEEDSERVICE_FEEDS": "[{name: x, title: X, topics: '*'}]"})
    assert flow.feed("x") is not None
    with pytest.raises(ConfigError, match="FEEDSERVICE_FEEDS"):
        load_config(None, environ={"FEEDSERVICE_FEEDS": "[{name: x"})
    with pytest.raises(ConfigError, match="FEEDSERVICE_TOPIC_LIMIT"):
        load_config(None, environ={"FEEDSERVICE_TOPIC_LIMIT": "many"})


def test_docs_describe_every_key_and_variable() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for key in SITE_KEYS | FEED_KEYS:
        assert re.search(rf"^\|\s*`{key}`\s*\|", text, re.MULTILINE), f"{key} has no table row"
    names = {f"FEEDSERVICE_{key.upper()}" for key in ENV_KEYS}
    names |= {
        f"FEEDSERVICE_{name}"
        for name in ("SEEDS_DIR", "CONFIG_FILE", "HOST", "PORT", "WORKERS", "LOG_FORMAT")
    }
    names |= {"FEEDSERVICE_LOG_LEVEL", "PROMETHEUS_MULTIPROC_DIR"}
    for source in (REPO / "feedservice").rglob("*.py"):  # any other variable the code reads
        names |= set(re.findall(r'"(FEEDSERVICE_[A-Z_]+)"', source.read_text(encoding="utf-8")))
    names -= {"FEEDSERVICE_DEV_RELOADER", "FEEDSERVICE_WORKER_COUNT"}  # internal, set by serve
    for name in sorted(names):
        assert f"`{name}`" in text, f"{name} is not documented"


def test_serve_options_default_from_the_environment() -> None:
    from feedservice.cli import build_parser

    saved = dict(os.environ)
    try:
        os.environ.update(FEEDSERVICE_PORT="9123", FEEDSERVICE_WORKERS="3", FEEDSERVICE_HOST="::1")
        args = build_parser().parse_args(["serve"])
        assert (args.port, args.workers, args.host) == (9123, 3, "::1")
        args = build_parser().parse_args(["serve", "--port", "9000"])
        assert args.port == 9000  # the option wins
    finally:
        os.environ.clear()
        os.environ.update(saved)


# --- check --format json -----------------------------------------------------------------


def test_check_json_is_one_document_for_ci(tmp_path: Path, seeds: Path) -> None:
    config = write_config(tmp_path / "feeds.yaml", title="CI")
    write_seed(seeds, "good.md", **article_fields(1))
    write_seed(seeds, "dup.md", **article_fields(1, publishedDateTime="2020-01-01T00:00:00Z"))
    (seeds / "bad.md").write_text("---\ntitle: Bad\nwebUrl: a: b\n---\n", encoding="utf-8")
    result = run("check", "--seeds", str(seeds), "--config", str(config), "--format", "json",
                 env={"XDG_CACHE_HOME": str(tmp_path / "cache")})  # fmt: skip
    assert result.returncode == 1  # an error: CI fails
    assert result.stderr == ""  # no progress bar, no log lines off a terminal
    report = json.loads(result.stdout)  # the whole of stdout is one JSON document
    assert set(report) == {"files", "articles", "errors", "warnings", "findings"}
    assert (report["files"], report["articles"], report["errors"], report["warnings"]) == (
        3,
        1,
        1,
        1,
    )
    by_path = {Path(f["path"]).name: f for f in report["findings"]}
    assert by_path["bad.md"] == {
        "path": str(seeds / "bad.md"),
        "field": "(yaml)",
        "message": by_path["bad.md"]["message"],
        "line": 3,
        "level": "error",
    }
    assert by_path["dup.md"]["level"] == "warning" and by_path["dup.md"]["field"] == "webUrl"
    (seeds / "bad.md").unlink()
    result = run("check", "--seeds", str(seeds), "--config", str(config), "--format", "json",
                 env={"XDG_CACHE_HOME": str(tmp_path / "cache")})  # fmt: skip
    assert result.returncode == 0  # warnings alone pass
    assert json.loads(result.stdout)["errors"] == 0


def test_check_json_reports_a_bad_config(tmp_path: Path, seeds: Path, capsys) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text("topic_limit: lots\n", encoding="utf-8")
    write_seed(seeds, "good.md", **article_fields(1))
    code = main(["check", "--seeds", str(seeds), "--config", str(config), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert report["findings"][0]["field"] == "topic_limit"


# --- progress ----------------------------------------------------------------------------


def run_with_terminal_stderr(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal and stdout on a pipe: (code, stdout, tty text)."""
    controller, terminal = pty.openpty()
    # A fresh pty is 0x0; give it a real terminal's size (tqdm draws to the width).
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "feedservice", *args],
        stdout=subprocess.PIPE,
        stderr=terminal,
        cwd=REPO,
        env={**os.environ, **env},
    )
    os.close(terminal)
    seen = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        elif process.poll() is not None:
            break
    os.close(controller)
    out = process.stdout.read().decode() if process.stdout else ""
    return process.wait(timeout=30), out, seen.decode(errors="replace")


def test_progress_only_on_a_terminal(tmp_path: Path, seeds: Path) -> None:
    for n in range(1000):  # progress.MIN_FILES: smaller directories load too fast to watch
        write_seed(seeds, f"a{n:04d}.md", **article_fields(n))
    args = ["check", "--seeds", str(seeds), "--config", str(tmp_path / "none.yaml")]
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "FEEDSERVICE_CACHE_DIR": "off"}
    code, out, terminal = run_with_terminal_stderr([*args, "--format", "json"], env)
    assert code == 0
    assert json.loads(out)["files"] == 1000  # stdout stays clean JSON
    assert "checking seeds" in terminal and re.search(r"\d+/1000 ", terminal)
    quiet = run(*args, env=env)
    assert quiet.returncode == 0 and quiet.stderr == ""  # not a terminal: silent
    assert "checked 1000 files" in quiet.stdout
