"""A static-site page's body → its full content as safe HTML, and its summary as text.

The body is Markdown (CommonMark with GitHub's tables and strikethrough, and
footnotes: markdown-it-py) or, for `.html` files, HTML. Template tags are never run:
Liquid (`{% %}`, `{{ }}`) and Hugo shortcodes (`{{< >}}`, `{{% %}}`) are left out
and the text they wrap kept; a code-highlighting block keeps its code as a code block,
`{% raw %}` its text, and Hugo's escaped `{{</* x */>}}` prints `{{< x >}}`. Rendered
once per change, in the loader's parse step; the result is sanitised (sanitize.py).
"""

from __future__ import annotations

import functools
import html
import re
from typing import Any, NamedTuple

from feedservice.ingest.clean import XML_ILLEGAL, truncate
from feedservice.ingest.sanitize import sanitise

MAX_CONTENT_CHARS = 512 * 1024  # of sanitised HTML; a longer body is left out
MAX_BLOCK_CHARS = 4096  # the start of a body with no paragraph that becomes its summary
_CODE = r"(?P<code>.*?)"
_LIQUID = re.compile(
    r"{%-?\s*raw\s*-?%}(?P<raw>.*?){%-?\s*endraw\s*-?%}"
    r"|{%-?\s*comment\s*-?%}.*?{%-?\s*endcomment\s*-?%}"
    rf"|{{%-?\s*highlight\s+(?P<lang>[\w+#.-]+)[^%]*%}}\n?{_CODE}{{%-?\s*endhighlight\s*-?%}}"
    r"|{%.{0,2000}?%}|{{.{0,2000}?}}",
    re.DOTALL,
)
_SHORTCODES = re.compile(
    r"{{(?P<open>[<%])\s*/\*(?P<raw>.*?)\*/\s*[>%]}}"
    r"|{{[<%]\s*(?P<name>highlight|code-toggle|code)\b(?:\s+(?P<lang>[\w+#.-]+))?[^\n]*?[>%]}}\n?"
    rf"{_CODE}{{{{[<%]\s*/\s*(?P=name)\s*[>%]}}}}"
    r"|{{<.{0,2000}?>}}|{{%.{0,2000}?%}}",
    re.DOTALL,
)
_STRIPPED = {
    "liquid": (_LIQUID, "Liquid tags ({% %}, {{ }})"),
    "shortcodes": (_SHORTCODES, "Hugo shortcodes ({{< >}}, {{% %}})"),
}
_MORE = "<!--feedservice:more-->"
_PARAGRAPH = re.compile(r"<p>(.*?)</p>", re.DOTALL)
_BREAK = re.compile(r"<(?:/?(?:p|li|h\d|div|td|th|tr|pre|blockquote)|br)\b[^>]*>")
_TAG = re.compile(r"<[^>]*>")


class Body(NamedTuple):
    html: str  # sanitised, every URL absolute; "" if there is none or it is too large
    summary: str  # plain text: before the `more` marker, else the first paragraph (or text)
    notes: tuple[str, ...]  # warnings for `check`


def render_body(data: bytes, templates: str, is_html: bool, base: str, more: str | None) -> Body:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return Body("", "", ("the body is not valid UTF-8 text; it is left out",))
    text = XML_ILLEGAL.sub("", text.replace("\r\n", "\n"))
    if not text.strip():
        return Body("", "", ())
    pattern, what = _STRIPPED[templates]
    text, count = pattern.subn(_kept_text, text)
    notes = [f"{what} are not run: left out, the text they wrap kept"] if count else []
    if isinstance(more, str) and more and more in text:
        text = text.replace(more, _MORE, 1)
    rendered = text if is_html else _markdown().render(text)
    before, marked, _ = rendered.partition(_MORE)
    content = sanitise(rendered.replace(_MORE, ""), base)
    if marked:
        summary = as_text(sanitise(before, base))
    else:
        found = (as_text(match[1]) for match in _PARAGRAPH.finditer(content))
        summary = next((paragraph for paragraph in found if paragraph), "")
        summary = summary or truncate(as_text(content[:MAX_BLOCK_CHARS]), MAX_BLOCK_CHARS // 8)
    if len(content) > MAX_CONTENT_CHARS:
        notes.append(f"the content is over {MAX_CONTENT_CHARS} characters; only the summary")
        content = ""
    return Body(content, summary, tuple(notes))


@functools.cache
def _markdown() -> Any:
    """The renderer, made on first use: an everyday-cc load never imports it (~40 ms)."""
    from markdown_it import MarkdownIt
    from mdit_py_plugins.footnote import footnote_plugin

    return (
        MarkdownIt("commonmark", {"html": True})
        .enable(["table", "strikethrough"])
        .use(footnote_plugin)
    )


def _kept_text(match: re.Match[str]) -> str:
    """What a template tag leaves: code as a fenced block, raw text as written."""
    found = match.groupdict()
    if found.get("raw") is not None:
        return ("{{" + found["open"] + found["raw"] + found["open"].replace("<", ">") + "}}"
                if found.get("open") else found["raw"])  # fmt: skip
    if found.get("code") is not None:
        code = found["code"].rstrip("\n")
        fence = "`" * max(3, 1 + max(map(len, re.findall("`+", code)), default=0))
        return f"\n{fence}{found.get('lang') or ''}\n{code}\n{fence}\n"
    return ""


def as_text(fragment: str) -> str:
    """The text of an HTML fragment, whitespace collapsed."""
    return " ".join(html.unescape(_TAG.sub("", _BREAK.sub(" ", fragment))).split())
