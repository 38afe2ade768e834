"""What a notification that holds several parts says, and in what order.

A part is what one event tells a person: ``{"title", "text", "quote"}``, the quote being the
reply it follows (a status change quotes the latest public reply). Parts merge into one
notification per change (``services.notify``) and notifications into one customer email per
window (``emails``): each time, a block of text already said (a reply both told and quoted)
is said once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# Most important first: a notification that says several things is of the first kind it holds.
IMPORTANCE = (
    "escalation",
    "sla_breach",
    "sla_warning",
    "assigned",
    "mentioned",
    "ticket_created",
    "customer_reply",
    "feedback_request",
    "status_changed",
    "public_reply",
)


def part(title: str, text: str, quote: str = "") -> dict[str, str]:
    return {"title": title[:200], "text": text.strip(), "quote": quote.strip()}


def merged(
    earlier: dict[str, str] | None, later: dict[str, str], *, superseding: bool
) -> dict[str, str]:
    """One part of a kind from two in one change: the later one where it supersedes (the
    state the change ended in); else the earlier one, saying the later's text too when that
    is news (two escalations), so a redelivery changes nothing."""
    if earlier is None or superseding:
        return later
    if not later["text"] or later["text"] in earlier["text"]:
        return earlier
    return {**earlier, "text": f"{earlier['text']}\n\n{later['text']}".strip()}


def ordered(parts: dict[str, Any]) -> list[str]:
    """The kinds ``parts`` holds, most important first."""
    return sorted(parts, key=IMPORTANCE.index)


def blocks(parts: dict[str, Any]) -> list[str]:
    """The text blocks a notification of ``parts`` says, each once, most important first."""
    return said_once(
        block for kind in ordered(parts) for block in (parts[kind]["text"], parts[kind]["quote"])
    )


def said_once(candidates: Iterable[str], told: Iterable[str] = ()) -> list[str]:
    """``candidates`` without the empty ones and those already said (in ``told`` or earlier)."""
    seen = list(told)
    kept: list[str] = []
    for block in candidates:
        if block and block not in seen:
            kept.append(block)
            seen.append(block)
    return kept


def render(parts: dict[str, Any]) -> tuple[str, str, str]:
    """(kind, title, body) of a notification holding ``parts``."""
    first = ordered(parts)[0]
    return first, parts[first]["title"], "\n\n".join(blocks(parts))
