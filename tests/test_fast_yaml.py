"""The fast paths of seed parsing give exactly what the plain, standard path gives.

Parsing a seed file takes shortcuts: `yamlsafe.load` builds values from libyaml's
node tree itself (with memoised tag resolution) instead of PyYAML's constructor,
`clean_url` and `canonical_identity` skip URL splitting for links that are
already clean, text cleaning skips work that cannot change plain text, and the
bomb pre-check and file reading use cheaper primitives. Each shortcut is checked
here against the code it replaces: property tests over generated input, hand-written
edge cases, and whole files (real-world, samples, adversarial, generated) parsed
both ways.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import html
import importlib.util
import math
import os
import re
import threading
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlsplit, urlunsplit

import ftfy
import pytest
import yaml
from adversarial import write_corpus
from conftest import REALWORLD, REPO, SAMPLE_SEEDS
from hypothesis import HealthCheck, example, given, reject, settings
from hypothesis import strategies as st

from feedservice import articles, seeds, yamlsafe
from feedservice.articles import parse_seed
from feedservice.catalog import load_seed_file
from feedservice.seeds import MAX_FILE_BYTES, MAX_YAML_DEPTH, SeedError
from feedservice.yamlsafe import SafeLoader

PROPERTY = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


# --- comparing outcomes ---------------------------------------------------------------------


def same(a: Any, b: Any, seen: set[tuple[int, int]] | None = None) -> bool:
    """Equal values of exactly the same types (True is not 1, 1 is not 1.0), in the same
    order; NaN equals NaN; shared or cyclic structures (from aliases) are compared once."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict | list):
        seen = set() if seen is None else seen
        if (id(a), id(b)) in seen:
            return True
        seen.add((id(a), id(b)))
        if len(a) != len(b):
            return False
        if isinstance(a, dict):
            return all(
                same(ka, kb, seen) and same(va, vb, seen)
                for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True)
            )
        return all(same(x, y, seen) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, dt.date):  # datetimes too: the offset must match, not just the instant
        return repr(a) == repr(b)
    return bool(a == b)


def outcome(function: Callable[[str], Any], text: str) -> tuple[Any, ...]:
    try:
        return ("value", function(text))
    except Exception as error:  # the exact exception is part of the outcome
        return ("error", type(error), str(error))


def standard_load(text: str) -> Any:
    return yaml.load(text, Loader=SafeLoader)


def assert_same_load(text: str) -> None:
    fast = outcome(yamlsafe.load, text)
    standard = outcome(standard_load, text)
    if fast[0] == "value" and standard[0] == "value":
        assert same(fast[1], standard[1]), (text, fast, standard)
    else:
        assert fast == standard, text


# --- YAML: generated documents -------------------------------------------------------------

TRICKY_TEXT = [
    "",
    " ",
    "~",
    "null",
    "Null",
    "NULL",
    "yes",
    "No",
    "on",
    "OFF",
    "y",
    "n",
    "true",
    "False",
    ".inf",
    "-.Inf",
    "+.INF",
    ".nan",
    ".NaN",
    "1:2:3",
    "-1:30",
    "190:20:30.15",
    "1" + ":1" * 40,
    "0x1F",
    "0o17",
    "017",
    "0b101",
    "1_000",
    "+12",
    "-0",
    "1e3",
    "1.5e-3",
    "6.8523015e+5",
    "685.230_15e+03",
    "9" * 65,
    "9" * 101,
    "1e400",
    "2001-12-14",
    "2001-12-14t21:59:43.10-05:00",
    "2001-12-14 21:59:43.10 -5",
    "2002-12-14T21:59:43Z",
    "2021-13-45",
    "2021-02-30T10:00:00Z",
    "9999-12-31T23:59:59-14:00",
    "<<",
    "=",
    "&a",
    "*a",
    "!x",
    "!!str",
    "- x",
    "a: b",
    "? k",
    "#c",
    "x #c",
    "'",
    '"',
    "\\",
    "line\nbreak",
    "trailing \n",
    "\ttab",
    "é",
    "👋",
    "\x85",
    "\u2028",
    "\ufeff",
    "\x07",
]
OFFSETS = st.builds(
    dt.timezone, st.timedeltas(min_value=dt.timedelta(hours=-23), max_value=dt.timedelta(hours=23))
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**150), max_value=10**150),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(TRICKY_TEXT),
    st.dates(),
    st.datetimes(timezones=st.one_of(st.none(), OFFSETS)),
)
KEYS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(TRICKY_TEXT),
    st.integers(),
    st.booleans(),
    st.none(),
    st.floats(),
    st.dates(),
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(KEYS, children, max_size=5),
    max_leaves=25,
)
DUMP_OPTIONS = st.fixed_dictionaries(
    {
        "default_flow_style": st.sampled_from([False, True, None]),
        "default_style": st.sampled_from([None, None, None, '"', "'", "|", ">"]),
        "canonical": st.booleans(),  # explicit !!str, !!int, !!map ... on every node
        "allow_unicode": st.booleans(),
        "sort_keys": st.booleans(),
        "width": st.sampled_from([10, 80, 1 << 20]),
        "indent": st.sampled_from([2, 3, 4]),
        "explicit_start": st.booleans(),
        "explicit_end": st.booleans(),
    }
)
YAML_TOKENS = [
    "\n",
    "  ",
    "- ",
    "? ",
    ": ",
    "[",
    "]",
    "{",
    "}",
    ", ",
    "&a ",
    "*a",
    "&b ",
    "*b",
    "<<: ",
    "=: ",
    "!!str ",
    "!!int ",
    "!!float ",
    "!!bool ",
    "!!null ",
    "!!timestamp ",
    "!!binary ",
    "!!set ",
    "!!omap ",
    "!!pairs ",
    "!!map ",
    "!!seq ",
    "!!python/name:os.system ",
    "! ",
    "!x ",
    "|\n  ",
    ">-\n  ",
    "'",
    '"',
    "#",
    "---\n",
    "...\n",
    "%YAML 1.1\n---\n",
    "%TAG !e! tag:yaml.org,2002:\n---\n!e!int ",
    "a",
    "b",
    "title",
    "1",
    "0x1F",
    "1:2:3",
    "yes",
    "~",
    ".inf",
    "2021-11-12T05:20:00+05:30",
    "\t",
    "\x00",
    "é",
]


@st.composite
def yaml_documents(draw: st.DrawFn) -> str:
    """YAML text: dumped values in every style, sometimes with a token spliced in."""
    value = draw(VALUES)
    try:
        text = yaml.safe_dump(value, **draw(DUMP_OPTIONS))
    except Exception:  # e.g. sort_keys over keys of mixed types
        reject()
    for token, position in draw(
        st.lists(st.tuples(st.sampled_from(YAML_TOKENS), st.integers()), max_size=3)
    ):
        at = position % (len(text) + 1)
        text = text[:at] + token + text[at:]
    return text


TOKEN_SOUP = st.lists(st.sampled_from(YAML_TOKENS + TRICKY_TEXT), max_size=40).map("".join)


@PROPERTY
@given(yaml_documents())
def test_fast_load_equals_standard_load_for_dumped_documents(text: str) -> None:
    assert_same_load(text)


@PROPERTY
@given(TOKEN_SOUP)
def test_fast_load_equals_standard_load_for_token_soup(text: str) -> None:
    assert_same_load(text)


# --- YAML: hand-written edge cases ---------------------------------------------------------

EDGE_CASES = [
    "",
    "# only a comment\n",
    "---\n",
    "--- \n...\n",
    "~",
    "a: 1",
    "a: !!str 123\nb: !!int '42'\nc: !!float '1'\nd: !!bool 'yes'\ne: !!null ''",
    "a: !!binary aGVsbG8=",
    "a: !!set {x, y}",
    "a: !!omap [x: 1, y: 2]",
    "a: !!pairs [x: 1, x: 2]",
    "a: !!bool maybe",  # KeyError inside PyYAML: the same failure both ways
    "a: !!int twelve",
    "a: !!float x",
    "a: !!timestamp 2021-13-45",
    "a: !!null something",
    "a: !!map {}\nb: !!seq []",
    "a: !!map x",
    "a: !!seq x",
    "a: !!str {b: 1}",
    "a: !!str [1]",
    "a: ! 123\nb: ! yes",
    "a: !local x",
    "!!map {a: 1}",
    "!!str a",
    "a: !!python/object/apply:os.system ['true']",
    "%TAG !e! tag:yaml.org,2002:\n---\na: !e!int '7'\nb: !e!str 8",
    "%YAML 1.1\n---\na: 1",
    "base: &b {x: 1, y: 2}\nmerged:\n  <<: *b\n  y: 3",
    "<<: {a: 1}\nb: 2",
    "<<: [{a: 1}, {b: 2}]",
    "'<<': not a merge",
    "=: value key",
    "a: {=: 1}",
    "a: &x 1\nb: *x",
    "a: &x [1, 2]\nb: *x\nc: *x",
    "a: &x [*x, 1]",
    "a: *undefined",
    "a: &x 1\nb: &x 2",
    "a: &anchor_only 1\nb: &other [x]",
    "a: 1\na: 2\nb: 3",
    "1: a\n1.0: b\ntrue: c\n'1': d",
    "[a]: 1",
    "{a: 1}: 2",
    "? [a, b]\n: c",
    "? - a\n: b",
    "? {a: 1}\n: b",
    "~: null key\n: empty key",
    ".nan: x\n.nan: y",
    "2021-01-01: date key\n2021-01-01T00:00:00Z: datetime key",
    "t1: 2001-12-14t21:59:43.10-05:00\nt2: 2001-12-14 21:59:43.10 -5\n"
    "t3: 2002-12-14\nt4: 2002-12-14T21:59:43Z",
    "t: 2021-11-12T05:20:00+14:00\nu: 2021-11-12T05:20:00-23:59",
    "big: " + "9" * 300,
    "big: 12345678901234567890123456789012345678901234567890",
    "neg: -" + "9" * 99,
    "sexagesimal: 1:2:3\nneg: -1:30\nfloat: 190:20:30.15\nlong: 1" + ":1" * 60,
    "inf: .inf\nninf: -.Inf\nnan: .NaN\nexp: 1e3\nhuge: 1e400\nunder: 1_000.5",
    "a: ~\nb: null\nc: Null\nd:\ne: ''",
    "y: yes\nn: no\non: on\noff: off\nY: Yes\nN: NO\nt: True\nf: FALSE\nyy: y",
    "oct: 017\nhex: 0x1f\nbin: 0b101\nunder: 1_000\nplus: +5\nzero: -0\noctal: 0o17",
    "'quoted key': 1\n\"double key\": 2\n? explicit key\n: 3",
    "a: multi\n  line\n  plain\nb: 'single\n\n  quoted'\nc: \"double\\\n  escaped\\tx\"",
    "a: |\n  literal\n   block\n\nb: >\n  folded\n  block\n\nc: |-\n  strip\nd: |+\n  keep\n\n",
    "a: |2\n   indented\n",
    'a: "\\u00e9\\x41\\U0001F44B\\N\\_"',
    "a: [1, [2, [3, {b: [4]}]]]\nc: {d: {e: {f: g}}}",
    "- a\n- - b\n  - c\n- {d: e}",
    "a:\n- 1\n- 2\nb:\n  - 3",
    "a: 1\n--- \nb: 2",
    "a: [unclosed",
    "a: b: c",
    "\ta: tab indent",
    "a: 1\n b: 2",
    "a: x\x00y",
    "a: \x07",
    "\ufeffa: bom",
    "a: \ufeffb",
    "a: \x85\u2028\u2029",
    "k: " + "x" * 70 + "\n" + "x" * 70 + ": k",
    "long: " + "1" * 64 + "\nlonger: " + "1" * 65,
    "- " * 30 + "deep",
    "[" * 40 + "]" * 40,
]


@st.composite
def timestamp_like(draw: st.DrawFn) -> str:
    """Scalars shaped like YAML timestamps: mostly the usual form the fast constructor
    builds (`2021-11-12T05:20:00.5+05:30`), and variants of every part that PyYAML's
    regex also accepts, or that make an impossible date. Each must load as in PyYAML."""
    moment = draw(st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)))
    date = f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
    time = f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    fraction = draw(st.sampled_from(["", "", ".", ".5", ".25", ".000001", ".123456", ".1234567"]))
    offset = draw(st.integers(min_value=-1439, max_value=1439))
    zone = draw(
        st.sampled_from(
            [
                "Z",
                "Z",
                f"{'-' if offset < 0 else '+'}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}",
                f"{'-' if offset < 0 else '+'}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}",
                "-00:00",
                "+24:00",
                "+5",
                "+05",
                " Z",
                "z",
                "",
            ]
        )
    )
    separator = draw(st.sampled_from(["T", "T", "T", "t", " "]))
    text = date + separator + time + fraction + zone
    if draw(st.integers(min_value=0, max_value=9)) == 0:  # an impossible or odd field
        at = draw(st.sampled_from([5, 8, 11, 14, 17]))
        text = (
            text[:at] + draw(st.sampled_from(["13", "32", "24", "60", "99", "1"])) + text[at + 2 :]
        )
    return text


@PROPERTY
@given(timestamp_like(), st.sampled_from(["a: {}", "- {}", "{}: key", "a: [{}, x]"]))
def test_fast_timestamps_equal_pyyaml_s(value: str, shape: str) -> None:
    assert_same_load(shape.format(value))


@PROPERTY
@given(st.text(min_size=1, max_size=12))
def test_a_plain_scalar_s_first_character_decides_as_in_pyyaml(value: str) -> None:
    """Text whose first character has no implicit resolver is taken as text at once."""
    assert_same_load("a: " + value)
    assert_same_load("a: " + value + " x")


@pytest.mark.parametrize("text", EDGE_CASES)
def test_fast_load_edge_cases(text: str) -> None:
    assert_same_load(text)
    assert_same_load(text)  # again: now from the memoised tags and values


def test_plain_documents_take_the_fast_path() -> None:
    text = (SAMPLE_SEEDS / sorted(os.listdir(SAMPLE_SEEDS))[0]).read_text().split("---\n")[1]
    with mock.patch.object(yamlsafe, "yaml", wraps=yaml) as wrapped:
        value = yamlsafe.load(text)
    wrapped.load.assert_not_called()
    assert same(value, standard_load(text))


def test_aliases_never_reach_the_tree_walk() -> None:
    """Aliases share nodes: a tree walk would copy them (billion laughs) or never end."""
    laughs = ["lol0: &lol0 lol"] + [
        f"lol{i}: &lol{i} [" + ", ".join([f"*lol{i - 1}"] * 10) + "]" for i in range(1, 12)
    ]
    with mock.patch.object(yamlsafe, "_build", side_effect=AssertionError("tree walk")) as walk:
        loaded = yamlsafe.load("\n".join(laughs))
        cyclic = yamlsafe.load("a: &x [*x, 1]")
        shared = yamlsafe.load("a: &x {b: 1}\nc: *x")
    walk.assert_not_called()
    assert shared["a"] is shared["c"]
    assert loaded["lol11"][0] is loaded["lol11"][1]  # shared, not 10**11 copies
    assert cyclic["a"][0] is cyclic["a"]


def test_path_resolvers_turn_the_fast_path_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Memoised tags are only right without path resolvers; with one, the standard loader."""
    monkeypatch.setattr(SafeLoader, "yaml_path_resolvers", {"registered": "somewhere"})
    standard = mock.Mock(return_value={"from": "standard"})
    monkeypatch.setattr(yamlsafe.yaml, "load", standard)
    assert yamlsafe.load("a: 1") == {"from": "standard"}
    standard.assert_called_once_with("a: 1", Loader=SafeLoader)


def test_memo_caches_stay_bounded_and_correct(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlsafe, "_CACHE_ENTRIES", 3)
    monkeypatch.setattr(yamlsafe, "_tags", {})
    monkeypatch.setattr(yamlsafe, "_values", {tag: {} for tag in yamlsafe._SCALAR_TAGS})
    lines = [f"k{n}: {n}\nd{n}: 2021-01-{n % 28 + 1:02d}\nf{n}: {n}.5" for n in range(50)]
    for line in lines:
        assert_same_load(line)
    text = "\n".join(lines)
    assert_same_load(text)
    assert len(yamlsafe._tags) <= 3
    assert all(len(values) <= 3 for values in yamlsafe._values.values())
    long_number = "1" * (yamlsafe._CACHED_CHARS + 1)
    assert_same_load(f"{long_number}: {long_number}")
    assert long_number not in yamlsafe._tags  # long texts are never kept
    assert all(long_number not in values for values in yamlsafe._values.values())


# --- the bomb pre-check --------------------------------------------------------------------

_OLD_LEVEL_OPENER = re.compile(r"[\[{]|[-?](?=[\s\x00]|\Z)")
_OLD_DEEP_INDENT = re.compile(rf"^ {{{MAX_YAML_DEPTH},}}", re.MULTILINE)


def ref_count_level_openers(text: str) -> int:
    count = 0
    for _ in _OLD_LEVEL_OPENER.finditer(text):
        count += 1
        if count > MAX_YAML_DEPTH:
            break
    return count


def ref_suspicious(text: str) -> bool:
    return (
        len(text) > seeds._SMALL_YAML
        or ("&" in text and "*" in text)
        or _OLD_DEEP_INDENT.search(text) is not None
        or ref_count_level_openers(text) > MAX_YAML_DEPTH
    )


WHITESPACE = [chr(code) for code in range(0x110000) if chr(code).isspace()]
NESTING_TEXT = st.lists(
    st.sampled_from(
        ["-", "?", "[", "{", "- ", "? ", "-\n", "a", ":", "\x00", " " * 63, " " * 64, *WHITESPACE]
    ),
    max_size=120,
).map("".join)


def test_every_blank_after_an_indicator_is_counted() -> None:
    """Each character the old regex took for a blank (str.isspace, NUL) is counted."""
    for blank in [*WHITESPACE, "\x00"]:
        for indicator in "-?":
            assert seeds._count_level_openers(indicator + blank) >= 1, repr(blank)
            assert seeds._count_level_openers("x" + indicator + blank + "y") >= 1, repr(blank)
        assert seeds._count_level_openers("-") == 1  # at the very end


@pytest.mark.parametrize("opener", ["[", "{", "- ", "? ", "-\t", "?\n", "-\u3000"])
def test_one_kind_of_level_opener_alone_can_make_a_document_suspicious(opener: str) -> None:
    """The cheap bound before the exact count must count every kind of opener."""
    deep = "x" + (opener + "x") * seeds.MAX_YAML_DEPTH
    assert not seeds._suspicious(deep)
    assert seeds._suspicious(deep + opener)


@PROPERTY
@given(NESTING_TEXT)
@example("- " * (MAX_YAML_DEPTH + 1))
@example("[" * (MAX_YAML_DEPTH + 1))
@example("?\u3000" * (MAX_YAML_DEPTH + 1))
@example("-\x85" * (MAX_YAML_DEPTH + 1))
@example(" " * MAX_YAML_DEPTH + "a")
@example("a\n" + " " * MAX_YAML_DEPTH + "b")
@example("a\r" + " " * MAX_YAML_DEPTH + "a")
def test_cheap_bomb_check_never_misses_what_the_old_one_caught(text: str) -> None:
    assert seeds._count_level_openers(text) >= len(_OLD_LEVEL_OPENER.findall(text))
    if ref_suspicious(text):
        assert seeds._suspicious(text)
    old_indent = _OLD_DEEP_INDENT.search(text) is not None
    assert old_indent == (text.startswith(seeds._DEEP_INDENT) or seeds._DEEP_INDENT_LINE in text)


# --- seed files: delimiters and reading -----------------------------------------------------

DELIMITER_BYTES = st.lists(
    st.sampled_from(
        [b"---", b"--- ", b"---\t", b"----", b"--- x", b"\n", b"\r\n", b"\r", b"a", b"-"]
    ),
    max_size=30,
).map(b"".join)


@PROPERTY
@given(DELIMITER_BYTES, st.integers(min_value=0))
def test_closing_delimiter_equals_regex_search(data: bytes, choice: int) -> None:
    starts = [index + 1 for index, byte in enumerate(data) if byte == ord("\n")]
    start = [*starts, len(data) + 1][choice % (len(starts) + 1)]
    fast = seeds._closing_delimiter(data, start)
    slow = seeds._DELIMITER.search(data, start)
    assert (fast and fast.span()) == (slow and slow.span())


@pytest.mark.parametrize(
    "size", [0, 1, 4096, MAX_FILE_BYTES - 1, MAX_FILE_BYTES, MAX_FILE_BYTES + 1, MAX_FILE_BYTES * 3]
)
def test_read_seed_sizes(tmp_path: Path, size: int) -> None:
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    (tmp_path / "f.md").write_bytes(data)
    if size > MAX_FILE_BYTES:
        with pytest.raises(SeedError, match="larger than"):
            seeds.read_seed(tmp_path, "f.md")
    else:
        assert seeds.read_seed(tmp_path, "f.md") == data


@pytest.mark.parametrize("written", [0, 10, 100_000, MAX_FILE_BYTES + 10])
def test_read_capped_reads_to_the_end_whatever_fstat_said(written: int) -> None:
    """A file may grow after fstat: reading goes on to end of file or to the cap."""
    reader, writer = os.pipe()
    payload = b"y" * written

    def write() -> None:  # stops at a broken pipe once the reader has enough
        with contextlib.suppress(BrokenPipeError), open(writer, "wb") as handle:
            handle.write(payload)

    thread = threading.Thread(target=write)
    thread.start()
    try:
        data = seeds._read_capped(reader, 10)
    finally:
        os.close(reader)
        thread.join()
    assert data == payload[: MAX_FILE_BYTES + 1]


# --- URLs ----------------------------------------------------------------------------------

URL_PIECES = st.one_of(
    st.text(max_size=12),
    st.text(alphabet="abcXYZ019.-_~:/?#[]@!$&'()*+,;=% \t\n\"<>\\^`{|}é😀\x00\x7f", max_size=12),
)
URLISH = st.builds(
    "".join,
    st.tuples(
        st.sampled_from(["", " ", "\t", "\x01"]),
        st.sampled_from(["http", "https", "HTTP", "Https", "ftp", "javascript", "data", "h", ""]),
        st.sampled_from(["://", ":/", ":", "//", "", ":///"]),
        st.sampled_from(["", "user@", "user:pw@", "@", "a%40b@"]),
        st.one_of(
            st.sampled_from(
                ["example.com", "EXAMPLE.com", "a-b.c", "-", ".", "", "[::1]", "[::1", "bücher.de"]
            ),
            st.text(alphabet="abcABC019.-", max_size=10),
            URL_PIECES,
        ),
        st.sampled_from(["", ":80", ":443", ":8080", ":99999", ":x", ":"]),
        st.sampled_from(["", "/", "/a", "/a/./b/../c", "/..", "/.", "?", "#", "/%41%7e%2f", "//x"]),
        URL_PIECES,
        st.sampled_from(["", "?q=1", "?", "#frag", "?a=%zz#f", " "]),
    ),
)


def url_outcome(function: Callable[[Any], str], value: Any) -> tuple[str, str]:
    try:
        return ("url", function(value))
    except ValueError as error:
        return ("error", str(error))


@PROPERTY
@given(st.one_of(URLISH, URL_PIECES, st.text()))
@example("https://example.com/a?b=c#d")
@example("HTTPS://Example.com/A")
@example("https://user@example.com/")
@example("https://USER@Example.com/")
@example("https://Example.COM/a?q=1")
@example("https://Example.COM/a")
@example("https://Example.COM:443/A/./b/../C?Q=%7e#F")
@example("https://example.com:8080/a")
@example("https://example.com:99999/")
@example("https://[::1]/")
@example("https://example.com/a%20b")
@example("https://example.com/100%")
@example("https://example.com/a b")
@example("https://example.com/ü")
@example("https://bücher.de/")
@example("https://example.com/" + "a" * 3000)
@example("https://example.com/" + "a" * (articles.MAX_URL_CHARS - 20))
@example("http://")
@example("http://-")
@example("https://example.com")
@example("https://example.com?q")
@example("https://example.com#f")
@example(" https://example.com/")
@example("https://example.com/\t")
@example("https://exa\nmple.com/")
def test_clean_url_fast_path_equals_full_check(value: str) -> None:
    fast = url_outcome(articles.clean_url, value)
    assert fast == url_outcome(articles._clean_url_checked, value)
    if fast[0] == "url":
        link = fast[1]
        assert articles.canonical_identity(link) == ref_canonical_identity(link)


@pytest.mark.parametrize("value", [None, 1, 1.5, True, [], {}, b"https://example.com/"])
def test_clean_url_rejects_non_text_the_same_way(value: Any) -> None:
    assert url_outcome(articles.clean_url, value) == url_outcome(articles._clean_url_checked, value)


def test_clean_urls_take_the_fast_path() -> None:
    with mock.patch.object(articles, "_clean_url_checked", side_effect=AssertionError("slow")):
        assert articles.clean_url("https://example.com/a/b.html?x=1&y=2#top") == (
            "https://example.com/a/b.html?x=1&y=2#top"
        )


# --- text ----------------------------------------------------------------------------------

TEXTS = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="ab <>&;/!?#x\t\n\r\x00\x07\x7f\x85é€â\u2028\ufffe", max_size=40),
    st.lists(
        st.sampled_from(
            [
                "<b>",
                "</b>",
                "&lt;",
                "&gt;",
                "&amp;",
                "&#60;",
                "<",
                "&",
                "x",
                " ",
                "Ã©",
                "lt;",
                "amp;",
                "&lt",
                "&copy",
            ]
        ),
        max_size=12,
    ).map("".join),
)


@PROPERTY
@given(TEXTS)
@example("&amp;lt;b&amp;gt;bold")
@example("&copy 2020, x &lt y")  # entities ftfy leaves alone but html.unescape decodes
@example("a\tb\r\nc\x00d &amp; e")
def test_text_cleaning_equals_the_full_cleaning(value: str) -> None:
    assert articles.clean_text(value) == ref_clean_text(value)
    assert articles.plain_text.__wrapped__(value) == ref_plain_text(value)
    assert articles.plain_text(value) == ref_plain_text(value)
    assert articles.slugify(value) == ref_slugify(value)


@PROPERTY
@given(st.text(alphabet="/.a%41", max_size=20))
def test_dot_segments_and_escapes_equal_the_full_algorithms(path: str) -> None:
    assert articles._remove_dot_segments(path) == ref_remove_dot_segments(path)
    assert articles._normalise_escapes(path) == ref_normalise_escapes(path)


# --- the reference: the plain path, as it was before the shortcuts -------------------------


def ref_read_capped(fd: int, size: int) -> bytes:
    with os.fdopen(fd, "rb", closefd=False) as handle:
        return handle.read(MAX_FILE_BYTES + 1)


def ref_closing_delimiter(data: bytes, start: int) -> re.Match[bytes] | None:
    return seeds._DELIMITER.search(data, start)


def ref_clean_text(value: str) -> str:
    value = articles._XML_ILLEGAL.sub("", value)
    if value.isascii() and "&" not in value and "\r" not in value:
        return value
    value = ftfy.fix_text(  # keyword arguments, as before: the config object must equal them
        value,
        uncurl_quotes=False,
        fix_latin_ligatures=False,
        fix_character_width=False,
        normalization="NFC",
    )
    return articles._XML_ILLEGAL.sub("", value)


def ref_plain_text(value: str) -> str:
    value = ref_clean_text(value[: articles.MAX_RAW_TEXT])
    for _ in range(3):
        stripped = html.unescape(articles._TAG.sub("", value))
        if stripped == value:
            break
        value = stripped
    value = articles._TAG.sub("", value)
    return " ".join(value.split())


def ref_slugify(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", folded.lower()).strip("-")[:80].strip("-")
    if slug:
        return slug
    return (
        "topic-" + hashlib.blake2b(name.encode("utf-8", "surrogatepass"), digest_size=4).hexdigest()
    )


def ref_normalise_escapes(text: str) -> str:
    def fix(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in articles._UNRESERVED else "%" + match.group(1).upper()

    return articles._ESCAPE.sub(fix, text)


def ref_remove_dot_segments(path: str) -> str:
    segments = path.split("/")
    result: list[str] = []
    for position, segment in enumerate(segments):
        last = position == len(segments) - 1
        if segment in {".", ".."}:
            if segment == ".." and len(result) > 1:
                result.pop()
            if last:
                result.append("")
        else:
            result.append(segment)
    return "/".join(result)


def ref_canonical_identity(link: str) -> str:
    parts = urlsplit(link)
    host = (parts.hostname or "").lower()
    port = parts.port if parts.port not in {None, 80, 443} else None
    netloc = host + (f":{port}" if port else "")
    if parts.username:
        netloc = parts.username + "@" + netloc
    path = ref_remove_dot_segments(ref_normalise_escapes(parts.path)) or "/"
    query = ref_normalise_escapes(parts.query)
    return urlunsplit((parts.scheme.lower(), netloc, path, query, ""))


REFERENCE: list[tuple[Any, str, Any]] = [
    (yamlsafe, "load", standard_load),
    (seeds, "_suspicious", ref_suspicious),
    (seeds, "_closing_delimiter", ref_closing_delimiter),
    (seeds, "_read_capped", ref_read_capped),
    (articles, "clean_url", articles._clean_url_checked),
    (articles, "canonical_identity", ref_canonical_identity),
    (articles, "clean_text", ref_clean_text),
    (articles, "plain_text", ref_plain_text),
    (articles, "slugify", ref_slugify),
]


@contextlib.contextmanager
def plain_path() -> Iterator[None]:
    """Every shortcut switched off: parsing as it was before them."""
    with contextlib.ExitStack() as stack:
        for module, name, replacement in REFERENCE:
            assert hasattr(module, name), name  # a renamed shortcut must not go unchecked
            stack.enter_context(mock.patch.object(module, name, replacement))
        yield


def parse_outcome(data: bytes) -> str:
    try:
        parsed = parse_seed(data, "seed.md")
    except SeedError as error:
        return "error: " + error.describe()
    return repr(parsed)


def load_outcomes(root: Path) -> dict[str, str]:
    relatives = sorted(
        os.path.relpath(os.path.join(directory, name), root)
        for directory, _, names in os.walk(root)
        for name in names
    )
    return {relative: repr(load_seed_file(str(root), relative)) for relative in relatives}


def assert_same_files(root: Path) -> int:
    fast = load_outcomes(root)
    with plain_path():
        plain = load_outcomes(root)
    assert fast.keys() == plain.keys()
    for relative in fast:
        assert fast[relative] == plain[relative], relative
    return sum("Article(" in result for result in fast.values())


def test_realworld_files_parse_as_on_the_plain_path() -> None:
    if not REALWORLD.is_dir():
        pytest.skip("../shared/realworld is not beside the checkout")
    assert assert_same_files(REALWORLD) > 0


def test_sample_seeds_parse_as_on_the_plain_path() -> None:
    assert assert_same_files(SAMPLE_SEEDS) > 0


def test_adversarial_corpus_parses_as_on_the_plain_path(tmp_path: Path) -> None:
    write_corpus(tmp_path / "seeds")
    assert assert_same_files(tmp_path / "seeds") > 0


def test_generated_corpus_parses_as_on_the_plain_path(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "generate_corpus", REPO / "benchmarks" / "generate_corpus.py"
    )
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    generator.generate(tmp_path / "generated", 300, seed=7)
    assert assert_same_files(tmp_path / "generated") > 100


def _seed_files() -> list[bytes]:
    files = sorted(SAMPLE_SEEDS.glob("*")) + sorted(REALWORLD.glob("*.md"))[:10]
    return [path.read_bytes() for path in files if path.is_file()]


SEED_FILES = _seed_files()


@PROPERTY
@given(
    st.sampled_from(SEED_FILES),
    st.lists(st.tuples(st.integers(min_value=0), st.sampled_from(YAML_TOKENS + TRICKY_TEXT))),
)
def test_mutated_seed_files_parse_as_on_the_plain_path(
    data: bytes, edits: list[tuple[int, str]]
) -> None:
    text = data.decode("utf-8", "surrogateescape")
    for position, token in edits:
        at = position % (len(text) + 1)
        text = text[:at] + token + text[at:]
    mutated = text.encode("utf-8", "surrogateescape")
    fast = parse_outcome(mutated)
    with plain_path():
        assert fast == parse_outcome(mutated)


@PROPERTY
@given(TOKEN_SOUP)
def test_token_soup_front_matter_parses_as_on_the_plain_path(text: str) -> None:
    data = ("---\n" + text + "\n---\n").encode("utf-8", "surrogatepass")
    fast = parse_outcome(data)
    with plain_path():
        assert fast == parse_outcome(data)
