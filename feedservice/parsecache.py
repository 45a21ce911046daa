"""A persistent parse cache, so a restart on an unchanged seed directory parses nothing.

One file holds, for every seed file, its stamp (size, mtime_ns, inode) and what
parsing it gave (the Article or None, and its problems). On start the store
re-uses an entry only when the file's stamp is unchanged; anything else is
parsed again. The cache is an optimisation only: a missing, stale, truncated,
foreign or corrupt cache file is ignored, so deleting it is always safe.

Writes are crash-safe: a uniquely named temp file in the same directory,
fsync, then `os.replace`, so readers (other worker processes) see the old file
or the new one, never half of one.

Format and trust boundary: the file is a pickle of plain tuples (strings,
numbers, datetimes), compact and fast to load. Pickle can name arbitrary code,
so loading goes through an unpickler that only admits the datetime types and
our own article dataclasses; on top of that the file lives in the user's cache
directory (never in the seed directory), is created with mode 0600, and is
refused unless owned by the current user and not writable by group or others.
The version key covers the parser's source code and library versions, so a
code change never serves stale parse results.
"""

from __future__ import annotations

import contextlib
import copyreg
import dataclasses
import hashlib
import io
import logging
import operator
import os
import pickle
import stat
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ftfy
import yaml

from feedservice import __version__, articles, seeds, yamlsafe
from feedservice.articles import Article, Image, Problem, Provider, RelatedArticle

log = logging.getLogger("feedservice")

CACHE_FORMAT = 1
ENV_CACHE_DIR = "FEEDSERVICE_CACHE_DIR"  # a directory, or "off" to disable the cache
MIN_CACHED_FILES = 500  # smaller directories parse in well under a second: no file needed
MAX_CACHE_BYTES = 2 << 30  # refuse absurd files rather than read them into memory

# (size, mtime_ns, inode, encoded parse result); see encode_result.
Entry = tuple[int, int, int, Any]
Result = tuple[Article | None, tuple[Problem, ...]]
_CLASSES = (Article, Provider, Image, RelatedArticle, Problem)
_LAYOUT = {
    Article: [
        "identity",
        "link",
        "title",
        "excerpt",
        "published",
        "source",
        "is_draft",
        "topics",
        "category",
        "kind",
        "quality",
        "heat",
        "provider",
        "images",
        "related",
        "original_url",
        "amp_url",
        "cdn_amp_url",
        "revision",
    ],
    Provider: ["name", "domain", "image"],
    Image: ["url", "width", "height", "title"],
    RelatedArticle: ["title", "link", "provider", "published"],
    Problem: ["source", "field", "message", "line", "fatal"],
}
# The tuple codec knows the current field layout; if a class changes, fall back to
# pickling the objects themselves (slower, always correct) until the codec is updated.
FAST_CODEC = all(
    [field.name for field in dataclasses.fields(cls)] == names for cls, names in _LAYOUT.items()
)


def _reducer(cls: type) -> Callable[[Any], tuple[type, tuple[Any, ...]]]:
    getter = operator.attrgetter(*(field.name for field in dataclasses.fields(cls)))
    return lambda obj: (cls, getter(obj))


_DISPATCH = copyreg.dispatch_table.copy()
_DISPATCH.update({cls: _reducer(cls) for cls in _CLASSES})


def _image(image: Image | None) -> tuple[Any, ...] | None:
    return None if image is None else (image.url, image.width, image.height, image.title)


def encode_result(article: Article | None, problems: tuple[Problem, ...]) -> Any:
    """One parse result as plain tuples: fast to pickle, small, and class-free."""
    if not FAST_CODEC:
        return (article, problems)
    encoded_problems = tuple((p.source, p.field, p.message, p.line, p.fatal) for p in problems)
    if article is None:
        return (None, encoded_problems)
    a = article
    provider = a.provider
    return (
        (
            a.identity,
            a.link,
            a.title,
            a.excerpt,
            a.published,
            a.source,
            a.is_draft,
            a.topics,
            a.category,
            a.kind,
            a.quality,
            a.heat,
            None if provider is None else (provider.name, provider.domain, _image(provider.image)),
            tuple([_image(image) for image in a.images]),
            tuple([(r.title, r.link, r.provider, r.published) for r in a.related]),
            a.original_url,
            a.amp_url,
            a.cdn_amp_url,
            a.revision,
        ),
        encoded_problems,
    )


def decode_result(value: Any) -> Result:
    """The inverse of `encode_result`."""
    if not FAST_CODEC:
        return value
    fields, encoded_problems = value
    problems = tuple([Problem(*p) for p in encoded_problems]) if encoded_problems else ()
    if fields is None:
        return None, problems
    (*head, provider, images, related, original_url, amp_url, cdn_amp_url, revision) = fields
    if provider is not None:
        logo = provider[2]
        provider = Provider(provider[0], provider[1], None if logo is None else Image(*logo))
    return (
        Article(
            *head,
            provider,
            tuple([Image(*image) for image in images]) if images else (),
            tuple([RelatedArticle(*r) for r in related]) if related else (),
            original_url,
            amp_url,
            cdn_amp_url,
            revision,
        ),
        problems,
    )


def dumps(value: Any) -> bytes:
    """Pickle with compact reducers for our classes; the inverse is `pickle.loads`."""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _DISPATCH
    pickler.dump(value)
    return buffer.getvalue()


def _version_key() -> str:
    """Changes whenever parsing could give a different result for the same bytes."""
    digest = hashlib.blake2b(digest_size=16)
    for module in (articles, seeds, yamlsafe):
        source = getattr(module, "__file__", None)
        if source:
            digest.update(Path(source).read_bytes())
    for cls in _CLASSES:
        digest.update(repr([field.name for field in dataclasses.fields(cls)]).encode())
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
        self._save_lock = threading.Lock()

    @classmethod
    def default_for(cls, seeds_dir: str | os.PathLike[str]) -> ParseCache | None:
        path = default_cache_path(seeds_dir)
        return cls(path) if path is not None else None

    def load(self, root: str | os.PathLike[str]) -> dict[str, Entry]:
        """The entries saved for `root`, or {} if there is no usable cache."""
        return self._read(root, stamps_only=False)

    def load_stamps(self, root: str | os.PathLike[str]) -> dict[str, tuple[int, int, int]]:
        """Only the stamps: enough to tell which files changed, and cheap to read."""
        return self._read(root, stamps_only=True)

    def _read(self, root: str | os.PathLike[str], *, stamps_only: bool) -> dict[str, Any]:
        try:
            with open(self.path, "rb") as handle:
                info = os.fstat(handle.fileno())
                if not self._trusted(info):
                    log.warning("parse cache %s is not ours or is writable by others", self.path)
                    return {}
                if info.st_size > MAX_CACHE_BYTES:
                    return {}
                # Two pickles: (header, stamps), then the parse results.
                header, stamps = _RestrictedUnpickler(handle).load()
                if header != self._header(root) or not isinstance(stamps, dict):
                    return {}
                if stamps_only:
                    return stamps
                results = _RestrictedUnpickler(handle).load()
        except FileNotFoundError:
            return {}
        except Exception as error:  # unreadable, truncated, corrupt or foreign
            log.info("parse cache %s unusable (%s); parsing everything", self.path, error)
            return {}
        if not isinstance(results, dict) or results.keys() != stamps.keys():
            return {}
        return {relative: (*stamp, results[relative]) for relative, stamp in stamps.items()}

    def save(self, root: str | os.PathLike[str], entries: dict[str, Entry]) -> bool:
        """Write atomically; returns False (and logs) if the cache cannot be written."""
        if len(entries) < self.min_files:
            return False
        with self._save_lock:
            temp = self.path.with_name(
                f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp"
            )
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                stamps = {relative: entry[:3] for relative, entry in entries.items()}
                results = {relative: entry[3] for relative, entry in entries.items()}
                head = dumps((self._header(root), stamps))
                body = dumps(results)
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                try:
                    for payload in (head, body):
                        view = memoryview(payload)
                        while view:
                            view = view[os.write(fd, view) :]
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(temp, self.path)
                _fsync_directory(self.path.parent)
                return True
            except OSError as error:
                log.warning("cannot write parse cache %s: %s", self.path, error)
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                return False

    @staticmethod
    def _header(root: str | os.PathLike[str]) -> tuple[str, str]:
        return (VERSION_KEY, os.path.realpath(root))

    @staticmethod
    def _trusted(info: os.stat_result) -> bool:
        if not stat.S_ISREG(info.st_mode):
            return False
        if hasattr(os, "getuid") and info.st_uid != os.getuid():
            return False
        return not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


class _RestrictedUnpickler(pickle.Unpickler):
    """Only the classes our entries contain may be named: a planted file runs no code."""

    _ALLOWED = {("datetime", name) for name in ("datetime", "timezone", "timedelta", "date")} | {
        (cls.__module__, cls.__qualname__) for cls in _CLASSES
    }

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
