"""The value types of settings: each turns a value from YAML (or from text, for the
environment and the command line) into a setting's value, or raises ConfigError
naming the key."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from feedservice.ingest.permalink import STYLES, unknown_tokens

ALL_TOPICS = "*"
ENV_PREFIX = "FEEDSERVICE_"
_FEED_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_LANGUAGE = re.compile(r"[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*")


class ConfigError(Exception):
    """A bad setting; `key` names it the way an admin writes it (`feeds[vision].limit`)."""

    def __init__(self, key: str, message: str, path: str | None = None) -> None:
        self.key, self.message, self.path = key, message, path
        super().__init__(f"{path}: {key}: {message}" if path else f"{key}: {message}")


@dataclass(frozen=True)
class Setting:
    """One setting. `scope` is "site" (config file, environment and, with `option`, the
    command line) or "command" (environment and command line only)."""

    name: str
    default: Any
    parse: Any  # (value, key) -> the setting's value; raises ConfigError
    doc: str
    example: str = ""
    scope: str = "site"
    option: bool = False
    short_flag: str = ""  # the option's name when it is not the setting's

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @property
    def flag(self) -> str:
        return self.short_flag or "--" + self.name.replace("_", "-")


def text(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(key, "must be a non-empty string")
    if len(value) > 1000:
        raise ConfigError(key, "must be at most 1000 characters")
    return " ".join(value.split())


def optional_text(value: Any, key: str) -> str | None:
    return None if value is None else text(value, key)


def url(value: Any, key: str) -> str:
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ConfigError(key, f"must be an absolute http(s) URL, got {str(value)[:200]!r}")
    if len(value) > 2048:
        raise ConfigError(key, "must be at most 2048 characters")
    return value


def base_url(value: Any, key: str) -> str:
    return url(value, key).rstrip("/")


def optional_url(value: Any, key: str) -> str | None:
    return None if value in (None, "") else url(value, key)


def language(value: Any, key: str) -> str:
    if not isinstance(value, str) or not _LANGUAGE.fullmatch(value):
        raise ConfigError(key, f"must be a language tag such as 'en' or 'en-GB', got {value!r}")
    return value


def path(value: Any, key: str) -> Path:
    if not isinstance(value, str | Path) or not str(value).strip():
        raise ConfigError(key, "must be a path")
    return Path(os.path.expanduser(str(value)))


def integer(low: int, high: int) -> Callable[[Any, str], int]:
    def parse(value: Any, key: str) -> int:
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,12}\s*", value):
            value = int(value)  # from the environment or the command line
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"must be a whole number, got {str(value)[:80]!r}")
        if not low <= value <= high:
            raise ConfigError(key, f"must be between {low} and {high}, got {str(value)[:80]}")
        return value

    return parse


def optional_integer(value: Any, key: str) -> int | None:
    return None if value is None else integer(-(10**9), 10**9)(value, key)


def choice(*choices: str) -> Callable[[Any, str], str]:
    def parse(value: Any, key: str) -> str:
        if value not in choices:
            raise ConfigError(key, f"must be one of {', '.join(choices)}, got {value!r}")
        return str(value)

    return parse


def topics(required: bool) -> Callable[[Any, str], tuple[str, ...]]:
    def parse(value: Any, key: str) -> tuple[str, ...]:
        if value is None or (value in ([], ()) and not required):
            if required:
                raise ConfigError(key, "is required (a list of topic names, or '*' for all)")
            return ()
        if value == ALL_TOPICS:
            return (ALL_TOPICS,)
        if not isinstance(value, list) or not value:
            raise ConfigError(key, "must be a non-empty list of topic names")
        for topic in value:
            if not isinstance(topic, str) or not topic.strip():
                raise ConfigError(key, f"topic names must be non-empty strings, got {topic!r}")
        return tuple(topic.strip() for topic in value)

    return parse


def feed_name(value: Any, key: str) -> str:
    if not isinstance(value, str) or not _FEED_NAME.fullmatch(value):
        raise ConfigError(key, "must be lowercase letters, digits, '-' or '_' (at most 64)")
    return value


def boolean(value: Any, key: str) -> bool:
    words = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False}
    words |= {"off": False, "0": False}
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in words:
        return words[value.strip().lower()]
    raise ConfigError(key, f"must be true or false, got {str(value)[:80]!r}")


def seconds(low: float, high: float) -> Callable[[Any, str], float]:
    def parse(value: Any, key: str) -> float:
        try:
            number = float(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is None or not low <= number <= high:
            raise ConfigError(key, f"must be seconds between {low:g} and {high:g}, got {value!r}")
        return number

    return parse


def permalink(value: Any, key: str) -> str | None:
    """A Jekyll-style pattern (`/:year/:month/:title/`), or a named style."""
    if value in (None, ""):
        return None
    if not isinstance(value, str) or (":" not in value and value not in STYLES):
        styles = ", ".join(STYLES)
        raise ConfigError(key, f"must be a pattern with :placeholders or one of {styles}")
    unknown = unknown_tokens(value)
    if unknown:
        raise ConfigError(key, f"unknown placeholder :{unknown[0]}")
    return value


def timezone(value: Any, key: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        message = f"must be an IANA time zone such as Europe/Oslo, got {value!r}"
        raise ConfigError(key, message) from None
    return str(value)


def names(value: Any, key: str) -> tuple[str, ...]:
    """Field names: a list, or (from the environment) words separated by commas or spaces."""
    if value in (None, ""):
        return ()
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigError(key, "must be a list of front-matter field names")
    return tuple(name.strip().lower() for name in value if name.strip())
