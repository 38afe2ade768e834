"""Optimistic concurrency over HTTP: a resource's ETag is its version number (a ticket's
``version``, an article's newest revision), and an edit may send it back in ``If-Match`` (or as
a body field) so that a change made meanwhile is refused with 409 instead of overwritten."""

from __future__ import annotations

from typing import Any

from flask import request

from autocrm.columns import MAX_INT32
from autocrm.errors import PreconditionFailed


def expected_version(body: dict[str, Any], field: str) -> int | None:
    """The version the client edited: ``If-Match`` (an ETag like ``"3"``) or ``body[field]``.
    The field is removed from ``body`` either way; a malformed header is a 412."""
    header = request.headers.get("If-Match")
    from_body = body.pop(field, None)
    if header is None:
        return from_body
    raw = header.strip().removeprefix("W/").strip('"')
    # isdecimal, not int(): int() also takes "+3", " 3" and "1_000"; and numbers a column holds.
    if not (raw.isascii() and raw.isdecimal() and len(raw) <= 10 and int(raw) <= MAX_INT32):
        raise PreconditionFailed(
            f'If-Match must be a {field} number, e.g. "3".', {"If-Match": [f"Not a {field}."]}
        )
    return int(raw)


def with_etag(resource: Any, version: int) -> tuple[Any, dict[str, str]]:
    return resource, {"ETag": f'"{version}"'}
