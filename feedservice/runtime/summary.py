"""What a reload reports: the summary committed with its generation, which `/healthz`,
`check` and the metrics read."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from feedservice.catalog import PROVIDERS, TOPICS, Catalog
from feedservice.ingest.problem import Problem
from feedservice.runtime.metrics import error_kind

SHOWN_ERRORS = 10


def reload_summary(
    catalog: Catalog,
    problems: list[Problem],
    status: dict[str, str | None],
    files: int,
    now: float,
) -> dict[str, Any]:
    errors = [problem for problem in problems if problem.fatal]
    first = next(iter(catalog.scheduled.values()), None)  # (soonest first)
    return {
        "articles": len(catalog.articles),
        "feeds": sum(1 for feed in catalog.feeds.values() if feed.kind != PROVIDERS),
        "topics": sum(1 for feed in catalog.feeds.values() if feed.kind == TOPICS),
        "providers": sum(1 for feed in catalog.feeds.values() if feed.kind == PROVIDERS),
        "files": files,
        "drafts": len(catalog.drafts),
        "errors": len(errors),
        "warnings": len(problems) - len(errors),
        "first_errors": [problem.describe() for problem in errors[:SHOWN_ERRORS]],
        "error_kinds": dict(Counter(error_kind(problem.field) for problem in errors)),
        "newest": min(-catalog.newest, int(now * 1e6)) if catalog.newest is not None else None,
        "scheduled": len(catalog.scheduled),
        "next_scheduled": iso(first / 1e6) if first else None,
        "config_warnings": [f"{p.field}: {p.message}" for p in catalog.config_warnings],
        "loaded_at": iso(now),
        **status,
    }


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")
