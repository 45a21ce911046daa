"""The service configuration: schema, defaults and validation.

`config/feeds.yaml` holds site-wide keys at the top level and the configured
feeds under `feeds:`. Every key is checked here, so a bad config fails with a
message that names the key instead of failing later inside a request.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from feedservice.seeds import SeedError, refuse_yaml_bombs
from feedservice.yamlsafe import SafeLoader

DEFAULT_RELOAD_INTERVAL = 60
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
MAX_CONFIG_BYTES = 1 << 20
FEED_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
ALL_TOPICS = "*"
ENV_PREFIX = "FEEDSERVICE_"


class ConfigError(Exception):
    """A config problem; `key` names the offending key (e.g. `feeds[2].limit`)."""

    def __init__(self, key: str, message: str, path: str | None = None) -> None:
        self.key = key
        self.message = message
        self.path = path
        where = f"{path}: " if path else ""
        super().__init__(f"{where}{key}: {message}")


@dataclass(frozen=True, slots=True)
class FeedSpec:
    """A feed an admin configured: which topics it carries and how many items."""

    name: str
    title: str
    description: str
    topics: tuple[str, ...]  # topic names as written; ("*",) means every topic
    exclude_topics: tuple[str, ...] = ()
    min_quality: int | None = None
    limit: int = DEFAULT_LIMIT

    @property
    def all_topics(self) -> bool:
        return ALL_TOPICS in self.topics


@dataclass(frozen=True, slots=True)
class Config:
    title: str = "feedservice"
    description: str = "Articles by topic"
    base_url: str = "http://127.0.0.1:8080"
    language: str = "en"
    reload_interval: int = DEFAULT_RELOAD_INTERVAL
    topic_limit: int = DEFAULT_LIMIT
    websub_hub: str | None = None
    feeds: tuple[FeedSpec, ...] = field(default_factory=tuple)

    def feed(self, name: str) -> FeedSpec | None:
        return next((spec for spec in self.feeds if spec.name == name), None)


DEFAULT_ALL_FEED = FeedSpec(
    name="all",
    title="All articles",
    description="Every published article, newest first.",
    topics=(ALL_TOPICS,),
)

# Keys that FEEDSERVICE_<KEY> environment variables override (twelve-factor): every
# key. FEEDSERVICE_FEEDS holds the feed list as YAML or JSON flow text.
ENV_KEYS = (
    "title",
    "description",
    "base_url",
    "language",
    "reload_interval",
    "topic_limit",
    "websub_hub",
    "feeds",
)
SITE_KEYS = frozenset(ENV_KEYS)
FEED_KEYS = {"name", "title", "description", "topics", "exclude_topics", "min_quality", "limit"}
MAX_ENV_FEEDS_CHARS = 65536


def load_config(
    path: str | os.PathLike[str] | None, environ: Mapping[str, str] | None = None
) -> Config:
    """Read, validate and return the config; raise ConfigError naming the key.

    A missing file gives the defaults, so `feedservice serve` works on a bare
    seed directory. Environment variables `FEEDSERVICE_<KEY>` override the file.
    """
    raw: dict[str, Any] = {}
    shown = str(path) if path is not None else None
    if path is not None and Path(path).exists():
        raw = _read_yaml(Path(path))
    raw = _apply_env(raw, os.environ if environ is None else environ)
    try:
        return parse_config(raw)
    except ConfigError as error:
        raise ConfigError(error.key, error.message, shown) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    shown = str(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as error:
        raise ConfigError("(file)", f"cannot read: {error.strerror}", shown) from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError("(file)", f"larger than {MAX_CONFIG_BYTES} bytes", shown)
    try:
        text = data.decode("utf-8")
        refuse_yaml_bombs(text, shown)  # libyaml crashes the process on very deep nesting
        loaded = yaml.load(text, Loader=SafeLoader)
    except UnicodeDecodeError:
        raise ConfigError("(file)", "not UTF-8 text", shown) from None
    except SeedError as error:
        line = f" (line {error.line - 1})" if error.line else ""  # no '---' line here
        raise ConfigError("(yaml)", f"{error.message}{line}", shown) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError("(yaml)", f"invalid YAML{line}: {problem}", shown) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError("(top level)", "must be a mapping of keys", shown)
    return loaded


def _apply_env(raw: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    merged = dict(raw)
    for key in ENV_KEYS:
        value = environ.get(ENV_PREFIX + key.upper())
        if value is None:
            continue
        if key == "feeds":
            merged[key] = _env_feeds(value)
        elif key in {"reload_interval", "topic_limit"}:
            try:
                merged[key] = int(value)
            except ValueError:
                raise ConfigError(
                    f"{key} ({ENV_PREFIX}{key.upper()})", f"must be a whole number, got {value!r}"
                ) from None
        else:
            merged[key] = value or None
    return merged


def _env_feeds(value: str) -> Any:
    where = f"feeds ({ENV_PREFIX}FEEDS)"
    if len(value) > MAX_ENV_FEEDS_CHARS:
        raise ConfigError(where, f"longer than {MAX_ENV_FEEDS_CHARS} characters")
    if not value.strip():
        return []
    try:
        refuse_yaml_bombs(value, where)
        return yaml.load(value, Loader=SafeLoader)
    except SeedError as error:
        raise ConfigError(where, error.message) from None
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or type(error).__name__
        raise ConfigError(where, f"invalid YAML/JSON: {problem}") from None


def parse_config(raw: Mapping[str, Any]) -> Config:
    """Validate a loaded mapping into a Config (pure; used by tests and `check`)."""
    unknown = sorted(str(key) for key in raw if key not in SITE_KEYS)
    if unknown:
        raise ConfigError(unknown[0], f"unknown key (known keys: {', '.join(sorted(SITE_KEYS))})")
    defaults = Config()
    config = Config(
        title=_text(raw, "title", defaults.title),
        description=_text(raw, "description", defaults.description),
        base_url=_base_url(raw.get("base_url", defaults.base_url)),
        language=_language(raw.get("language", defaults.language)),
        reload_interval=_int(raw, "reload_interval", defaults.reload_interval, 1, 86400),
        topic_limit=_int(raw, "topic_limit", defaults.topic_limit, 1, MAX_LIMIT),
        websub_hub=_optional_url(raw.get("websub_hub"), "websub_hub"),
    )
    feeds = _feeds(raw.get("feeds", []))
    if not any(spec.name == DEFAULT_ALL_FEED.name for spec in feeds):
        feeds = (replace(DEFAULT_ALL_FEED, limit=config.topic_limit), *feeds)
    return replace(config, feeds=feeds)


def _text(raw: Mapping[str, Any], key: str, default: str, where: str = "") -> str:
    value = raw.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(where + key, "must be a non-empty string")
    if len(value) > 1000:
        raise ConfigError(where + key, "must be at most 1000 characters")
    return " ".join(value.split())


def _int(
    raw: Mapping[str, Any], key: str, default: int, low: int, high: int, where: str = ""
) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(where + key, f"must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(where + key, f"must be between {low} and {high}, got {value}")
    return value


def _base_url(value: Any) -> str:
    url = _optional_url(value, "base_url")
    if url is None:
        raise ConfigError("base_url", "is required")
    return url.rstrip("/")


def _optional_url(value: Any, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(key, "must be an absolute http(s) URL")
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ConfigError(key, f"must be an absolute http(s) URL, got {value!r}")
    return value


def _language(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*", value):
        raise ConfigError(
            "language", f"must be a language tag such as 'en' or 'en-GB', got {value!r}"
        )
    return value


def _feeds(value: Any) -> tuple[FeedSpec, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError("feeds", "must be a list of feeds")
    specs: list[FeedSpec] = []
    seen: set[str] = set()
    for index, item in enumerate(value):
        where = f"feeds[{index}]."
        if not isinstance(item, dict):
            raise ConfigError(f"feeds[{index}]", "must be a mapping with name, title, topics")
        unknown = sorted(str(key) for key in item if key not in FEED_KEYS)
        if unknown:
            raise ConfigError(where + unknown[0], "unknown key")
        name = item.get("name")
        if not isinstance(name, str) or not FEED_NAME.match(name):
            raise ConfigError(where + "name", "must be lowercase letters, digits, '-' or '_'")
        if name in seen:
            raise ConfigError(where + "name", f"duplicate feed name {name!r}")
        seen.add(name)
        min_quality = item.get("min_quality")
        if min_quality is not None and (
            isinstance(min_quality, bool) or not isinstance(min_quality, int)
        ):
            raise ConfigError(where + "min_quality", "must be a whole number")
        specs.append(
            FeedSpec(
                name=name,
                title=_text(item, "title", "", where),
                description=_text(item, "description", item.get("title", ""), where),
                topics=_topic_list(item, "topics", where, required=True),
                exclude_topics=_topic_list(item, "exclude_topics", where, required=False),
                min_quality=min_quality,
                limit=_int(item, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT, where),
            )
        )
    return tuple(specs)


def _topic_list(
    item: Mapping[str, Any], key: str, where: str, *, required: bool
) -> tuple[str, ...]:
    value = item.get(key)
    if value is None:
        if required:
            raise ConfigError(where + key, "is required (a list of topic names, or '*' for all)")
        return ()
    if value == ALL_TOPICS:
        return (ALL_TOPICS,)
    if not isinstance(value, list) or not value:
        raise ConfigError(where + key, "must be a non-empty list of topic names")
    topics = []
    for topic in value:
        if not isinstance(topic, str) or not topic.strip():
            raise ConfigError(where + key, f"topic names must be non-empty strings, got {topic!r}")
        topics.append(topic.strip())
    return tuple(topics)


# --- the commented default config (`feedservice config --print-defaults`) ---------------

_SITE_DOCS = {
    "title": "Site title: names the site in every feed and on the HTML pages. (string)",
    "description": "Site description, shown on the index page. (string)",
    "base_url": (
        "Public address of the service, used for every absolute URL in the feeds\n"
        "(self links, paging, OPML). Set it to what readers type. (http(s) URL)"
    ),
    "language": "Language tag of the feeds, such as en or en-GB. (string)",
    "reload_interval": (
        "Seconds between re-reads of the seeds and this file, 1-86400; also the\n"
        "Cache-Control max-age of every feed. (integer)"
    ),
    "topic_limit": (
        "Items per page of each topic feed (and of the implicit 'all' feed),\n1-1000. (integer)"
    ),
    "websub_hub": (
        "WebSub hub to advertise in the feeds and to ping after changes,\n"
        "e.g. https://hub.example.com/; null for none. (http(s) URL or null)"
    ),
}


def default_config_text() -> str:
    """A fully commented config equal to the defaults; every key is shown."""
    defaults = Config()
    lines = [
        "# feedservice config (config/feeds.yaml). Every key is optional; the values",
        "# below are the defaults. Each key can also be set by an environment variable",
        f"# {ENV_PREFIX}<KEY> (e.g. {ENV_PREFIX}BASE_URL), which wins over this file.",
        "# Reference: docs/configuration.md",
    ]
    for key, doc in _SITE_DOCS.items():
        value = getattr(defaults, key)
        dumped = yaml.safe_dump({key: value}, allow_unicode=True, default_flow_style=False)
        lines += ["", *(f"# {line}" for line in doc.splitlines()), dumped.rstrip("\n")]
    lines += [
        "",
        "# Configured feeds, each served at /feeds/<name>.rss, .atom and .json. Topic",
        "# feeds (/topics/<slug>.*) exist for every topic without any configuration.",
        "# Unless a feed is named 'all', an 'all' feed with every article is added.",
        "# An example feed, with every key a feed can have:",
        "#",
        "#  - name: ml                    # lowercase letters, digits, - or _ (required)",
        "#    title: Machine learning     # (required)",
        "#    description: ML articles    # (default: the title)",
        "#    topics: [Machine Learning]  # topic names, or '*' for every topic (required)",
        "#    exclude_topics: [Sponsored] # topics to leave out (default: none)",
        "#    min_quality: 60             # leave out lower quality scores (default: no minimum)",
        f"#    limit: {DEFAULT_LIMIT}                   # items per page, 1-{MAX_LIMIT}"
        f" (default: {DEFAULT_LIMIT})",
        "feeds: []",
    ]
    return "\n".join(lines) + "\n"


def effective_config_text(config: Config) -> str:
    """The config in force (file plus environment) as YAML, for `config --print-effective`."""
    feeds = []
    for spec in config.feeds:
        entry: dict[str, Any] = {
            "name": spec.name,
            "title": spec.title,
            "description": spec.description,
            "topics": ALL_TOPICS if spec.all_topics else list(spec.topics),
        }
        if spec.exclude_topics:
            entry["exclude_topics"] = list(spec.exclude_topics)
        if spec.min_quality is not None:
            entry["min_quality"] = spec.min_quality
        entry["limit"] = spec.limit
        feeds.append(entry)
    site = {key: getattr(config, key) for key in _SITE_DOCS}
    return yaml.safe_dump({**site, "feeds": feeds}, allow_unicode=True, sort_keys=False)
