"""Seed files → front-matter mappings, with errors that name file, field and line.

This module does the byte-level work: finding seed files, reading them within a
size cap, splitting off the YAML front matter and loading it safely. Turning the
mapping into an Article is `articles.py`'s job.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import re
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from feedservice import yamlsafe
from feedservice.forked import Forked
from feedservice.yamlsafe import SafeLoader

MAX_FILE_BYTES = 1 << 20  # 1 MiB: real seed files are ~2 KB
SEED_SUFFIXES = (".md", ".txt")
MAX_DIR_DEPTH = 32  # directory levels under the seed directory (recursion stays shallow)
MAX_YAML_DEPTH = 64
MAX_YAML_ALIASES = 100
MAX_YAML_NODES = 50_000  # a real seed has ~100; 10,000 topics still load
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_DELIMITER = re.compile(rb"^---[ \t]*\r?$", re.MULTILINE)
# What can open one more nesting level: a flow bracket, or a block `-`/`?` indicator
# followed by a blank, a line break or the end (libyaml's rule). Counted on UTF-8 bytes
# with `{` folded into `[`, `?` into `-` and every byte that is or may start a blank
# into a space: over-counting is harmless, it only costs the exact check.
_OPENER_BYTES = bytes.maketrans(
    b"{?\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x00\xc2\xe1\xe2\xe3", b"[-" + b" " * 14
)  # \xc2, \xe1-\xe3 start NEL, NBSP, U+1680, U+2000-U+205F and U+3000 in UTF-8
_DEEP_INDENT = " " * MAX_YAML_DEPTH  # at the start of the text or of a line:
_DEEP_INDENT_LINE = "\n" + _DEEP_INDENT  # the regex ^ {64,} without scanning every position
_FORMAT_BITS = stat.S_IFMT(0o177777)
_REGULAR = stat.S_IFREG
_SMALL_YAML = 64 * 1024  # below this, a document cannot hold MAX_YAML_NODES nodes cheaply


class SeedError(Exception):
    """A seed file that cannot be used: names the file, the field and the line.

    `field` is a front-matter key, or a pseudo-field in parentheses such as
    `(file)`, `(front matter)`, `(yaml)` or `(encoding)` for problems that are
    not about one key.
    """

    def __init__(self, source: str, field: str, message: str, line: int | None = None) -> None:
        self.source = source
        self.field = field
        self.message = message
        self.line = line
        super().__init__(self.describe())

    def describe(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        return f"{self.source}: {self.field}: {self.message}{where}"


# What we compare to decide whether a file changed since the last reload: its size,
# mtime_ns and inode, packed into 24 bytes. Building and comparing 100k of them per
# reload stays in C, and a server keeps one per file at a third of a tuple's size.
FileStamp = bytes
_STAMP = struct.Struct("<qqQ")
make_stamp = _STAMP.pack  # (size, mtime_ns, inode) -> FileStamp


UNSTAMPED: FileStamp = b""  # a file listed but not yet stat'ed: equals no real stamp


def stamp_mtime_ns(stamp: FileStamp) -> int:
    return _STAMP.unpack(stamp)[1]


@dataclass(frozen=True, slots=True)
class FrontMatter:
    """A loaded front-matter mapping and its text, kept to find field line numbers."""

    data: dict[str, Any]
    text: str
    first_line: int  # line number of the first YAML line in the file
    digest: str = ""  # of the front matter's bytes: the article's revision (see Article)

    def line_of(self, key: str) -> int | None:
        """The file line where top-level `key` is defined, for error messages."""
        pattern = re.compile(rf"^['\"]?{re.escape(key)}['\"]?\s*:", re.MULTILINE)
        match = pattern.search(self.text)
        if match is None:
            return None
        return self.first_line + self.text.count("\n", 0, match.start())


def display_path(relative: str) -> str:
    """A printable, one-line form of a path whose bytes may not be valid UTF-8.

    Control characters are escaped too: a file named `a\nFAKE LOG LINE.md` must not
    be able to forge lines in logs and `check` output.
    """
    if relative.isascii() and relative.isprintable():
        return relative  # the common case: nothing to escape, and no copy to keep per file
    text = relative.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return _CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode(), text)


def scan(root: Path, *, stat_files: bool = True) -> tuple[dict[str, FileStamp], list[SeedError]]:
    """Every seed file under `root` (recursively) with its stamp.

    With `stat_files=False`, a regular file (known from the directory listing, so
    without a system call) gets UNSTAMPED instead: for a load that reads every
    file anyway and takes each stamp from the file it opened (`read_seed_stamped`).

    Symlinked directories are not entered; a symlinked file is read only if it
    resolves inside `root`, so a seed directory cannot expose other files.
    Raises SeedError if `root` itself cannot be listed: a vanished or unreadable
    seed directory must not look like an empty one (that would drop every article).

    This runs on every reload over every file, so it is one flat loop: a reload
    with no change should cost little more than the scandir + stat it must do.
    """
    stamps: dict[str, FileStamp] = {}
    problems: list[SeedError] = []
    pack = make_stamp
    real_root = os.path.realpath(root)
    pending = [(str(root), "")]  # (directory, its path relative to root, with a trailing /)
    while pending:
        directory, prefix = pending.pop()
        try:
            entries = os.scandir(directory)
        except OSError as error:
            if not prefix:  # the seed directory itself: never read that as "no files"
                raise SeedError(
                    display_path(directory), "(directory)", f"cannot be listed: {error.strerror}"
                ) from None
            problems.append(
                SeedError(
                    display_path(prefix.rstrip("/")),
                    "(directory)",
                    f"cannot be listed ({error.strerror}); its files are left out",
                )
            )
            continue
        with entries:
            for entry in entries:
                name = entry.name
                if name[0] == ".":
                    continue  # editors' swap files and hidden directories
                try:
                    if not name.endswith(SEED_SUFFIXES):
                        if entry.is_dir(follow_symlinks=False):
                            _enter(pending, entry.path, prefix + name, problems)
                        continue
                    if not stat_files and entry.is_file(follow_symlinks=False):
                        stamps[prefix + name] = UNSTAMPED
                        continue
                    info = entry.stat(follow_symlinks=False)
                    mode = info.st_mode
                    if mode & _FORMAT_BITS != _REGULAR:
                        if stat.S_ISDIR(mode):
                            _enter(pending, entry.path, prefix + name, problems)
                            continue
                        if not stat.S_ISLNK(mode):
                            continue  # a FIFO, socket or device is never read
                        info = _symlink_target(entry.path, real_root, prefix + name, problems)
                        if info is None or not stat.S_ISREG(info.st_mode):
                            continue
                except (OSError, ValueError):
                    continue  # vanished or dangling: it simply is not there any more
                stamps[prefix + name] = pack(info.st_size, info.st_mtime_ns, info.st_ino)
    return stamps, problems


class ScanInChild:
    """`scan(root)` running in a forked child while this process does other work.

    A fresh start must scan the directory (to know which cached parses still hold)
    and load the parse cache; the two are independent, so on a multi-core machine
    the scan runs beside the load instead of before it. The child sends plain
    strings and bytes (marshal). If anything goes wrong there, or there is no
    fork, `result()` simply scans here.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._child = Forked(self._scan)

    def _scan(self) -> bytes:
        stamps, problems = scan(self.root)
        found = [(p.source, p.field, p.message, p.line) for p in problems]
        return marshal.dumps((list(stamps), list(stamps.values()), found))

    def result(self) -> tuple[dict[str, FileStamp], list[SeedError]]:
        """What `scan(root)` returns; raises as it does if the root cannot be listed."""
        payload = self._child.result()
        if payload is None:
            return scan(self.root)  # the child failed (or the root is gone): see for ourselves
        relatives, stamps, found = marshal.loads(payload)
        return dict(zip(relatives, stamps, strict=True)), [SeedError(*p) for p in found]


def _enter(
    pending: list[tuple[str, str]], path: str, relative: str, problems: list[SeedError]
) -> None:
    if relative.count("/") >= MAX_DIR_DEPTH:
        problems.append(
            SeedError(
                display_path(relative),
                "(directory)",
                f"nested more than {MAX_DIR_DEPTH} directories deep; not read",
            )
        )
    else:
        pending.append((path, relative + "/"))


def _symlink_target(
    path: str, real_root: str, relative: str, problems: list[SeedError]
) -> os.stat_result | None:
    """The stat of a symlinked seed file's target, or None if it leaves the seed directory."""
    target = os.path.realpath(path)
    if os.path.commonpath([real_root, target]) != real_root:
        problems.append(
            SeedError(
                display_path(relative),
                "(file)",
                "symlink points outside the seed directory; not followed",
            )
        )
        return None
    return os.stat(path)


def read_seed(root: str | os.PathLike[str], relative: str) -> bytes:
    """The file's bytes, at most MAX_FILE_BYTES; raise SeedError otherwise."""
    return read_seed_stamped(root, relative)[0]


def read_seed_stamped(root: str | os.PathLike[str], relative: str) -> tuple[bytes, FileStamp]:
    """`read_seed`, and the stamp of the file it read (from the open file: it describes
    these bytes, even if the path changed since the directory was scanned)."""
    shown = display_path(relative)
    path = os.path.join(root, relative)
    try:
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)  # never hang on a FIFO
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise SeedError(shown, "(file)", "vanished while being read") from None
    except OSError as error:
        raise SeedError(shown, "(file)", f"cannot open: {error.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SeedError(shown, "(file)", "not a regular file")
        data = _read_capped(fd, info.st_size)
    except OSError as error:
        raise SeedError(shown, "(file)", f"cannot read: {error.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise SeedError(shown, "(file)", f"larger than the {MAX_FILE_BYTES}-byte cap")
    return data, make_stamp(info.st_size, info.st_mtime_ns, info.st_ino)


def _read_capped(fd: int, size: int) -> bytes:
    """Up to MAX_FILE_BYTES + 1 bytes (up to end of file) from `fd`, in as few reads as
    the size from fstat allows; unbuffered, so no 1 MiB buffer per file."""
    chunks: list[bytes] = []
    total = 0
    want = min(size, MAX_FILE_BYTES) + 1  # one more than expected: the file may have grown
    while total <= MAX_FILE_BYTES:
        chunk = os.read(fd, min(want, MAX_FILE_BYTES + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        want = max(want, 1 << 16)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _closing_delimiter(data: bytes, start: int) -> re.Match[bytes] | None:
    """`_DELIMITER.search(data, start)` for a `start` just after a newline, without
    running the regex at every position."""
    position = data.find(b"\n---", start - 1)
    while position >= 0:
        match = _DELIMITER.match(data, position + 1)
        if match is not None:
            return match
        position = data.find(b"\n---", position + 1)
    return None


def split_front_matter(data: bytes, source: str) -> FrontMatter:
    """Decode a seed file and load the YAML between its first two `---` lines."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]  # a UTF-8 BOM is harmless; editors on Windows add it
    if not data.strip():
        raise SeedError(source, "(file)", "empty file")
    opening = _DELIMITER.match(data)
    if opening is None:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise SeedError(source, "(encoding)", "UTF-16 text; seed files must be UTF-8")
        if b"\x00" in data[:1024]:
            raise SeedError(source, "(encoding)", "binary data (NUL bytes); seeds must be UTF-8")
        raise SeedError(source, "(front matter)", "file must start with a '---' line", 1)
    start = opening.end() + 1  # past the newline that ends the opening '---' line
    closing = _closing_delimiter(data, start)
    if closing is None:
        raise SeedError(source, "(front matter)", "no closing '---' line", 1)
    raw = data[start : closing.start()]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = 2 + raw.count(b"\n", 0, error.start)
        raise SeedError(source, "(encoding)", "not valid UTF-8 text", line) from None
    text = text.replace("\r\n", "\n")
    refuse_yaml_bombs(text, source)  # first: the fast loader relies on its depth limit
    try:
        loaded = yamlsafe.load(text)
    except yaml.YAMLError as error:
        raise _yaml_error(error, source, text) from None
    except RecursionError:
        raise SeedError(source, "(yaml)", "nested too deeply") from None
    except Exception as error:  # untrusted input: any other failure is this file's problem
        raise SeedError(source, "(yaml)", f"cannot be loaded ({type(error).__name__})") from None
    if loaded is None:
        raise SeedError(source, "(front matter)", "front matter is empty", 2)
    if not isinstance(loaded, dict):
        raise SeedError(source, "(front matter)", "front matter must be a mapping of fields", 2)
    return FrontMatter(loaded, text, first_line=2, digest=front_matter_digest(raw))


def front_matter_digest(raw: bytes) -> str:
    """A digest of everything a seed file publishes from: its front matter's bytes.

    The body after the front matter is never published, so it is left out. This
    is over 4x cheaper than digesting the cleaned Article field by field, and it
    still changes whenever the output could (same parsing code: parsecache and
    rendercache key on that)."""
    return hashlib.blake2b(raw, digest_size=12).hexdigest()


def refuse_yaml_bombs(text: str, source: str) -> None:
    """Reject deep nesting, alias floods and huge node counts before libyaml builds them.

    libyaml's composer recurses in C and crashes the process on very deep
    nesting (flow `[[[`, block `- - -` or `? ? ?` alike), so depth is checked on
    the (iterative) event stream first. Only documents that could be dangerous
    pay for the extra pass: nesting deeper than MAX_YAML_DEPTH needs that many
    level openers or that much indentation, an alias needs `&` and `*`, and
    MAX_YAML_NODES nodes need more than _SMALL_YAML characters.
    """
    if not _suspicious(text):
        return
    depth = 0
    aliases = 0
    nodes = 0
    try:
        for event in yaml.parse(text, Loader=SafeLoader):
            if isinstance(event, yaml.NodeEvent):
                nodes += 1
                if nodes > MAX_YAML_NODES:
                    raise SeedError(
                        source,
                        "(yaml)",
                        f"more than {MAX_YAML_NODES} values",
                        event.start_mark.line + 2,
                    )
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_YAML_DEPTH:
                    raise SeedError(
                        source,
                        "(yaml)",
                        f"nested more than {MAX_YAML_DEPTH} levels deep",
                        event.start_mark.line + 2,
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            elif isinstance(event, yaml.AliasEvent):
                aliases += 1
                if aliases > MAX_YAML_ALIASES:
                    raise SeedError(
                        source,
                        "(yaml)",
                        f"more than {MAX_YAML_ALIASES} aliases",
                        event.start_mark.line + 2,
                    )
    except yaml.YAMLError as error:
        found = _yaml_error(error, source, text)
        if "maximum nesting depth" in found.message:
            # libyaml 0.2.6 (PyYAML 6.0.4) stops at 1,000 levels itself, in its scanner,
            # which reads a flow collection ahead of the events counted above.
            message = f"nested more than {MAX_YAML_DEPTH} levels deep"
            found = SeedError(source, "(yaml)", message, found.line)
        raise found from None


def _suspicious(text: str) -> bool:
    """Whether `text` needs the exact check: each test here may over-estimate, never
    under-estimate (the level count is at least what the old regex counted)."""
    return (
        len(text) > _SMALL_YAML
        or ("&" in text and "*" in text)
        or text.startswith(_DEEP_INDENT)
        or _DEEP_INDENT_LINE in text
        or _may_open_many_levels(text)
    )


def _may_open_many_levels(text: str) -> bool:
    """Whether `text` has more than MAX_YAML_DEPTH level openers (over-estimated).

    Every opener is a `[`, `{`, `-` or `?`: with few of those in all, as in almost every
    seed file, the count below (which encodes and translates the whole text) is skipped."""
    if text.count("-") + text.count("?") + text.count("[") + text.count("{") <= MAX_YAML_DEPTH:
        return False
    return _count_level_openers(text) > MAX_YAML_DEPTH


def _count_level_openers(text: str) -> int:
    """At least the number of places in `text` that can open a nesting level."""
    folded = text.encode("utf-8", "surrogatepass").translate(_OPENER_BYTES)
    return folded.count(b"[") + folded.count(b"- ") + folded.endswith(b"-")


def _yaml_error(error: yaml.YAMLError, source: str, text: str = "") -> SeedError:
    mark = getattr(error, "problem_mark", None)
    line = mark.line + 2 if mark is not None else None  # +1 for 1-based, +1 for '---'
    problem = getattr(error, "problem", None) or type(error).__name__
    if isinstance(error, yaml.reader.ReaderError):  # a character YAML does not allow
        code = error.character
        shown = f"U+{code:04X}" if isinstance(code, int) else repr(code)
        problem = f"character {shown} not allowed ({error.reason})"
        line = text.count("\n", 0, error.position) + 2 if text else None
    context = getattr(error, "context", None)
    message = f"invalid YAML: {problem}" + (f" ({context})" if context else "")
    return SeedError(source, "(yaml)", message, line)
