"""Finding seed files and reading them within bounds.

`scan` lists every seed file with its change stamp; `read_seed` reads one file
(at most MAX_FILE_BYTES, never blocking on a FIFO) and returns the stamp of the
bytes it read. Turning bytes into an Article is frontmatter.py's and article.py's job.
"""

from __future__ import annotations

import os
import stat
import struct

from feedservice.ingest.problem import Problem, display_path

MAX_FILE_BYTES = 1 << 20  # 1 MiB: real seed files are a few KB
# Markdown as Jekyll and Hugo name it, text, and HTML pages (a static site's `.html` posts).
SEED_SUFFIXES = (".md", ".markdown", ".mdown", ".mkdn", ".mkd", ".txt", ".html", ".htm")
SECTION_PAGE = "_index."  # Hugo's list page of a section: not an article
MAX_DIR_DEPTH = 32  # directory levels under the seed directory

# A file changed if its size, mtime, ctime or inode changed. The inode change time moves
# on every write, even when the mtime is put back (`touch -r`) and the size is the same.
Stamp = bytes
_STAMP = struct.Struct("<qqqQ")


def stamp_of(info: os.stat_result) -> Stamp:
    return _STAMP.pack(info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)


def scan(
    root: str | os.PathLike[str], *, stat_files: bool = True
) -> tuple[dict[str, Stamp], list[Problem]]:
    """Every seed file under `root` (recursively) with its stamp, and what could not be read.

    With `stat_files=False` a regular file's stamp is left empty (b""): for a load that
    reads every file anyway and takes each stamp from the file it opened (read_seed).

    Hidden files and directories are skipped; symlinked directories are not entered; a
    symlinked file is read only if it resolves inside `root`. Raises Problem if `root`
    itself cannot be listed: a vanished or unreadable seed directory must never look
    like an empty one (that would drop every article).
    """
    stamps: dict[str, Stamp] = {}
    problems: list[Problem] = []
    real_root = os.path.realpath(root)
    pending = [(os.fspath(root), "")]
    while pending:
        directory, prefix = pending.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError as error:
            if not prefix:
                raise Problem(
                    display_path(directory), "(directory)", f"cannot be listed: {error.strerror}"
                ) from None
            problems.append(
                Problem(
                    display_path(prefix.rstrip("/")),
                    "(directory)",
                    f"cannot be listed ({error.strerror}); its files are left out",
                )
            )
            continue
        for entry in entries:
            relative = prefix + entry.name
            if entry.name.startswith("."):
                continue  # editors' swap files and hidden directories
            try:
                if not stat_files and entry.is_file(follow_symlinks=False):
                    if is_seed_name(entry.name):
                        stamps[relative] = b""  # (no system call: the listing's file type)
                    continue
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(info.st_mode):
                    _enter(pending, entry.path, relative, problems)
                    continue
                if not is_seed_name(entry.name):
                    continue
                if stat.S_ISLNK(info.st_mode):
                    info = _symlink_target(entry.path, real_root, relative, problems)
                if info is not None and stat.S_ISREG(info.st_mode):
                    stamps[relative] = stamp_of(info)
            except (OSError, ValueError):
                continue  # vanished or dangling: it simply is not there any more
    return stamps, problems


def is_seed_name(name: str) -> bool:
    return name.endswith(SEED_SUFFIXES) and not name.startswith(SECTION_PAGE)


def _enter(pending: list[tuple[str, str]], path: str, relative: str, problems: list) -> None:
    if relative.count("/") >= MAX_DIR_DEPTH:
        message = f"nested more than {MAX_DIR_DEPTH} directories deep; not read"
        problems.append(Problem(display_path(relative), "(directory)", message))
    else:
        pending.append((path, relative + "/"))


def _symlink_target(
    path: str, real_root: str, relative: str, problems: list[Problem]
) -> os.stat_result | None:
    target = os.path.realpath(path)
    if os.path.commonpath([real_root, target]) != real_root:
        message = "symlink points outside the seed directory; not followed"
        problems.append(Problem(display_path(relative), "(file)", message))
        return None
    return os.stat(path)


def read_seed(root: str | os.PathLike[str], relative: str) -> tuple[bytes, Stamp]:
    """The file's bytes and the stamp of what was read (from the open file, so it
    describes these bytes even if the path changed since the scan).

    Opened non-blocking (a FIFO put in a file's place never hangs a reload); one read
    when the file is the size fstat says, as nearly all are."""
    try:
        fd = os.open(os.path.join(root, relative), os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise Problem(display_path(relative), "(file)", "vanished while being read") from None
    except OSError as error:
        raise Problem(display_path(relative), "(file)", f"cannot open: {error.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Problem(display_path(relative), "(file)", "not a regular file")
        want = min(info.st_size, MAX_FILE_BYTES) + 1
        data = os.read(fd, want)
        if len(data) == want:  # larger than fstat said (it is growing): read on, to the cap
            chunks = [data]
            while want <= MAX_FILE_BYTES:
                chunk = os.read(fd, MAX_FILE_BYTES + 1 - want)
                if not chunk:
                    break
                chunks.append(chunk)
                want += len(chunk)
            data = b"".join(chunks)
    except OSError as error:
        raise Problem(display_path(relative), "(file)", f"cannot read: {error.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise Problem(
            display_path(relative), "(file)", f"larger than the {MAX_FILE_BYTES}-byte cap"
        )
    return data, stamp_of(info)
