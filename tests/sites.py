"""The real static sites in ../shared/sites/, and what each post should become, derived
here independently of feedservice's code: front matter read with PyYAML and tomllib,
dates with dateutil and zoneinfo, links by each site's own rule as SOURCES.md states it.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from conftest import SHARED, write_config
from dateutil import parser as dateparser

SITES_DIR = SHARED / "sites"
POST_SUFFIXES = (".md", ".markdown", ".html")
# Each site's settings as SOURCES.md gives them (base URL without its trailing /).
SITES: dict[str, dict[str, Any]] = {
    "jekyll-docs": {
        "base_url": "https://jekyllrb.com",
        "permalink": "/news/:year/:month/:day/:title/",
        "timezone": "America/Los_Angeles",
    },
    "homebrew-blog": {"base_url": "https://brew.sh", "permalink": ":year/:month/:day/:title/"},
    "hugo-news": {"base_url": "https://gohugo.io", "timezone": "Europe/Oslo"},
    "nats-blog": {"base_url": "https://nats.io"},
}
# SOURCES.md's worked examples: file → (link, publish time).
WORKED_EXAMPLES = {
    "jekyll-docs": (
        "_posts/2013-05-06-jekyll-1-0-0-released.markdown",
        "https://jekyllrb.com/news/2013/05/05/jekyll-1-0-0-released/",
        datetime(2013, 5, 6, 0, 12, 52, tzinfo=UTC),
    ),
    "homebrew-blog": (
        "_posts/2025-02-03-Homebrew-git-signing.md",
        "https://brew.sh/2025/02/03/Homebrew-git-signing/",
        datetime(2025, 2, 3, tzinfo=UTC),
    ),
    "hugo-news": (
        "content/news/0.33-relnotes/index.md",
        "https://gohugo.io/news/0.33-relnotes/",
        datetime(2018, 1, 17, 23, 0, tzinfo=UTC),  # midnight in Oslo (CET)
    ),
    "nats-blog": (
        "content/blog/openIoT.md",
        "https://nats.io/blog/openiot/",
        datetime(2016, 5, 9, tzinfo=UTC),
    ),
}
# SOURCES.md: Ruby's Time.parse reads this malformed date as if the stray year were not there.
MALFORMED_DATES = {"2023-01-29 18:30:22 2023 -0800": "2023-01-29 18:30:22 -0800"}


@dataclass(frozen=True)
class Post:
    """What one real post should be in the feeds."""

    path: str
    link: str
    published: datetime  # UTC
    topics: frozenset[str]  # lower-cased
    body: str  # the Markdown or HTML after the front matter


def require_sites() -> Path:
    if not SITES_DIR.is_dir():
        pytest.skip("../shared/sites is not beside the checkout")
    return SITES_DIR


def site_config(tmp: Path, name: str, **extra: Any) -> Path:
    return write_config(tmp / f"{name}.yaml", title=f"{name} feeds", **SITES[name], **extra)


def post_paths(name: str) -> list[str]:
    root = SITES_DIR / name
    return sorted(
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.suffix in POST_SUFFIXES and not path.name.startswith("_index")
    )


def front_and_body(text: str) -> tuple[dict[str, Any], str]:
    text = text.lstrip()
    if text.startswith("+++"):
        _, front, body = re.split(r"^\+\+\+\s*$", text, maxsplit=2, flags=re.M)
        return tomllib.loads(front), body
    _, front, body = re.split(r"^---\s*$", text, maxsplit=2, flags=re.M)
    return yaml.safe_load(front), body


def expected_posts(name: str) -> list[Post]:
    return [expected_post(name, path) for path in post_paths(name)]


def expected_post(name: str, path: str) -> Post:
    settings = SITES[name]
    zone = ZoneInfo(settings.get("timezone", "UTC"))
    front, body = front_and_body((SITES_DIR / name / path).read_text(encoding="utf-8"))
    file_name = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    value = front.get("date")
    dated = re.match(r"(\d{4})-(\d\d)-(\d\d)-(.*)", file_name)
    if value is None:  # Jekyll: the file name's day, at midnight in the site's zone
        value = date(*map(int, dated.groups()[:3]))
    published = _as_datetime(value, zone)
    local = published.astimezone(zone)
    if name in ("jekyll-docs", "homebrew-blog"):
        prefix = "/news" if name == "jekyll-docs" else ""
        link = f"{settings['base_url']}{prefix}/{local:%Y/%m/%d}/{dated.group(4)}/"
        names = [front.get("category"), front.get("categories"), front.get("tags")]
    else:
        parts = path.split("/")
        page = parts[-2] if file_name == "index" else file_name
        slug = front.get("slug") or page
        link = f"{settings['base_url']}/{parts[1]}/{slug}/".lower()
        names = [front.get("tags"), front.get("categories")]
    topics = set()
    for value in names:
        topics.update(
            str(item).lower() for item in ([value] if isinstance(value, str) else value or [])
        )
    return Post(path, link, published.astimezone(UTC), frozenset(topics), body)


def _as_datetime(value: Any, zone: ZoneInfo) -> datetime:
    if isinstance(value, str):
        value = dateparser.parse(MALFORMED_DATES.get(value, value))
    elif not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)


def prose_lines(body: str) -> list[str]:
    """Lines of plain prose in a body (no markup characters): text a reader must see."""
    return [
        line.strip()
        for line in body.splitlines()
        if len(line.strip()) > 40
        and not re.search(r"[\[\]{}<>*_`#|\\&:~]", line)
        and not re.match(r"\s*([-+=]|\d+\.)", line)  # list markers, setext underlines
    ]
