"""Database engine tuning: SQLite as a multi-process embedded default.

Several processes (web, worker, beat) share one SQLite file. WAL lets readers run beside a
writer, ``busy_timeout`` makes a writer wait for the lock instead of failing, and ``BEGIN
IMMEDIATE`` takes the write lock at the start of a transaction, so two transactions never both
read and then deadlock upgrading to write ("database is locked").
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event

SQLITE_BUSY_TIMEOUT_MS = 10_000


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, see _on_begin
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _on_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def tune(engine: Engine) -> None:
    if engine.dialect.name != "sqlite" or event.contains(engine, "connect", _on_connect):
        return
    event.listen(engine, "connect", _on_connect)
    event.listen(engine, "begin", _on_begin)
