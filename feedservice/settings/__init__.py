"""Every setting, defined once: its default, type, environment variable and documentation.

`SETTINGS` (site and command settings) and `FEED_SETTINGS` (the keys of one configured
feed) are the only lists of keys. Everything else is derived from them: the `Config`
and `FeedSpec` types, the config file's validation, the `FEEDSERVICE_<NAME>`
environment variables, the command-line options, `config --print-defaults` and the
tables in docs/configuration.md (as Datasette does with its settings).

Precedence, strongest first: a command-line option, the environment, the config file,
the default.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from feedservice.settings import values as v
from feedservice.settings.files import MAX_CONFIG_BYTES, load_yaml, read_config_file
from feedservice.settings.newsroom import (
    BRAND_FEED_SETTINGS,
    BRAND_KEYS,
    NEWSROOM_SETTINGS,
    rules_description,
)
from feedservice.settings.values import ALL_TOPICS, ENV_PREFIX, ConfigError, Setting

MAX_LIMIT = 1000
MAX_ENV_CHARS = 65536


def _default_state_dir() -> str:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join("~", ".local", "state")
    return os.path.join(base, "feedservice")


# The keys of one entry of `feeds:` (name and title are required).
FEED_SETTINGS = (
    Setting("name", None, v.feed_name, "The feed's URL name, unique.", "ml"),
    Setting("title", None, v.text, "The feed's title.", "Machine learning"),
    Setting(
        "description",
        None,
        v.optional_text,
        "The description (default: its rules in words, e.g. `Articles tagged AI or Robotics, "
        "newest first`).",
        "ML news",
    ),
    Setting(
        "topics",
        None,
        v.topics(required=True),
        "Articles with any of these topics, compared by slug (`AI` matches `ai`); "
        '`"*"` carries every article.',
        "[Machine Learning, AI]",
    ),
    Setting(
        "exclude_topics", None, v.topics(required=False), "Leaves out these topics.", "[Sponsored]"
    ),
    Setting(
        "min_quality",
        None,
        v.optional_integer,
        "Leaves out articles whose `quality` is lower (a missing quality counts as 0).",
        "60",
    ),
    Setting("limit", 50, v.integer(1, MAX_LIMIT), f"Items per page, 1-{MAX_LIMIT}.", "20"),
    Setting(
        "content",
        "full",
        v.choice("full", "summary"),
        "`full`: each item carries its page's whole content (RSS `content:encoded`, Atom "
        "`content`, JSON Feed `content_html`) beside the summary; `summary`: the summary only.",
        "summary",
    ),
    *BRAND_FEED_SETTINGS,
)
FeedSpec = dataclasses.make_dataclass(
    "FeedSpec",
    [(s.name, Any, dataclasses.field(default=s.default)) for s in FEED_SETTINGS],
    frozen=True,
)
FeedSpec.__doc__ = "A feed an admin configured: its name, title and which articles it carries."
FeedSpec.__module__ = __name__  # (so that it pickles: pages go to other processes to render)
DEFAULT_ALL_FEED = FeedSpec(
    name="all",
    title="All articles",
    description="Every published article, newest first.",
    topics=(ALL_TOPICS,),
    exclude_topics=(),
)


def _feeds(value: Any, key: str) -> tuple[Any, ...]:
    if value is None or value == ():
        return ()
    if not isinstance(value, list):
        raise ConfigError(key, "must be a list of feeds")
    specs: dict[str, Any] = {}
    known = {s.name for s in FEED_SETTINGS}
    for index, item in enumerate(value):
        label = item.get("name") if isinstance(item, dict) else None
        where = f"feeds[{label if isinstance(label, str) and label else index}]"
        if not isinstance(item, dict):
            raise ConfigError(where, "must be a mapping with name, title and topics")
        unknown = sorted(str(k) for k in item if k not in known)
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}", "unknown key")
        values = {
            s.name: s.parse(item.get(s.name, s.default), f"{where}.{s.name}") for s in FEED_SETTINGS
        }
        if values["title"] is None:
            raise ConfigError(f"{where}.title", "is required")
        if values["name"] in specs:
            raise ConfigError(f"{where}.name", f"duplicate feed name {values['name']!r}")
        values["description"] = values["description"] or rules_description(values)
        specs[values["name"]] = FeedSpec(**values)
    return tuple(specs.values())


SETTINGS = (
    Setting("title", "feedservice", v.text, "Names the site in every feed and page.", "Acme feeds"),
    Setting("description", "Articles by topic", v.text, "Shown on the index page.", "What we read"),
    Setting(
        "base_url",
        "http://127.0.0.1:8080",
        v.base_url,
        "The public address readers use; every absolute URL (self links, paging, OPML, "
        "redirects) is built on it. A trailing `/` is dropped.",
        "https://feeds.example.com",
    ),
    Setting(
        "permalink",
        None,
        v.permalink,
        "Where a Jekyll or Hugo page without its own link is published, on `base_url`: a "
        "Jekyll-style pattern, one of Jekyll's styles (`date`, `pretty`, `ordinal`, "
        "`weekdate`, `none`) or `hugo` (the page's directories and slug). Default: each "
        "generator's own (`date` for Jekyll, `hugo` for Hugo).",
        "/:categories/:year/:month/:day/:title/",
    ),
    Setting(
        "timezone",
        "UTC",
        v.timezone,
        "The site's IANA time zone: Jekyll and Hugo dates without an offset are in it, and "
        "a permalink's date parts are taken in it.",
        "Europe/Oslo",
    ),
    Setting(
        "taxonomies",
        (),
        v.names,
        "Hugo taxonomies besides `tags` and `categories` whose terms are topics.",
        "[series]",
    ),
    Setting("language", "en", v.language, "The feeds' language tag.", "en-GB"),
    Setting(
        "reload_interval",
        60,
        v.integer(1, 86400),
        "Seconds between re-reads of the seeds and this file; also the feeds' "
        "`Cache-Control: max-age` and RSS `ttl`.",
        "30",
        option=True,
    ),
    Setting(
        "topic_limit",
        50,
        v.integer(1, MAX_LIMIT),
        f"Items per page of every topic feed and of the implicit `all` feed, 1-{MAX_LIMIT}.",
        "100",
    ),
    Setting(
        "websub_hub",
        None,
        v.optional_url,
        "A WebSub hub to advertise in the feeds and to ping when feeds change; none if unset.",
        "https://hub.example.com/",
    ),
    Setting(
        "state_dir",
        _default_state_dir(),
        v.path,
        "Where the store lives (one SQLite database, WAL mode): every seed file's parse, "
        "its last good version, the feeds and their rendered documents. One service per "
        "directory; safe to delete while stopped (the next start parses everything again).",
        "/var/lib/feedservice",
        option=True,
    ),
    *NEWSROOM_SETTINGS,
    Setting("feeds", (), _feeds, "Configured feeds (the keys below).", "see below"),
    Setting(
        "seeds_dir",
        "seeds",
        v.path,
        "The seed directory.",
        "/srv/seeds",
        "command",
        True,
        "--seeds",
    ),
    Setting(
        "config_file",
        "config/feeds.yaml",
        v.path,
        "The config file. Only this default may be missing (then every default applies); "
        "a file named by `--config` or the environment must exist.",
        "/etc/feedservice/feeds.yaml",
        "command",
        True,
        "--config",
    ),
    Setting("host", "127.0.0.1", v.text, "Address to listen on.", "0.0.0.0", "command", True),
    Setting("port", 8080, v.integer(1, 65535), "Port to listen on.", "8080", "command", True),
    Setting(
        "workers",
        os.cpu_count() or 1,
        v.integer(1, 64),
        "Serving processes (default: one per core). They hold no catalog: each answers "
        "from the store's newest generation.",
        "4",
        "command",
        True,
    ),
    Setting(
        "log_format",
        "text",
        v.choice("text", "json"),
        "`json`: one JSON object per line, granian's lines included.",
        "json",
        "command",
        True,
    ),
    Setting(
        "log_level",
        "info",
        v.choice("debug", "info", "warning", "error"),
        "The least severe level logged.",
        "warning",
        "command",
        True,
    ),
    Setting(
        "access_log",
        False,
        v.boolean,
        "Log one line per request (in the chosen log format).",
        "true",
        "command",
        True,
    ),
    Setting(
        "drain_timeout",
        10,
        v.integer(0, 3600),
        "Seconds a stopping service (SIGTERM) waits for requests in flight, slow readers "
        "included, before it closes their connections and exits.",
        "30",
        "command",
        True,
    ),
    Setting(
        "config_settle",
        1.0,
        v.seconds(0, 600),
        "Seconds a changed config file must stay unchanged before it is applied, so a "
        "half-written save is never read.",
        "2",
        "command",
        True,
    ),
)
SITE_SETTINGS = tuple(s for s in SETTINGS if s.scope == "site")
Config = dataclasses.make_dataclass(
    "Config",
    [(s.name, Any, dataclasses.field(default=s.default)) for s in SETTINGS],
    frozen=True,
)
Config.__doc__ = "The value of every setting, validated."
Config.__module__ = __name__


def by_name(name: str) -> Setting:
    return next(s for s in SETTINGS if s.name == name)


def config_source(options: Mapping[str, Any], environ: Mapping[str, str]) -> tuple[Path, bool]:
    """The config file to read, and whether it must exist: only the default may be absent."""
    setting = by_name("config_file")
    named = options.get("config_file") or environ.get(setting.env)
    return Path(os.path.expanduser(str(named or setting.default))), bool(named)


def env_value(setting: Setting, text: str) -> Any:
    """The YAML-level value of an environment variable's text."""
    if setting.name not in ("feeds", "topics"):
        return text or None
    if len(text) > MAX_ENV_CHARS:
        raise ConfigError(
            f"{setting.name} ({setting.env})", f"longer than {MAX_ENV_CHARS} characters"
        )
    if not text.strip():
        return []
    try:
        return load_yaml(text, setting.env)
    except ConfigError as error:
        raise ConfigError(f"{setting.name} ({setting.env})", error.message) from None


def resolve(
    file_values: Mapping[str, Any],
    environ: Mapping[str, str],
    options: Mapping[str, Any] | None = None,
    *,
    path: str | None = None,
) -> Any:
    """Every setting's value: option, else environment, else file, else default.

    Raises ConfigError naming the key (and `path`, for a problem in the file)."""
    unknown = sorted(str(k) for k in file_values if k not in {s.name for s in SITE_SETTINGS})
    if unknown:
        known = ", ".join(s.name for s in SITE_SETTINGS)
        raise ConfigError(unknown[0], f"unknown key (known keys: {known})", path)
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw, where, shown = setting.default, setting.name, None
        if setting.scope == "site" and setting.name in file_values:
            raw, shown = file_values[setting.name], path
        if setting.env in environ:
            where, shown = f"{setting.name} ({setting.env})", None
            raw = env_value(setting, environ[setting.env])
        if options and options.get(setting.name) is not None:
            raw, where, shown = options[setting.name], setting.flag, None
        try:
            values[setting.name] = setting.parse(raw, where)
        except ConfigError as error:
            raise ConfigError(error.key, error.message, shown) from None
    feeds = values["feeds"]
    if not any(spec.name == DEFAULT_ALL_FEED.name for spec in feeds):
        all_feed = dataclasses.replace(DEFAULT_ALL_FEED, limit=values["topic_limit"])
        values["feeds"] = (all_feed, *feeds)
    return Config(**values)


def load(
    path: Path | None,
    environ: Mapping[str, str] | None = None,
    options: Mapping[str, Any] | None = None,
    *,
    required: bool = False,
) -> Any:
    """Read and validate the config file plus the environment (and options)."""
    environ = os.environ if environ is None else environ
    values = read_config_file(path, required=required) if path is not None else {}
    return resolve(values, environ, options, path=str(path) if path is not None else None)


from feedservice.settings.docs import (  # noqa: E402  (they read the tables above)
    default_config_text,
    docs_tables,
    effective_config_text,
)

__all__ = [
    "ALL_TOPICS",
    "BRAND_KEYS",
    "DEFAULT_ALL_FEED",
    "ENV_PREFIX",
    "FEED_SETTINGS",
    "MAX_CONFIG_BYTES",
    "SETTINGS",
    "SITE_SETTINGS",
    "Config",
    "ConfigError",
    "FeedSpec",
    "Setting",
    "by_name",
    "config_source",
    "default_config_text",
    "docs_tables",
    "effective_config_text",
    "load",
    "load_yaml",
    "read_config_file",
    "resolve",
]
