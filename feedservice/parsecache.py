"""A persistent parse cache, so a restart on an unchanged seed directory parses nothing.

One file holds, for every seed file, its stamp (size, mtime_ns, inode) and what
parsing it gave (the stored article or None, and its problems). On start the
store re-uses an entry only when the file's stamp is unchanged; anything else is
parsed again. The cache is an optimisation only: a missing, stale, truncated,
foreign or corrupt cache file is ignored, so deleting it is always safe.

Writes are crash-safe: a uniquely named temp file in the same directory,
fsync, then `os.replace`, so readers (other worker processes) see the old file
or the new one, never half of one. Each part carries its length and CRC, so a
damaged file is refused as a whole rather than half-used. A few changed files
are appended to a journal beside the file (framed, checksummed, under a lock)
instead; a torn or foreign journal record and everything after it is ignored.

Format and trust boundary: a header pickle, then two pickles: the stamps, which
alone tell what changed, and the parse results in the compact stored form
(compact.py), one list per field (strings, numbers, bytes, shared tuples), so
loading 100k entries takes a few hundred milliseconds and leaves no temporaries
behind. Pickle can name arbitrary code, so loading goes through an unpickler
that only admits the datetime types and our StoredArticle and Problem; on top of
that the file lives in the user's cache directory
(never in the seed directory), is created with mode 0600, and is refused unless
owned by the current user and not writable by group or others. The version key
covers the parser's source code and library versions, so a code change never
serves stale parse results.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import hashlib
import io
import logging
import os
import pickle
import stat
import struct
import sys
import threading
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import ftfy
import yaml

from feedservice import __version__, articles, compact, seeds, yamlsafe
from feedservice.articles import Problem
from feedservice.compact import StoredArticle
from feedservice.forked import Forked
from feedservice.seeds import FileStamp

log = logging.getLogger("feedservice")

CACHE_FORMAT = 2
ENV_CACHE_DIR = "FEEDSERVICE_CACHE_DIR"  # a directory, or "off" to disable the cache
MIN_CACHED_FILES = 500  # smaller directories parse in well under a second: no file needed
MAX_CACHE_BYTES = 2 << 30  # refuse absurd files rather than read them into memory

Result = tuple[StoredArticle | None, tuple[Problem, ...]]
# A parse result with the stamp of the file it was read from (None: it could not be read).
ParsedFile = tuple[FileStamp | None, Result]


# relative path → (stamp, article, problems) as the file now is, or None: it was removed.
Changes = dict[str, tuple[FileStamp, StoredArticle | None, tuple[Problem, ...]] | None]


class Contents(NamedTuple):
    """What a cache file holds: per seed file (in one order) its stamp and parse result."""

    relatives: list[str]
    stamps: list[FileStamp]
    articles: list[StoredArticle | None] | None  # None when only the stamps were read
    problems: dict[str, tuple[Problem, ...]] | None  # only files that have problems

    def entries(self) -> dict[str, tuple[FileStamp, Result]]:
        """relative path → (stamp, parse result); empty when only the stamps were read."""
        if self.articles is None:
            return {}
        problems = self.problems or {}
        return {
            relative: (stamp, (article, problems.get(relative, ())))
            for relative, stamp, article in zip(
                self.relatives, self.stamps, self.articles, strict=True
            )
        }


def dumps(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


_new_tuple = tuple.__new__
_SOURCE, _TOPICS, _PROVIDER = (
    StoredArticle._fields.index(name) for name in ("source", "topics", "provider_fields")
)


class Interner:
    """Shares equal values between stored articles: a provider, a topic tuple or a
    path string repeats across thousands of files but is kept once. The cache
    file then holds each shared value once too (pickle's memo), and so does a
    store loaded from it."""

    def __init__(self) -> None:
        self._providers: dict[Any, Any] = {}
        self._topics: dict[tuple[str, ...], tuple[str, ...]] = {}

    def __call__(self, article: StoredArticle, relative: str) -> StoredArticle:
        # (Once per parsed file, in the process that keeps it, while the parse pool is busy:
        # a list and a tuple built in C, not NamedTuple._replace, which costs ~4x as much.)
        fields = list(article)
        topics = fields[_TOPICS]
        fields[_TOPICS] = self._topics.setdefault(topics, topics)
        provider = fields[_PROVIDER]
        if provider is not None:
            fields[_PROVIDER] = self._providers.setdefault(provider, provider)
        if fields[_SOURCE] == relative:
            fields[_SOURCE] = relative
        return _new_tuple(StoredArticle, fields)  # type: ignore[no-any-return]

    def columns(self, columns: tuple[list[Any], ...], relatives: list[str]) -> None:
        """The same sharing, in place, for articles as columns (see results_from_bytes):
        one dict lookup per distinct object, and the columns rebuilt in C, not one tuple
        per article. `relatives` are the files of the articles present, in column order."""
        for position, known in (
            (_TOPICS_COLUMN, self._topics),
            (_PROVIDER_COLUMN, self._providers),
        ):
            column = columns[position]
            distinct = {id(value): value for value in column}
            shared = {
                key: known.setdefault(value, value)
                for key, value in distinct.items()
                if value is not None
            }
            column[:] = map(shared.get, map(id, column))  # (None stays None)
        sources = columns[_SOURCE_COLUMN]
        if sources == relatives:  # the usual case: each path is the store's own string
            sources[:] = relatives
        else:
            sources[:] = [
                relative if source == relative else source
                for source, relative in zip(sources, relatives, strict=True)
            ]


def _version_key() -> str:
    """Changes whenever parsing could give a different result for the same bytes."""
    digest = hashlib.blake2b(digest_size=16)
    for module in (articles, compact, seeds, yamlsafe, sys.modules[__name__]):
        source = getattr(module, "__file__", None)
        if source:
            digest.update(Path(source).read_bytes())
    parts = (CACHE_FORMAT, __version__, sys.version, yaml.__version__, ftfy.__version__)
    digest.update(repr(parts).encode())
    return digest.hexdigest()


VERSION_KEY = _version_key()


def default_cache_path(seeds_dir: str | os.PathLike[str]) -> Path | None:
    """Where the cache for `seeds_dir` lives, or None when caching is switched off.

    `$FEEDSERVICE_CACHE_DIR` (or `$XDG_CACHE_HOME/feedservice`, or
    `~/.cache/feedservice`), one file per seed directory, named by a hash of the
    directory's real path: never inside the seed directory itself.
    """
    configured = os.environ.get(ENV_CACHE_DIR)
    if configured is not None and configured.strip().lower() in {"", "off", "0", "false", "no"}:
        return None
    if configured:
        base = Path(configured)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = Path(xdg) if xdg else Path.home() / ".cache"
        base = base / "feedservice"
    real = os.path.realpath(seeds_dir)
    name = hashlib.blake2b(real.encode("utf-8", "surrogateescape"), digest_size=8).hexdigest()
    return base / f"seeds-{name}.cache"


class ParseCache:
    """Load and save the entries of one seed directory."""

    def __init__(self, path: str | os.PathLike[str], *, min_files: int | None = None) -> None:
        self.path = Path(path)
        self.min_files = MIN_CACHED_FILES if min_files is None else min_files
        self.journal = self.path.with_name(self.path.name + ".journal")
        self._save_lock = threading.Lock()

    @classmethod
    def default_for(cls, seeds_dir: str | os.PathLike[str]) -> ParseCache | None:
        path = default_cache_path(seeds_dir)
        return cls(path) if path is not None else None

    def load(self, root: str | os.PathLike[str]) -> Contents | None:
        """What was saved for `root`, or None if there is no usable cache."""
        return self._read(root, with_results=True)

    def load_stamps(self, root: str | os.PathLike[str]) -> dict[str, FileStamp]:
        """Only the stamps: enough to tell which files changed, and cheap to read."""
        found = self._read(root, with_results=False)
        return {} if found is None else dict(zip(found.relatives, found.stamps, strict=True))

    def _read(self, root: str | os.PathLike[str], *, with_results: bool) -> Contents | None:
        parts = read_parts(self.path, self._header(root), 2 if with_results else 1)
        if parts is None:
            return None
        try:
            relatives, stamps = parts[0]
            articles, problems = (
                (_from_columns(parts[1][0], len(relatives)), parts[1][1])
                if with_results
                else (None, None)
            )
            if len(relatives) != len(stamps) or (
                articles is not None and len(articles) != len(stamps)
            ):
                return None
        except (TypeError, ValueError) as error:  # a foreign file that unpickled cleanly
            log.info("parse cache %s unusable (%s); parsing everything", self.path, error)
            return None
        contents = Contents(relatives, stamps, articles, problems)
        changes = self._journal_records(root)
        return _apply(contents, changes) if changes else contents

    def save(self, root: str | os.PathLike[str], contents: Contents) -> bool:
        """Write atomically; returns False (and logs) if the cache cannot be written.
        The new file holds everything the journal held, so the journal goes."""
        relatives, stamps, articles, problems = contents
        if articles is None or len(relatives) < self.min_files:
            return False
        index = dumps((relatives, stamps))
        body = dumps((_to_columns(articles), problems))
        with self._save_lock:
            saved = write_parts(self.path, self._header(root), [index, body])
            if saved:
                with contextlib.suppress(OSError):
                    os.unlink(self.journal)
            return saved

    def append(self, root: str | os.PathLike[str], changes: Changes) -> bool:
        """Record a few changed (or, with None, removed) files at the end of the journal:
        one small write instead of rewriting the whole cache. Records are framed with a
        length and CRC and written under a lock, so a torn or interleaved write is
        detected and everything from it on is ignored (those files are parsed again)."""
        if not self.path.exists():
            return False  # a journal extends a cache file; without one, save() instead
        record = dumps((*self._header(root), changes))
        frame = struct.pack("<II", len(record), zlib.crc32(record)) + record
        try:
            fd = os.open(self.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as error:
            log.warning("cannot write parse cache journal %s: %s", self.journal, error)
            return False
        try:
            if not _trusted(os.fstat(fd)):
                return False
            fcntl.flock(fd, fcntl.LOCK_EX)
            view = memoryview(frame)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
            return True
        except OSError as error:
            log.warning("cannot write parse cache journal %s: %s", self.journal, error)
            return False
        finally:
            os.close(fd)  # (closing releases the lock)

    def journal_bytes(self) -> int:
        try:
            return os.stat(self.journal).st_size
        except OSError:
            return 0

    def _journal_records(self, root: str | os.PathLike[str]) -> list[Changes]:
        try:
            with open(self.journal, "rb") as handle:
                info = os.fstat(handle.fileno())
                if not _trusted(info) or info.st_size > MAX_CACHE_BYTES:
                    return []
                data = handle.read()
        except OSError:
            return []
        header = self._header(root)
        records: list[Changes] = []
        offset = 0
        while offset + 8 <= len(data):
            length, checksum = struct.unpack_from("<II", data, offset)
            record = data[offset + 8 : offset + 8 + length]
            if len(record) != length or zlib.crc32(record) != checksum:
                break  # a torn write: what follows cannot be trusted
            try:
                found = _unpickle(record)
            except Exception:
                break
            if isinstance(found, tuple) and found[:2] == header and isinstance(found[2], dict):
                records.append(found[2])
            offset += 8 + length
        return records

    @staticmethod
    def _header(root: str | os.PathLike[str]) -> tuple[str, str]:
        return (VERSION_KEY, os.path.realpath(root))


class SaveInChild:
    """`cache.save(root, contents)` in a forked child, while this process goes on.

    A cold start has just parsed every file. Writing the cache takes about a second
    at 100k files, and nothing the server does next (the catalog, the first render)
    needs it, so a child writes it on another core. The child ignores SIGINT and
    SIGTERM: stopping the server right after a cold start does not cut the write
    short, and `wait()` (which the server's stop calls) makes a restart right after
    it warm. Without a fork, the save simply happens here.
    """

    def __init__(self, cache: ParseCache, root: str | os.PathLike[str], contents: Contents) -> None:
        def save() -> bytes:
            cache.save(root, contents)  # (it logs its own failure)
            return b""

        self._child = Forked(save, finish_on_stop=True)
        if not self._child.pid:
            save()

    @property
    def pid(self) -> int:
        return self._child.pid

    def wait(self) -> None:
        """Until the save is done; at once if it is, or if this process did not start it."""
        self._child.result()


# --- stored articles as columns --------------------------------------------------------------
#
# The cache keeps the articles as one list per field, not as pickled objects: unpickling an
# object or a datetime leaves its argument tuples in pickle's memo until the whole load ends,
# and freeing 100k of them at once leaves holes all over a long-lived server's heap. Columns of
# strings, numbers and shared tuples load with no such temporaries, and faster.

_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _to_columns(articles: list[StoredArticle | None]) -> tuple[list[Any], ...]:
    present = [n for n, article in enumerate(articles) if article is not None]
    rows = [articles[n] for n in present]
    columns: list[list[Any]] = [present]
    for field in StoredArticle._fields:
        if field == "published":
            parts = [_date_parts(row.published) for row in rows]
            columns.extend([[part[n] for part in parts] for n in range(3)])
        else:
            columns.append([getattr(row, field) for row in rows])
    return tuple(columns)


def _from_columns(columns: Any, count: int) -> list[StoredArticle | None]:
    present, identity, seconds, microseconds, offsets, *rest = columns
    if len(rest) != len(StoredArticle._fields) - 2:
        raise ValueError("another article layout")
    published = _datetimes(seconds, microseconds, offsets)
    new = tuple.__new__  # a StoredArticle from its fields, without a Python-level call
    cls = StoredArticle
    built = [new(cls, row) for row in zip(identity, published, *rest, strict=True)]
    if len(built) == count:
        return built  # type: ignore[return-value]
    articles: list[StoredArticle | None] = [None] * count
    for n, article in zip(present, built, strict=True):
        articles[n] = article
    return articles


def _column(field: str) -> int:
    """Where `field` sits in _to_columns' output (after `present`; published is 3 columns)."""
    position = 1 + StoredArticle._fields.index(field)
    return position + 2 if position > 2 else position


_TOPICS_COLUMN, _SOURCE_COLUMN, _PROVIDER_COLUMN = map(
    _column, ("topics", "source", "provider_fields")
)


def results_to_bytes(parsed: list[ParsedFile]) -> bytes:
    """A pool worker's results for the parent, as columns (one list per field, as the
    cache file keeps them) rather than one pickled object per article: the parent loads
    them in about a third of the time, and what it spends is taken from the workers.
    Equal topic tuples and providers are one object (pickled once per chunk)."""
    columns = _to_columns([article for _, (article, _) in parsed])
    for position in (_TOPICS_COLUMN, _PROVIDER_COLUMN):
        seen: dict[Any, Any] = {}
        columns[position][:] = [seen.setdefault(value, value) for value in columns[position]]
    problems = {n: found for n, (_, (_, found)) in enumerate(parsed) if found}
    return dumps(([stamp for stamp, _ in parsed], columns, problems))


def results_from_bytes(data: bytes, relatives: list[str], share: Interner) -> list[ParsedFile]:
    """What `results_to_bytes` sent, for these files, its values shared as `share` does."""
    stamps, columns, problems = pickle.loads(data)  # (from our own pool worker)
    if len(stamps) != len(relatives):
        raise ValueError(f"{len(stamps)} results for {len(relatives)} files")
    share.columns(columns, [relatives[n] for n in columns[0]])
    articles = _from_columns(columns, len(stamps))
    return [
        (stamp, (article, problems.get(n, ())))
        for n, (stamp, article) in enumerate(zip(stamps, articles, strict=True))
    ]


def _date_parts(value: datetime) -> tuple[int, int, int]:
    """(POSIX seconds, microseconds, UTC offset in seconds): plain numbers, exact."""
    delta = value - _UNIX_EPOCH
    offset = value.utcoffset()
    return (
        delta.days * 86400 + delta.seconds,
        delta.microseconds,
        0 if offset is None else int(offset.total_seconds()),
    )


def _datetimes(seconds: list[int], microseconds: list[int], offsets: list[int]) -> list[datetime]:
    """Aware datetimes again. Equal ones are one shared object (publish times repeat a
    lot), and each offset's timezone is one object (such datetimes compare fast)."""
    made: dict[tuple[int, int, int], datetime] = {}
    zones: dict[int, timezone] = {0: UTC}
    from_timestamp = datetime.fromtimestamp
    found: list[datetime] = []
    for key in zip(seconds, microseconds, offsets, strict=True):
        value = made.get(key)
        if value is None:
            second, microsecond, offset = key
            zone = zones.get(offset)
            if zone is None:
                zone = zones[offset] = timezone(timedelta(seconds=offset))
            value = from_timestamp(second, zone)
            if microsecond:
                value = value.replace(microsecond=microsecond)
            made[key] = value
        found.append(value)
    return found


def _apply(contents: Contents, journal: list[Changes]) -> Contents:
    """The cache file's contents with the journal's records applied in order."""
    entries: dict[str, tuple[FileStamp, StoredArticle | None, tuple[Problem, ...]] | None] = {}
    for changes in journal:
        entries.update(changes)
    relatives, stamps, articles, problems = contents
    index = {relative: n for n, relative in enumerate(relatives)}
    removed = set()
    problems = dict(problems) if problems is not None else None
    for relative, entry in entries.items():
        n = index.get(relative)
        if entry is None:
            if n is not None:
                removed.add(n)
            continue
        stamp, article, found = entry
        if n is None:
            n = len(relatives)
            relatives.append(relative)
            stamps.append(stamp)
            if articles is not None:
                articles.append(article)
        else:
            stamps[n] = stamp
            if articles is not None:
                articles[n] = article
        if problems is not None:
            if found:
                problems[relative] = found
            else:
                problems.pop(relative, None)
    if removed:
        keep = [n for n in range(len(relatives)) if n not in removed]
        for relative in (relatives[n] for n in removed):
            if problems is not None:
                problems.pop(relative, None)
        relatives = [relatives[n] for n in keep]
        stamps = [stamps[n] for n in keep]
        articles = [articles[n] for n in keep] if articles is not None else None
    return Contents(relatives, stamps, articles, problems)


# --- cache files: trusted, checksummed, written atomically ---------------------------------


def write_parts(path: Path, header: tuple[str, ...], parts: list[bytes]) -> bool:
    """Write `header` and pickled `parts` (each with its length and CRC) atomically:
    a uniquely named temp file in the same directory, fsync, rename. False if it fails."""
    head = dumps((*header, *[(len(data), zlib.crc32(data)) for data in parts]))
    temp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for payload in (head, *parts):
                view = memoryview(payload)
                while view:
                    view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
        _fsync_directory(path.parent)
        return True
    except OSError as error:
        log.warning("cannot write cache file %s: %s", path, error)
        with contextlib.suppress(OSError):
            os.unlink(temp)
        return False


def read_parts(path: Path, header: tuple[str, ...], count: int) -> list[Any] | None:
    """The first `count` parts of a cache file written with `header`, or None if it is
    missing, not ours, writable by others, for another header, truncated or damaged."""
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not _trusted(info):
                log.warning("cache file %s is not ours or is writable by others", path)
                return None
            if info.st_size > MAX_CACHE_BYTES:
                return None
            head = _RestrictedUnpickler(handle).load()
            if not isinstance(head, tuple) or head[: len(header)] != header:
                return None
            parts = []
            for length, checksum in head[len(header) : len(header) + count]:
                data = handle.read(length)
                if len(data) != length or zlib.crc32(data) != checksum:
                    raise ValueError("damaged (length or checksum)")
                parts.append(_unpickle(data))
            if len(parts) != count:
                raise ValueError("missing parts")
            return parts
    except FileNotFoundError:
        return None
    except Exception as error:  # unreadable, truncated, corrupt or foreign
        log.info("cache file %s unusable (%s); ignored", path, error)
        return None


def _trusted(info: os.stat_result) -> bool:
    if not stat.S_ISREG(info.st_mode):
        return False
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return False
    return not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Bulk work that allocates many objects and makes no cycles (a cache load, a batch
    of parses): collections triggered by the allocations would only slow it down (~10%).
    Anything cyclic made meanwhile is collected once the block ends."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def _unpickle(data: bytes) -> Any:
    """Load one part (100k tuples and no cycles), with the cyclic GC paused."""
    with paused_gc():
        return _RestrictedUnpickler(io.BytesIO(data)).load()


class _RestrictedUnpickler(pickle.Unpickler):
    """Only the types our entries contain may be named: a planted file runs no code."""

    _ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("datetime", name) for name in ("datetime", "timezone", "timedelta", "date")
    } | {(cls.__module__, cls.__qualname__) for cls in (StoredArticle, Problem)}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in the parse cache")
        return super().find_class(module, name)


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
