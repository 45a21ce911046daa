"""In-process measurements on one corpus, printed as JSON (run by run.py in a subprocess).

python benchmarks/inproc.py reference DIR   # single-process libyaml parse of the front matter
python benchmarks/inproc.py reference-parallel DIR   # the same across every core (a floor)
python benchmarks/inproc.py reload DIR      # P4 reloads and P5 incremental rendering
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

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
    not a target, but the floor P2 can reach on this machine if a file costs what a bare
    libyaml load costs, with nothing else to do."""
    import functools
    import multiprocessing

    names = _seed_names(root)
    chunks = [names[start : start + 1000] for start in range(0, len(names), 1000)]
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(os.cpu_count() or 1) as pool:
        sum(pool.imap_unordered(functools.partial(_libyaml_load_all, root), chunks))
    return {"libyaml_parallel_s": time.perf_counter() - started}


def reload(root: str, config: str) -> dict[str, object]:
    """P4: reload cost with no change and with one changed file; P5: what re-rendered."""
    import logging

    logging.disable(logging.WARNING)
    from feedservice.catalog import load_seed_file
    from feedservice.service import Service

    service = Service(root, config)
    feeds = len(service.snapshot.catalog.feeds)
    bare = statistics.median(bare_scan(root) for _ in range(5))
    no_change = []
    for _ in range(5):
        started = time.perf_counter()
        snapshot = service.reload()
        no_change.append(time.perf_counter() - started)
        assert not snapshot.stats.any_change
    # One changed file: the newest article (on page 1 of its feeds) gets a new title.
    victim = Path(root, service.snapshot.catalog.articles[0].source)
    original = victim.read_bytes()
    parse = []
    one_change = []
    refresh_only = []
    rendered: list[list[str]] = []
    renders = []
    try:
        for round_ in range(3):
            victim.write_bytes(original.replace(b"title: ", f"title: Edit{round_} ".encode(), 1))
            started = time.perf_counter()
            snapshot = service.reload()
            one_change.append(time.perf_counter() - started)
            assert snapshot.stats.changed == 1, snapshot.stats
            rendered.append(sorted("/".join(key) for key in snapshot.documents.rendered_feeds))
            renders.append(snapshot.documents.renders)
            started = time.perf_counter()
            load_seed_file(root, victim.name)
            parse.append(time.perf_counter() - started)
            victim.write_bytes(original.replace(b"title: ", f"title: Again{round_} ".encode(), 1))
            started = time.perf_counter()
            service.store.refresh()
            refresh_only.append(time.perf_counter() - started)
    finally:
        victim.write_bytes(original)
    return {
        "articles": len(service.snapshot.catalog.articles),
        "bare_scan_s": bare,
        "no_change_reload_s": statistics.median(no_change),
        "one_change_reload_s": statistics.median(one_change),
        "one_change_refresh_s": statistics.median(refresh_only),
        "one_parse_s": statistics.median(parse),
        "feeds_total": feeds,
        "feeds_rendered_after_one_change": rendered[-1],
        "documents_rendered_after_one_change": renders[-1],
    }


def main() -> int:
    mode, root = sys.argv[1], sys.argv[2]
    if mode == "reference":
        result: dict[str, object] = dict(reference(root))
    elif mode == "reference-parallel":
        result = dict(reference_parallel(root))
    else:
        result = reload(root, sys.argv[3])
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
