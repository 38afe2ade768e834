"""Readable plain text from (sanitized) HTML mail, with the standard library's HTML parser.

HTML-only mail (many phones and newsletters send no text part) still needs a plain text for the
ticket, for search and for the reply parser. Paragraphs, line breaks, list items and quotes are
kept (a blockquote becomes "> " lines, so the reply parser recognises quoted history); tags go.
A converter library would be one more dependency for what fits in a page.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCKS = {
    "address", "article", "aside", "blockquote", "caption", "center", "dd", "details", "div",
    "dl", "dt", "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header",
    "hr", "li", "nav", "ol", "p", "pre", "section", "summary", "table", "tr", "ul",
}  # fmt: skip
_SKIP = {"script", "style", "head", "title", "template"}


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.quote_depth = 0
        self.skip_depth = 0
        self.pre_depth = 0

    def _break(self) -> None:
        text = "".join(self.current)
        if self.pre_depth == 0:
            text = " ".join(text.split())
        self.lines.append(("> " * self.quote_depth) + text if text else "")
        self.current = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skip_depth += 1
        elif tag == "br":
            self._break()
        elif tag in _BLOCKS:
            if self.current:
                self._break()
            if tag == "blockquote":
                self.quote_depth += 1
            elif tag == "pre":
                self.pre_depth += 1
            elif tag == "li":
                self.current.append("- ")
        elif tag in {"td", "th"} and self.current:
            self.current.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif tag in _BLOCKS:
            self._break()
            if tag in {"p", "blockquote", "table", "ul", "ol", "h1", "h2", "h3"}:
                self.lines.append("")
            if tag == "blockquote":
                self.quote_depth = max(0, self.quote_depth - 1)
            elif tag == "pre":
                self.pre_depth = max(0, self.pre_depth - 1)

    def handle_data(self, data: str) -> None:
        if not self.skip_depth:
            self.current.append(data if self.pre_depth else data.replace("\xa0", " "))


def to_text(html: str) -> str:
    """Plain text of an HTML document: one line per block, at most one blank line between."""
    collector = _TextCollector()
    collector.feed(html)
    collector.close()
    if collector.current:
        collector._break()
    text = "\n".join(line.rstrip() for line in collector.lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
