"""YAML safety: what a hostile or broken front matter gets, as a user sees it.

Only PyYAML's safe loader (libyaml) reads front matter (feedservice.ingest.frontmatter).
Deep nesting, alias floods and huge value counts are refused, before libyaml builds them,
with a Problem naming `(yaml)` and the line where the limit was crossed; the limits are
checked here against an exact count of libyaml's own parse events, for generated
documents. Numbers and dates that cannot be represented stay text (so the field check
names the key), explicit tags that do not fit their value are that file's problem and
never stop a reload, and the inputs that crash libyaml's C stack are refused (in a
child process here, so a crash fails a test instead of the test run).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import pytest
import yaml
from conftest import REPO, Site, article_fields, seed_text, write_seed
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from feedservice.ingest import yamlload
from feedservice.ingest.article import parse_seed
from feedservice.ingest.files import MAX_FILE_BYTES, read_seed
from feedservice.ingest.frontmatter import (
    MAX_YAML_ALIASES,
    MAX_YAML_DEPTH,
    MAX_YAML_NODES,
    load_yaml_document,
    split_front_matter,
)
from feedservice.ingest.problem import Problem
from feedservice.ingest.yamlload import SafeLoader

PROPERTY = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
NESTED = f"nested more than {MAX_YAML_DEPTH} levels deep"
ALIASES = f"more than {MAX_YAML_ALIASES} aliases"
VALUES = f"more than {MAX_YAML_NODES} values"
BOMB_MESSAGES = (NESTED, ALIASES, VALUES)
LINE_BREAKS = ["\n", "\r", "\r\n", "\x85", "\u2028", "\u2029"]  # YAML 1.1 line breaks
DEEP = 100_000  # far past libyaml's C stack


# --- the reference: libyaml's events, counted plainly ------------------------------------


def exact_verdict(text: str) -> tuple[str, int] | None:
    """(the limit crossed first, its file line), ("invalid", line) if libyaml's parser
    fails first, or None if the document is within every limit."""
    depth = aliases = nodes = 0
    try:
        for event in yaml.parse(text, Loader=yaml.CSafeLoader):
            line = event.start_mark.line + 2  # front matter starts on file line 2
            if isinstance(event, yaml.ScalarEvent | yaml.CollectionStartEvent | yaml.AliasEvent):
                nodes += 1
                if nodes > MAX_YAML_NODES:
                    return VALUES, line
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_YAML_DEPTH:
                    return NESTED, line
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            elif isinstance(event, yaml.AliasEvent):
                aliases += 1
                if aliases > MAX_YAML_ALIASES:
                    return ALIASES, line
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        return "invalid", (mark.line + 2 if mark else 0)
    return None


def outcome(text: str) -> Problem | None:
    try:
        load_yaml_document(text, "x.md")
    except Problem as problem:
        return problem
    return None


def assert_limits_hold(text: str) -> None:
    """Refused, naming (yaml) and the line, exactly when a limit is crossed."""
    verdict = exact_verdict(text)
    problem = outcome(text)
    if verdict is not None and verdict[0] in BOMB_MESSAGES:
        assert problem is not None, f"accepted, but {verdict[0]} (line {verdict[1]})"
        assert (problem.field, problem.message, problem.line) == ("(yaml)", *verdict)
        assert problem.source == "x.md" and problem.fatal
    elif problem is not None:
        assert problem.message not in BOMB_MESSAGES, (problem, verdict)


# --- the limits, at and just past each one ------------------------------------------------


def block_mappings(levels: int, newline: str = "\n") -> str:
    return "".join(" " * i + "k:" + newline for i in range(levels - 1)) + " " * levels + "k: v"


def sequences_of_mappings(items: int, last: str) -> str:
    """`- k:` ladders: two levels per item for two columns of indentation."""
    lines = ["k:"] + [" " * (2 * i) + "- k:" for i in range(items)] + [" " * (2 * items) + last]
    return "\n".join(lines)


# Every document has a root mapping: it is the first level.
AT_THE_LIMIT = {
    "flow sequences": "title: t\ntopics: " + "[" * 63 + "]" * 63,
    "flow mappings": "title: t\nx: " + "{a: " * 63 + "1" + "}" * 63,
    "block sequences": "title: t\ntopics:\n  " + "- " * 63 + "AI",
    "block mappings": block_mappings(MAX_YAML_DEPTH),
    "explicit keys": "? " * MAX_YAML_DEPTH + "x",  # (a mapping as a key: not hashable)
    "aliases": "a: &a x\nb: [" + ", ".join(["*a"] * MAX_YAML_ALIASES) + "]",
    "values": "a: [" + ",".join(["x"] * (MAX_YAML_NODES - 3)) + "]",
}
PAST_THE_LIMIT = {
    "flow sequences": ("title: t\ntopics: " + "[" * 64 + "]" * 64, NESTED, 3),
    "flow mappings": ("title: t\nx: " + "{a: " * 64 + "1" + "}" * 64, NESTED, 3),
    "block sequences": ("title: t\ntopics:\n  " + "- " * 64 + "AI", NESTED, 4),
    "block mappings": (block_mappings(MAX_YAML_DEPTH + 1), NESTED, 2 + MAX_YAML_DEPTH),
    "explicit keys": ("? " * 65 + "x", NESTED, 2),
    "aliases": ("a: &a x\nb: [" + ", ".join(["*a"] * 101) + "]", ALIASES, 3),
    "values": ("a: [" + ",".join(["x"] * (MAX_YAML_NODES - 2)) + "]", VALUES, 2),
    "billion laughs": (
        "\n".join(
            ["lol0: &lol0 lol"]
            + [f"lol{i}: &lol{i} [" + ", ".join([f"*lol{i - 1}"] * 10) + "]" for i in range(1, 12)]
        ),
        ALIASES,
        13,
    ),
}


@pytest.mark.parametrize("name", AT_THE_LIMIT)
def test_documents_at_each_limit_load(name: str) -> None:
    assert exact_verdict(AT_THE_LIMIT[name]) is None  # the reference agrees it is at, not past
    problem = outcome(AT_THE_LIMIT[name])
    if name == "explicit keys":
        assert problem is not None and "unhashable" in problem.message
    else:
        assert problem is None


@pytest.mark.parametrize("name", PAST_THE_LIMIT)
def test_documents_past_each_limit_are_refused_naming_the_line(name: str) -> None:
    text, message, line = PAST_THE_LIMIT[name]
    assert exact_verdict(text) == (message, line)
    problem = outcome(text)
    assert problem is not None
    assert (problem.field, problem.message, problem.line) == ("(yaml)", message, line)


def test_a_seed_file_past_a_limit_names_the_file_and_line() -> None:
    data = ("---\ntitle: t\ntopics: " + "[" * 65 + "]" * 65 + "\n---\n").encode()
    with pytest.raises(Problem) as raised:
        parse_seed(data, "deep.md")
    assert str(raised.value) == f"deep.md: (yaml): {NESTED} (line 3)"


# Documents that cross a limit in ways a cheap pre-check can miss: nesting reached by
# mixing block mappings (indentation) with `- ` items, and indentation after line
# breaks other than `\n`, and many values in few characters.
MIXED_NESTING = {
    "ladder of `- k:` items": sequences_of_mappings(31, "- k: v"),
    "ladder with compact sequences": sequences_of_mappings(31, "- - - v"),
    **{
        f"block mappings after {newline!r}": block_mappings(MAX_YAML_DEPTH + 1, newline)
        for newline in LINE_BREAKS
    },
    "values in a flow mapping": "{" + "a," * (MAX_YAML_NODES // 2 + 1) + "}",
}


@pytest.mark.parametrize("name", MIXED_NESTING)
def test_limits_hold_however_the_document_is_written(name: str) -> None:
    text = MIXED_NESTING[name]
    verdict = exact_verdict(text)
    assert verdict is not None and verdict[0] in BOMB_MESSAGES  # the case is past a limit
    assert_limits_hold(text)


# --- the limits against the exact count, for generated documents -------------------------

BLOCK_STEPS = ["k:", "- k:", "- - k:", "? k:", "- "]


@st.composite
def ladders(draw: st.DrawFn) -> str:
    """Block nesting of mixed kinds (each line one level or two deeper), with any YAML
    line break, then a tail of flow nesting: documents near the depth limit."""
    newline = draw(st.sampled_from(LINE_BREAKS))
    steps = draw(st.lists(st.sampled_from(BLOCK_STEPS), min_size=1, max_size=70))
    lines, indent = [], 0
    for step, after in zip(steps, [*steps[1:], None], strict=True):
        lines.append(" " * indent + step)
        column = indent + step.rfind("k") if "k" in step else indent + len(step)
        indent = column + (0 if after is not None and after.startswith("-") else 1)
    flow = draw(st.integers(min_value=0, max_value=70))
    lines.append(" " * indent + "v: " + "[" * flow + "x" + "]" * flow)
    return newline.join(lines)


NESTING_TOKENS = [
    "[",
    "]",
    "{",
    "}",
    ", ",
    "- ",
    "? ",
    "k: ",
    "k:",
    "x",
    "&a ",
    "*a",
    " " * 8,
    " " * 31,
    *LINE_BREAKS,
]


@PROPERTY
@given(ladders())
def test_depth_limit_holds_for_generated_ladders(text: str) -> None:
    assert_limits_hold(text)


@PROPERTY
@given(st.lists(st.sampled_from(NESTING_TOKENS), max_size=200).map("".join))
@example("[" * (MAX_YAML_DEPTH + 1))
@example("- " * (MAX_YAML_DEPTH + 1))
@example("?\u3000" * (MAX_YAML_DEPTH + 1) + "x")
@example("-\x85" * (MAX_YAML_DEPTH + 1))
@example("a\r" + " " * MAX_YAML_DEPTH + "a")
def test_limits_hold_for_token_soup(text: str) -> None:
    assert_limits_hold(text)


# --- inputs that crash libyaml itself, in a child process -----------------------------------

CRASHERS = {
    "deep-flow-sequence": "title: deep\ntopics: " + "[" * DEEP + "]" * DEEP,
    "deep-flow-mapping": "title: deep\ntopics: " + "{a: " * DEEP + "1" + "}" * DEEP,
    "deep-flow-unclosed": "title: deep\ntopics: " + "[" * DEEP,
    "deep-block-sequence": "title: deep\ntopics:\n  " + "- " * DEEP + "AI",
    "deep-block-keys": "title: deep\n" + "? " * DEEP + "x",
    "deep-mixed": "title: deep\ntopics:\n  " + "- " * 40 + "[" * DEEP + "]" * DEEP,
    "deep-block-mapping": "title: deep\nprovider:\n"
    + "".join(" " * (level + 1) + "k:\n" for level in range(1000))
    + " " * 1001
    + "v",
}
_CHILD = """
import json, sys
from pathlib import Path
from feedservice.ingest.article import parse_seed
from feedservice.ingest.problem import Problem
results = {}
for path in sorted(Path(sys.argv[1]).iterdir()):
    try:
        parse_seed(path.read_bytes(), path.name)
        results[path.stem] = None
    except Problem as problem:
        results[path.stem] = [problem.field, problem.message, problem.line]
print(json.dumps(results))
"""


def test_inputs_that_crash_libyaml_are_refused(tmp_path: Path) -> None:
    for name, text in CRASHERS.items():
        (tmp_path / f"{name}.md").write_text(f"---\n{text}\n---\n", encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert run.returncode == 0, (run.returncode, run.stderr[-2000:])  # -11: libyaml crashed
    results = json.loads(run.stdout)
    assert results.keys() == CRASHERS.keys()
    for name, found in results.items():
        assert found is not None, f"{name} was accepted"
        field, message, line = found
        assert (field, message) == ("(yaml)", NESTED), (name, found)
        assert isinstance(line, int) and line >= 3, (name, found)


def with_raw_field(key: str, scalar: str) -> str:
    """A valid seed's text with `key: scalar` written as raw YAML on line 2."""
    fields = {name: value for name, value in article_fields(1).items() if name != key}
    return seed_text(**fields).replace("---\n", f"---\n{key}: {scalar}\n", 1)


# --- numbers and dates that cannot be represented stay text --------------------------------


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= 30 else f"{text[:12]}...({len(text)} chars)"


@pytest.mark.parametrize(
    ("scalar", "text"),
    [
        ("2021-13-45", "2021-13-45"),
        ("2021-02-30T10:00:00Z", "2021-02-30T10:00:00Z"),
        ("9" * 5000, "9" * 5000),
        ("1" + ":1" * 200_000, "1" + ":1" * 200_000),
        ("-" + "9" * 5000, "-" + "9" * 5000),
        ("1." + "5" * 5000 + "e99999", "1." + "5" * 5000 + "e99999"),
        ("!!timestamp 2021-13-45", "2021-13-45"),
        ("!!float x", "x"),
        ("!!int twelve", "twelve"),
    ],
    ids=_short,
)
def test_unrepresentable_numbers_and_dates_stay_text(scalar: str, text: str) -> None:
    assert load_yaml_document(f"a: {scalar}", "x.md") == {"a": text}


def test_representable_numbers_and_dates_are_typed() -> None:
    loaded = load_yaml_document(
        "i: 42\nbig: " + "9" * 30 + "\nf: 1.5\nsexagesimal: 1:20:30\n"
        "d: 2021-11-12\nt: 2021-11-12T05:20:00Z\nb: yes",
        "x.md",
    )
    assert loaded["i"] == 42 and loaded["big"] == int("9" * 30)
    assert loaded["f"] == 1.5 and loaded["sexagesimal"] == 4830
    assert type(loaded["d"]) is date and type(loaded["t"]) is datetime
    assert loaded["b"] is True


@pytest.mark.parametrize(
    ("key", "scalar", "message"),
    [
        ("publishedDateTime", "2021-13-45", "ISO 8601"),
        ("publishedDateTime", "2021-02-30T10:00:00Z", "ISO 8601"),
        ("publishedDateTime", "9" * 5000, "ISO 8601"),
        ("quality", "9" * 5000, "whole number"),
        ("quality", "1" + ":1" * 200_000, "whole number"),
        ("heat", "2021-13-45", "whole number"),
    ],
    ids=_short,
)
def test_the_field_check_names_the_key_of_an_unrepresentable_value(
    key: str, scalar: str, message: str
) -> None:
    text = with_raw_field(key, scalar)
    with pytest.raises(Problem) as raised:
        parse_seed(text.encode(), "n.md")
    assert (raised.value.field, raised.value.line) == (key, 2)
    assert message in raised.value.message


# --- explicit tags that do not fit their value ----------------------------------------------

BAD_TAGS = [
    "!!int ''",
    "!!int '-'",
    "!!int",
    "!!float ''",
    "!!float '-'",
    "!!bool maybe",
    "!!bool ''",
    "!!timestamp ''",
    "!!binary '!!!'",
    "!!map x",
    "!!seq x",
    "!!str {b: 1}",
    "!!set [a]",
    "!!omap x",
    "!!pairs x",
    "!!python/object/apply:os.system ['touch /tmp/feedservice-pwned']",
    "!!python/name:os.system",
    "!include /etc/passwd",
]


@pytest.mark.parametrize("tagged", BAD_TAGS)
def test_an_unfitting_explicit_tag_is_this_file_s_problem(tagged: str) -> None:
    """Whatever a tag makes the constructor do, the outcome is a value or a Problem."""
    try:
        parsed = parse_seed(with_raw_field("quality", tagged).encode(), "tag.md")
    except Problem as problem:
        assert problem.source == "tag.md" and problem.field in {"(yaml)", "quality"}
    else:
        assert parsed.article.quality is None or isinstance(parsed.article.quality, int)
    assert not Path("/tmp/feedservice-pwned").exists()


def test_a_file_with_an_unfitting_tag_never_stops_a_reload(
    seeds: Path, config_file: Path, site_factory: Callable[..., Site]
) -> None:
    write_seed(seeds, "good.md", **article_fields(1))
    for number, tagged in enumerate(BAD_TAGS[:8]):
        text = seed_text(**article_fields(10 + number)).replace(
            "---\n", f"---\nheat: {tagged}\n", 1
        )  # (the fields have no `heat`)
        (seeds / f"tagged-{number}.md").write_text(text, encoding="utf-8")
    site = site_factory(seeds, config_file)
    response = site.get("/feeds/all.json")
    assert response.status_code == 200
    assert "https://example.com/articles/1" in {i["url"] for i in response.get_json()["items"]}
    problems = {p.source: p for p in site.loader.problems() if p.fatal}
    served = {item["url"] for item in response.get_json()["items"]}
    for number in range(8):
        if f"https://example.com/articles/{10 + number}" not in served:
            problem = problems[f"tagged-{number}.md"]  # not served: its own problem says why
            assert problem.field in {"(yaml)", "heat"}, problem
    assert set(problems) <= {f"tagged-{number}.md" for number in range(8)}


# --- characters YAML does not allow ---------------------------------------------------------


def test_mis_decoded_text_with_c1_controls_is_repaired_with_a_warning() -> None:
    """UTF-8 read as Windows-1252 and saved again leaves C1 controls (`â€\\x9d`), which
    YAML refuses: the line is repaired instead, and the repair is reported."""
    text = seed_text(**article_fields(1, title="Google’s model")).replace(
        "Google’s", "Google\u00e2\u20ac\u2122s"
    )
    text = text.replace("excerpt: Excerpt of article 1.", "excerpt: \u201cQuoted\u00e2\u20ac\x9d")
    parsed = parse_seed(text.encode(), "m.md")
    assert parsed.article.title == "Google’s model"
    assert "\x9d" not in parsed.article.excerpt
    repairs = [w for w in parsed.warnings if w.field == "(encoding)"]
    assert repairs and all(not w.fatal and w.line for w in repairs)
    assert {w.line for w in repairs} == {4}  # the excerpt's line; the title was valid YAML


def test_a_nul_byte_is_dropped_and_reported() -> None:
    text = seed_text(**article_fields(1)).replace("Article number 1", "Article\x00 number 1")
    parsed = parse_seed(text.encode(), "nul.md")
    assert parsed.article.title == "Article number 1"
    assert [(w.field, w.line) for w in parsed.warnings] == [("(encoding)", 3)]


# --- reading: the size cap ------------------------------------------------------------------


@pytest.mark.parametrize(
    "size", [0, 1, 4096, MAX_FILE_BYTES - 1, MAX_FILE_BYTES, MAX_FILE_BYTES + 1, MAX_FILE_BYTES * 3]
)
def test_read_seed_sizes(tmp_path: Path, size: int) -> None:
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    (tmp_path / "f.md").write_bytes(data)
    if size > MAX_FILE_BYTES:
        with pytest.raises(Problem, match="larger than") as raised:
            read_seed(tmp_path, "f.md")
        assert raised.value.field == "(file)"
    else:
        assert read_seed(tmp_path, "f.md")[0] == data


def test_front_matter_split_is_exact() -> None:
    """Only the first two `---` lines delimit; a body with `---` lines is never read."""
    data = b"---\ntitle: t\n---  \nbody\n---\ntitle: other\n---\n"
    front = split_front_matter(data, "s.md")
    assert front.data == {"title": "t"}
    assert front.body == b"body\n---\ntitle: other\n---\n"


# --- the fast builder (ingest/yamlload.py) gives exactly what the safe loader gives -------


def _outcome(load: Callable[[str], object], text: str) -> object:
    try:
        return ("value", load(text))
    except Exception as error:  # both must fail alike, and never differently
        return ("error", type(error).__name__)


def _standard(text: str) -> object:
    return yaml.load(text, Loader=SafeLoader)


def _every_real_front_matter() -> list[str]:
    from conftest import SAMPLE_SEEDS, SHARED

    found = []
    for root in (SHARED / "realworld", SHARED / "sites", SAMPLE_SEEDS):
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.suffix in {".md", ".markdown", ".txt", ".html"}:
                text = path.read_text(encoding="utf-8", errors="replace").lstrip()
                if text.startswith("---"):
                    found.append(text[3:].split("\n---", 1)[0])
    return found


def test_the_fast_builder_equals_the_safe_loader_on_real_front_matter() -> None:
    texts = _every_real_front_matter()
    assert len(texts) > 100
    for text in texts:
        assert _outcome(yamlload.load, text) == _outcome(_standard, text)


SCALAR_SAMPLES = ["yes", "No", "on", "~", "null", "", "0x1F", "0o17", "1_000", "1:20:30",
                  ".inf", "-.NaN", "3.5e2", "+12", "2021-11-12", "2021-11-12T05:20:00Z",
                  "2021-11-12 05:20:00.5 +5", "2021-13-45", "!!bool maybe", "!!int ''",
                  "!!str 12", "!!binary aGk=", "&a x", "*a", "<<", "=", "'quoted'", "[1, {a: b}]",
                  "{? [a]: b}", "!custom x", "- a", "x: y: z"]  # fmt: skip
YAML_SCALARS = st.one_of(
    st.sampled_from(SCALAR_SAMPLES),
    st.text(max_size=12),
    st.integers(),
    st.floats(allow_nan=False),
)  # fmt: skip


@pytest.mark.parametrize("scalar", SCALAR_SAMPLES)
def test_the_fast_builder_equals_the_safe_loader_on_every_kind_of_scalar(scalar: str) -> None:
    for text in (f"key: {scalar}\n", f"- {scalar}\n- [{scalar}]\n", f"{scalar}: 1\n"):
        assert _outcome(yamlload.load, text) == _outcome(_standard, text), text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.recursive(
        YAML_SCALARS,
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=6), children, max_size=4)
        ),
        max_leaves=12,
    ),
    st.sampled_from(["block", "flow", "raw"]),
)
def test_the_fast_builder_equals_the_safe_loader_on_generated_documents(
    value: object, style: str
) -> None:
    if style == "raw":  # scalars spliced in as they are: tags, anchors and all
        text = "key: " + (value if isinstance(value, str) else json.dumps(value)) + "\n"
    else:
        text = yaml.safe_dump({"key": value}, default_flow_style=style == "flow")
    assert _outcome(yamlload.load, text) == _outcome(_standard, text)


@pytest.mark.timeout(20)
def test_shared_nodes_under_the_alias_limit_are_never_expanded() -> None:
    """Nine levels of ten aliases (90, under the limit of 100) name a billion values: the
    builder must hand them to the standard loader, which shares nodes instead of copying."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 10):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 10) + "]")
    text = "\n".join(lines) + "\n"
    loaded = yamlload.load(text)
    assert loaded["a9"][0] is loaded["a9"][1]  # shared, as the safe loader leaves it
    head = "title: Laughs\npublishedDateTime: 2021-01-01T00:00:00Z\nwebUrl: https://e.x/\n"
    seed = f"---\n{text}{head}topics: *a9\n---\n"
    parsed = parse_seed(seed.encode(), "laughs.md")
    assert parsed.article.topics == ()
