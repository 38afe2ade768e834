"""The service layer owns the transaction, also when a change fails.

A ``do_*`` function commits its own changes. If it raises instead (bad input found half-way,
a stale version, a conflict), ``rolls_back_on_error`` rolls back whatever it had changed in
the session before the error reaches the caller: a page that catches the error re-renders
from the database as it was, and neither views nor socket handlers ever roll back themselves.
Inside a savepoint (bulk changes, rule actions) the savepoint's own rollback applies instead,
so the outer transaction keeps the work done so far.

``duplicates_refused`` covers the race a ``check_*`` cannot: two requests both find a name
free, and the database's unique constraint refuses the second insert. The loser gets the same
error a sequential duplicate gets.

``commit_keeping_loaded`` commits without expiring what the session holds, for a change whose
caller answers from it (the API's response): reading back every object just committed would
cost a second transaction and a statement per object (and on SQLite a second turn at the write
lock). What the database sets itself is read before the commit (the version at flush, the rest
by the realtime preparer's re-read, see ``autocrm.realtime.publish``).

``read_once`` reads what several parts of one request need alike (the custom field
definitions: the check of a new ticket's values, its view, the page's panels) once per
transaction. Per transaction, not per process: another process may change the rows at any
time, and a new transaction must see that. The transaction's own writes to the rows' model
(a flush, pending changes, a bulk statement, a savepoint's end) make it read again; for a
read that returns the rows themselves (``rows=True``: a ticket's SLA clocks, which the change
sets and its view shows), only rows added or deleted do.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import event, inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, ORMExecuteState, Session, SessionTransaction
from sqlalchemy.orm.util import identity_key

from autocrm.errors import DomainError
from autocrm.extensions import db

P = ParamSpec("P")
R = TypeVar("R")
K = TypeVar("K")
V = TypeVar("V")
_READ_ONCE = "autocrm.transaction.read_once"  # session.info: {(kind, id): _Read}


def rolls_back_on_error(service: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(service)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return service(*args, **kwargs)
        except BaseException:
            if not db.session().in_nested_transaction():
                db.session.rollback()
            raise

    return run


def commit_keeping_loaded() -> None:
    session = db.session()
    expire, session.expire_on_commit = session.expire_on_commit, False
    try:
        session.commit()
    finally:
        session.expire_on_commit = expire


def held_values(model: type[Any], ids: Iterable[Any], attribute: str) -> dict[Any, Any]:
    """``attribute`` of the ``model`` rows with these ids that the session already holds
    loaded (unexpired): what a bulk read may skip. Their in-session value is the one this
    transaction writes, if it changed it."""
    session = db.session()
    found: dict[Any, Any] = {}
    for ident in ids:
        held = session.identity_map.get(identity_key(model, ident))
        if held is not None and attribute not in inspect(held).unloaded:
            found[ident] = getattr(held, attribute)
    return found


def read_once(key: Hashable, model: type[Any], read: Callable[[], R], *, rows: bool = False) -> R:
    """``read()``, called once in the current transaction for ``key``; ``model``: the rows
    it reads, whose changes in this transaction forget it. ``rows``: it returns those rows
    themselves, which stay current as the transaction changes them, so only rows added or
    deleted forget it. Callers must not change what it returns."""
    return read_once_each(key, [None], model, lambda _: {None: read()}, rows=rows)[None]


def read_once_each(
    kind: Hashable,
    ids: Iterable[K],
    model: type[Any],
    read: Callable[[set[K]], Mapping[K, V]],
    *,
    rows: bool = False,
) -> dict[K, V]:
    """``read_once`` for several things of one ``kind`` (each ticket's clocks, say):
    ``read(ids)`` reads those not read yet in this transaction, in one go, and must return
    a value for each."""
    session = db.session()
    cache = session.info.setdefault(_READ_ONCE, {})
    wanted = set(ids)
    if _pending(session, model, rows):
        cache = {}  # the read's autoflush forgets what was read before
    found = {i: cache[kind, i].value for i in wanted if (kind, i) in cache}
    if missing := wanted - found.keys():
        fresh = read(missing)
        cache = session.info.setdefault(_READ_ONCE, {})
        for i in missing:
            cache[kind, i] = _Read(model, rows, fresh[i])
            found[i] = fresh[i]
    return found


@dataclass(frozen=True)
class _Read:
    model: type[Any]
    rows: bool
    value: Any


def _pending(session: Session, model: type[Any], rows: bool) -> bool:
    changed = [*session.new, *session.deleted, *([] if rows else session.dirty)]
    return any(type(obj) is model for obj in changed)


def _forget(session: Session, models: set[type[Any]], *, rows_too: bool = True) -> None:
    cache = session.info.get(_READ_ONCE)
    if cache:
        for key in [k for k, r in cache.items() if r.model in models and (rows_too or not r.rows)]:
            del cache[key]


def _forget_flushed(session: Session, _context: Any) -> None:
    if session.info.get(_READ_ONCE):
        _forget(session, {type(obj) for obj in (*session.new, *session.deleted)})
        _forget(session, {type(obj) for obj in session.dirty}, rows_too=False)


def _forget_bulk_written(state: ORMExecuteState) -> None:
    if (state.is_update or state.is_delete or state.is_insert) and state.bind_mapper is not None:
        _forget(state.session, {state.bind_mapper.class_})


def _forget_at_end(session: Session, transaction: SessionTransaction) -> None:
    # A savepoint's end too (one rolled back may have undone what was read inside it), but
    # not a flush's internal subtransaction.
    if transaction.nested or transaction.parent is None:
        session.info.pop(_READ_ONCE, None)


def install() -> None:
    """Hook ``read_once`` onto every ORM session (idempotent)."""
    if not event.contains(Session, "after_transaction_end", _forget_at_end):
        event.listen(Session, "after_flush", _forget_flushed)
        event.listen(Session, "do_orm_execute", _forget_bulk_written)
        event.listen(Session, "after_transaction_end", _forget_at_end)


def _violates_unique(error: IntegrityError, column: InstrumentedAttribute[Any]) -> bool:
    """Whether ``error`` is the unique constraint on ``column`` (named by the metadata's
    convention, ``uq_<table>_<column>``) refusing a row."""
    table, name = column.property.columns[0].table.name, column.property.columns[0].name
    diag = getattr(error.orig, "diag", None)  # PostgreSQL names the constraint
    if diag is not None:
        return bool(diag.constraint_name == f"uq_{table}_{name}")
    return f"UNIQUE constraint failed: {table}.{name}" in str(error.orig)  # SQLite


@contextlib.contextmanager
def duplicates_refused(
    column: InstrumentedAttribute[Any], error: Callable[[], DomainError]
) -> Iterator[None]:
    """Inside, the unique constraint on ``column`` refusing a row raises ``error()``."""
    try:
        yield
    except IntegrityError as exc:
        if not _violates_unique(exc, column):
            raise
        raise error() from exc
