"""Messages are Markdown (emails: plain text); this turns them into HTML that is safe to put
in a page.

markdown-it (CommonMark) with raw HTML disabled renders; nh3 (ammonia) then keeps only an
allow-list of tags and attributes, drops every event handler and script, keeps links to
http(s) and mailto only, and makes them open safely. A message such as
``<img src=x onerror=alert(1)>`` comes out as text.
"""

from __future__ import annotations

import html

import nh3
from markdown_it import MarkdownIt

_renderer = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})

ALLOWED_TAGS = {
    "p", "br", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li", "a",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}


def render(text: str) -> str:
    """Sanitized HTML for a Markdown message."""
    html = _renderer.render(text)
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


def render_plain(text: str) -> str:
    """HTML for plain text as written (an email's): paragraphs at blank lines, its line
    breaks kept, nothing read as markup."""
    paragraphs = [p for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    return "".join(
        "<p>" + "<br>\n".join(html.escape(line) for line in p.strip("\n").split("\n")) + "</p>"
        for p in paragraphs
    )


def render_body(text: str, channel: str) -> str:
    """A message's or ticket's text as HTML: an email's as written, anything else Markdown."""
    return render_plain(text) if channel == "email" else render(text)
