"""The one error type for seed files: a finding that names the file, the field and the line."""

from __future__ import annotations

import re
from typing import Any

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
MIN_SECRET_CHARS = 4  # shorter leaves are too common to cut out of messages


class Problem(Exception):
    """A finding about one seed file. Raised when it keeps the file out of the feeds
    (`fatal`); collected as a warning otherwise.

    `field` is a front-matter key, or a pseudo-field in parentheses such as `(file)`,
    `(front matter)`, `(yaml)` or `(encoding)` for problems not about one key.
    """

    def __init__(
        self, source: str, field: str, message: str, line: int | None = None, fatal: bool = True
    ) -> None:
        self.source, self.field, self.message = source, field, message
        self.line, self.fatal = line, fatal
        super().__init__(self.describe())

    def describe(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        return f"{self.source}: {self.field}: {self.message}{where}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "field": self.field,
            "message": self.message,
            "line": self.line,
            "fatal": self.fatal,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Problem:
        return cls(**data)

    def _key(self) -> tuple[Any, ...]:
        return (self.source, self.field, self.message, self.line, self.fatal)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Problem) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across the parse pool
        return (Problem, self._key())


def display_path(relative: str) -> str:
    """A printable, one-line form of a path whose bytes may not be valid UTF-8.

    Control characters are escaped: a file named `a\\nFAKE LOG LINE.md` must not be
    able to forge lines in logs and `check` output."""
    if relative.isascii() and relative.isprintable():
        return relative
    text = relative.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return _CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode(), text)


def secret_leaves(value: Any) -> list[str]:
    """Every leaf of a `secured` value, of any shape, as the texts a message could quote."""
    if isinstance(value, dict):
        return [leaf for item in value.items() for part in item for leaf in secret_leaves(part)]
    if isinstance(value, list | tuple | set):
        return [leaf for item in value for leaf in secret_leaves(item)]
    if value is None or isinstance(value, bool):
        return []
    text = str(value).strip()
    return [text] if len(text) >= MIN_SECRET_CHARS else []


def redact(message: str, secrets: list[str]) -> str:
    """`message` with every secret leaf (longest first) replaced by `[redacted]`."""
    for secret in sorted(secrets, key=len, reverse=True):
        message = message.replace(secret, "[redacted]")
    return message
