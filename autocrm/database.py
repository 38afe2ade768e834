"""Database engine tuning: SQLite as a multi-process embedded default.

Several processes (web, worker, beat) share one SQLite file. WAL lets readers run beside a
writer, ``busy_timeout`` makes a writer wait for the lock instead of failing, and ``BEGIN
IMMEDIATE`` takes the write lock at the start of a transaction that may write, so two
transactions never both read and then fail upgrading to write ("database is locked").

Transactions are writers unless marked otherwise: requests with a safe HTTP method (GET, HEAD,
OPTIONS) run inside ``read_only()`` and begin a plain deferred transaction, so reads never queue
behind the write lock. A safe-method handler must therefore never write, except inside
``writing()`` (a followed link that records it was followed, say).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from flask import Flask, g, request
from sqlalchemy import Engine, event

from autocrm.extensions import db

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

SQLITE_BUSY_TIMEOUT_MS = 10_000


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, see _on_begin
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


_read_only: ContextVar[bool] = ContextVar("autocrm_sqlite_read_only", default=False)


@contextmanager
def read_only() -> Iterator[None]:
    """Transactions begun inside only read (SQLite begins them deferred)."""
    token = _read_only.set(True)
    try:
        yield
    finally:
        _read_only.reset(token)


@contextmanager
def writing() -> Iterator[None]:
    """A write inside a read-only scope: ends the session's read transaction, so the write
    begins its own as a writer (upgrading a deferred read to a write fails at once under
    contention, whatever the busy timeout)."""
    db.session.rollback()
    token = _read_only.set(False)
    try:
        yield
    finally:
        _read_only.reset(token)


def _on_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN" if _read_only.get() else "BEGIN IMMEDIATE")


def mark_safe_requests_read_only(app: Flask) -> None:
    @app.before_request
    def _enter() -> None:
        if request.method in SAFE_METHODS:
            g.autocrm_read_only = read_only()
            g.autocrm_read_only.__enter__()

    @app.teardown_request
    def _leave(_exc: BaseException | None) -> None:
        scope = g.pop("autocrm_read_only", None)
        if scope is not None:
            scope.__exit__(None, None, None)


def tune(engine: Engine) -> None:
    if engine.dialect.name != "sqlite" or event.contains(engine, "connect", _on_connect):
        return
    event.listen(engine, "connect", _on_connect)
    event.listen(engine, "begin", _on_begin)
