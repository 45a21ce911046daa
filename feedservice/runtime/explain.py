"""`feedservice explain`: why one seed file is, or is not, in the feeds.

It loads the seeds and config as `serve` does (the same Loader, into a store in
memory) and reads the answer off what the loader built, so it cannot disagree with
what is served: published (with the feeds that carry it and the page, and the rule
that keeps it out of each other configured feed), or not, because the file is a
draft, scheduled, expired, a duplicate (naming the file that wins), a bad file (the
problem, field and line), or not a seed file at all. `--feed` asks about one feed.
Nothing shown comes from `secured`: titles come from the cleaned Article, problems
are redacted when made.
"""

from __future__ import annotations

import bisect
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from feedservice.catalog import FEEDS, TOPICS, why_not
from feedservice.http import urls
from feedservice.ingest.article import parse_seed
from feedservice.ingest.clean import canonical_identity, clean_url
from feedservice.ingest.files import SECTION_PAGE, SEED_SUFFIXES, is_seed_name, read_seed
from feedservice.ingest.problem import Problem, display_path
from feedservice.ingest.record import from_record_text
from feedservice.runtime.loader import Loader

PUBLISHED = "published"
DRAFT = "draft"
SCHEDULED = "scheduled"
EXPIRED = "expired"
DUPLICATE = "duplicate"
BAD = "bad file"
NOT_SEED = "not a seed file"
NOT_FOUND = "not found"
OUTSIDE = "outside the seed directory"


@dataclass
class Explanation:
    """The answer for one file; `reason` is the one line a person reads first."""

    file: str  # relative to the seed directory (or as given, if outside it)
    status: str
    reason: str
    identity: str | None = None
    title: str | None = None
    topics: list[str] = field(default_factory=list)
    feeds: list[dict[str, Any]] = field(default_factory=list)
    winner: str | None = None
    problems: list[dict[str, Any]] = field(default_factory=list)
    kept_out: list[dict[str, str]] = field(default_factory=list)  # configured feeds: the rule
    feed: dict[str, Any] | None = None  # --feed: in it or not, and the rule that decides

    @property
    def published(self) -> bool:
        return self.status == PUBLISHED


def explain(loader: Loader, target: str) -> list[Explanation]:
    """One explanation per file the target names (a URL may match several files)."""
    if target[:8].lower().startswith(("http://", "https://")):
        return _by_url(loader, target)
    relative = _relative_to_seeds(loader.seeds, Path(target))
    if relative is None:
        return [_outside(loader.seeds, Path(target))]
    if relative not in loader.files:
        path = loader.seeds / relative
        return [
            Explanation(
                display_path(relative),
                NOT_SEED if path.exists() else NOT_FOUND,
                _why_not_read(loader.seeds, relative),
            )
        ]
    return [explain_source(loader, relative)]


def _relative_to_seeds(seeds: Path, path: Path) -> str | None:
    """The path relative to the seed directory, or None if the file lies outside it.
    A relative path is tried from the current directory, then from the seeds."""
    root = os.path.realpath(seeds)
    candidates = [path] if path.is_absolute() else [Path.cwd() / path, seeds / path]
    existing = [c for c in candidates if c.exists() or c.is_symlink()] or candidates[-1:]
    for candidate in existing:
        parent = os.path.realpath(candidate.parent)  # a symlinked seed keeps its own name
        if os.path.commonpath([root, parent]) == root:
            return Path(os.path.relpath(os.path.join(parent, candidate.name), root)).as_posix()
    return None


def _why_not_read(seeds: Path, relative: str) -> str:
    path = seeds / relative
    if not path.exists():
        return f"no such file in the seed directory {seeds}"
    if any(part.startswith(".") for part in Path(relative).parts):
        return "hidden files and directories (starting with '.') are not read"
    if not is_seed_name(Path(relative).name):
        return (
            f"only files ending in {', '.join(SEED_SUFFIXES[:-1])} or {SEED_SUFFIXES[-1]} are"
            f" read, and not {SECTION_PAGE}* (a Hugo section's list page)"
        )
    if path.is_symlink():
        return "a symlink that points outside the seed directory is not followed"
    return "not a regular file"


def _outside(seeds: Path, path: Path) -> Explanation:
    """A file outside the seed directory: say so, and still check its content."""
    shown = str(path)
    if not path.exists():
        return Explanation(shown, NOT_FOUND, "no such file")
    reason = f"not in the seed directory {seeds}, so no feed carries it"
    try:
        parsed = parse_seed(read_seed(path.parent, path.name)[0], shown)
    except Problem as problem:
        return Explanation(
            shown,
            OUTSIDE,
            f"{reason}; it is also a bad file: {_brief(problem)}",
            problems=[_problem(problem)],
        )
    article = parsed.article
    return Explanation(
        shown, OUTSIDE, reason, article.identity, article.title, list(article.topics),
        problems=[_problem(p) for p in parsed.warnings],
    )  # fmt: skip


def _by_url(loader: Loader, url: str) -> list[Explanation]:
    try:
        identity = canonical_identity(clean_url(url))
    except ValueError as error:
        return [Explanation(url, NOT_FOUND, f"not a usable article link: {error}")]
    sources = sorted(path for path, row in loader.files.items() if row.identity == identity)
    # A bad file has no article to match: look for the link in its text instead.
    for path, row in sorted(loader.files.items()):
        if row.identity is None and _mentions(loader.seeds, path, url, identity):
            sources.append(path)
    if not sources:
        return [Explanation(url, NOT_FOUND, f"no seed file has the link {identity}")]
    return [explain_source(loader, source) for source in sources]


def _mentions(seeds: Path, path: str, *links: str) -> bool:
    try:
        text = read_seed(seeds, path)[0].decode("utf-8", "replace")
    except Problem:
        return False
    return any(link in text for link in links)


def explain_source(loader: Loader, path: str) -> Explanation:
    """The explanation for a file the loader has read (`path` as the loader keys it)."""
    row, source = loader.files[path], display_path(path)
    problems = [Problem.from_dict(data) for data in row.problems]
    problems += [warning for warning in loader.catalog.warnings if warning.source == source]
    listed = [_problem(problem) for problem in problems]
    fatal = [problem for problem in problems if problem.fatal]
    if row.identity is None:
        return Explanation(source, BAD, f"bad file: {_brief(fatal[0])}", problems=listed)
    article = from_record_text(loader.store.record(path) or "{}", source)
    base = Explanation(
        source, PUBLISHED, "", row.identity, article.title, list(article.topics), problems=listed
    )
    catalog = loader.catalog
    if path in catalog.drafts:
        base.status, base.reason = DRAFT, "draft: the file says `published: false`"
        return base
    if path in catalog.scheduled:
        when = _iso(catalog.scheduled[path])
        base.status, base.reason = SCHEDULED, f"scheduled for {when}: in no feed until then"
        return base
    if path in catalog.expired:
        when = _iso(catalog.expired[path])
        base.status, base.reason = EXPIRED, f"expired at {when} (expiryDate): in no feed since"
        return base
    winner = catalog.duplicates.get(path)
    if winner is not None:
        base.status, base.winner = DUPLICATE, display_path(winner)
        winner = base.winner
        base.reason = f"duplicate: {winner} has the same link and is served instead"
        return base
    entry = loader.files[path]
    position = catalog.articles.index(entry)
    base_url = loader.config.base_url
    for feed in catalog.feeds.values():
        found = bisect.bisect_left(feed.positions, position)  # (positions ascend)
        if found < len(feed.positions) and feed.positions[found] == position:
            page = found // feed.limit + 1
            path = urls.page_path(feed.kind, feed.name)
            url = base_url + urls.feed_path(feed.kind, feed.name, "atom")
            base.feeds.append(
                {
                    "kind": feed.kind,
                    "name": feed.name,
                    "title": feed.title,
                    "path": path,
                    "page": page,
                    "url": url,
                }
            )
    held = {(feed["kind"], feed["name"]) for feed in base.feeds}
    for spec in loader.config.feeds:
        rule = why_not(spec, entry) if (FEEDS, spec.name) not in held else None
        if rule is not None:
            base.kept_out.append({"feed": f"{FEEDS}/{spec.name}", "rule": rule[0], "why": rule[1]})
    if row.carried:
        base.reason = f"published (last good version); the file now has: {_brief(fatal[0])}"
    elif base.feeds:
        base.reason = f"published in {len(base.feeds)} feeds"
    else:
        base.reason = "published, but no feed carries it (check the feeds' topics and filters)"
    return base


def in_feed(loader: Loader, item: Explanation, name: str) -> dict[str, Any]:
    """Whether the file is in one feed (`NAME`, `feeds/NAME` or `topics/SLUG`), and the one
    rule that decides it. Raises ValueError for a feed that does not exist."""
    key = name if "/" in name else f"{FEEDS}/{name}"
    feed, found = loader.catalog.feeds.get(key), {"feed": key, "in_feed": False}
    if feed is None and not key.startswith(f"{TOPICS}/"):
        raise ValueError(f"no feed {key}; configured: {', '.join(loader.catalog.feeds)}")
    page = next((f["page"] for f in item.feeds if f"{f['kind']}/{f['name']}" == key), None)
    if page == 1:
        return {**found, "in_feed": True, "rule": "in_feed", "why": "in it, on page 1"}
    if page is not None:
        limit = feed.limit if feed else 0
        return {**found, "rule": "limit", "why": f"past its limit of {limit}: on page {page}"}
    if not item.published:
        return {**found, "rule": item.status, "why": item.reason}
    rule = next((kept for kept in item.kept_out if kept["feed"] == key), None)
    if rule is not None:
        return {**found, "rule": rule["rule"], "why": rule["why"]}
    topics = ", ".join(item.topics) or "none"
    why = f"it is not tagged {key.split('/', 1)[1]} (its topics: {topics})"
    return {**found, "rule": "topics", "why": why}


def _iso(micros: int) -> str:
    return datetime.fromtimestamp(micros / 1e6, UTC).isoformat().replace("+00:00", "Z")


def _problem(problem: Problem) -> dict[str, Any]:
    level = "error" if problem.fatal else "warning"
    return {
        "field": problem.field,
        "message": problem.message,
        "line": problem.line,
        "level": level,
    }


def _brief(problem: Problem) -> str:
    line = f" (line {problem.line})" if problem.line else ""
    return f"{problem.field}: {problem.message}{line}"


def render_text(explanations: list[Explanation]) -> str:
    lines: list[str] = []
    for item in explanations:
        verdict = item.reason if item.published else f"not published: {item.reason}"
        lines.append(f"{item.file}: {verdict}")
        if item.identity:
            lines.append(f"  identity: {item.identity}")
        if item.title:
            lines.append(f"  title:    {item.title}")
        if item.identity:
            lines.append(f"  topics:   {', '.join(item.topics) or '(none)'}")
        for number, feed in enumerate(item.feeds):
            label = "  feeds:    " if number == 0 else "            "
            lines.append(f"{label}{feed['path']} (page {feed['page']})  {feed['url']}")
        if item.winner:
            lines.append(f"  winner:   {item.winner}")
        for number, kept in enumerate(item.kept_out):
            label = "  not in:   " if number == 0 else "            "
            lines.append(f"{label}{kept['feed']}: {kept['why']} [{kept['rule']}]")
        if item.feed is not None:
            verdict = "in it" if item.feed["in_feed"] else "not in it"
            why, rule = item.feed["why"], item.feed["rule"]
            lines.append(f"  {item.feed['feed']}: {verdict}: {why} [{rule}]")
        for problem in item.problems:
            line = f" (line {problem['line']})" if problem["line"] else ""
            lines.append(f"  {problem['level']}: {problem['field']}: {problem['message']}{line}")
    return "\n".join(lines)


def render_json(target: str, explanations: list[Explanation]) -> str:
    files = [{**asdict(item), "published": item.published} for item in explanations]
    return json.dumps({"target": target, "files": files}, ensure_ascii=False, indent=2)
