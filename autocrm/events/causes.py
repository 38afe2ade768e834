"""Why a change happens, and which change an event belongs to.

Automation runs a rule's actions inside ``caused_by(...)``; every event made meanwhile carries
the cause (the rule, its workflow version, the conditions that held, the chain depth that stops
rules from triggering each other forever), so each automated change in a ticket's trail names
its rule and reason.

A change is what one transaction does: its events share a ``change_id``. A worker reacting to
an event runs inside ``handling(event)``, so what it does (an assignment, a rule's actions)
belongs to the same change: a person who hears about the change hears about it once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from autocrm.extensions import db

if TYPE_CHECKING:
    from autocrm.events.kinds import Event

MAX_DEPTH = 5
_current: ContextVar[dict[str, Any] | None] = ContextVar("autocrm_cause", default=None)
_handling: ContextVar[str | None] = ContextVar("autocrm_handling_change", default=None)
_CHANGE_KEY = "autocrm.change_id"


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


def change_id() -> str:
    """The change the current transaction makes (or, in a handler, the one it reacts to)."""
    handled = _handling.get()
    if handled is not None:
        return handled
    return db.session.info.setdefault(_CHANGE_KEY, str(uuid.uuid4()))


@contextmanager
def handling(event: Event) -> Iterator[None]:
    """Reacting to ``event``: what is done inside belongs to its change."""
    token = _handling.set(event.change_id)
    try:
        yield
    finally:
        _handling.reset(token)


def _change_ends(session: Session) -> None:
    if not session.in_nested_transaction():  # a released SAVEPOINT ends no change
        session.info.pop(_CHANGE_KEY, None)


def install() -> None:
    """A change ends when its transaction commits or rolls back (idempotent)."""
    if not sa_event.contains(Session, "after_commit", _change_ends):
        sa_event.listen(Session, "after_commit", _change_ends)
        sa_event.listen(Session, "after_rollback", _change_ends)
