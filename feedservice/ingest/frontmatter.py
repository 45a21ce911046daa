"""A seed file's bytes → its front matter as a mapping, loaded safely, and its body.

Front matter is YAML between `---` lines, or (as Hugo writes it) TOML between `+++`
lines or one JSON object; blank lines before it are skipped. Only PyYAML's safe loader
(libyaml's `CSafeLoader`) ever reads YAML. Deep nesting and alias floods are refused
before libyaml builds them (its composer recurses in C and would crash the process).
Characters YAML does not allow, such as the C1 controls left by UTF-8 text decoded as
Latin-1 (`â€\\x9d`), are repaired or removed first, so such a file is served instead
of rejected; each repair is reported as a warning.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

import ftfy
import yaml

from feedservice.ingest import yamlload
from feedservice.ingest.problem import Problem

MAX_YAML_DEPTH = 64
MAX_YAML_ALIASES = 100
MAX_YAML_NODES = 50_000  # a real seed has ~100 values
COMPOSER_SAFE_DEPTH = 1000  # libyaml composes in C recursion: 100,000 levels crash it
_SMALL_YAML = MAX_YAML_NODES // 2  # fewer characters cannot make MAX_YAML_NODES values
_DELIMITER = re.compile(rb"^---[ \t]*\r?$", re.MULTILINE)
_TOML_DELIMITER = re.compile(r"^\+\+\+[ \t]*$", re.MULTILINE)
_TOML_LINE = re.compile(r"at line (\d+)")
_PLAIN_BYTES = bytes(range(0x20, 0x7F)) + b"\t\n\r"  # printable ASCII and line breaks
# What YAML 1.1 does not allow in a stream (C0 except tab and line breaks, C1 except NEL,
# surrogates, U+FFFE/U+FFFF); found, these are repaired (ftfy) or dropped before loading.
_NOT_YAML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]")
# Everything that can open one more nesting level (see _may_nest_too_deep).
_ALL_BUT_OPENERS = bytes(b for b in range(256) if b not in b"-?[{")  # (to count them fast)
_OPENER_BYTES = bytes.maketrans(
    b"{?\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x00\xc2\xe1\xe2\xe3", b"[-" + b" " * 14
)


@dataclass(frozen=True, slots=True)
class FrontMatter:
    """A loaded front-matter mapping, with what is needed to name a field's line."""

    data: dict[str, Any]
    text: str
    first_line: int  # the file line of the first front-matter line
    body: bytes = b""
    repairs: tuple[Problem, ...] = field(default=())
    form: str = "yaml"  # or "toml" (`+++`) or "json"

    def line_of(self, key: str) -> int | None:
        indent, sign = (r"", ":") if self.form == "yaml" else (r"[ \t]*", "[:=]")
        pattern = re.compile(rf"^{indent}['\"]?{re.escape(key)}['\"]?\s*{sign}", re.MULTILINE)
        match = pattern.search(self.text)
        if match is None:
            return None
        return self.first_line + self.text.count("\n", 0, match.start())


def split_front_matter(data: bytes, source: str) -> FrontMatter:
    """Decode a seed file and load the YAML between its first two `---` lines."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]  # a UTF-8 BOM is harmless; editors on Windows add it
    if not data.strip():
        raise Problem(source, "(file)", "empty file")
    skipped = 0
    if not data.startswith(b"---"):  # (blank lines first, as Hugo allows, or TOML or JSON)
        stripped = data.lstrip(b" \t\r\n")
        skipped = data.count(b"\n", 0, len(data) - len(stripped))
        if stripped.startswith((b"+++", b"{")):
            return _toml_or_json(stripped, source, skipped + 1)
        data = stripped if stripped.startswith(b"---") else data
    opening = _DELIMITER.match(data)
    if opening is None:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise Problem(source, "(encoding)", "UTF-16 text; seed files must be UTF-8")
        if b"\x00" in data[:1024]:
            raise Problem(source, "(encoding)", "binary data (NUL bytes); seeds must be UTF-8")
        message = "file must start with a '---' line (or TOML '+++', or a JSON object)"
        raise Problem(source, "(front matter)", message, 1)
    start = opening.end() + 1
    closing = _closing_delimiter(data, start)
    if closing is None:
        raise Problem(source, "(front matter)", "no closing '---' line", skipped + 1)
    raw = data[start : closing.start()]
    first_line = 2 + skipped
    try:
        text = raw.decode("utf-8").replace("\r\n", "\n")
    except UnicodeDecodeError as error:
        line = first_line + raw.count(b"\n", 0, error.start)
        raise Problem(source, "(encoding)", "not valid UTF-8 text", line) from None
    text, repairs = _repair(text, raw, source, first_line)
    loaded = load_yaml_document(text, source, first_line)
    if loaded is None:
        raise Problem(source, "(front matter)", "front matter is empty", first_line)
    if not isinstance(loaded, dict):
        message = "front matter must be a mapping of fields"
        raise Problem(source, "(front matter)", message, first_line)
    return FrontMatter(loaded, text, first_line, data[closing.end() + 1 :], repairs)


def _toml_or_json(data: bytes, source: str, line: int) -> FrontMatter:
    """Hugo's other front matters: TOML between `+++` lines, or one JSON object."""
    try:
        text = data.decode("utf-8").replace("\r\n", "\n")
    except UnicodeDecodeError as error:
        where = line + data.count(b"\n", 0, error.start)
        raise Problem(source, "(encoding)", "not valid UTF-8 text", where) from None
    try:
        if text.startswith("{"):
            loaded, end = json.JSONDecoder().raw_decode(text)
            front, body, form = text[:end], text[end:], "json"
        else:
            opening = _TOML_DELIMITER.match(text)
            closing = opening and _TOML_DELIMITER.search(text, opening.end() + 1)
            if not closing:
                raise Problem(source, "(front matter)", "no closing '+++' line", line)
            front, body = text[opening.end() + 1 : closing.start()], text[closing.end() + 1 :]
            form, line = "toml", line + 1
            loaded = tomllib.loads(front)
    except json.JSONDecodeError as error:
        where = line + error.lineno - 1
        raise Problem(source, "(front matter)", f"invalid JSON: {error.msg}", where) from None
    except tomllib.TOMLDecodeError as error:
        number = _TOML_LINE.search(str(error))
        where = line + int(number.group(1)) - 1 if number else line
        raise Problem(source, "(front matter)", f"invalid TOML: {error}", where) from None
    except RecursionError:
        raise Problem(source, "(front matter)", "nested too deeply", line) from None
    if not isinstance(loaded, dict) or not loaded:
        message = "front matter must be a mapping of fields"
        raise Problem(source, "(front matter)", message, line)
    return FrontMatter(loaded, front, line, body.encode("utf-8", "surrogatepass"), (), form)


def _closing_delimiter(data: bytes, start: int) -> re.Match[bytes] | None:
    """`_DELIMITER.search(data, start)`, without running the regex at every position."""
    position = data.find(b"\n---", start - 1)
    while position >= 0:
        found = _DELIMITER.match(data, position + 1)
        if found is not None:
            return found
        position = data.find(b"\n---", position + 1)
    return None


def _repair(text: str, raw: bytes, source: str, first_line: int) -> tuple[str, tuple[Problem, ...]]:
    """Text YAML accepts: mojibake that carries C1 controls repaired, other controls dropped."""
    if not raw.translate(None, _PLAIN_BYTES) or _NOT_YAML.search(text) is None:
        return text, ()  # (the first test is a quick one: printable ASCII is fine)
    lines = text.split("\n")
    repairs = []
    for number, line in enumerate(lines):
        if _NOT_YAML.search(line) is None:
            continue
        fixed = _NOT_YAML.sub("", ftfy.fix_text(line, uncurl_quotes=False))
        lines[number] = fixed
        message = "control characters or mis-decoded text repaired; check the result"
        repairs.append(Problem(source, "(encoding)", message, first_line + number, fatal=False))
    return "\n".join(lines), tuple(repairs)


def load_yaml_document(text: str, source: str, first_line: int = 2) -> Any:
    """`yaml.load(text, SafeLoader)`, bounded; errors become Problems with the file line.

    A plain document (most seed files) is built by yamlload, which counts levels and
    values as it builds; before libyaml composes anything, only a document that could
    nest deep enough to exhaust the C stack, or is long enough to hold too many values,
    takes the exact event pass. The standard loader's documents (aliases, custom tags)
    always take it first."""
    checked = len(text) > _SMALL_YAML or _may_nest_too_deep(text, COMPOSER_SAFE_DEPTH)
    if checked:
        refuse_yaml_bombs(text, source, first_line)
    try:
        return yamlload.build(text, MAX_YAML_DEPTH, MAX_YAML_NODES)
    except yamlload.Limit as limit:
        line = limit.line + first_line
        if limit.message == "levels":
            raise Problem(
                source, "(yaml)", f"nested more than {MAX_YAML_DEPTH} levels deep", line
            ) from None
        raise Problem(source, "(yaml)", f"more than {MAX_YAML_NODES} values", line) from None
    except yamlload.Unusual:
        pass
    if not checked:
        refuse_yaml_bombs(text, source, first_line)
    try:
        return yaml.load(text, Loader=yamlload.SafeLoader)
    except yaml.YAMLError as error:
        raise _yaml_problem(error, source, first_line) from None
    except RecursionError:
        raise Problem(source, "(yaml)", "nested too deeply") from None
    except Exception as error:  # a tag that does not fit its value (`!!bool maybe`), ...
        raise Problem(source, "(yaml)", f"cannot be loaded ({type(error).__name__})") from None


def refuse_yaml_bombs(text: str, source: str, first_line: int = 2) -> None:
    """Reject deep nesting, alias floods and huge node counts before libyaml builds them:
    the exact pass over libyaml's events (iterative, so any depth is safe)."""
    depth = aliases = nodes = 0
    try:
        for event in yaml.parse(text, Loader=yaml.CSafeLoader):
            line = event.start_mark.line + first_line
            if isinstance(event, yaml.NodeEvent):
                nodes += 1
                if nodes > MAX_YAML_NODES:
                    raise Problem(source, "(yaml)", f"more than {MAX_YAML_NODES} values", line)
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_YAML_DEPTH:
                    message = f"nested more than {MAX_YAML_DEPTH} levels deep"
                    raise Problem(source, "(yaml)", message, line)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            elif isinstance(event, yaml.AliasEvent):
                aliases += 1
                if aliases > MAX_YAML_ALIASES:
                    message = f"more than {MAX_YAML_ALIASES} aliases"
                    raise Problem(source, "(yaml)", message, line)
    except yaml.YAMLError as error:
        found = _yaml_problem(error, source, first_line)
        if "maximum nesting depth" in found.message:  # libyaml's own limit, in its scanner
            message = f"nested more than {MAX_YAML_DEPTH} levels deep"
            found = Problem(source, "(yaml)", message, found.line)
        raise found from None


def _may_nest_too_deep(text: str, limit: int = MAX_YAML_DEPTH) -> bool:
    """Whether `text` could nest deeper than `limit` (over-estimated, never under).

    Each level beyond the root takes a flow bracket, a block `-`/`?` indicator (at most two
    levels each: `- key:` opens a sequence and a mapping) or one more column of
    indentation, so depth <= 1 + 2 * openers + deepest indentation. Openers are counted
    on UTF-8 bytes with `{` folded into `[`, `?` into `-` and every byte that may start a
    blank into a space; lines broken by anything but `\n` take the exact pass."""
    data = text.encode("utf-8", "surrogatepass")
    openers = len(data.translate(None, _ALL_BUT_OPENERS))
    if 2 * openers + 2 > limit:
        folded = data.translate(_OPENER_BYTES)
        openers = folded.count(b"[") + folded.count(b"- ") + folded.endswith(b"-")
    columns = limit - 2 - 2 * openers  # the indentation that could reach the limit
    if columns <= 0 or any(brk in text for brk in "\r\x85\u2028\u2029"):
        return True
    return text.startswith(" " * columns) or "\n" + " " * columns in text


def _yaml_problem(error: yaml.YAMLError, source: str, first_line: int) -> Problem:
    mark = getattr(error, "problem_mark", None)
    line = mark.line + first_line if mark is not None else None
    problem = getattr(error, "problem", None) or type(error).__name__
    context = getattr(error, "context", None)
    message = f"invalid YAML: {problem}" + (f" ({context})" if context else "")
    return Problem(source, "(yaml)", message, line)
