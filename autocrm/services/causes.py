"""Why an automated change happens: the rule, its workflow version, the conditions that held.

Automation runs a rule's actions inside ``caused_by(...)``; ``tickets.record`` stores the
active cause in every audit event and domain event those actions write, so each automated
change in a ticket's trail names its rule and reason. The cause also carries the chain depth,
which stops rules from triggering each other forever.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

MAX_DEPTH = 5
_current: ContextVar[dict[str, Any] | None] = ContextVar("autocrm_cause", default=None)


def current() -> dict[str, Any] | None:
    return _current.get()


@contextmanager
def caused_by(
    rule: str, *, workflow_version: int | None, because: list[Any], depth: int
) -> Iterator[dict[str, Any]]:
    cause = {"rule": rule, "workflow_version": workflow_version, "because": because, "depth": depth}
    token = _current.set(cause)
    try:
        yield cause
    finally:
        _current.reset(token)
