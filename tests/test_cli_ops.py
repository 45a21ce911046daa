"""Operator commands: `config --print-defaults`, environment overrides and their docs,
and `check --format json` for CI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, article_fields, write_config, write_seed

from feedservice import settings
from feedservice.cli import build_parser, load_config, main
from feedservice.settings import ConfigError

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
    loaded = settings.load(path, {}, required=True)
    assert loaded == settings.resolve({}, {}) == settings.load(None, {})
    assert loaded.title == settings.Config().title and loaded.feeds[0].name == "all"
    text = result.stdout
    for setting in settings.SITE_SETTINGS:  # every key an admin can put in the file
        # shown set to its default; the state directory (a machine's path) at least named
        pattern = rf"^#?\s*{setting.name}:" if setting.name == "state_dir" else rf"^{setting.name}:"
        assert re.search(pattern, text, re.MULTILINE), setting.name
    for setting in settings.FEED_SETTINGS:  # shown in the commented example
        assert re.search(rf"^#\s+(- )?{setting.name}:", text, re.MULTILINE), setting.name
    commented = [line for line in text.splitlines() if line.startswith("#")]
    assert len(commented) > len(settings.SITE_SETTINGS) * 2  # every key explained
    assert text == settings.default_config_text()


def test_print_effective_shows_environment_overrides(tmp_path: Path) -> None:
    config = write_config(tmp_path / "feeds.yaml", title="From the file", topic_limit=10)
    environ = {"FEEDSERVICE_TOPIC_LIMIT": "25", "FEEDSERVICE_BASE_URL": "https://feeds.example.org"}
    result = run("config", "--print-effective", "--config", str(config), env=environ)
    assert result.returncode == 0, result.stderr
    assert "title: From the file" in result.stdout
    assert "topic_limit: 25" in result.stdout
    assert "base_url: https://feeds.example.org" in result.stdout
    shown = tmp_path / "shown.yaml"
    shown.write_text(result.stdout, encoding="utf-8")
    assert settings.load(shown, {}) == settings.load(config, environ)


def test_every_setting_can_come_from_the_environment(tmp_path: Path) -> None:
    config = write_config(tmp_path / "feeds.yaml", title="File title", reload_interval=30)
    environ = {
        "FEEDSERVICE_TITLE": "Env title",
        "FEEDSERVICE_DESCRIPTION": "Env description",
        "FEEDSERVICE_BASE_URL": "https://env.example.org/",
        "FEEDSERVICE_LANGUAGE": "de-AT",
        "FEEDSERVICE_RELOAD_INTERVAL": "5",
        "FEEDSERVICE_TOPIC_LIMIT": "7",
        "FEEDSERVICE_WEBSUB_HUB": "https://hub.example.org/",
        "FEEDSERVICE_PERMALINK": "/:year/:title/",
        "FEEDSERVICE_TIMEZONE": "Europe/Oslo",
        "FEEDSERVICE_TAXONOMIES": "series, Recipes",
        "FEEDSERVICE_FUTURE": "publish",
        "FEEDSERVICE_TOMBSTONE_RETENTION": "3600",
        "FEEDSERVICE_ICON": "https://env.example.org/icon.png",
        "FEEDSERVICE_LOGO": "https://env.example.org/logo.png",
        "FEEDSERVICE_AUTHOR": "Env desk",
        "FEEDSERVICE_TOPICS": "{AI: {title: Artificial intelligence, language: en-GB}}",
        "FEEDSERVICE_STATE_DIR": str(tmp_path / "state"),
        "FEEDSERVICE_FEEDS": '[{"name": "ml", "title": "ML", "topics": ["Machine Learning"]}]',
        "FEEDSERVICE_SEEDS_DIR": str(tmp_path / "seeds"),
        "FEEDSERVICE_CONFIG_FILE": str(config),
        "FEEDSERVICE_HOST": "::1",
        "FEEDSERVICE_PORT": "9123",
        "FEEDSERVICE_WORKERS": "3",
        "FEEDSERVICE_LOG_FORMAT": "json",
        "FEEDSERVICE_LOG_LEVEL": "warning",
        "FEEDSERVICE_ACCESS_LOG": "true",
        "FEEDSERVICE_DRAIN_TIMEOUT": "3",
        "FEEDSERVICE_CONFIG_SETTLE": "0.5",
        "FEEDSERVICE_SUBSCRIBER_FEEDS": "false",
    }
    assert {setting.env for setting in settings.SETTINGS} == set(environ)
    loaded = settings.load(config, environ)
    assert (loaded.title, loaded.description, loaded.base_url, loaded.language) == (
        "Env title",
        "Env description",
        "https://env.example.org",
        "de-AT",
    )
    assert (loaded.reload_interval, loaded.topic_limit) == (5, 7)
    assert loaded.websub_hub == "https://hub.example.org/"
    assert (loaded.future, loaded.tombstone_retention, loaded.author) == (
        "publish",
        3600,
        "Env desk",
    )
    assert (loaded.icon, loaded.logo) == (environ["FEEDSERVICE_ICON"], environ["FEEDSERVICE_LOGO"])
    assert (loaded.permalink, loaded.timezone) == ("/:year/:title/", "Europe/Oslo")
    assert tuple(loaded.taxonomies) == ("series", "recipes")
    assert loaded.topics == {"AI": {"title": "Artificial intelligence", "language": "en-GB"}}
    assert loaded.state_dir == tmp_path / "state"
    assert [spec.name for spec in loaded.feeds] == ["all", "ml"]
    assert (loaded.seeds_dir, loaded.config_file) == (tmp_path / "seeds", config)
    assert (loaded.host, loaded.port, loaded.workers) == ("::1", 9123, 3)
    assert (loaded.log_format, loaded.log_level) == ("json", "warning")
    assert (loaded.access_log, loaded.drain_timeout, loaded.config_settle) == (True, 3, 0.5)
    # The environment's config file is the one read, and it must exist.
    assert settings.config_source({}, environ) == (config, True)
    # YAML flow style works too, and a bad value names the variable.
    flow = settings.load(None, {"FEEDSERVICE_FEEDS": "[{name: x, title: X, topics: '*'}]"})
    assert [spec.name for spec in flow.feeds] == ["all", "x"]
    with pytest.raises(ConfigError, match="FEEDSERVICE_FEEDS"):
        settings.load(None, {"FEEDSERVICE_FEEDS": "[{name: x"})
    for name, bad in (("TOPIC_LIMIT", "many"), ("PORT", "http"), ("LOG_LEVEL", "loud")):
        with pytest.raises(ConfigError, match=f"FEEDSERVICE_{name}"):
            settings.load(None, {f"FEEDSERVICE_{name}": bad})


def test_docs_describe_every_setting_and_variable() -> None:
    """docs/configuration.md has a table row for every setting and feed key, and names
    every variable (its tables are made by settings.docs_tables())."""
    text = DOCS.read_text(encoding="utf-8")
    missing = [
        setting.name
        for setting in (*settings.SETTINGS, *settings.FEED_SETTINGS)
        if not re.search(rf"^\|\s*`{setting.name}`\s*\|", text, re.MULTILINE)
    ]
    assert not missing, f"no table row for {missing}"
    names = {setting.env for setting in settings.SETTINGS}
    for source in (REPO / "feedservice").rglob("*.py"):  # any other variable the code reads
        names |= set(re.findall(r'"(FEEDSERVICE_[A-Z_]+)"', source.read_text(encoding="utf-8")))
    undocumented = sorted(name for name in names if f"`{name}`" not in text)
    assert not undocumented, f"not documented: {undocumented}"
    assert "FEEDSERVICE_CACHE_DIR" not in text  # gone: the state directory replaced it


def test_serve_options_default_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path / "feeds.yaml", title="Env")
    for name, value in {
        "PORT": "9123",
        "WORKERS": "3",
        "HOST": "::1",
        "CONFIG_FILE": str(config),
        "STATE_DIR": str(tmp_path / "state"),
    }.items():
        monkeypatch.setenv(f"FEEDSERVICE_{name}", value)
    loaded, path, required = load_config(build_parser().parse_args(["serve"]))
    assert (loaded.port, loaded.workers, loaded.host) == (9123, 3, "::1")
    assert (loaded.title, path, required) == ("Env", config, True)
    assert loaded.state_dir == tmp_path / "state"
    args = build_parser().parse_args(["serve", "--port", "9000", "--state-dir", str(tmp_path)])
    loaded, _, _ = load_config(args)
    assert (loaded.port, loaded.state_dir) == (9000, tmp_path)  # the option wins


# --- check --format json -----------------------------------------------------------------


def test_check_json_is_one_document_for_ci(tmp_path: Path, seeds: Path) -> None:
    config = write_config(tmp_path / "feeds.yaml", title="CI")
    write_seed(seeds, "good.md", **article_fields(1))
    write_seed(seeds, "dup.md", **article_fields(1, publishedDateTime="2020-01-01T00:00:00Z"))
    write_seed(seeds, "draft.md", **article_fields(2, published=False))
    (seeds / "bad.md").write_text("---\ntitle: Bad\nwebUrl: a: b\n---\n", encoding="utf-8")
    result = run("check", "--seeds", str(seeds), "--config", str(config), "--format", "json")
    assert result.returncode == 1  # an error: CI fails
    assert result.stderr == ""  # no log lines: the report is the output
    report = json.loads(result.stdout)  # the whole of stdout is one JSON document
    assert set(report) == {"files", "articles", "drafts", "errors", "warnings", "findings"}
    counts = tuple(report[key] for key in ("files", "articles", "drafts", "errors", "warnings"))
    assert counts == (4, 1, 1, 1, 1)
    by_path = {Path(f["path"]).name: f for f in report["findings"]}
    assert by_path["bad.md"] == {
        "path": str(seeds / "bad.md"),
        "field": "(yaml)",
        "message": by_path["bad.md"]["message"],
        "line": 3,
        "level": "error",
    }
    assert by_path["dup.md"]["level"] == "warning" and by_path["dup.md"]["field"] == "webUrl"
    assert "draft.md" not in by_path
    (seeds / "bad.md").unlink()
    result = run("check", "--seeds", str(seeds), "--config", str(config), "--format", "json")
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
    assert report["findings"][0]["path"] == str(config)
    assert (report["files"], report["articles"], report["errors"]) == (1, 1, 1)


def test_an_explicit_config_file_must_exist(tmp_path: Path, seeds: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    for args in (
        ("config", "--print-effective", "--config", str(missing)),
        ("build", "--seeds", str(seeds), "--config", str(missing), "--out", str(tmp_path / "o"),
         "--state-dir", str(tmp_path / "state")),
    ):  # fmt: skip
        result = run(*args)
        assert result.returncode == 2, result.stderr
        assert str(missing) in result.stderr and len(result.stderr.splitlines()) == 1
    result = run("config", "--print-effective", env={"FEEDSERVICE_CONFIG_FILE": str(missing)})
    assert result.returncode == 2 and str(missing) in result.stderr
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    result = run("config", "--print-effective", "--config", str(empty))
    assert result.returncode == 2 and "empty" in result.stderr
