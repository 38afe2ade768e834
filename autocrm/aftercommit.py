"""Work that must happen only after the current transaction commits.

Services queue items here during a transaction (outbox event ids for Celery, Socket.IO emits);
an ``after_commit`` hook on every ORM session hands each kind's items, in order, to the
consumer registered for it, and a rollback drops them. SQLAlchemy also fires these hooks when
a SAVEPOINT is released or rolled back; those are ignored here, and code that opens a
savepoint uses ``savepoint()`` so that what it queued is dropped if it rolls back. Consumers
must not raise: a failure there cannot undo the commit.

A kind registered with ``register_before_commit`` is handed over just before the commit
instead, still inside the transaction: its preparer reads the final state of what the items
name (once, however many items name it) and queues what goes out after commit.

A preparer may also ``keep`` what it rendered of that final state: until the session begins
another transaction, ``kept`` hands it to the caller, which answers from it instead of reading
the committed rows back (the API's response to a change is the ``ticket_updated`` view).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from autocrm.extensions import db

log = logging.getLogger(__name__)
_KEY = "autocrm.aftercommit"
_KEPT = "autocrm.aftercommit.kept"
Consumer = Callable[[list[Any]], object]  # a return value is ignored
_consumers: dict[str, Consumer] = {}
_preparers: dict[str, Consumer] = {}


def register(kind: str, consumer: Consumer) -> None:
    _consumers[kind] = consumer


def register_before_commit(kind: str, preparer: Consumer) -> None:
    _preparers[kind] = preparer


def add(kind: str, item: Any) -> None:
    db.session.info.setdefault(_KEY, []).append((kind, item))


def mark() -> int:
    return len(db.session.info.get(_KEY, []))


def discard_since(position: int) -> None:
    del db.session.info.get(_KEY, [])[position:]


@contextmanager
def savepoint() -> Iterator[None]:
    """``db.session.begin_nested()`` whose queued work is dropped if it rolls back."""
    position = mark()
    try:
        with db.session.begin_nested():
            yield
    except BaseException:
        discard_since(position)
        raise


def keep(key: Any, value: Any) -> None:
    """From a preparer: ``value`` (rendered from the final state) for ``kept(key)``."""
    db.session.info.setdefault(_KEPT, {})[key] = value


def kept(key: Any) -> Any:
    """What a preparer kept under ``key`` at the last commit, if the session has not begun
    another transaction since (else None: the caller reads the database)."""
    session = db.session()
    if session.in_transaction():
        return None
    return session.info.get(_KEPT, {}).get(key)


def _before_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return
    session.info.pop(_KEPT, None)  # rendered by an earlier commit: stale from now on
    if not _preparers:
        return
    pending = session.info.get(_KEY, [])
    prepared = [(kind, item) for kind, item in pending if kind in _preparers]
    if not prepared:
        return
    pending[:] = [(kind, item) for kind, item in pending if kind not in _preparers]
    by_kind: dict[str, list[Any]] = {}
    for kind, item in prepared:
        by_kind.setdefault(kind, []).append(item)
    for kind, items in by_kind.items():
        _preparers[kind](items)  # in the transaction: a failure fails the commit


def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():  # a SAVEPOINT was released; the commit comes later
        return
    pending = session.info.pop(_KEY, [])
    by_kind: dict[str, list[Any]] = {}
    for kind, item in pending:
        by_kind.setdefault(kind, []).append(item)
    for kind, items in by_kind.items():
        try:
            _consumers[kind](items)
        except Exception:  # the commit stands; each consumer has its own way to catch up
            log.exception("after-commit consumer %s failed", kind)


def _after_rollback(session: Session) -> None:
    if session.in_nested_transaction():  # a SAVEPOINT rolled back: savepoint() saw to it
        return
    session.info.pop(_KEY, None)
    session.info.pop(_KEPT, None)


def install() -> None:
    """Hook onto every ORM session (idempotent)."""
    if not event.contains(Session, "after_commit", _after_commit):
        event.listen(Session, "before_commit", _before_commit)
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_rollback", _after_rollback)
