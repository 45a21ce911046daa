"""Issue 19: the search index's cost to the cold load, its size, and its query times.

    python benchmarks/search.py                      # 10,000 and 100,000 files (~6 min)
    python benchmarks/search.py --sizes 10000 --rounds 1

Per corpus size (benchmarks/generate_corpus.py, cached under benchmarks/corpora/), in this
process: cold loads through the real Loader into an empty state directory (rendering
included, every core parsing), alternately with the index and with its writes left out
(Writer.index_articles/unindex as no-ops; the parse workers still make the text, whose
cost is measured apart, per file, on the same articles), because this machine's speed
drifts by ±15 % within minutes (the fastest of each kind are compared); and the time
spent inside the index's writes during the loads with it (their share of the final COMMIT
aside). Then the database size with and without the index (vacuumed), and at the largest
size the time of `matching_ids` for common and rare words and phrases, from a reader
connection as a serving worker holds one, against a reference measured in the same run
(reading as many ids from `files` by id into a set), and the time of the matches among
the largest feed's members, in feed order, as a route would take them. Results go to
benchmarks/results/<time>-search.json (and latest-search.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from array import array
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent)]  # generate_corpus; feedservice

from generate_corpus import ensure_corpus  # noqa: E402

from feedservice.ingest.article import DEFAULT_SITE, read_article  # noqa: E402
from feedservice.runtime.loader import Loader  # noqa: E402
from feedservice.store import writer  # noqa: E402
from feedservice.store.db import Store, connect  # noqa: E402
from feedservice.store.search import index_text, matching_ids, parse_query  # noqa: E402

LARGEST = "SELECT members FROM feeds ORDER BY length(members) DESC LIMIT 1"
RESULTS = BENCH / "results"
CORPORA = BENCH / "corpora"
QUERIES = {  # the corpus's 77 words each occur in about half of its articles
    "common word": "ai",
    "two common words": "cloud privacy",
    "common word, one excluded": "ai -cloud",
    "phrase of two": '"neural network"',
    "rare phrase (4 words)": '"quantum computing fraud detection"',
    "absent word": "walrus",
}


def cold_load(seeds: Path, state: Path, index: bool, spent: list[float]) -> float:
    """Seconds for the first reload into an empty state directory; adds the seconds spent
    in the index's writes to `spent` (their share of the commit is not in it)."""
    shutil.rmtree(state, ignore_errors=True)
    saved = writer.Writer.index_articles, writer.Writer.unindex

    def timed(method: Any) -> Any:
        def write(self: writer.Writer, rows: Any) -> None:
            started = time.perf_counter()
            method(self, rows) if index else None
            spent[0] += time.perf_counter() - started

        return write

    writer.Writer.index_articles, writer.Writer.unindex = map(timed, saved)  # type: ignore[method-assign]
    try:
        store = Store.in_dir(state)
        loader = Loader(store, seeds, None, environ={}, workers=os.cpu_count() or 1)
        started = time.perf_counter()
        loader.reload()
        seconds = time.perf_counter() - started
        store.close()
    finally:
        writer.Writer.index_articles, writer.Writer.unindex = saved  # type: ignore[method-assign]
    return seconds


def text_cost(seeds: Path, files: int = 2000) -> float:
    """µs per article to make its index text (in the parse workers)."""
    articles = []
    for path in sorted(seeds.iterdir())[:files]:
        if path.suffix in (".md", ".txt"):
            article, _ = read_article(path.read_bytes(), path.name, DEFAULT_SITE)
            if article is not None:
                articles.append(article)
    started = time.perf_counter()
    for article in articles:
        index_text(article.title, article.excerpt, article.content_html)
    return (time.perf_counter() - started) / max(1, len(articles)) * 1e6


def database_bytes(state: Path) -> int:
    connection = connect(state / "feedservice.sqlite3")
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.execute("VACUUM")
    connection.close()
    return sum(path.stat().st_size for path in state.iterdir() if path.is_file())


def timings(function: Any, repeats: int) -> dict[str, float]:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 3),
        "p95_ms": round(samples[int(len(samples) * 0.95) - 1], 3),
        "max_ms": round(samples[-1], 3),
    }


def reference_ids(connection: sqlite3.Connection, ids: list[int]) -> set[int]:
    """The reference: as many ids read back from `files` by id, into a set."""
    found: set[int] = set()
    for start in range(0, len(ids), 30_000):  # (under SQLite's limit of variables)
        chunk = ids[start : start + 30_000]
        marks = ",".join("?" * len(chunk))
        found.update(
            row[0]
            for row in connection.execute(f"SELECT id FROM files WHERE id IN ({marks})", chunk)
        )
    return found


def query_times(state: Path, repeats: int) -> dict[str, Any]:
    connection = connect(state / "feedservice.sqlite3")  # as a worker's reader
    results = {}
    for name, text in QUERIES.items():
        query = parse_query(text)
        ids = sorted(matching_ids(connection, query))
        reference = timings(lambda ids=ids: reference_ids(connection, ids), repeats)
        measured = timings(lambda query=query: matching_ids(connection, query), repeats)
        members = array("q", connection.execute(LARGEST).fetchone()[0]).tolist()

        def in_feed(query: Any = query, members: list[int] = members) -> list[int]:
            """What a caller does: the matches among the largest feed's members, in order."""
            return list(filter(matching_ids(connection, query).__contains__, members))

        feed = timings(in_feed, repeats)
        results[name] = {
            "q": text,
            "matches": len(ids),
            **measured,
            "reference": reference,
            "in_largest_feed": {"members": len(members), **feed},
        }
        print(
            f"  {name:28} {len(ids):6} matches  p50 {measured['p50_ms']:6.2f} ms  p95"
            f" {measured['p95_ms']:6.2f} ms (reference p50 {reference['p50_ms']:6.2f} ms);"
            f" in a feed of {len(members)}: p50 {feed['p50_ms']:6.2f} p95 {feed['p95_ms']:6.2f}"
        )
    connection.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=2, help="cold loads of each kind")
    parser.add_argument("--repeats", type=int, default=200, help="runs of each query")
    parser.add_argument("--corpora", type=Path, default=CORPORA)
    args = parser.parse_args(argv)
    report: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
        },
        "sizes": {},
    }
    with tempfile.TemporaryDirectory(prefix="search-bench-") as work:
        for size in args.sizes:
            seeds, state = ensure_corpus(args.corpora, size), Path(work) / "state"
            with_index, without, spent = [], [], [0.0]
            for _ in range(args.rounds):
                with_index.append(cold_load(seeds, state, True, spent))
                without.append(cold_load(seeds, state, False, [0.0]))
            bytes_without = database_bytes(state)
            with_index.append(cold_load(seeds, state, True, spent))
            bytes_with = database_bytes(state)
            per_file = text_cost(seeds)
            added = min(with_index) - min(without)  # (the least disturbed of each)
            writes = spent[0] / len(with_index)
            found = {
                "files": size,
                "cold_with_index_s": with_index,
                "cold_without_index_writes_s": without,
                "added_min_to_min_s": round(added, 3),
                "added_min_to_min_us_per_file": round(added / size * 1e6, 1),
                "index_writes_s": round(writes, 3),
                "index_writes_us_per_file": round(writes / size * 1e6, 1),
                "index_text_us_per_file": round(per_file, 1),
                "database_bytes_with_index": bytes_with,
                "database_bytes_without_index": bytes_without,
            }
            print(f"{size} files: cold {min(with_index):.2f} s with the index,"
                  f" {min(without):.2f} s without its writes"
                  f" (fastest of each: {found['added_min_to_min_us_per_file']} µs a file);"
                  f" index writes {found['index_writes_us_per_file']} µs, text {per_file:.1f} µs"
                  f" a file; database {bytes_with / 1e6:.1f} MB, {bytes_without / 1e6:.1f} MB"
                  " without")  # fmt: skip
            if size == max(args.sizes):
                found["queries"] = query_times(state, args.repeats)
            report["sizes"][str(size)] = found
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    (RESULTS / f"{stamp}-search.json").write_text(text, encoding="utf-8")
    (RESULTS / "latest-search.json").write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
