"""In-process measurements on one corpus, printed as JSON (run by run.py in a subprocess).

python benchmarks/inproc.py reference DIR            # single-process libyaml parse (P2's reference)
python benchmarks/inproc.py reference-parallel DIR   # the same across every core (a floor)
python benchmarks/inproc.py reload DIR CONFIG STATE  # P5: a Loader over a Store in STATE

`reload` edits one file of DIR (always by writing a new file and renaming it over the
old one, so a hard-linked or shared copy of the corpus is never changed in place) and
puts the original bytes back the same way before it exits.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def bare_scan(root: str) -> float:
    """The physical floor of change detection: one scandir + stat per file."""
    started = time.perf_counter()
    with os.scandir(root) as entries:
        for entry in entries:
            entry.stat(follow_symlinks=False)
    return time.perf_counter() - started


def _libyaml_load_all(root: str, names: list[str]) -> int:
    import yaml

    for name in names:
        with open(os.path.join(root, name), "rb") as handle:
            data = handle.read()
        parts = data.split(b"\n---", 1)  # front matter: from the first line to the next ---
        yaml.load(parts[0][3:], Loader=yaml.CSafeLoader)
    return len(names)


def _seed_names(root: str) -> list[str]:
    return sorted(name for name in os.listdir(root) if not name.startswith("."))


def reference(root: str) -> dict[str, float]:
    """libyaml (CSafeLoader) on every file's front matter, one process: the P2 reference."""
    names = _seed_names(root)
    started = time.perf_counter()
    _libyaml_load_all(root, names)
    seconds = time.perf_counter() - started
    return {"files": len(names), "libyaml_parse_s": seconds, "files_per_s": len(names) / seconds}


def reference_parallel(root: str) -> dict[str, float]:
    """The same libyaml work split across every core (fork pool, chunks of 1,000 files):
    not a target, but the floor a cold load can reach on this machine if a file costs
    what a bare libyaml load costs, with nothing else to do."""
    import functools
    import multiprocessing

    names = _seed_names(root)
    chunks = [names[start : start + 1000] for start in range(0, len(names), 1000)]
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(os.cpu_count() or 1) as pool:
        sum(pool.imap_unordered(functools.partial(_libyaml_load_all, root), chunks))
    return {"libyaml_parallel_s": time.perf_counter() - started}


def _replace(path: Path, data: bytes) -> None:
    """Write `data` as a new file renamed over `path` (a new inode: links stay untouched)."""
    temporary = path.with_name(f".{path.name}.bench-{os.getpid()}")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _retitled(data: bytes, title: str) -> bytes:
    edited, count = re.subn(
        rb"^title: .*$", f'title: "{title}"'.encode(), data, count=1, flags=re.M
    )
    if count != 1:
        raise RuntimeError("the edited seed file has no top-level title line")
    return edited


NEW_FILE = """---
title: "A new article {token}"
excerpt: "Written by the benchmark suite."
publishedDateTime: {published}
webUrl: "https://example.com/benchmark/new-{token}"
quality: 80
topics:
  - AI
---
"""


def _now_iso() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _holding(catalog: Any, identity: str) -> list[str]:
    """The feeds that hold the article."""
    return sorted(
        key
        for key, feed in catalog.feeds.items()
        if any(entry.identity == identity for entry in feed.entries)
    )


def reload(root: str, config: str, state: str) -> dict[str, object]:
    """P5: which feeds a one-file change re-renders, against the feeds that hold the
    article: an edit of the newest article (the title), and a new file that becomes the
    newest; and (information) what a no-change and a one-change reload cost."""
    import logging

    logging.disable(logging.WARNING)
    from feedservice.runtime.loader import Loader
    from feedservice.store.db import Store

    seeds = Path(root)
    loader = Loader(
        Store.in_dir(Path(state)),
        seeds,
        Path(config),
        config_required=True,
        environ={},
        workers=os.cpu_count() or 1,
    )
    started = time.perf_counter()
    first = loader.reload()
    first_load_s = time.perf_counter() - started
    if first is None or loader.catalog is None:
        raise RuntimeError("the first reload committed nothing")
    catalog, files = loader.catalog, len(loader.files)
    bare: list[float] = []
    no_change: list[float] = []
    for _ in range(5):  # interleaved, so drift hits both alike
        bare.append(bare_scan(root))
        started = time.perf_counter()
        again = loader.reload()
        no_change.append(time.perf_counter() - started)
        if again is not None:
            raise RuntimeError(f"a reload with nothing changed committed {again}")
    # The newest article is on page 1 of every feed that holds it: each of those
    # feeds' page 1 must change, and nothing else.
    victim = catalog.articles[0]
    path = seeds / victim.source
    original = path.read_bytes()
    one_change: list[float] = []
    rounds: list[dict[str, object]] = []
    added: list[Path] = []
    added_s: list[float] = []
    added_rounds: list[dict[str, object]] = []
    try:
        for round_ in range(3):
            _replace(path, _retitled(original, f"Edited title {round_}"))
            started = time.perf_counter()
            reloaded = loader.reload()
            one_change.append(time.perf_counter() - started)
            if reloaded is None or (reloaded.added, reloaded.changed, reloaded.removed) != (
                0,
                1,
                0,
            ):
                raise RuntimeError(f"the one-file change was not seen as one change: {reloaded}")
            row = loader.files[victim.source]
            if row.carried or row.identity != victim.identity:
                raise RuntimeError(f"the edited file did not parse: {row.problems}")
            assert loader.catalog is not None
            rounds.append(
                {
                    "rendered_feeds": reloaded.rendered_feeds,
                    "holding_feeds": _holding(loader.catalog, victim.identity),
                    "changed_feeds": sorted(reloaded.changed_feeds),
                    "reload_s": one_change[-1],
                }
            )
        # A new file, dated now: the newest article, as a new article usually is.
        for round_ in range(2):
            token = f"{os.getpid()}-{round_}"
            added_path = seeds / f"zz-bench-new-{token}.md"
            added.append(added_path)
            _replace(added_path, NEW_FILE.format(token=token, published=_now_iso()).encode())
            started = time.perf_counter()
            reloaded = loader.reload()
            added_s.append(time.perf_counter() - started)
            if reloaded is None or (reloaded.added, reloaded.changed, reloaded.removed) != (
                1,
                0,
                0,
            ):
                raise RuntimeError(f"the new file was not seen as one addition: {reloaded}")
            assert loader.catalog is not None
            identity = loader.catalog.articles[0].identity
            if loader.catalog.articles[0].source != added_path.name:
                raise RuntimeError("the new file is not the newest article")
            added_rounds.append(
                {
                    "rendered_feeds": reloaded.rendered_feeds,
                    "holding_feeds": _holding(loader.catalog, identity),
                    "changed_feeds": sorted(reloaded.changed_feeds),
                    "reload_s": added_s[-1],
                }
            )
    finally:
        _replace(path, original)
        for added_path in added:
            added_path.unlink(missing_ok=True)
    return {
        "files": files,
        "articles": len(catalog.articles),
        "feeds_total": len(catalog.feeds),
        "first_load_s": first_load_s,
        "bare_scan_s": statistics.median(bare),
        "bare_scan_samples_s": bare,
        "no_change_reload_s": statistics.median(no_change),
        "no_change_samples_s": no_change,
        "one_change_reload_s": statistics.median(one_change),
        "victim": victim.source,
        "rounds": rounds,
        "new_file_reload_s": statistics.median(added_s),
        "added_rounds": added_rounds,
    }


def main() -> int:
    mode, root = sys.argv[1], sys.argv[2]
    if mode == "reference":
        result: dict[str, object] = dict(reference(root))
    elif mode == "reference-parallel":
        result = dict(reference_parallel(root))
    elif mode == "reload":
        result = reload(root, sys.argv[3], sys.argv[4])
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
