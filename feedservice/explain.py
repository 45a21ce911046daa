"""`feedservice explain`: why one seed file is, or is not, in the feeds.

It loads the seed directory and config exactly as `serve` does and reads the
answer off the resulting catalog, so it cannot disagree with what is served:
published (with identity, topics and the feeds that carry it, with page), or
not, because the file is a draft, a duplicate (naming the file that wins), a
bad file (the problem, field and line), or not a seed file at all.

It never prints the `secured` field: everything shown comes from the cleaned
Article, which does not hold it, or from problem messages.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from feedservice.articles import Problem, canonical_identity, clean_url, parse_seed
from feedservice.catalog import Catalog, SeedStore, build_catalog
from feedservice.compact import StoredArticle
from feedservice.config import Config
from feedservice.seeds import SEED_SUFFIXES, SeedError, display_path, read_seed

PUBLISHED = "published"
DRAFT = "draft"
DUPLICATE = "duplicate"
BAD = "bad file"
NOT_SEED = "not a seed file"
NOT_FOUND = "not found"
OUTSIDE = "outside the seed directory"


@dataclass
class Explanation:
    """The answer for one file; `reason` is the one line a person reads first."""

    file: str  # path relative to the seed directory (or as given, if outside it)
    status: str
    reason: str
    identity: str | None = None
    title: str | None = None
    topics: list[str] = field(default_factory=list)
    feeds: list[dict[str, Any]] = field(default_factory=list)
    winner: str | None = None
    problems: list[dict[str, Any]] = field(default_factory=list)

    @property
    def published(self) -> bool:
        return self.status == PUBLISHED


def load(
    seeds_dir: Path, config: Config, store: SeedStore | None = None
) -> tuple[SeedStore, Catalog]:
    """The store and catalog `serve` would build from these seeds and config."""
    store = store if store is not None else SeedStore(seeds_dir)
    store.refresh()
    return store, build_catalog(store.articles(), config, store.problems())


def explain(seeds_dir: Path, store: SeedStore, catalog: Catalog, target: str) -> list[Explanation]:
    """One explanation per file the target names (a URL may match several files)."""
    if target[:8].lower().startswith(("http://", "https://")):
        return _explain_url(seeds_dir, store, catalog, target)
    return [_explain_path(seeds_dir, store, catalog, target)]


# --- by path -----------------------------------------------------------------------------


def _explain_path(seeds_dir: Path, store: SeedStore, catalog: Catalog, target: str) -> Explanation:
    relative = _relative_to_seeds(seeds_dir, Path(target))
    if relative is None:
        return _outside(seeds_dir, Path(target))
    source = display_path(relative)
    known = {article.source for article in store.articles()}
    known.update(problem.source for problem in store.problems())
    if source not in known:
        return Explanation(
            source,
            NOT_SEED if (seeds_dir / relative).exists() else NOT_FOUND,
            _why_not_read(seeds_dir, relative),
        )
    return explain_source(catalog, store, source)


def _relative_to_seeds(seeds_dir: Path, path: Path) -> str | None:
    """The path relative to the seed directory, or None if the file lies outside it.

    A relative path is tried from the current directory, then from the seed
    directory; a name that exists nowhere is taken as relative to the seeds.
    """
    root = os.path.realpath(seeds_dir)
    candidates = [path] if path.is_absolute() else [Path.cwd() / path, seeds_dir / path]
    existing = [c for c in candidates if c.exists() or c.is_symlink()] or candidates[-1:]
    for candidate in existing:
        # Resolve the directory only: a symlinked seed file keeps its own name.
        parent = os.path.realpath(candidate.parent)
        if os.path.commonpath([root, parent]) == root:
            return Path(os.path.relpath(os.path.join(parent, candidate.name), root)).as_posix()
    return None


def _why_not_read(seeds_dir: Path, relative: str) -> str:
    path = seeds_dir / relative
    if not path.exists():
        return f"no such file in the seed directory {seeds_dir}"
    if any(part.startswith(".") for part in Path(relative).parts):
        return "hidden files and directories (starting with '.') are not read"
    if not relative.endswith(SEED_SUFFIXES):
        return f"only files ending in {' or '.join(SEED_SUFFIXES)} are read"
    if path.is_symlink():
        return "a symlink that points outside the seed directory is not followed"
    return "not a regular file"


def _outside(seeds_dir: Path, path: Path) -> Explanation:
    """A file outside the seed directory: say so, and still check its content."""
    shown = str(path)
    if not path.exists():
        return Explanation(shown, NOT_FOUND, "no such file")
    reason = f"not in the seed directory {seeds_dir}, so no feed carries it"
    try:
        parsed = parse_seed(read_seed(path.parent, path.name), shown)
    except SeedError as error:
        problem = Problem.from_error(error)
        return Explanation(
            shown,
            OUTSIDE,
            reason + f"; it is also a bad file: {_brief(problem)}",
            problems=[_problem(problem)],
        )
    article = parsed.article
    return Explanation(
        shown,
        OUTSIDE,
        reason,
        article.identity,
        article.title,
        list(article.topics),
        problems=[_problem(p) for p in parsed.warnings],
    )


# --- by URL ------------------------------------------------------------------------------


def _explain_url(
    seeds_dir: Path, store: SeedStore, catalog: Catalog, url: str
) -> list[Explanation]:
    try:
        identity = canonical_identity(clean_url(url))
    except ValueError as error:
        return [Explanation(url, NOT_FOUND, f"not a usable article link: {error}")]
    sources = sorted(article.source for article in store.articles() if article.identity == identity)
    # A bad file has no article to match; look for the link in its text instead.
    with_article = {article.source for article in store.articles()}
    bad = sorted({p.source for p in store.problems() if p.fatal and p.source not in with_article})
    sources += [source for source in bad if _mentions(seeds_dir, source, url, identity)]
    if not sources:
        return [Explanation(url, NOT_FOUND, f"no seed file has the link {identity}")]
    return [explain_source(catalog, store, source) for source in sources]


def _mentions(seeds_dir: Path, source: str, *links: str) -> bool:
    try:
        text = read_seed(seeds_dir, source).decode("utf-8", "replace")
    except SeedError:
        return False
    return any(link in text for link in links)


# --- one known seed file -----------------------------------------------------------------


def explain_source(catalog: Catalog, store: SeedStore, source: str) -> Explanation:
    """The explanation for a file the store has read (`source` as in Article.source)."""
    problems = [p for p in catalog.problems if p.source == source]
    listed = [_problem(p) for p in problems]
    fatal = [p for p in problems if p.fatal]
    article = next((a for a in store.articles() if a.source == source), None)
    if fatal and article is None:
        return Explanation(source, BAD, f"bad file: {_brief(fatal[0])}", problems=listed)
    assert article is not None  # a read file has an article or a fatal problem
    base = Explanation(
        source,
        PUBLISHED,
        "",
        article.identity,
        _title(store, article),
        list(article.topics),
        problems=listed,
    )
    if source in catalog.drafts:
        base.status, base.reason = DRAFT, "draft: the file says `published: false`"
        return base
    winner = catalog.duplicates.get(source)
    if winner is not None:
        base.status, base.winner = DUPLICATE, winner
        base.reason = f"duplicate: {winner} has the same link and is served instead"
        return base
    base.feeds = list(_feeds_carrying(catalog, article))
    if fatal:  # a file that turned bad while serving its last good version
        base.reason = f"published (last good version); the file now has: {_brief(fatal[0])}"
    elif base.feeds:
        base.reason = f"published in {len(base.feeds)} feeds"
    else:
        base.reason = "published, but no feed carries it (check the feeds' topics and filters)"
    return base


def _title(store: SeedStore, article: StoredArticle) -> str | None:
    if not article.is_draft:
        return article.expand().title
    full = store.reread(article.source)  # drafts are kept without their content
    return full.title if full is not None else None


def _feeds_carrying(catalog: Catalog, article: StoredArticle) -> Iterable[dict[str, Any]]:
    base_url = catalog.config.base_url
    for feed in catalog.feeds.values():
        for index, item in enumerate(feed.items):
            if item.identity == article.identity:
                yield {
                    "kind": feed.kind,
                    "name": feed.name,
                    "title": feed.title,
                    "path": feed.path,
                    "page": index // feed.limit + 1,
                    "url": f"{base_url}{feed.path}.atom",
                }
                break


def _problem(problem: Problem) -> dict[str, Any]:
    return {
        "field": problem.field,
        "message": problem.message,
        "line": problem.line,
        "level": "error" if problem.fatal else "warning",
    }


def _brief(problem: Problem) -> str:
    line = f" (line {problem.line})" if problem.line else ""
    return f"{problem.field}: {problem.message}{line}"


# --- output ------------------------------------------------------------------------------


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
        for problem in item.problems:
            line = f" (line {problem['line']})" if problem["line"] else ""
            lines.append(f"  {problem['level']}: {problem['field']}: {problem['message']}{line}")
    return "\n".join(lines)


def render_json(target: str, explanations: list[Explanation]) -> str:
    files = [{**asdict(item), "published": item.published} for item in explanations]
    return json.dumps({"target": target, "files": files}, ensure_ascii=False, indent=2)
