"""Database engine tuning: SQLite as a multi-process embedded default.

Several processes (web, worker, beat) share one SQLite file. WAL lets readers run beside a
writer, ``busy_timeout`` makes a writer wait for the lock instead of failing, and ``BEGIN
IMMEDIATE`` takes the write lock at the start of a transaction that may write, so two
transactions never both read and then fail upgrading to write ("database is locked").

Transactions are writers unless marked otherwise: requests with a safe HTTP method (GET, HEAD,
OPTIONS) run inside ``read_only()`` and begin a plain deferred transaction, so reads never queue
behind the write lock. A safe-method handler must therefore never write, except inside
``writing()`` (a followed link that records it was followed, say).

Writers also queue before ``BEGIN IMMEDIATE`` (``WriterQueue``), and leave the queue as soon as
their transaction ends. SQLite's busy handler is not a queue: a waiting writer sleeps and polls
(1 ms growing to 100 ms), so under a burst of writers the unlucky ones keep missing the lock,
some for the whole busy timeout ("database is locked" in bench/api_bench.py with 16 clients).
In the queue, one thread per process waits for the file at a time, and processes take turns.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from flask import Flask, g, request
from sqlalchemy import Engine, event
from sqlalchemy.exc import DisconnectionError

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


_HOLDS_WRITE_LOCK = "autocrm_holds_write_lock"
_POLL_S = 0.0005


def _flock(fd: int, deadline: float) -> bool:
    """Take ``fd``'s flock, polling (a blocking flock would stall an eventlet hub) until
    ``deadline``; whether it was taken."""
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_S)


class WriterQueue:
    """Whose turn it is to write to one database file.

    In this process, one thread at a time (a lock: the others sleep until it is free). Between
    processes, turns through two flock()ed files beside the database: a process waits for the
    gate while holding the turnstile, so the process that just wrote cannot take the gate
    again ahead of it; two busy processes alternate instead of one starving the other."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.Lock()
        self._fds: tuple[int, int] | None = None
        self._pid = 0

    def _files(self) -> tuple[int, int] | None:
        if not self.path or self.path == ":memory:" or self.path.startswith("file:"):
            return None
        if self._pid != os.getpid():  # opened anew in a forked child: flocks follow the file
            flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
            self._fds = (
                os.open(f"{self.path}-writers.turnstile", flags, 0o600),
                os.open(f"{self.path}-writers.gate", flags, 0o600),
            )
            self._pid = os.getpid()
        return self._fds

    def acquire(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        if not self.lock.acquire(timeout=timeout):
            return False
        files = self._files()
        if files is None:
            return True
        turnstile, gate = files
        if _flock(turnstile, deadline):
            took_gate = _flock(gate, deadline)
            fcntl.flock(turnstile, fcntl.LOCK_UN)
            if took_gate:
                return True
        self.lock.release()
        return False

    def release(self) -> None:
        if self._fds is not None and self._pid == os.getpid():
            fcntl.flock(self._fds[1], fcntl.LOCK_UN)
        self.lock.release()


_queues: dict[str, WriterQueue] = {}
_queues_guard = threading.Lock()


_fork_hook_installed = False


def _forget_queues_in_child() -> None:
    """A forked child (a prefork pool process) starts with queues of its own: a lock held by
    another thread of the parent at the fork would never be released in the child."""
    global _queues_guard
    _queues.clear()
    _queues_guard = threading.Lock()


def _writer_queue(connection: Any) -> WriterQueue:
    """The queue for the connection's database file (shared by this process's engines)."""
    path = str(connection.engine.url.database or "")
    with _queues_guard:
        return _queues.setdefault(path, WriterQueue(path))


def _on_begin(connection: Any) -> None:
    if _read_only.get():
        connection.exec_driver_sql("BEGIN")
        return
    queue = _writer_queue(connection)
    # Bounded like the busy timeout: a writer stuck elsewhere makes this one fail as before
    # ("database is locked"), never wait forever.
    if queue.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
        connection.info[_HOLDS_WRITE_LOCK] = queue
    try:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    except BaseException:
        _release_write_lock(connection.info)
        raise


def _release_write_lock(info: dict[str, Any]) -> None:
    queue = info.pop(_HOLDS_WRITE_LOCK, None)
    if queue is not None:
        queue.release()


def _end_then_release(connection: Any, end: str) -> None:
    """End the transaction (``commit`` or ``rollback``), then let the next writer in.
    SQLAlchemy's own commit or rollback follows this event and then finds no transaction; if
    this one failed, that one raises the error, wrapped as usual."""
    if connection.invalidated:
        return  # the pool's checkin releases the lock
    info = connection.info
    if _HOLDS_WRITE_LOCK not in info:
        return
    try:
        getattr(connection.connection.dbapi_connection, end)()
    except Exception:  # noqa: S110 - reported by SQLAlchemy's own attempt, see above
        pass
    finally:
        _release_write_lock(info)


def _on_commit(connection: Any) -> None:
    _end_then_release(connection, "commit")


def _on_rollback(connection: Any) -> None:
    _end_then_release(connection, "rollback")


def _on_checkin(_dbapi_connection: Any, record: Any, *_exception: Any) -> None:
    """A connection back in the pool holds no transaction (an invalidated one included)."""
    if record is not None:
        _release_write_lock(record.info)


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


# A connection back in the pool for longer than this is pinged before it is handed out.
IDLE_PING_AFTER_S = 10.0
_CHECKED_IN_AT = "autocrm_checked_in_at"


def _note_checkin(_dbapi_connection: Any, record: Any) -> None:
    if record is not None:
        record.info[_CHECKED_IN_AT] = time.monotonic()


def _ping_when_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Ping a connection that sat idle in the pool (the server may have restarted or dropped
    it meanwhile); a failed ping makes the pool connect afresh. One that was in use moments
    ago goes out unpinged: under load no checkout pays a round trip (``pool_pre_ping`` pings
    every one). If the server went away in those moments, the statement fails, SQLAlchemy
    sees a disconnect and empties the pool, and the next request connects anew."""
    checked_in = record.info.get(_CHECKED_IN_AT)
    if checked_in is None or time.monotonic() - checked_in < IDLE_PING_AFTER_S:
        return
    try:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
    except Exception as exc:  # whatever the driver raises: this connection is gone
        raise DisconnectionError(f"idle connection failed its ping: {exc}") from exc


def tune(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        if not event.contains(engine.pool, "checkout", _ping_when_idle):
            event.listen(engine.pool, "checkin", _note_checkin)
            event.listen(engine.pool, "checkout", _ping_when_idle)
        return
    if event.contains(engine, "connect", _on_connect):
        return
    global _fork_hook_installed
    if not _fork_hook_installed:
        os.register_at_fork(after_in_child=_forget_queues_in_child)
        _fork_hook_installed = True
    event.listen(engine, "connect", _on_connect)
    event.listen(engine, "begin", _on_begin)
    event.listen(engine, "commit", _on_commit)
    event.listen(engine, "rollback", _on_rollback)
    event.listen(engine.pool, "checkin", _on_checkin)
    event.listen(engine.pool, "invalidate", _on_checkin)
