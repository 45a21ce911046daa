"""The settings of scheduled items, tombstones, branding (site-wide, per configured feed
and per topic) and subscribers' feeds, and the description a configured feed gets from
its rules."""

from __future__ import annotations

from typing import Any

from feedservice.settings import values as v
from feedservice.settings.values import ALL_TOPICS, ConfigError, Setting

DAY = 86400


def optional_language(value: Any, key: str) -> str | None:
    return None if value is None else v.language(value, key)


BRAND_FEED_SETTINGS = (
    Setting("icon", None, v.optional_url, "A square image: Atom `icon`, JSON Feed `icon` and "
            "`favicon`, the page's icon (default: the site's).", "https://example.com/ml.png"),
    Setting("logo", None, v.optional_url, "A wide image: RSS `image`, Atom `logo`, the page's "
            "header (default: the site's).", "https://example.com/ml-wide.png"),
    Setting("language", None, optional_language, "The feed's language tag (default: the "
            "site's).", "de"),
    Setting("author", None, v.optional_text, "Who writes the feed: Atom `author`, JSON Feed "
            "`authors`, the pages (default: the site's).", "The ML desk"),
)  # fmt: skip
BRAND_KEYS = tuple(setting.name for setting in BRAND_FEED_SETTINGS)


def topic_brands(value: Any, key: str) -> dict[str, dict[str, str]]:
    """`topics:`, a topic name (compared by slug) → its title, description and branding."""
    if value in (None, {}, []):
        return {}
    if not isinstance(value, dict):
        raise ConfigError(key, "must be a mapping of topic names to their settings")
    parsers = {"title": v.optional_text, "description": v.optional_text}
    parsers |= {setting.name: setting.parse for setting in BRAND_FEED_SETTINGS}
    brands = {}
    for name, item in value.items():
        where = f"{key}[{name}]"
        if not isinstance(item, dict) or not item.keys() <= parsers.keys():
            raise ConfigError(where, f"must be a mapping of {', '.join(parsers)}")
        found = {k: parsers[k](item[k], f"{where}.{k}") for k in item}
        brands[str(name)] = {k: found[k] for k in found if found[k] is not None}
    return brands


NEWSROOM_SETTINGS = (
    Setting("future", "schedule", v.choice("schedule", "publish"), "`schedule`: an article "
            "whose publish time is in the future is in no feed until then (as in Jekyll). "
            "`publish`: it is served at once; feed dates are still never later than now.",
            "publish"),
    Setting("tombstone_retention", 7 * DAY, v.seconds(1, 3650 * DAY), "Seconds a deleted or "
            "unpublished article's RFC 6721 tombstone stays in the Atom feeds that held it "
            "(7 days); a topic feed whose last article went so answers 200 that long, then "
            "410 Gone.", "86400"),
    Setting("icon", None, v.optional_url, "The site's square image (feeds without their own).",
            "https://example.com/icon.png"),
    Setting("logo", None, v.optional_url, "The site's wide image (feeds without their own).",
            "https://example.com/logo.png"),
    Setting("author", None, v.optional_text, "Who writes the feeds (default: the site's "
            "title).", "Acme research"),
    Setting("topics", None, topic_brands, "Per-topic `title`, `description`, `icon`, `logo`, "
            "`language` and `author`, by topic name.", "{AI: {icon: https://x.example/ai.png}}"),
    Setting("subscriber_feeds", True, v.boolean, "Whether readers may shape feeds with query "
            "parameters (`topics`, `all`, `exclude`, `provider`, `min_quality`, `since`, `q`, "
            "`limit`) and search (`/search.atom?q=`). When off, such a URL is answered 400 "
            "`subscriber feeds are off`, never a feed that silently ignores what was asked; the "
            "fixed feeds (provider feeds included) and `page=` are unaffected.", "false"),
)  # fmt: skip


def rules_description(feed: dict[str, Any]) -> str:
    """What a configured feed without a description says: its rules, in words."""
    topics, excluded = list(feed["topics"]), list(feed["exclude_topics"] or ())
    text = "Every article" if ALL_TOPICS in topics else "Articles tagged " + _any(topics)
    text += f", except those tagged {_any(excluded)}" if excluded else ""
    quality = feed["min_quality"]
    text += f", of quality {quality} or more" if quality is not None else ""
    return text + ", newest first"


def _any(names: list[str]) -> str:
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]
