"""Text made from the settings table: the commented default config, the effective config
and the tables of docs/configuration.md."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path
from typing import Any

import yaml

from feedservice.settings import ALL_TOPICS, ENV_PREFIX, FEED_SETTINGS, SETTINGS, SITE_SETTINGS


def default_config_text() -> str:
    """A fully commented config that loads as exactly the defaults."""
    lines = [
        "# feedservice config. Every key is optional; the values below are the defaults.",
        f"# Each key can also be set by an environment variable {ENV_PREFIX}<KEY>, which",
        "# wins over this file. Reference: docs/configuration.md",
    ]
    for setting in SITE_SETTINGS:
        if setting.name == "feeds":
            continue
        value = yaml.safe_dump({setting.name: setting.default}, default_flow_style=False)
        doc = textwrap.wrap(setting.doc, 92, initial_indent="# ", subsequent_indent="# ",
                            break_on_hyphens=False)  # fmt: skip
        lines += ["", *doc, value.rstrip("\n")]
    lines += ["", "# Configured feeds; unless one is named 'all', an 'all' feed is added."]
    lines += [
        f"#  {'-' if i == 0 else ' '} {s.name}: {s.example or '...'}  # {s.doc}"
        for i, s in enumerate(FEED_SETTINGS)
    ]
    lines.append("feeds: []")
    return "\n".join(lines) + "\n"


def effective_config_text(config: Any) -> str:
    """The site settings in force (file plus environment) as YAML."""
    site: dict[str, Any] = {}
    for setting in SITE_SETTINGS:
        value = getattr(config, setting.name)
        if setting.name == "feeds":
            value = [_plain(dataclasses.asdict(spec)) for spec in value]
        site[setting.name] = _plain(value)
    return yaml.safe_dump(site, allow_unicode=True, sort_keys=False)


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return ALL_TOPICS if value == (ALL_TOPICS,) else [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def docs_tables() -> str:
    """The settings tables of docs/configuration.md (a test keeps the file in step)."""
    rows = ["| key | variable | option | default | meaning |", "| --- | --- | --- | --- | --- |"]
    for s in SETTINGS:
        default = _shown(s.default)
        if s.name == "workers":
            default = "one per core"
        elif s.name == "state_dir":
            default = "`$XDG_STATE_HOME/feedservice`, else `~/.local/state/feedservice`"
        option = f"`{s.flag}`" if s.option else ""
        rows.append(f"| `{s.name}` | `{s.env}` | {option} | {default} | {s.doc} |")
    rows += ["", "| feed key | default | example | meaning |", "| --- | --- | --- | --- |"]
    for s in FEED_SETTINGS:
        default = "required" if s.name in {"name", "title", "topics"} else _shown(s.default)
        example = f"`{s.name}: {s.example}`" if s.example else ""
        rows.append(f"| `{s.name}` | {default} | {example} | {s.doc} |")
    return "\n".join(rows) + "\n"


def _shown(value: Any) -> str:
    return "none" if value in (None, ()) else f"`{value}`"
